"""Faults from outside: refused permissions, a server that dies or freezes mid-work, a file
that is not a creds file, TLS. Each against a real nats-server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.errors import ConnectionLost, PermissionDenied, SettingsError
from reconciler.jetstream import connect, creds_problem
from reconciler.model import ConnectOptions
from reconciler.settings import Settings
from reconciler.testing import NatsServer, free_port
from tests.test_jetstream import _certificates
from tests.test_watch import _get, running

PERMISSIONS = """\
authorization {
  users = [
    {user: "reconciler", password: "pw",
     permissions: {publish: {allow: ["$JS.API.>"], deny: ["$JS.API.STREAM.UPDATE.>"]},
                   subscribe: {allow: ["_INBOX.>"]}}}
  ]
}
"""


@contextmanager
def server_with(tmp_path: Path, *args: str) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "js", extra_args=args).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def frozen(server: NatsServer) -> Iterator[None]:
    """SIGSTOP the server for the block; SIGCONT it whatever happens."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        _await_stopped(server.proc.pid)
        yield
    finally:
        if server.proc is not None and server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)


def _await_stopped(pid: int, timeout: float = 5.0) -> None:
    """Wait until every thread of `pid` is stopped: a signal reaches each thread of a busy
    process only when that thread next enters the kernel."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {Path(t, "stat").read_text().rsplit(")", 1)[1].split()[0]
                  for t in Path(f"/proc/{pid}/task").iterdir()}
        if states <= {"T", "t"}:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop within {timeout} s")


# --- permissions ---------------------------------------------------------------------------


async def test_a_refused_publish_fails_at_once_with_the_servers_words(tmp_path: Path) -> None:
    conf = tmp_path / "perms.conf"
    conf.write_text(PERMISSIONS)
    with server_with(tmp_path, "-c", str(conf)) as server:
        opts = ConnectOptions(servers=(server.url,), user="reconciler", password="pw")
        async with await connect(opts) as js:
            config = {"name": "orders", "subjects": ["orders.>"], "max_msgs": 10}
            await js.create_stream(config)
            started = time.monotonic()
            with pytest.raises(PermissionDenied) as caught:
                await js.update_stream({**config, "max_msgs": 20})
            elapsed = time.monotonic() - started
            # the connection stays usable for what is allowed
            info = await js.stream_info("orders")
    assert str(caught.value) == (
        "stream orders: this user may not publish to $JS.API.STREAM.UPDATE.orders (the server "
        "reported a permissions violation): allow it in the user's publish permissions; the "
        "reconciler publishes to $JS.API.>"
    )
    assert elapsed < 2, elapsed  # not the 5 s request timeout
    assert info is not None and info.config["max_msgs"] == 10


# --- a server that dies or freezes ---------------------------------------------------------


async def test_requests_in_flight_when_the_server_dies_fail_as_a_lost_connection(
    tmp_path: Path,
) -> None:
    with server_with(tmp_path) as server:
        async with await connect(ConnectOptions(servers=(server.url,))) as js:
            names = [f"s{i}" for i in range(32)]
            for name in names:
                await js.create_stream({"name": name, "storage": "memory"})
            with frozen(server):
                updates = [asyncio.ensure_future(
                    js.update_stream({"name": n, "storage": "memory", "max_msgs": 5}))
                    for n in names]
                await asyncio.sleep(0.2)  # the requests are on the wire, unanswered
                assert server.proc is not None
                started = time.monotonic()
                os.kill(server.proc.pid, signal.SIGKILL)
                results = await asyncio.gather(*updates, return_exceptions=True)
                elapsed = time.monotonic() - started
    assert elapsed < 2, elapsed  # not each request's 5 s timeout
    for name, result in zip(names, results, strict=True):
        assert type(result) is ConnectionLost and result.sent
        assert str(result) == (
            f"stream {name}: $JS.API.STREAM.UPDATE.{name} on {server.url}: the connection was "
            "lost before the server answered (the request may or may not have been carried out)"
        )


async def test_a_request_ended_by_a_lost_connection_leaves_its_task_uncancelled(
    tmp_path: Path,
) -> None:
    """A lost connection ends a request by cancelling the task waiting for it: the task
    gets the error, not a cancellation, and can carry on; a task cancelled from outside
    meanwhile stays cancelled."""
    with server_with(tmp_path) as server:
        async with await connect(ConnectOptions(servers=(server.url,))) as js:
            await js.create_stream({"name": "orders", "storage": "memory"})

            async def read() -> tuple[BaseException, int, bool]:
                try:
                    await js.stream_info("orders")
                except ConnectionLost as exc:
                    task = asyncio.current_task()
                    assert task is not None
                    await asyncio.sleep(0)  # no cancellation left to deliver
                    return exc, task.cancelling(), True
                raise AssertionError("answered by a frozen server")

            with frozen(server):
                alone = asyncio.ensure_future(read())
                also_cancelled = asyncio.ensure_future(read())
                outside = asyncio.ensure_future(js.stream_info("orders"))
                await asyncio.sleep(0.2)  # all three are on the wire, unanswered
                outside.cancel()
                also_cancelled.cancel()
                js._interrupt_all()
                error, cancelling, carried_on = await alone
                with pytest.raises(asyncio.CancelledError):
                    await also_cancelled
                with pytest.raises(asyncio.CancelledError):
                    await outside
    assert type(error) is ConnectionLost and error.sent
    assert (cancelling, carried_on) == (0, True)


async def test_readiness_fails_within_seconds_of_a_frozen_server(tmp_path: Path) -> None:
    with server_with(tmp_path) as server:
        manifest = tmp_path / "events.yaml"
        manifest.write_text('name: events\nsubjects: ["events.*"]\n')
        port = free_port()
        settings = Settings(paths=(str(manifest),),
                            connect=ConnectOptions(servers=(server.url,)),
                            http_port=port, http_host="127.0.0.1")
        async with running(settings) as daemon:
            assert (await asyncio.to_thread(_get, port, "/readyz"))[0] == 200
            with frozen(server):
                started = time.monotonic()
                while daemon.readiness()[0]:
                    assert time.monotonic() - started < 10, "still ready 10 s after the freeze"
                    await asyncio.sleep(0.1)
                detected = time.monotonic() - started
                status, body = await asyncio.to_thread(_get, port, "/readyz")
            assert status == 503 and "not connected to NATS" in body, body
            started = time.monotonic()
            while not daemon.readiness()[0]:
                assert time.monotonic() - started < 20, daemon.readiness()
                await asyncio.sleep(0.1)
    # pings every second, three unanswered: about 3-4 s (allow for a loaded machine)
    assert detected < 6.5, detected


# --- creds ---------------------------------------------------------------------------------

JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl"
SEED = "SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY"
CREDS = f"""\
-----BEGIN NATS USER JWT-----
{JWT}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.

-----BEGIN USER NKEY SEED-----
{SEED}
------END USER NKEY SEED------
"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (CREDS, None),
        ("", "it has no '-----BEGIN NATS USER JWT-----' line"),
        ("garbage\n", "it has no '-----BEGIN NATS USER JWT-----' line"),
        (SEED + "\n", "it has no '-----BEGIN NATS USER JWT-----' line"),
        (CREDS.replace(JWT, "not-a-jwt"),
         "the line after '-----BEGIN NATS USER JWT-----' is not a JWT"),
        (CREDS.split("\n\n")[0],
         "it has no '-----BEGIN USER NKEY SEED-----' line"),
        (CREDS.replace(SEED, ""),
         "the line after '-----BEGIN USER NKEY SEED-----' is not a user seed"),
    ],
)
def test_creds_problem(text: str, problem: str | None) -> None:
    assert creds_problem(text) == problem


async def test_a_garbage_creds_file_is_named_as_such(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    garbage = tmp_path / "user.creds"
    garbage.write_bytes(b"\x00\x01 this is not a creds file\n")
    with pytest.raises(SettingsError) as caught:
        await connect(ConnectOptions(servers=(nats_server.url,), creds=str(garbage)))
    assert str(caught.value) == (
        f"the creds file {garbage} is not a NATS credentials file: it has no "
        "'-----BEGIN NATS USER JWT-----' line; a creds file (as `nsc generate creds` writes "
        "it) holds the user JWT on the line after '-----BEGIN NATS USER JWT-----' (eyJ...) and "
        "the user seed on the line after '-----BEGIN USER NKEY SEED-----' (SU...)"
    )


# --- TLS -----------------------------------------------------------------------------------


async def test_tls_connections_end_without_an_asyncio_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca, cert, key = _certificates(tmp_path)
    with server_with(tmp_path, "--tls", "--tlscert", str(cert), "--tlskey", str(key)) as server:
        url = f"tls://127.0.0.1:{server.port}"
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            js = await connect(ConnectOptions(servers=(url,), tls_ca=str(ca)))
            assert (await js.list_streams()).streams == ()
            await js.close()  # our end closes
            js = await connect(ConnectOptions(servers=(url,), tls_ca=str(ca)))
            server.stop()  # the server's end closes
            while js.connected:
                await asyncio.sleep(0.05)
            await js.close()
            await asyncio.sleep(0.1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert warnings == []
