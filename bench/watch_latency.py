"""Watch-mode benchmark: how fast the daemon reacts, and what it costs when nothing happens.

Everything runs on loopback: a real nats-server started here (data in a temp dir) and the
daemon as a real subprocess (`python -m reconciler watch DIR --log-format json ...`), whose
JSON events on stderr are read by a thread. Three measurements:

1. manifest save -> applied: `max_msgs` of one `events` manifest changes (alternately a plain
   write and a write-to-temp-then-rename); t0 just before the save, t1 when the stream's
   `$JS.EVENT.ADVISORY.STREAM.UPDATED.events` advisory arrives on a separate connection; the
   new value is then checked with STREAM.INFO.
2. out-of-band change -> healed: a connection named "intruder" sends a raw
   `$JS.API.STREAM.UPDATE.events` with the live configuration but another `max_msgs`; t0 just
   before the request, t1 at the second UPDATED advisory (the first is the intruder's own
   change, the second the daemon putting it back); the value is then checked.
3. idle cost with N managed streams: N manifests (10 files), a fresh daemon; the first full
   reconcile (N creates), then, after 2 s to settle, CPU (utime+stime from /proc/PID/stat) and
   memory (VmRSS, VmHWM from /proc/PID/status) over --idle-seconds, then one no-op pass
   (triggered by touching a non-YAML file in the watched directory), then --edits saves of
   one manifest file (memory kept per edit).

    .venv/bin/python bench/watch_latency.py [--trials 200] [--streams 1000]
                                            [--latency-streams 0]
                                            [--idle-seconds 30] [--edits 50]
                                            [--quick] [--check]
                                            [--json FILE]

Exit code 0 whatever the figures; with --check, 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from reconciler.testing import NatsServer, server_binary, stop_process

ROOT = Path(__file__).resolve().parent.parent

UPDATED = "$JS.EVENT.ADVISORY.STREAM.UPDATED.events"
EVENTS = """\
name: events
description: watch latency benchmark
subjects: ["events.*"]
storage: file
max_msgs: {max_msgs}
max_bytes: 1MiB
"""
STREAM = """\
name: s{i}
subjects: ["s{i}.>"]
storage: file
max_msgs: 1000
max_bytes: 64KiB
max_age: 1d
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")
WAIT_S = 10.0  # longest a single step may take before the bench gives up


# --- the daemon as a subprocess ---------------------------------------------------------------


class DaemonProcess:
    """`python -m reconciler watch` with its JSON events read from stderr by a thread."""

    def __init__(self, paths: list[Path], url: str, log_file: Path,
                 env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> None:
        self.args = [sys.executable, "-m", "reconciler", "watch", *map(str, paths),
                     "--server", url, "--http-port", "0", "--log-format", "json",
                     "--resync", "60s", *extra]
        self.log_file = log_file
        self.env = env if env is not None else daemon_env(None)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> DaemonProcess:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     cwd=str(ROOT), env=self.env)
        threading.Thread(target=self._read, name="daemon-stderr", daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with open(self.log_file, "ab") as out:
            for raw in self.proc.stderr:
                now = time.perf_counter()
                out.write(raw)
                try:
                    event = json.loads(raw)
                except ValueError:
                    event = {"event": "_text", "text": raw.decode(errors="replace")}
                if not isinstance(event, dict):
                    continue
                with self._lock:
                    self.events.append((now, event))
                self._notify()
        self._notify()

    def _notify(self) -> None:
        if self._loop is not None and self._changed is not None:
            with contextlib.suppress(RuntimeError):  # loop closed
                self._loop.call_soon_threadsafe(self._changed.set)

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    async def wait_event(
        self, pred: Callable[[dict[str, Any]], bool], since: int = 0, timeout: float = WAIT_S
    ) -> tuple[float, dict[str, Any]]:
        """The first event from index `since` on for which `pred` holds."""
        assert self._changed is not None and self.proc is not None
        deadline = time.monotonic() + timeout
        index = since
        while True:
            with self._lock:
                pending = self.events[index:]
            for when, event in pending:
                index += 1
                if pred(event):
                    return when, event
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({self.proc.returncode}); "
                                   f"see {self.log_file}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching daemon event within {timeout:g}s; "
                                   f"see {self.log_file}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def quiet(self, seconds: float = 0.06, timeout: float = WAIT_S) -> None:
        """Wait until the daemon has logged nothing for `seconds` (its trailing passes are
        over), so that trials never overlap."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.mark()
            await asyncio.sleep(seconds)
            if self.mark() == seen:
                return
        raise TimeoutError(f"the daemon never went quiet; see {self.log_file}")

    def stop(self) -> int | None:
        return None if self.proc is None else stop_process(self.proc)


def daemon_env(pycache: Path | None) -> dict[str, str]:
    """The daemon's environment. With `pycache`, bytecode is written to and read from there
    (PYTHONDONTWRITEBYTECODE dropped): an installed package or the image has its .pyc files,
    and compiling sources at start-up would add to the daemon's memory what production never
    pays."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def warm_bytecode(env: dict[str, str]) -> None:
    """Compile what the daemon imports into the bytecode cache of `env`."""
    subprocess.run([sys.executable, "-c", "import reconciler.cli, reconciler.daemon"],
                   env=env, cwd=str(ROOT), check=True)


def finished(event: dict[str, Any]) -> bool:
    return event.get("event") == "reconcile_finished"


# --- /proc ----------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


# --- statistics -----------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "min": round(min(ms), 1),
        "mean": round(statistics.fmean(ms), 1),
        "p50": round(percentile(ms, 50), 1),
        "p90": round(percentile(ms, 90), 1),
        "p99": round(percentile(ms, 99), 1),
        "max": round(max(ms), 1),
    }


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Advisories:
    """Arrival times of the UPDATED advisories of `events`, taken in the callback."""

    queue: asyncio.Queue[float] = field(default_factory=asyncio.Queue)

    async def on_msg(self, _msg: Any) -> None:
        self.queue.put_nowait(time.perf_counter())

    async def next(self, timeout: float = WAIT_S) -> float:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def drain(self) -> int:
        n = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            n += 1
        return n


async def stream_config(nc: Any, name: str) -> dict[str, Any]:
    reply = await nc.request(f"$JS.API.STREAM.INFO.{name}", b"", timeout=5)
    info = json.loads(reply.data)
    if "error" in info:
        raise RuntimeError(f"STREAM.INFO {name}: {info['error']}")
    return dict(info["config"])


async def gap() -> None:
    await asyncio.sleep(random.uniform(0.020, 0.050))


async def latency_phases(work: Path, server: NatsServer, trials: int,
                         env: dict[str, str], streams: int = 0) -> dict[str, Any]:
    """The two latency trials; with `streams`, the daemon manages that many more streams
    (every pass reads and plans them all)."""
    config = work / "latency"
    config.mkdir()
    if streams:
        write_streams(config, streams)
    manifest = config / "events.yaml"
    value = 1000
    manifest.write_text(EVENTS.format(max_msgs=value))
    # The intruder changes the stream back hundreds of times a minute: a fight by definition,
    # which would pause healing. This measures the healing itself (bench/fight.py the pause).
    daemon = DaemonProcess([config], server.url, work / "daemon-latency.log", env,
                           ("--conflict-window", "0")).start()
    observer = await nats.connect(server.url, name="bench-observer")
    intruder = await nats.connect(server.url, name="intruder")
    advisories = Advisories()
    try:
        await observer.subscribe(UPDATED, cb=advisories.on_msg)
        await observer.flush()
        await daemon.wait_event(
            lambda e: finished(e) and e.get("counts", {}).get("created") == 1 + streams,
            timeout=max(30.0, streams / 10))
        await asyncio.sleep(0.3)

        # 1. manifest save -> applied
        save: list[float] = []
        plain: list[float] = []
        renamed: list[float] = []
        errors = 0
        for trial in range(trials):
            await daemon.quiet()
            await gap()
            advisories.drain()
            value += 1
            text = EVENTS.format(max_msgs=value)
            mark = daemon.mark()
            if trial % 2 == 0:
                t0 = time.perf_counter()
                with open(manifest, "w") as f:
                    f.write(text)
            else:
                tmp = config / ".events.yaml.tmp"
                t0 = time.perf_counter()
                with open(tmp, "w") as f:
                    f.write(text)
                os.replace(tmp, manifest)
            t1 = await advisories.next()
            save.append(t1 - t0)
            (plain if trial % 2 == 0 else renamed).append(t1 - t0)
            if int((await stream_config(observer, "events"))["max_msgs"]) != value:
                errors += 1
            await daemon.wait_event(
                lambda e: finished(e) and e.get("counts", {}).get("updated") == 1, mark)
        # 2. out-of-band change -> healed
        await asyncio.sleep(0.3)
        heal: list[float] = []
        heal_errors = 0
        for trial in range(trials):
            await daemon.quiet()
            await gap()
            advisories.drain()
            live = await stream_config(intruder, "events")
            live["max_msgs"] = value + 1 + trial
            body = json.dumps(live).encode()
            mark = daemon.mark()
            t0 = time.perf_counter()
            reply = await intruder.request("$JS.API.STREAM.UPDATE.events", body, timeout=5)
            if "error" in json.loads(reply.data):
                raise RuntimeError(f"intruder's update failed: {reply.data!r}")
            await advisories.next()  # the intruder's own change
            t1 = await advisories.next()  # the daemon putting it back
            heal.append(t1 - t0)
            if int((await stream_config(observer, "events"))["max_msgs"]) != value:
                heal_errors += 1
            await daemon.wait_event(
                lambda e: finished(e) and e.get("counts", {}).get("updated") == 1, mark)
        drift = [e for _, e in daemon.events if e.get("event") == "drift_detected"
                 and e.get("source") == "server"]
        actors = sorted({str(e.get("actor")) for e in drift})
    finally:
        await observer.close()
        await intruder.close()
        daemon.stop()
    return {
        "save_to_applied_ms": {**summary_ms(save), "wrong_value_after": errors,
                               "plain_write": summary_ms(plain),
                               "write_and_rename": summary_ms(renamed) if renamed else None},
        "out_of_band_to_healed_ms": {**summary_ms(heal), "not_healed_after": heal_errors,
                                     "actors_logged": actors},
    }


def write_streams(directory: Path, count: int, files: int = 10) -> None:
    files = max(1, min(files, count))
    per_file = -(-count // files)
    index = 0
    for f in range(files):
        docs = []
        for _ in range(per_file):
            if index >= count:
                break
            docs.append(STREAM.format(i=index))
            index += 1
        (directory / f"streams-{f:02d}.yaml").write_text("---\n".join(docs))


async def idle_phase(work: Path, server: NatsServer, streams: int,
                     idle_seconds: float, env: dict[str, str], edits: int) -> dict[str, Any]:
    config = work / "many"
    config.mkdir()
    write_streams(config, streams)
    daemon = DaemonProcess([config], server.url, work / "daemon-idle.log", env).start()
    try:
        when, first = await daemon.wait_event(
            lambda e: finished(e) and e.get("counts", {}).get("created") == streams,
            timeout=max(60.0, streams / 10))
        startup_wall_s = when - daemon.started_at
        mem_after_first = memory_kib(daemon.pid)
        await asyncio.sleep(2.0)

        # idle: nothing changes; only the daemon's own timers and the advisories of
        # other clients (none here) could wake it
        mark = daemon.mark()
        t_a, ticks_a = time.perf_counter(), cpu_ticks(daemon.pid)
        peak_rss = 0
        end = t_a + idle_seconds
        while (now := time.perf_counter()) < end:
            peak_rss = max(peak_rss, memory_kib(daemon.pid)["VmRSS"])
            await asyncio.sleep(min(1.0, end - now))
        t_b, ticks_b = time.perf_counter(), cpu_ticks(daemon.pid)
        mem_idle = memory_kib(daemon.pid)
        peak_rss = max(peak_rss, mem_idle["VmRSS"])
        passes_while_idle = sum(1 for _, e in daemon.events[mark:] if finished(e))
        cpu_pct = (ticks_b - ticks_a) / CLK_TCK / (t_b - t_a) * 100

        # one no-op pass over all N streams, woken by a file that is not a manifest
        mark = daemon.mark()
        ticks_c = cpu_ticks(daemon.pid)
        t0 = time.perf_counter()
        (config / "touch.txt").write_text(str(t0))
        t1, noop = await daemon.wait_event(finished, mark, timeout=60)
        await asyncio.sleep(0.2)
        noop_cpu_s = (cpu_ticks(daemon.pid) - ticks_c) / CLK_TCK
        mem_after_noop = memory_kib(daemon.pid)

        # saves of one manifest file (its first stream's max_msgs changes each time): what
        # a long-running daemon keeps per edit
        edited = config / "streams-00.yaml"
        original = edited.read_text()
        edit_times: list[float] = []
        for k in range(edits):
            await daemon.quiet()
            mark = daemon.mark()
            t0 = time.perf_counter()
            edited.write_text(original.replace("max_msgs: 1000", f"max_msgs: {1001 + k}", 1))
            t1, _ = await daemon.wait_event(
                lambda e: finished(e) and e.get("counts", {}).get("updated") == 1, mark,
                timeout=60)
            edit_times.append(t1 - t0)
        await daemon.quiet()
        mem_after_edits = memory_kib(daemon.pid)
    finally:
        code = daemon.stop()
    resync_cpu_pct = noop_cpu_s / 60.0 * 100  # one such pass per --resync 60s
    return {
        "streams": streams,
        "first_reconcile": {
            "duration_ms": first.get("duration_ms"),
            "counts": first.get("counts"),
            "wall_from_launch_ms": round(startup_wall_s * 1000, 1),
        },
        "idle": {
            "seconds": round(t_b - t_a, 2),
            "cpu_ticks": ticks_b - ticks_a,
            "cpu_pct_of_core": round(cpu_pct, 3),
            "passes": passes_while_idle,
            "rss_mib": round(mem_idle["VmRSS"] / 1024, 1),
            "rss_peak_sampled_mib": round(peak_rss / 1024, 1),
            "hwm_mib": round(mem_idle["VmHWM"] / 1024, 1),
            "rss_after_first_reconcile_mib": round(mem_after_first["VmRSS"] / 1024, 1),
        },
        "noop_pass": {
            "duration_ms": noop.get("duration_ms"),
            "counts": noop.get("counts"),
            "trigger": noop.get("trigger"),
            "touch_to_finished_ms": round((t1 - t0) * 1000, 1),
            "cpu_s": round(noop_cpu_s, 3),
            "resync_amortized_cpu_pct_of_core": round(resync_cpu_pct, 3),
            "rss_after_mib": round(mem_after_noop["VmRSS"] / 1024, 1),
            "hwm_after_mib": round(mem_after_noop["VmHWM"] / 1024, 1),
        },
        "edits": {
            "saves": edits,
            "docs_in_file": original.count("name: s"),
            "save_to_finished_ms": summary_ms(edit_times) if edit_times else None,
            "rss_after_mib": round(mem_after_edits["VmRSS"] / 1024, 1),
            "hwm_after_mib": round(mem_after_edits["VmHWM"] / 1024, 1),
            "rss_growth_per_save_kib": round(
                (mem_after_edits["VmRSS"] - mem_after_noop["VmRSS"]) / edits, 1) if edits else None,
        },
        "daemon_exit_code": code,
    }


# --- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    version = subprocess.run([server_binary(), "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "nats_server": version.removeprefix("nats-server: "),
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    lat = results["latency"]
    idle = results["idle"]["idle"]
    noop = results["idle"]["noop_pass"]
    steady_cpu = round(idle["cpu_pct_of_core"] + noop["resync_amortized_cpu_pct_of_core"], 3)
    rows = [
        ("save -> applied p99", lat["save_to_applied_ms"]["p99"], 300.0, "ms"),
        ("out-of-band -> healed p99", lat["out_of_band_to_healed_ms"]["p99"], 100.0, "ms"),
        ("idle CPU, % of one core", idle["cpu_pct_of_core"], 0.5, "%"),
        ("idle CPU + resync every 60 s", steady_cpu, 0.5, "%"),
        ("idle RSS (VmRSS)", idle["rss_mib"], 60.0, "MiB"),
        ("peak RSS (VmHWM, after a resync)", noop["hwm_after_mib"], 60.0, "MiB"),
    ]
    edits = results["idle"]["edits"]
    if edits["saves"]:
        rows.append((f"RSS after {edits['saves']} saves", edits["rss_after_mib"], 60.0, "MiB"))
    return [{"name": n, "value": v, "limit": lim, "unit": u, "pass": v < lim}
            for n, v, lim, u in rows]


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lat = results["latency"]
    idle = results["idle"]
    out = [
        f"machine: {m['nproc']} CPUs ({m['cpu'] or 'unknown'}), Python {m['python']}, "
        f"nats-server {m['nats_server']}, {m['platform']}",
        f"run: {m['date']}, commit {results['commit']}, {results['args']}",
        "",
        f"{'latency (ms)':34} {'n':>5} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}",
    ]
    for label, key in (("manifest save -> applied", "save_to_applied_ms"),
                       ("out-of-band change -> healed", "out_of_band_to_healed_ms")):
        s = lat[key]
        out.append(f"{label:34} {s['n']:>5} {s['p50']:>8.1f} {s['p90']:>8.1f} "
                   f"{s['p99']:>8.1f} {s['max']:>8.1f}")
        for sub, name in (("plain_write", "plain write"), ("write_and_rename", "write + rename")):
            if s.get(sub):
                t = s[sub]
                out.append(f"{'  ' + name:34} {t['n']:>5} {t['p50']:>8.1f} {t['p90']:>8.1f} "
                           f"{t['p99']:>8.1f} {t['max']:>8.1f}")
    f, i, n = idle["first_reconcile"], idle["idle"], idle["noop_pass"]
    out += [
        "",
        f"with {idle['streams']} managed streams",
        f"  first reconcile (creates)        {f['duration_ms']} ms "
        f"(launch to finished {f['wall_from_launch_ms']} ms), counts {f['counts']}",
        f"  no-op pass                       {n['duration_ms']} ms "
        f"(touch to finished {n['touch_to_finished_ms']} ms), CPU {n['cpu_s']} s, "
        f"counts {n['counts']}",
        f"  {'idle CPU over ' + format(i['seconds'], 'g') + ' s':32} "
        f"{i['cpu_pct_of_core']} % of one core "
        f"({i['cpu_ticks']} ticks, {i['passes']} passes)",
        f"  resync every 60 s, amortized     {n['resync_amortized_cpu_pct_of_core']} % "
        "of one core",
        f"  RSS idle / peak sampled / HWM    {i['rss_mib']} / {i['rss_peak_sampled_mib']} / "
        f"{i['hwm_mib']} MiB (after first reconcile {i['rss_after_first_reconcile_mib']}, "
        f"after no-op pass {n['rss_after_mib']} MiB)",
    ]
    e = idle["edits"]
    if e["saves"]:
        t = e["save_to_finished_ms"]
        label = f"{e['saves']} saves of a {e['docs_in_file']}-stream file"
        out.append(
            f"  {label:32} "
            f"save to finished p50 {t['p50']} / max {t['max']} ms; RSS {n['rss_after_mib']} -> "
            f"{e['rss_after_mib']} MiB ({e['rss_growth_per_save_kib']} KiB per save)")
    out += [
        "",
        f"{'target':34} {'measured':>12} {'limit':>12}  result",
    ]
    for t in results["targets"]:
        measured = f"{t['value']:g} {t['unit']}"
        limit = f"< {t['limit']:g} {t['unit']}"
        out.append(f"{t['name']:34} {measured:>12} {limit:>12}  "
                   f"{'PASS' if t['pass'] else 'FAIL'}")
    return "\n".join(out)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="jsr-bench-") as tmp:
        work = Path(tmp)
        keep = Path(args.keep_logs) if args.keep_logs else None
        env = daemon_env(None if args.no_bytecode_cache else work / "pycache")
        if not args.no_bytecode_cache:
            warm_bytecode(env)
        server = NatsServer(work / "js-latency").start()
        try:
            latency = await latency_phases(work, server, args.trials, env,
                                           streams=args.latency_streams)
        finally:
            server.stop()
        server = NatsServer(work / "js-idle").start()
        try:
            idle = await idle_phase(work, server, args.streams, args.idle_seconds, env,
                                   args.edits)
        finally:
            server.stop()
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                for log in work.glob("daemon-*.log"):
                    (keep / log.name).write_bytes(log.read_bytes())
    results: dict[str, Any] = {
        "machine": machine(),
        "args": f"--trials {args.trials} --streams {args.streams} "
                f"--latency-streams {args.latency_streams} "
                f"--idle-seconds {args.idle_seconds:g} --edits {args.edits}"
                + (" --no-bytecode-cache" if args.no_bytecode_cache else ""),
        "commit": git_commit(),
        "latency": latency,
        "idle": idle,
    }
    results["targets"] = targets(results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--latency-streams", type=int, default=0,
                        help="more streams the daemon manages during the two latency trials "
                        "(0: only the one they change)")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--edits", type=int, default=50,
                        help="saves of one manifest file after the idle phase (memory kept "
                        "per edit)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10 trials, 50 streams, 3 s idle, 5 saves")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the daemons' stderr here")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run the daemon with the environment as it is (by default it "
                        "gets a warmed bytecode cache in the temp dir, as an installed "
                        "package has)")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.streams, args.idle_seconds, args.edits = 10, 50, 3.0, 5
    if (args.trials < 1 or args.streams < 1 or args.idle_seconds <= 0 or args.edits < 0
            or args.latency_streams < 0):
        parser.error("--trials and --streams must be at least 1, --idle-seconds above 0, "
                     "--edits and --latency-streams at least 0")
    results = asyncio.run(run(args))
    print(render(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    missed = [t["name"] for t in results["targets"] if not t["pass"]]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
