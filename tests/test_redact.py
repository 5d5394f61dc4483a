"""Passwords and tokens out of server URLs: a table of what is shown."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from reconciler import logs
from reconciler.redact import redact_servers, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://alice:S3cretPW@host:4222", "nats://alice:***@host:4222"),
        ("nats://S3cretTOKEN@host:4222", "nats://***@host:4222"),
        ("tls://alice:@host", "tls://alice:***@host"),
        ("alice:S3cretPW@host:4222", "alice:***@host:4222"),
        ("S3cretTOKEN@host", "***@host"),
        ("localhost", "localhost"),
        # "@", "/" or ":" inside the secret: all of it masked, not only up to the first
        ("nats://alice:p@ss@host:4222", "nats://alice:***@host:4222"),
        ("nats://alice:p/w:x@host:4222", "nats://alice:***@host:4222"),
        ("nats://a:x@h1:1,nats://tok@h2:2, nats://h3:3",
         "nats://a:***@h1:1,nats://***@h2:2, nats://h3:3"),
        ("ws://[::1]:8080", "ws://[::1]:8080"),
        ("nats://alice:pw@[::1]:4222", "nats://alice:***@[::1]:4222"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_servers_takes_each_entry() -> None:
    assert redact_servers(("nats://u:p@a:1,nats://t@b:2", "c:3")) == [
        "nats://u:***@a:1,nats://***@b:2", "c:3"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cannot connect to nats://alice:pw@host:4222: refused",
         "cannot connect to nats://alice:***@host:4222: refused"),
        ('{"servers": ["nats://u:p@a:1", "nats://tok@b:2"], "user": "x@y.z"}',
         '{"servers": ["nats://u:***@a:1", "nats://***@b:2"], "user": "x@y.z"}'),
        ("'tls://tok@h' and ws://u:p@@h/x?y=a@b", "'tls://***@h' and ws://u:***@h/x?y=a@b"),
        ("mail alice@example.com", "mail alice@example.com"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_redact_text(text: str, shown: str) -> None:
    assert redact_text(text) == shown


@pytest.fixture
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


@pytest.mark.usefixtures("_reset_logging")
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_url_in_any_log_line_is_redacted(fmt: str) -> None:
    """The backstop: whatever logs a URL (a library, an exception), the line is masked."""
    stream = io.StringIO()
    logs.setup(fmt, "debug", stream)
    structlog.get_logger("t").info("connecting", servers=["nats://alice:pw-1@h:1"])
    logging.getLogger("nats").warning("lost nats://tok-2@h:2")
    try:
        raise OSError("cannot reach tls://bob:pw-3@h:3")
    except OSError:
        structlog.get_logger("t").exception("failed")
    structlog.get_logger("t").info("secret keys", password="pw-4", token="tok-5")
    text = stream.getvalue()
    for secret in ("pw-1", "tok-2", "pw-3", "pw-4", "tok-5"):
        assert secret not in text
    assert "nats://alice:***@h:1" in text and "nats://***@h:2" in text
    assert "tls://bob:***@h:3" in text
    if fmt == "json":
        assert [json.loads(line)["event"] for line in text.splitlines()] == [
            "connecting", "lost nats://***@h:2", "failed", "secret keys"]


@pytest.mark.usefixtures("_reset_logging")
def test_events_go_to_stderr_as_it_is_when_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a stream, events follow `sys.stderr` when it is swapped after `setup` (a
    harness capturing the CLI's output, then closing it), never to a stream now closed."""
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logs.setup("json", "info")
    structlog.get_logger("t").info("one")
    first.close()
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    structlog.get_logger("t").info("two")
    logging.getLogger("nats").warning("three")  # a library's record goes the same way
    assert [json.loads(line)["event"] for line in later.getvalue().splitlines()] == [
        "two", "three"]
