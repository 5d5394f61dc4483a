"""structlog set-up, done once by the CLI. Modules only call `structlog.get_logger()`.

JSON lines when stderr is not a terminal (or `--log-format json`), readable console output
when it is. nats-py and watchfiles log through `logging`; their records go through the same
renderer. Values under keys that name a secret are masked, whatever logged them, and the
password or token of any URL in a rendered line (a library's message, a traceback) is masked
as the line's last step: modules still redact where they log a URL, this is the backstop.

Console lines show values as a manifest writes them (`max_age: 0 -> 100ms`), a created
stream's fields that differ from the server's defaults rather than its whole configuration,
and an impact by its summary. JSON lines keep every key and the API's exact values.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

from reconciler.redact import redact_text
from reconciler.report import show_value

SECRET_KEYS = frozenset({"password", "token", "nkey_seed", "seed", "creds_content", "jwt"})


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key in SECRET_KEYS and event[key] is not None:
            event[key] = "***"
    return event


def setup(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to `stream` (stderr) in one format."""
    # without a stream, both go to sys.stderr as it is when a line is written
    out: TextIO = stream if stream is not None else cast(TextIO, _Stderr())
    terminal = (stream or sys.stderr).isatty()
    if fmt == "auto":
        fmt = "console" if terminal else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # plain tracebacks: rich's show local variables, and a local may hold a password
        else _for_people(structlog.dev.ConsoleRenderer(
            colors=terminal, exception_formatter=structlog.dev.plain_traceback))
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    rendering = [
        structlog.processors.format_exc_info if fmt == "json" else _identity,
        _redacted(renderer),
    ]
    # our own events are rendered and written directly (a stdlib LogRecord, made twice per
    # event, and a look up the stack for a logger name took 64 of the 94 us of an event)
    structlog.configure(
        processors=[*shared, *rendering],
        logger_factory=structlog.WriteLoggerFactory(out),
        wrapper_class=structlog.make_filtering_bound_logger(_level(level)),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level(level))
    # Libraries speak at WARNING and above unless we debug.
    for name in ("nats", "watchfiles", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


class _Stderr:
    """`sys.stderr` as it is when an event is written: whoever swapped it since `setup` (a
    test harness capturing output, a caller running the CLI in-process) gets the events,
    and none goes to a stream it has closed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _redacted(renderer: Any) -> Any:
    def render(logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return redact_text(str(renderer(logger, name, event)))

    return render


def _for_people(renderer: Any) -> Any:
    def render(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        return renderer(logger, name, readable(event))

    return render


def readable(event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An event for the console: field changes in manifest units, no configuration dump."""
    changes = event.get("changes")
    if isinstance(changes, list) and changes and all(
        isinstance(c, dict) and "field" in c and "desired" in c for c in changes
    ):
        created = event.get("event") == "stream_created"
        event["changes"] = "; ".join(
            f"{c['field']}: {show_value(c['field'], c['desired'])}" if created else
            f"{c['field']}: {show_value(c['field'], c.get('live'))} -> "
            f"{show_value(c['field'], c['desired'])}"
            for c in changes
        )
        if created:
            event.pop("config", None)
    impact = event.get("impact")
    if isinstance(impact, dict) and "summary" in impact:
        event["impact"] = impact["summary"]
    return event


def _identity(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event


def _level(name: str) -> int:
    return int(logging.getLevelName(name.upper()))
