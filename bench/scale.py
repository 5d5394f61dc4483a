"""Scale benchmark: the CLI and the daemon at thousands of streams, side by side with floors.

For each stream count N the script starts its own `nats-server` (file storage, data in a temp
dir, loopback), writes N stream manifests as 100 files of N/100 documents, creates the N
streams with raw nats-py, and then measures, in the same run and interleaved (floor, ours,
floor, ours, ...), several repetitions of:

- `plan` with no change, the whole process (wall time, CPU, peak RSS), against the plan floor:
  a Python process that connects with nats-py and reads every config with the paged
  `$JS.API.STREAM.LIST`, and nothing else;
- the plan bound, for reference: the plan floor in a process that also imports the libraries
  the CLI cannot do without (nats-py, PyYAML, click, structlog) and composes every manifest
  into libyaml's node trees (in a thread, while it lists, as `plan` does), checking and
  planning nothing: no `plan` that reads YAML with line numbers through these libraries can
  take less;
- `validate` (CPU of the whole process; the length of its longest output line), before the
  server holds the streams: it talks to no server;
- `apply` of N changed streams (each repetition raises every `max_msgs`), against two apply
  floors sent by raw nats-py scripts: the paged list, then N `STREAM.UPDATE` with 32 in
  flight; and `apply`'s own request pattern, the same with each stream read again
  (`STREAM.INFO`) just before its update (the read that makes sure no stream is changed on
  a plan it has moved away from). The target is set against the second;
- the daemon's cold start (`watch`, process launch to its first `reconcile_finished` over N
  unchanged streams) against the plan floor, and its RSS 2 s later (idle).

With `--latency-streams M` (default 1000; 0 skips it) it also runs the save -> applied and
out-of-band -> healed trials of `watch_latency.py` with M more streams managed by the daemon.
Medians are reported; the load average is printed before and after, since other work on
the machine shifts every figure.

Every process (ours, the floors, the daemon, and this script itself) runs in a venv holding
only what a user installs, `pip install .[server]` with the project's constraints, built in a
temp dir at the start (about 20 s): the development venv's test tools bring in packages that
the product imports when present (structlog imports `rich`), which users do not have.
`--venv current` (and `--quick`) runs in this interpreter's environment instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nats
import watch_latency

from reconciler.plan.ownership import DEFAULT_OWNER, MANIFEST_KEY, OWNER_KEY
from reconciler.testing import NatsServer

ROOT = Path(__file__).resolve().parent.parent

FILES = 100
STREAM = """\
name: s{i}
subjects: ["s{i}.>"]
storage: file
max_msgs: {max_msgs}
max_bytes: 64KiB
max_age: 1d
"""
BASE_MAX_MSGS = 1000
WAIT_S = 600.0

#: Both floors start the same way: connect, then read every config from the paged STREAM.LIST
#: (the reconcilers' lease bucket, which our own runs create, is not one of the streams).
_LIST_ALL = """\
    nc = await nats.connect(url)
    configs, offset, total = [], 0, 1
    while offset < total:
        msg = await nc.request("$JS.API.STREAM.LIST", json.dumps({"offset": offset}).encode(),
                               timeout=30)
        body = json.loads(msg.data)
        total, page = body["total"], body.get("streams") or []
        if not page:
            break
        configs.extend(s["config"] for s in page
                       if s["config"]["name"] != "KV_jetstream_reconciler")
        offset += len(page)
"""

#: The plan floor: connect and read every stream's config, nothing more.
PLAN_FLOOR = """\
import asyncio, json, sys
import nats

async def main(url):
""" + _LIST_ALL + """\
    await nc.close()
    print(len(configs))

asyncio.run(main(sys.argv[1]))
"""

#: The plan bound: the floor, with the libraries the CLI imports and every manifest composed
#: by libyaml in a thread meanwhile; nothing is checked or planned.
PLAN_BOUND = """\
import asyncio, json, sys, threading
from pathlib import Path
import click, structlog, yaml
import nats

def compose(directory, into):
    for path in sorted(Path(directory).glob("*.yaml")):
        into.extend(yaml.compose_all(path.read_text(), Loader=yaml.CSafeLoader))

async def main(url, directory):
    docs = []
    reading = threading.Thread(target=compose, args=(directory, docs))
    reading.start()
""" + _LIST_ALL + """\
    await nc.close()
    reading.join()
    print(len(configs), len(docs))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

#: The apply floor: the same, then every stream's config with a new max_msgs, 32 in flight;
#: with READ_AGAIN, each stream read again just before its update (apply's request pattern).
APPLY_FLOOR = """\
import asyncio, json, sys
import nats

READ_AGAIN = {read_again}

async def main(url, max_msgs):
""" + _LIST_ALL + """\
    limit = asyncio.Semaphore(32)
    failed = 0

    async def update(config):
        nonlocal failed
        config["max_msgs"] = max_msgs
        async with limit:
            if READ_AGAIN:
                msg = await nc.request("$JS.API.STREAM.INFO." + config["name"], b"",
                                       timeout=30)
                if json.loads(msg.data)["config"]["max_msgs"] == max_msgs:
                    failed += 1
            msg = await nc.request("$JS.API.STREAM.UPDATE." + config["name"],
                                   json.dumps(config).encode(), timeout=30)
        if "error" in json.loads(msg.data):
            failed += 1

    await asyncio.gather(*(update(c) for c in configs))
    await nc.close()
    print(len(configs), failed)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


# --- processes ----------------------------------------------------------------------------------


def run_measured(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a process to its end: wall seconds, and its own CPU seconds and peak RSS (MB),
    from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=str(ROOT))
    assert proc.stdout is not None and proc.stderr is not None
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []

    def drain(stream: Any, into: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            into.append(chunk)

    readers = [threading.Thread(target=drain, args=(proc.stdout, out_chunks)),
               threading.Thread(target=drain, args=(proc.stderr, err_chunks))]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss * 1024 / 1e6,
        "rc": proc.returncode,
        "stdout": b"".join(out_chunks).decode(),
        "stderr": b"".join(err_chunks).decode(),
    }


def check(result: dict[str, Any], what: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    if result["rc"] not in ok_codes:
        raise RuntimeError(f"{what} exited {result['rc']}:\n{result['stdout'][-2000:]}\n"
                           f"{result['stderr'][-2000:]}")


def reconciler(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", *args]


def floor(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def write_streams(directory: Path, count: int, max_msgs: int) -> None:
    files = max(1, min(FILES, count))
    for f in range(files):
        docs = [STREAM.format(i=i, max_msgs=max_msgs) for i in range(f, count, files)]
        (directory / f"streams-{f:03d}.yaml").write_text("---\n".join(docs))


async def create_streams(url: str, count: int) -> None:
    nc = await nats.connect(url)
    limit = asyncio.Semaphore(32)

    async def create(i: int) -> None:
        # as an apply of the manifests leaves them: owned (no adoption pending), so that
        # `plan` measures a server in sync
        config = {"name": f"s{i}", "subjects": [f"s{i}.>"], "storage": "file",
                  "max_msgs": BASE_MAX_MSGS, "max_bytes": 65536, "max_age": 86_400 * 10**9,
                  "metadata": {OWNER_KEY: DEFAULT_OWNER, MANIFEST_KEY: "streams.yaml"}}
        async with limit:
            msg = await nc.request(f"$JS.API.STREAM.CREATE.s{i}", json.dumps(config).encode(),
                                   timeout=60)
        body = json.loads(msg.data)
        if "error" in body:
            raise RuntimeError(f"creating s{i}: {body['error']}")

    await asyncio.gather(*(create(i) for i in range(count)))
    await nc.close()


def memory_mb(pid: int) -> dict[str, float]:
    return {k: v * 1024 / 1e6 for k, v in watch_latency.memory_kib(pid).items()}


async def daemon_cold_start(directory: Path, url: str, env: dict[str, str],
                            log: Path) -> dict[str, Any]:
    """Launch `watch`; seconds to its first reconcile_finished, and its RSS 2 s later."""
    daemon = watch_latency.DaemonProcess([directory], url, log, env)
    daemon.args[-1] = "600s"  # --resync: no pass in the idle window
    daemon.start()
    try:
        when, event = await daemon.wait_event(watch_latency.finished, timeout=WAIT_S)
        cold = when - daemon.started_at
        await asyncio.sleep(2.0)
        memory = memory_mb(daemon.pid)
    finally:
        code = daemon.stop()
    return {"cold_start": cold, "counts": event.get("counts", {}), "idle_rss_mb": memory["VmRSS"],
            "idle_hwm_mb": memory["VmHWM"], "exit_code": code}


# --- one stream count ---------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


async def measure(work: Path, count: int, reps: int, env: dict[str, str]) -> dict[str, Any]:
    server = NatsServer(work / f"js-{count}").start()
    directory = work / f"manifests-{count}"
    directory.mkdir()
    try:
        write_streams(directory, count, BASE_MAX_MSGS)
        # validate talks to no server: measured before the server holds any stream (a
        # server that has just created thousands of file streams writes them out for a
        # while, and the machine's other core is then not free)
        validates: list[dict[str, Any]] = []
        for _ in range(reps):
            done = run_measured(reconciler("validate", str(directory)), env)
            check(done, "validate")
            validates.append(done)
        started = time.perf_counter()
        await create_streams(server.url, count)
        create_s = time.perf_counter() - started
        url = server.url
        plan_floor: list[dict[str, Any]] = []
        plans: list[dict[str, Any]] = []
        bounds: list[dict[str, Any]] = []
        for _ in range(reps):
            done = run_measured(floor(PLAN_FLOOR, url), env)
            check(done, "the plan floor")
            assert int(done["stdout"]) == count, done["stdout"]
            plan_floor.append(done)
            done = run_measured(floor(PLAN_BOUND, url, str(directory)), env)
            check(done, "the plan bound")
            assert done["stdout"].split() == [str(count)] * 2, done["stdout"]
            bounds.append(done)
            done = run_measured(reconciler("plan", str(directory), "--server", url,
                                           "--detailed-exitcode", "--log-format", "json"), env)
            check(done, "plan (exit 0: nothing to change)")
            plans.append(done)
        apply_floors: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        applies: list[dict[str, Any]] = []
        value = BASE_MAX_MSGS
        for _ in range(reps):
            for read_again, runs in apply_floors.items():
                value += 1
                script = APPLY_FLOOR.replace("{read_again}", str(read_again))
                done = run_measured(floor(script, url, str(value)), env)
                check(done, "the apply floor")
                assert done["stdout"].split() == [str(count), "0"], done["stdout"]
                runs.append(done)
            value += 1
            write_streams(directory, count, value)
            done = run_measured(reconciler("apply", str(directory), "--server", url,
                                           "--log-format", "json"), env)
            check(done, "apply")
            if f"Apply: 0 created, {count} updated," not in done["stdout"]:
                raise RuntimeError(f"apply did not update {count} streams:\n"
                                   f"{done['stdout'][-500:]}")
            applies.append(done)
        daemons = []
        for rep in range(reps):
            daemons.append(await daemon_cold_start(directory, url, env,
                                                   work / f"daemon-{count}-{rep}.log"))
            if daemons[-1]["counts"] != {"unchanged": count}:
                raise RuntimeError(f"the daemon's first pass was {daemons[-1]['counts']}")
    finally:
        server.stop()

    def wall(runs: list[dict[str, Any]]) -> float:
        return median([r["wall"] for r in runs])

    return {
        "streams": count,
        "reps": reps,
        "create_s": round(create_s, 2),
        "plan_floor_s": wall(plan_floor),
        "plan_s": wall(plans),
        "plan_cpu_s": median([r["cpu"] for r in plans]),
        "plan_bound_s": wall(bounds),
        "plan_bound_cpu_s": median([r["cpu"] for r in bounds]),
        "plan_floor_rss_mb": median([r["rss_mb"] for r in plan_floor]),
        "plan_rss_mb": max(r["rss_mb"] for r in plans),
        "validate_cpu_s": median([r["cpu"] for r in validates]),
        "validate_s": wall(validates),
        "validate_longest_line": max(len(line) for line in validates[0]["stdout"].splitlines()),
        "validate_output": validates[0]["stdout"].strip(),
        "apply_floor_s": wall(apply_floors[False]),
        "apply_floor_read_again_s": wall(apply_floors[True]),
        "apply_s": wall(applies),
        "daemon_cold_start_s": median([d["cold_start"] for d in daemons]),
        "daemon_idle_rss_mb": max(d["idle_rss_mb"] for d in daemons),
        "daemon_exit_codes": sorted({d["exit_code"] for d in daemons}),
    }


# --- report -------------------------------------------------------------------------------------


def targets(sizes: list[dict[str, Any]], latency: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float, limit: float, unit: str) -> None:
        rows.append({"name": name, "value": round(value, 3), "limit": limit, "unit": unit,
                     "pass": value <= limit})

    for s in sizes:
        n = s["streams"]
        add(f"plan / floor at {n:,}", s["plan_s"] / s["plan_floor_s"], 1.5, "x")
        add(f"daemon cold start / plan floor at {n:,}",
            s["daemon_cold_start_s"] / s["plan_floor_s"], 1.5, "x")
        add(f"apply / floor with its reads at {n:,}",
            s["apply_s"] / s["apply_floor_read_again_s"], 1.15, "x")
        if n == 10_000:
            add("validate CPU at 10,000", s["validate_cpu_s"], 1.0, "s")
            add("plan peak RSS at 10,000", s["plan_rss_mb"], 80.0, "MB")
            add("daemon idle RSS at 10,000", s["daemon_idle_rss_mb"], 120.0, "MB")
    if latency is not None:
        add("save -> applied p99", latency["save_to_applied_ms"]["p99"], 50.0, "ms")
        add("out-of-band -> healed p99", latency["out_of_band_to_healed_ms"]["p99"], 10.0, "ms")
    return rows


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, "
        f"nats-server {m['nats_server']}, {m['platform']}",
        f"commit: {results['commit']}  date: {m['date']}  repetitions: {results['reps']} "
        "(medians)",
        f"load average: {results['load_before']} before, {results['load_after']} after",
        f"run in: {results['venv']}",
        "",
        "| streams | plan s | floor s | ratio | plan CPU s | plan RSS MB | validate CPU s "
        "| apply s | floor s | ratio | floor with reads s | ratio | cold start s "
        "| / plan floor | idle RSS MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: |",
    ]
    for s in results["sizes"]:
        lines.append(
            f"| {s['streams']:,} | {s['plan_s']:.3f} | {s['plan_floor_s']:.3f} "
            f"| {s['plan_s'] / s['plan_floor_s']:.2f}x | {s['plan_cpu_s']:.2f} "
            f"| {s['plan_rss_mb']:.1f} | {s['validate_cpu_s']:.2f} "
            f"| {s['apply_s']:.3f} | {s['apply_floor_s']:.3f} "
            f"| {s['apply_s'] / s['apply_floor_s']:.2f}x "
            f"| {s['apply_floor_read_again_s']:.3f} "
            f"| {s['apply_s'] / s['apply_floor_read_again_s']:.2f}x "
            f"| {s['daemon_cold_start_s']:.3f} "
            f"| {s['daemon_cold_start_s'] / s['plan_floor_s']:.2f}x "
            f"| {s['daemon_idle_rss_mb']:.1f} |"
        )
    lines += [
        "",
        "| streams | plan floor s | plan bound s | bound / floor | bound CPU s | plan / bound |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in results["sizes"]:
        lines.append(
            f"| {s['streams']:,} | {s['plan_floor_s']:.3f} | {s['plan_bound_s']:.3f} "
            f"| {s['plan_bound_s'] / s['plan_floor_s']:.2f}x | {s['plan_bound_cpu_s']:.2f} "
            f"| {s['plan_s'] / s['plan_bound_s']:.2f}x |"
        )
    for s in results["sizes"]:
        shown = s["validate_output"]
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        lines.append(f"validate at {s['streams']:,}: {shown!r} "
                     f"(longest line {s['validate_longest_line']} characters)")
    latency = results.get("latency")
    if latency is not None:
        lines.append("")
        lines.append(f"watch with {results['latency_streams']:,} streams managed "
                     "| n | p50 | p90 | p99 | max (ms)")
        for label, key in (("manifest save -> applied", "save_to_applied_ms"),
                           ("out-of-band change -> healed", "out_of_band_to_healed_ms")):
            row = latency[key]
            lines.append(f"{label} | {row['n']} | {row['p50']} | {row['p90']} | {row['p99']} "
                         f"| {row['max']}")
    lines.append("")
    lines.append("| target | measured | limit | result |")
    lines.append("| --- | ---: | ---: | --- |")
    for t in results["targets"]:
        lines.append(f"| {t['name']} | {t['value']:g} {t['unit']} | {t['limit']:g} {t['unit']} "
                     f"| {'PASS' if t['pass'] else 'FAIL'}")
    return "\n".join(lines)


#: set in the environment of this script once it runs in the venv it built
_IN_USER_VENV = "JSR_SCALE_USER_VENV"


def user_venv(where: Path) -> Path:
    """A fresh venv in `where` with what `pip install .[server]` installs (the project's
    constraints applied); its python."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", "-c", str(ROOT / "constraints.txt"),
                           f"{ROOT}[server]"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install .[server] failed:\n{done.stdout}{done.stderr}")
    return python


def rerun_in_user_venv(argv: list[str]) -> int:
    """Build the user venv and run this script again in it: every process it starts then uses
    that venv's python (`sys.executable`)."""
    with tempfile.TemporaryDirectory(prefix="jsr-scale-venv-") as tmp:
        print("building a venv with `pip install .[server]` ...", file=sys.stderr, flush=True)
        python = user_venv(Path(tmp) / "venv")
        env = {**os.environ, _IN_USER_VENV: "1"}
        return subprocess.run([str(python), str(Path(__file__).resolve()), *argv],
                              env=env, cwd=str(ROOT)).returncode


def venv_description() -> str:
    if os.environ.get(_IN_USER_VENV) == "1":
        return "a venv with only `pip install .[server]`"
    return f"this interpreter's environment ({sys.prefix})"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="jsr-scale-") as tmp:
        work = Path(tmp)
        env = watch_latency.daemon_env(work / "pycache")
        watch_latency.warm_bytecode(env)
        subprocess.run([sys.executable, "-c", "import nats"], env=env, check=True)
        sizes = [await measure(work, n, args.reps, env) for n in args.sizes]
        latency = None
        if args.latency_streams:
            server = NatsServer(work / "js-latency").start()
            try:
                latency = await watch_latency.latency_phases(
                    work, server, args.trials, env, streams=args.latency_streams)
            finally:
                server.stop()
    results: dict[str, Any] = {
        "machine": watch_latency.machine(),
        "commit": watch_latency.git_commit(),
        "venv": venv_description(),
        "reps": args.reps,
        "load_before": load_before,
        "load_after": load_average(),
        "sizes": sizes,
        "latency_streams": args.latency_streams,
        "latency": latency,
    }
    results["targets"] = targets(sizes, latency)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000",
                        help="stream counts, comma-separated (default 1000,10000; the issue's "
                        "third size is 50000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measure")
    parser.add_argument("--latency-streams", type=int, default=1000,
                        help="streams the daemon manages during the watch latency trials "
                        "(0: skip those trials)")
    parser.add_argument("--trials", type=int, default=100, help="watch latency trials")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200 streams, 1 repetition, 10 latency trials with "
                        "100 streams")
    parser.add_argument("--venv", choices=("user", "current"),
                        help="user: run everything in a fresh venv with only what users "
                        "install (`pip install .[server]`), built in a temp dir (the default, "
                        "but with --quick); current: in this interpreter's environment")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    venv = args.venv or ("current" if args.quick else "user")
    if venv == "user" and os.environ.get(_IN_USER_VENV) != "1":
        return rerun_in_user_venv([*(sys.argv[1:] if argv is None else argv), "--venv", "user"])
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    if args.quick:
        args.sizes, args.reps, args.trials, args.latency_streams = [200], 1, 10, 100
    if not args.sizes or min(args.sizes) < 1 or args.reps < 1 or args.trials < 1:
        parser.error("--sizes, --reps and --trials must be at least 1")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = asyncio.run(run(args))
    print(render(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    missed = [t["name"] for t in results["targets"] if not t["pass"]]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
