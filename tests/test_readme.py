"""The README's commands, run as written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from reconciler.testing import free_port, stop_process
from tests.repo import committed_copy

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def console_sessions() -> list[list[tuple[str, str]]]:
    """Each ```console block as (command, expected output) pairs."""
    sessions = []
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        pairs: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], []))
            else:
                pairs[-1][1].append(line)
        sessions.append([(cmd, "\n".join(out) + "\n") for cmd, out in pairs])
    return sessions


def test_readme_has_a_console_session() -> None:
    assert console_sessions()


def sh_lines(needle: str) -> list[str]:
    """The lines of the README's ```sh blocks that contain `needle`."""
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    return [line for block in blocks for line in block.splitlines() if needle in line]


def user_checkout(tmp_path: Path) -> Path:
    """A directory laid out like the user's checkout, with the committed `config/` (never
    the working tree's, which the user edits) and `.venv` pointing at this interpreter's."""
    home = committed_copy(tmp_path / "checkout", "config")
    (home / ".venv").symlink_to(BIN.parent)
    return home


def scratch_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    """The README's scratch server, started as written but on a free port."""
    (command,) = sh_lines("nats-server -js")
    command = command.split("#")[0].replace(f"-p {SCRATCH_PORT}", f"-p {port}")
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=home,
                            env={**os.environ, "TMPDIR": str(home.parent)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        time.sleep(0.05)
    stop_process(proc)
    raise AssertionError("the scratch server did not start")


SCRATCH_PORT = 4333


@pytest.mark.parametrize("session", console_sessions())
def test_console_session(session: list[tuple[str, str]], tmp_path: Path) -> None:
    """Replayed as a user would: in the checkout, on the scratch server the README starts,
    whatever the working tree's `config/` says and whether or not `make run` is up."""
    home = user_checkout(tmp_path)
    port = free_port()
    server = scratch_server(home, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "JETSTREAM_"))}
    try:
        for command, expected in session:
            command = command.replace(f":{SCRATCH_PORT}", f":{port}")
            if command.startswith("export "):
                shown = subprocess.run(f"{command} && env -0", shell=True, cwd=home, env=env,
                                       capture_output=True, check=True, executable="/bin/bash")
                env = dict(v.split("=", 1) for v in shown.stdout.decode().split("\0") if v)
                continue
            run = subprocess.run(command, shell=True, cwd=home, env=env, capture_output=True,
                                 text=True, timeout=60)
            assert run.returncode == 0, (command, run.stderr)
            assert run.stdout == expected, command
    finally:
        stop_process(server)


def test_first_session_names_its_own_server() -> None:
    """The first session does not share `make run`'s port 4222."""
    (session,) = console_sessions()
    assert session[0][0].startswith("export ") and f"127.0.0.1:{SCRATCH_PORT}" in session[0][0]
    assert SCRATCH_PORT != 4222


def test_two_commands_are_make_targets() -> None:
    assert "make run " in README and "make test " in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec make test" in ci


def test_readme_says_where_the_commands_live() -> None:
    """A fresh shell has no .venv/bin on PATH: the README says so, and how to install without
    the repository."""
    assert "source .venv/bin/activate" in README
    assert ".venv/bin/python examples/limits_walkthrough.py" in README
    assert "pipx install" in README


def test_the_wheel_carries_the_tool(tmp_path: Path) -> None:
    """`pip wheel --no-deps -w dist .`, as the README builds it to install elsewhere."""
    (command,) = sh_lines("pip wheel")
    assert command.split("#")[0].split() == ["python3", "-m", "pip", "wheel", "--no-deps",
                                             "-w", "dist", "."]
    src = committed_copy(tmp_path / "src", "pyproject.toml", "README.md", "reconciler")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", "dist",
                    "."], cwd=src, check=True, timeout=300,
                   env={**os.environ, "PIP_CONSTRAINT": str(ROOT / "constraints.txt")})
    (wheel,) = (src / "dist").glob("jetstream_reconciler-*-py3-none-any.whl")
    assert wheel.name in README
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "jetstream-reconciler = reconciler.cli:main" in zf.read(entry).decode()
        meta = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Provides-Extra: server" in meta
    assert any(n.startswith("reconciler/schema/") and n.endswith(".json") for n in names)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_as_documented(shell: str) -> None:
    (line,) = [line for line in sh_lines("_COMPLETE=") if f"{shell}_source" in line]
    var = line.split("_COMPLETE=")[0].split("$(")[-1].split()[-1] + "_COMPLETE"
    run = subprocess.run([str(BIN / "jetstream-reconciler")], env={**os.environ,
                         var: f"{shell}_source"}, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert "jetstream-reconciler" in run.stdout and var in run.stdout
    # and the script's request is answered: `jetstream-reconciler pl<TAB>`
    done = subprocess.run([str(BIN / "jetstream-reconciler")], env={
        **os.environ, var: "bash_complete", "COMP_WORDS": "jetstream-reconciler pl",
        "COMP_CWORD": "1"}, capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["plain,plan"]


@pytest.mark.skipif(not (BIN.parent / ".run-installed").exists(),
                    reason="make run needs the project venv made by `make test`")
def test_make_run_watches_config_with_an_embedded_server(tmp_path: Path) -> None:
    """In a checkout of its own (the committed config/, its own data directory), so that a
    `make run` of the user's, or their edits, neither disturb it nor are disturbed."""
    home = user_checkout(tmp_path)
    port = free_port()
    env = {**os.environ, "NATS_URL": f"nats://127.0.0.1:{port}",
           "JETSTREAM_RECONCILER_HTTP_PORT": "0", "JETSTREAM_RECONCILER_LOG_FORMAT": "json"}
    proc = subprocess.Popen(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"),
                             f"VENV={BIN.parent}", "run"], cwd=home, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()  # a thread reads, so no line waits in a buffer
    threading.Thread(target=lambda: [lines.put(x) for x in iter(proc.stdout.readline, "")]
                     + [lines.put("")], daemon=True).start()
    events: list[dict[str, object]] = []
    said: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if not line:
                break  # make exited
            if line.startswith("{"):
                events.append(json.loads(line))
                if events[-1]["event"] == "reconcile_finished":
                    break
            else:
                said.append(line)
        finished = [e for e in events if e["event"] == "reconcile_finished"]
        assert finished, (said, events)
        assert finished[0]["counts"] == {"created": 1}
        assert asyncio.run(_stream_exists(f"nats://127.0.0.1:{port}", "events"))
        # its first lines say which server and which streams
        # (after pip's lines, when the venv's install is older than pyproject.toml)
        first = said.index(f"make run: an embedded nats-server at nats://127.0.0.1:{port} "
                           "(data in .jetstream-reconciler/), managing the streams of config/:\n")
        assert said[first + 1] == "1 manifest file valid: 1 stream (events).\n"
        assert (home / ".jetstream-reconciler" / "jetstream").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    rest = "".join(iter(lambda: lines.get(timeout=15), ""))
    assert '"embedded_server_stopped"' in rest
    assert "Traceback" not in rest


async def _stream_exists(url: str, name: str) -> bool:
    from reconciler import jetstream
    from reconciler.model import ConnectOptions

    async with await jetstream.connect(ConnectOptions(servers=(url,))) as js:
        return await js.stream_info(name) is not None
