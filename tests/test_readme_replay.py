"""The README replayed from top to bottom, as a new user meets it: in a fresh clone, in the
order written, with `make run` up the whole time, and every documented output compared with
what the product prints.

What is run, and how the README marks it:
- ```sh blocks are commands to run, one a line (a line ending in `\\` goes on); a `# comment`
  after a command is a note, except one that names a file under `dist/`, which the command
  must have made. Every line runs unless `NOT_RUN` names it with the reason.
- ```console blocks are a session: `$ ` lines are commands, the lines up to the next `$ `
  are exactly what the command prints on stdout.
- The prose's own instructions run where they are written: `export PATH=...` (which the
  README says to run once per shell) and the edit it suggests (uncomment `max_age: 100ms`
  in `config/events.yaml`, then put it back with `git checkout config/`).
- ```yaml, ```json and ```text blocks are manifests and outputs shown without a command: each
  has a check in `DOCUMENTED` that makes the product print (or accept) it; a new such block
  fails the test until it gets one (or a reason in `NOT_RUN`).

The clone is `git clone` of this repository checked out at its HEAD, so what is replayed is
what is committed (uncommitted edits are not seen). By default it reuses the virtualenv that
runs the tests, as `.venv` in the clone, rather than install again (about 35 s and the package
index): `make run` is then told that its install is done (`make -o .venv/.run-installed`) and
`PYTHONPATH` points at the clone, so that the clone's code is what runs, not the editable
install's. `RECONCILER_README_FRESH_VENV=1` lets `make run` create and install `.venv` in the
clone as on a fresh machine (slower; needs the package index).

Normalised, and only these:
- ports: `make run`'s 4222 and the scratch server's 4333 become free ports (a user's own
  `make run` may hold 4222, and tests share the machine); `make run`'s HTTP port 8080 too;
- `$(mktemp -d)` makes its directory under the test's temporary directory (TMPDIR);
- the environment starts without `NATS_*` and `JETSTREAM_RECONCILER_*` variables of the
  caller's (a fresh shell has none); zsh and fish get a home of their own (nothing is
  written to the user's), and are listed as not run where they are not installed;
- `make run`'s events are JSON lines, as the README says they are when stderr is not a
  terminal; only their names and the keys compared are read (not times or ids);
- in the Plan JSON block, `"...": ...` inside `config` stands for the keys left out.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
VENV = Path(sys.executable).parent.parent
FRESH_VENV = os.environ.get("RECONCILER_README_FRESH_VENV") == "1"
MAKE_RUN_PORT, SCRATCH_PORT, HTTP_PORT = 4222, 4333, 8080

# Lines of ```sh blocks that are not run here, each with the reason (a substring of the line).
NOT_RUN = {
    "make test": "runs the whole suite, this test included (about 5 min); CI runs it (.ci/run)",
    "pipx install": "installs into the user's home (~/.local) from the package index, and pipx "
                    "is not installed here; the wheel it takes is built by the next line",
    "docker build": "no container engine runs here (docker without an engine, no image "
                    "registry); tests/test_dockerfile.py builds and runs the image where an "
                    "engine and JETSTREAM_RECONCILER_TEST_BASE_IMAGE are there",
    "debootstrap": "makes a base image as root from Debian's mirror, for the docker build",
    "cp /etc/ssl/certs": "part of making the base image (see debootstrap)",
    "docker import": "needs a container engine (see docker build)",
    "helm install": "needs a Kubernetes cluster; tests/test_helm.py renders the chart with the "
                    "Helm engine and validates every object against the Kubernetes schemas",
    "bench/watch_latency.py": "a full run takes minutes; tests/test_bench.py runs it --quick",
    "bench/failover.py": "a full run takes minutes; tests/test_bench.py runs it --quick",
    "bench/scale.py": "a full run takes about 25 minutes; tests/test_bench.py runs it --quick",
}

# ```text blocks that no command here can print, with the reason (a substring of the block).
NOT_SHOWN = {
    "degraded: could not read stream ledger": "needs a cluster with the node holding a stream "
        "down; tests/test_cluster.py prints these lines and compares them",
    "Apply: 101 created": "needs a server killed in the middle of an apply of 500 streams; "
        "tests/test_apply_kill.py does that and compares the error line",
}


@dataclass
class Block:
    line: int  # of the opening fence
    lang: str
    body: str


def readme_blocks() -> list[Block]:
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", README, re.S | re.M):
        blocks.append(Block(README.count("\n", 0, match.start()) + 1, match.group(1),
                            match.group(2)))
    return blocks


def sh_commands(body: str) -> list[str]:
    """The commands of a ```sh block: a line ending in a backslash goes on."""
    commands, pending = [], ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        commands.append(pending + line)
        pending = ""
    return [c for c in commands if c.strip()]


def line_of(text: str) -> int:
    index = README.index(text)
    return README.count("\n", 0, index) + 1


class Shell:
    """The user's first terminal: each command runs in bash in the clone, and what it
    exports stays for the next one."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path):
        self.cwd, self.env, self.envfile = cwd, env, scratch / "env"

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        script = (f"{command}\n__rc=$?\nenv -0 > {shlex.quote(str(self.envfile))}\n"
                  "exit $__rc\n")
        done = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if self.envfile.exists():
            pairs = (v.split("=", 1) for v in self.envfile.read_text().split("\0") if v)
            self.env = {k: v for k, v in pairs if k not in ("_", "SHLVL", "__rc")}
            self.envfile.unlink()
        return done


class Background:
    """A command left running (in a terminal of its own): its output read line by line."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]):
        self.proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.done = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def events(self, start: int = 0) -> list[dict[str, Any]]:
        with self.cond:
            lines = self.lines[start:]
        return [json.loads(x) for x in lines if x.startswith("{")]

    def wait_for(self, what: str, found: Callable[[str], bool], timeout: float,
                 start: int = 0) -> int:
        """The index of the first line from `start` on that `found` accepts."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if found(self.lines[i]):
                        return i
                start = len(self.lines)
                left = deadline - time.monotonic()
                if self.done or left <= 0:
                    raise AssertionError(f"{what}: not seen; output:\n" + "\n".join(self.lines))
                self.cond.wait(left)

    def wait_event(self, what: str, found: Callable[[dict[str, Any]], bool], timeout: float,
                   start: int = 0) -> tuple[int, dict[str, Any]]:
        index = self.wait_for(what, lambda x: x.startswith("{") and found(json.loads(x)),
                              timeout, start)
        return index, json.loads(self.lines[index])

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the terminal's foreground process group."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def await_port(port: int, proc: Background, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, "\n".join(proc.lines)
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def changes_of(event: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["field"]: (c["live"], c["desired"]) for c in event.get("changes") or ()}


MAX_AGE_LINE = "# max_age: 100ms"


def uncomment_max_age(manifest: Path) -> None:
    text = manifest.read_text()
    assert text.count(MAX_AGE_LINE) == 1, "config/events.yaml has no `# max_age: 100ms` line"
    manifest.write_text(text.replace(MAX_AGE_LINE, MAX_AGE_LINE[2:] + "  "))


class Replay:
    """State of one replay: the clone, the terminals, what was run and what was not."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.clone = tmp / "clone"
        self.ports = {MAKE_RUN_PORT: free_port(), SCRATCH_PORT: free_port(),
                      HTTP_PORT: free_port()}
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NATS_", "JETSTREAM_RECONCILER_"))
               and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if Path(p) != VENV / "bin")
        (tmp / "tmpdir").mkdir()
        env["TMPDIR"] = str(tmp / "tmpdir")
        if not FRESH_VENV:
            env["PYTHONPATH"] = str(self.clone)
        self.shell = Shell(self.clone, env, tmp)
        self.make_run: Background | None = None
        self.background: list[Background] = []
        self.ran: list[str] = []
        self.not_run: list[str] = []
        self.figures: dict[str, float] = {}
        self.outputs: dict[str, str] = {}  # what a ```sh command printed, for the blocks after

    def port(self, text: str) -> str:
        """The README's ports as the free ports of this replay (commands)."""
        for documented, free in self.ports.items():
            text = text.replace(f":{documented}", f":{free}").replace(f"-p {documented}",
                                                                       f"-p {free}")
        return text

    def unport(self, text: str) -> str:
        """And back (outputs)."""
        for documented, free in self.ports.items():
            text = text.replace(f":{free}", f":{documented}")
        return text

    # -- the README's steps ---------------------------------------------------------------

    def start_make_run(self, command: str) -> None:
        assert command.split("#")[0].split() == ["make", "run"]
        env = {**self.shell.env,
               "NATS_URL": f"nats://127.0.0.1:{self.ports[MAKE_RUN_PORT]}",
               "JETSTREAM_RECONCILER_HTTP_PORT": str(self.ports[HTTP_PORT])}
        run = "make run"
        if not FRESH_VENV:
            run = f"make -o {shlex.quote(str(self.clone / '.venv' / '.run-installed'))} run"
        started = time.monotonic()
        self.make_run = proc = Background(run, self.clone, env)
        self.background.append(proc)
        port = self.ports[MAKE_RUN_PORT]
        said = proc.wait_for("make run's first line", lambda x: x.startswith("make run:"),
                             600 if FRESH_VENV else 60)
        # README: "says which server and which streams it manages"
        assert proc.lines[said] == (
            f"make run: an embedded nats-server at nats://127.0.0.1:{port} (data in "
            ".jetstream-reconciler/), managing the streams of config/:")
        proc.wait_for("make run's second line", lambda x: True, 60, said + 1)
        assert proc.lines[said + 1] == "1 manifest file valid: 1 stream (events)."
        # "starts a local JetStream server (data in .jetstream-reconciler/ ...), reconciles
        # config/ into it and keeps watching"
        _, server = proc.wait_event("embedded_server_started",
                                    lambda e: e["event"] == "embedded_server_started", 60)
        assert server["url"] == f"nats://127.0.0.1:{port}"
        assert Path(server["store_dir"]).resolve().is_relative_to(
            (self.clone / ".jetstream-reconciler").resolve())
        self.embedded_pid = int(server["pid"])
        _, finished = proc.wait_event("the first reconcile",
                                      lambda e: e["event"] == "reconcile_finished", 60)
        assert finished["counts"] == {"created": 1}, finished
        self.figures["make run: start to first reconcile, s"] = time.monotonic() - started
        if FRESH_VENV:  # "installs the project with only its `server` extra"
            venv = self.clone / ".venv"
            assert (venv / ".run-installed").exists()
            assert not (venv / ".test-installed").exists()
            for tool in ("pytest", "ruff", "mypy", "kubernetes-validate", "check-jsonschema"):
                assert not (venv / "bin" / tool).exists(), tool
            size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()
                       and not f.is_symlink())
            self.figures["make run: the venv it made, MB"] = size / 1e6

    def edit_as_suggested(self) -> None:
        """"Edit config/events.yaml (uncomment `max_age: 100ms`, say) and the change is
        planned, guarded and logged within a fraction of a second; `git checkout config/`
        puts it back." With `make run` watching."""
        proc = self.make_run
        assert proc is not None
        mark = len(proc.lines)
        uncomment_max_age(self.clone / "config" / "events.yaml")
        saved = time.monotonic()
        _, drift = proc.wait_event("drift_detected for the edit",
                                   lambda e: e["event"] == "drift_detected", 30, mark)
        assert drift["source"] == "manifest" and drift["stream"] == "events", drift
        assert changes_of(drift)["max_age"] == (0, 100_000_000), drift
        _, updated = proc.wait_event("stream_updated for the edit",
                                     lambda e: e["event"] == "stream_updated", 30, mark)
        applied = time.monotonic() - saved
        assert changes_of(updated)["max_age"] == (0, 100_000_000), updated
        assert updated["impact"] is None, updated  # an empty stream: nothing discarded
        self.figures["uncommented max_age: save to stream_updated, s"] = applied
        # "within a fraction of a second": tolerant of a loaded machine, measured above
        assert applied < 5, applied

        (command,) = re.findall(r"`(git checkout config/)`", README)
        mark = len(proc.lines)
        done = self.shell.run(command)
        assert done.returncode == 0, done.stderr
        assert MAX_AGE_LINE in (self.clone / "config" / "events.yaml").read_text()
        # Guarded: the line that set max_age went missing, so the new version waits for
        # --settle (2 s) before it is applied (README, "Files being written").
        proc.wait_event("manifest_settling after the checkout",
                                      lambda e: e["event"] == "manifest_settling", 30, mark)
        _, back = proc.wait_event("stream_updated after the checkout",
                                  lambda e: e["event"] == "stream_updated", 30, mark)
        assert changes_of(back)["max_age"] == (100_000_000, 0), back
        self.ran.append(command)

    def run_prose(self, command: str) -> None:
        done = self.shell.run(command)
        assert done.returncode == 0, (command, done.stderr)
        self.ran.append(command)

    def run_sh(self, block: Block) -> None:
        startup: dict[str, list[str]] = {}
        for command in sh_commands(block.body):
            reasons = [r for k, r in NOT_RUN.items() if k in command]
            if reasons:
                self.not_run.append(f"{command.strip()}: {reasons[0]}")
                continue
            # lines for another shell's startup file run in that shell, together
            other = re.search(r"#.*\b(zsh|fish)", command)
            if other:
                startup.setdefault(other[1], []).append(command)
                continue
            if command.split("#")[0].split() == ["make", "run"]:
                self.start_make_run(command)
            elif "nats-server -js" in command:
                proc = Background(self.port(command.split("#")[0]), self.clone, self.shell.env)
                self.background.append(proc)
                await_port(self.ports[SCRATCH_PORT], proc)
            else:
                check = ""
                if "_COMPLETE=bash_source" in command:
                    check = "\ncomplete -p jetstream-reconciler"  # registered in this shell
                mark = len(self.make_run.lines) if self.make_run else 0
                done = self.shell.run(self.port(command) + check, timeout=300)
                assert done.returncode == 0, (command, done.stdout, done.stderr)
                assert "Traceback" not in done.stderr, (command, done.stderr)
                if check:
                    assert "jetstream-reconciler" in done.stdout.splitlines()[-1], done.stdout
                made = re.search(r"#\s*(dist/\S+)", command)
                if made:  # a note naming the file the command makes
                    assert (self.clone / made[1]).is_file(), (command, os.listdir(
                        self.clone / "dist"))
                if "limits_walkthrough.py" in command:
                    self.check_walkthrough(done.stdout, mark)
                if "adopt_walkthrough.py" in command:
                    self.check_own_server(done.stdout, mark)
                    self.outputs["adopt_walkthrough.py"] = done.stdout
            self.ran.append(command.strip())
        for shell, lines in startup.items():
            self.run_startup_file(shell, lines)

    def run_startup_file(self, shell: str, lines: list[str]) -> None:
        """The lines the README puts in zsh's or fish's startup file, run in that shell
        (with a home of its own: compinit writes ~/.zcompdump), then asked whether
        `jetstream-reconciler` completes."""
        if shutil.which(shell) is None:
            self.not_run.extend(f"{line.strip()}: {shell} is not installed here"
                                for line in lines)
            return
        ask = {"zsh": "print -r -- ${_comps[jetstream-reconciler]}",
               "fish": "complete -c jetstream-reconciler"}[shell]
        home = self.tmp / f"home-{shell}"
        home.mkdir()
        env = {k: v for k, v in self.shell.env.items() if not k.startswith("XDG_")}
        done = subprocess.run([shell, "-c", "\n".join([*lines, ask])], cwd=self.clone,
                              env={**env, "HOME": str(home)}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, ""), (shell, done.stderr)
        assert "_jetstream_reconciler_completion" in done.stdout, (shell, done.stdout)
        self.ran.extend(line.strip() for line in lines)

    def check_walkthrough(self, stdout: str, mark: int) -> None:
        """What the README says of it: six messages, limits of 10 messages, 300 bytes and
        0.1 s max age, the last blocked until `allow_data_loss: true`; a server of its own
        that it leaves nothing of, so that `make run` beside it sees nothing."""
        self.check_own_server(stdout, mark)
        assert "[published 6] messages=6 " in stdout
        assert "max_msgs=10 max_bytes=300B max_age=100ms" in stdout
        assert "blocked: max_age would discard 6 messages" in stdout
        assert "allow_data_loss: true" in stdout

    def check_own_server(self, stdout: str, mark: int) -> None:
        """A walkthrough ran on a server of its own, which it stopped, and `make run` beside
        it saw nothing of it."""
        (own,) = re.findall(r"\(a nats-server of its own on (\S+), pid (\d+)\)", stdout)
        assert own[0] != f"nats://127.0.0.1:{self.ports[MAKE_RUN_PORT]}"
        assert not pid_alive(int(own[1]))
        assert self.make_run is not None
        seen = [e for e in self.make_run.events(mark) if e["event"] in (
            "drift_detected", "stream_updated", "stream_created", "stream_adopted",
            "change_blocked")]
        assert seen == [], seen

    def run_console(self, block: Block) -> None:
        command = None
        pairs: list[tuple[str, list[str]]] = []
        for line in block.body.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], []))
            else:
                pairs[-1][1].append(line)
        for command, output in pairs:
            done = self.shell.run(self.port(command))
            assert done.returncode == 0, (command, done.stderr)
            expected = "\n".join(output) + "\n" if output else ""
            assert self.unport(done.stdout) == expected, command
            self.ran.append(command)

    def check_documented(self, block: Block) -> None:
        reasons = [r for k, r in NOT_SHOWN.items() if k in block.body]
        if reasons:
            self.not_run.append(f"line {block.line} ```{block.lang}: {reasons[0]}")
            return
        checks = [check for key, check in DOCUMENTED.items()
                  if key[0] == block.lang and key[1] in block.body]
        assert len(checks) == 1, (
            f"README line {block.line}: a ```{block.lang} block with no check here; add one "
            f"to DOCUMENTED (or a reason to NOT_SHOWN):\n{block.body}")
        checks[0](self, block)
        self.ran.append(f"line {block.line} ```{block.lang}")

    def cli(self, *args: str, cwd: Path, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.clone / ".venv" / "bin" / "jetstream-reconciler"),
                               *args], cwd=cwd, env=env or self.shell.env, capture_output=True,
                              text=True, timeout=60)


# -- the blocks shown without a command --------------------------------------------------


def manifest_example(replay: Replay, block: Block) -> None:
    """The manifest of "Manifests" is valid as written."""
    home = replay.tmp / "manifest-example"
    (home / "config").mkdir(parents=True)
    (home / "config" / "events.yaml").write_text(block.body)
    done = replay.cli("validate", "config/", cwd=home)
    assert (done.returncode, done.stdout) == (0, "1 manifest file valid: 1 stream (events).\n"), \
        done.stderr


def exported_manifest(replay: Replay, block: Block) -> None:
    """The file `export --all --out streams/` (the ```sh block above it) wrote for the first
    session's `events`, with the time and the server's name as the README writes them."""
    text = (replay.clone / "streams" / "events.yaml").read_text()
    text = re.sub(r" at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,$", " at <time>,", text, flags=re.M)
    text = re.sub(r" named \w+\.$", " named <name>.", text, flags=re.M)
    assert replay.unport(text) == block.body


def validation_errors(replay: Replay, block: Block) -> None:
    """The three problems, in a file with them where the README's lines and columns say."""
    home = replay.tmp / "validation-example"
    (home / "streams").mkdir(parents=True)
    (home / "streams" / "a.yaml").write_text(
        "name: a\n"
        'subjects: ["a.*"]\n'
        "max_age: 30\n"
        "max_msg: 5\n"
        "storage: disk\n")
    done = replay.cli("validate", "streams/", cwd=home)
    assert done.returncode == 1
    said = done.stdout + done.stderr
    for line in block.body.splitlines():
        assert line in said.splitlines(), (line, said)


def plan_json(replay: Replay, block: Block) -> None:
    """"For `events` holding the walkthrough's six messages, with `max_age: 100ms`
    uncommented, `plan --output json ...` prints": that command, on the scratch server whose
    `events` the first session made."""
    from reconciler import testing
    from reconciler.model import ConnectOptions

    url = f"nats://127.0.0.1:{replay.ports[SCRATCH_PORT]}"
    walkthrough = (replay.clone / "examples" / "limits_walkthrough.py").read_text()
    (seed,) = re.findall(r"^SEED = (\[.*?\])$", walkthrough, re.S | re.M)
    subjects = json.loads(seed.replace("\n", " "))

    async def publish() -> None:
        async with await testing.connect(ConnectOptions(servers=(url,))) as js:
            for subject in subjects:
                await js.publish(subject, b"")

    home = replay.tmp / "plan-json"
    shutil.copytree(replay.clone / "config", home / "config")
    uncomment_max_age(home / "config" / "events.yaml")
    asyncio.run(publish())
    (command,) = re.findall(r"`(plan --output json[^`]*)`", README)
    done = replay.cli(*command.split(), cwd=home, env={**replay.shell.env, "NATS_URL": url})
    assert done.returncode == 0, done.stderr
    actual = json.loads(done.stdout)
    documented = json.loads(block.body)
    for stream in documented["streams"]:
        shown = {k: v for k, v in stream["config"].items() if k != "..."}
        (live,) = [s for s in actual["streams"] if s["name"] == stream["name"]]
        assert {k: live["config"][k] for k in shown} == shown
        stream["config"] = live["config"]
    assert actual == documented, json.dumps(actual["streams"][0], indent=1)


def cli_synopsis(replay: Replay, block: Block) -> None:
    """Each option the synopsis lists is in that command's --help, with the default, the
    choices and the environment variable the README says."""
    options: list[str] = []
    for line in block.body.splitlines():
        text = line
        if line.startswith("jetstream-reconciler "):
            text = line.split("...", 1)[-1]  # after [PATH]..., when there is one
            helped = replay.cli(line.split()[1], "--help", cwd=replay.clone).stdout
            options = re.split(r"\n  (?=-)", helped.split("Options:", 1)[1])
        for option, value, paren in re.findall(
                r"(--[a-z-]+)(?: ([^\s,()]+))?(?: (\(default[^)]*\)))?", text):
            (about,) = [o for o in options if re.match(rf"(-\w, )?{option}(?=\s)", o)]
            about = " ".join(about.split())
            # `--concurrency N (default 32)`; `--lease NAME (default)`: its default is "default"
            default = paren[len("(default"):-1].strip() or "default" if paren else ""
            if "|" in value:
                assert f"[{value}]" in about or f"[auto|{value}]" in about, (option, about)
            elif value and not value.isupper():
                default = value
            if default:
                assert re.search(rf"\[default: {re.escape(default)}[;\]]", about), (
                    option, default, about)
            # "Every other option reads JETSTREAM_RECONCILER_<FLAG> ...; each --help lists
            # its variables"
            variable = "JETSTREAM_RECONCILER_" + option[2:].upper().replace("-", "_")
            assert f"[env: {variable}]" in about, (option, about)


def converted_nack(replay: Replay, block: Block) -> None:
    """"`convert FILE...` prints the manifests": the README's convert command, as written, in
    the clone; and the manifest it prints declares what the NACK object does."""
    (command,) = [c for b in readme_blocks() if b.lang == "sh"
                  for c in sh_commands(b.body) if "jetstream-reconciler convert" in c]
    done = replay.cli(*command.split("#")[0].split()[1:], cwd=replay.clone)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == block.body
    home = replay.tmp / "converted"
    home.mkdir()
    (home / "orders.yaml").write_text(block.body)
    original = replay.cli("validate", "examples/migrate/orders-nack.yaml", cwd=replay.clone)
    again = replay.cli("validate", str(home), cwd=replay.clone)
    assert (original.returncode, again.returncode, again.stderr) == (0, 0, ""), again.stderr


def editor_example(replay: Replay, block: Block) -> None:
    """The manifest of "Editors", beside the schema the README's command wrote in the clone:
    the schema its first line names accepts it, and so does validate."""
    import jsonschema  # type: ignore[import-untyped]

    home = replay.tmp / "editor-example"
    (home / "config").mkdir(parents=True)
    (home / "config" / "orders.yaml").write_text(block.body)
    (named,) = re.findall(r"^# yaml-language-server: \$schema=(\S+)$", block.body, re.M)
    schema = json.loads((replay.clone / "stream.schema.json").read_text())
    (home / "config" / named).resolve().write_text(json.dumps(schema))
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(block.body))
    done = replay.cli("validate", "config/", cwd=home)
    assert (done.returncode, done.stdout) == (0, "1 manifest file valid: 1 stream (orders).\n"), \
        done.stderr


def adopt_excerpt(replay: Replay, block: Block) -> None:
    """"`.venv/bin/python examples/adopt_walkthrough.py` prints (trimmed at `...`)": each part
    between `...` lines is printed as it stands, lines in a row, and the parts in that order."""
    printed = replay.outputs["adopt_walkthrough.py"].splitlines()
    at = 0
    for part in block.body.split("...\n"):
        lines = part.splitlines()
        found = [i for i in range(at, len(printed) - len(lines) + 1)
                 if printed[i:i + len(lines)] == lines]
        assert found, (part, "\n".join(printed[at:]))
        at = found[0] + len(lines)


DOCUMENTED: dict[tuple[str, str], Callable[[Replay, Block], None]] = {
    ("yaml", "allow_data_loss: false"): manifest_example,
    ("yaml", "# Exported by jetstream-reconciler"): exported_manifest,
    ("yaml", "yaml-language-server"): editor_example,
    ("text", "has no unit"): validation_errors,
    ("json", '"format_version"'): plan_json,
    ("text", "jetstream-reconciler validate [PATH]"): cli_synopsis,
    ("yaml", "# converted from"): converted_nack,
    ("text", "adopt: in sync"): adopt_excerpt,
}


@pytest.mark.timeout(900 if FRESH_VENV else 180)
def test_the_readme_top_to_bottom_in_a_fresh_clone(tmp_path: Path) -> None:
    """About 30 s here (the figures are printed). Skipped outside a git checkout."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, timeout=30)
    if head.returncode != 0:
        pytest.skip("not a git checkout: nothing committed to clone")
    if not FRESH_VENV and not (VENV / ".run-installed").exists():
        pytest.skip("the tests' venv was not made by `make`: RECONCILER_README_FRESH_VENV=1 "
                    "makes one")
    replay = Replay(tmp_path)
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(replay.clone)],
                   check=True, timeout=120)
    subprocess.run(["git", "-C", str(replay.clone), "checkout", "--quiet", "--detach",
                    head.stdout.strip()], check=True, timeout=120)
    if not FRESH_VENV:
        (replay.clone / ".venv").symlink_to(VENV)

    steps: list[tuple[int, Callable[[], None]]] = []
    for block in readme_blocks():
        run = {"sh": replay.run_sh, "console": replay.run_console}.get(
            block.lang, replay.check_documented)
        steps.append((block.line, functools.partial(run, block)))
    (export,) = re.findall(r'`(export PATH="\$PWD/\.venv/bin:\$PATH")`', README)
    steps.append((line_of(export), functools.partial(replay.run_prose, export)))
    steps.append((line_of("uncomment `max_age: 100ms`"), replay.edit_as_suggested))
    steps.sort(key=lambda s: s[0])
    started = time.monotonic()
    try:
        for _, step in steps:
            step()
        # "Ctrl-C stops both"
        assert replay.make_run is not None
        replay.make_run.interrupt()
        assert not pid_alive(replay.embedded_pid)
        said = [e["event"] for e in replay.make_run.events()]
        assert "watch_stopped" in said and "embedded_server_stopped" in said, said
        assert not any("Traceback" in x for x in replay.make_run.lines)
    finally:
        for proc in replay.background:
            proc.interrupt()
    replay.figures["whole replay, s"] = time.monotonic() - started
    assert export in replay.ran and "git checkout config/" in replay.ran
    print("\nrun:", *replay.ran, sep="\n  ")
    print("not run:", *replay.not_run, sep="\n  ")
    print("figures:", *(f"{k}: {v:.2f}" for k, v in replay.figures.items()), sep="\n  ")
    # everything NOT_RUN / NOT_SHOWN names is still in the README
    for key in [*NOT_RUN, *NOT_SHOWN]:
        assert key in README, f"{key!r} is no longer in the README: drop it from the list"


def test_blocks_are_recognised() -> None:
    """Every ```text, ```json and ```yaml block has a check or a reason, and each check
    matches one block (so that the replay does not stop at the first new block)."""
    for block in readme_blocks():
        assert block.lang in ("sh", "console", "yaml", "json", "text"), block
        if block.lang in ("sh", "console"):
            continue
        keyed = [k for k in NOT_SHOWN if k in block.body]
        checks = [k for k in DOCUMENTED if k[0] == block.lang and k[1] in block.body]
        assert len(keyed) + len(checks) == 1, (block.line, block.body)


def test_tests_never_reach_for_the_users_files(tmp_path: Path) -> None:
    """`make test` stays green after any edit the README suggests (uncomment `max_age` in
    `config/events.yaml`) and with `make run` up: no test of the session may read `config/`
    or touch `.jetstream-reconciler/` of the working tree (tests/repo.py guards every test);
    they take the committed files."""
    from tests.repo import USER_FILES, UserFilesTouched, committed_copy

    config, data = USER_FILES
    attempts: list[Callable[[], object]] = [
        lambda: (config / "events.yaml").read_text(),
        lambda: os.listdir(config),
        lambda: shutil.copytree(config, tmp_path / "copy"),
        lambda: (data / "jetstream").mkdir(parents=True),
        lambda: subprocess.run([str(VENV / "bin" / "jetstream-reconciler"), "validate",
                                "config/"], cwd=ROOT, timeout=60),
        lambda: subprocess.run(["true", f"{config}:/config:ro"], timeout=60),
        lambda: subprocess.run([str(VENV / "bin" / "jetstream-reconciler"), "watch",
                                "--embedded", str(tmp_path)], cwd=ROOT, timeout=60),
    ]
    for attempt in attempts:
        with pytest.raises(UserFilesTouched):
            attempt()
    committed = committed_copy(tmp_path, "config") / "config" / "events.yaml"
    assert "# max_age: 100ms" in committed.read_text()
