"""The event catalogue: every structlog event the product emits, its level and its keys.

Event names and keys are part of the interface (people alert on them), so they live here,
once: `tests/test_events.py` reads every logging call in `reconciler/` and checks that its
event is declared below with the keys it is logged with, and that README.md's event table
is `markdown_table()` (`UPDATE_README=1 pytest tests/test_events.py` rewrites it).

Two shapes recur and are built here only, for events and for the plan JSON alike:

- a field change is `{"field", "live", "desired"}` (`change_document`); `changes` is always
  a list of them;
- an impact is `{"messages", "bytes", "exact", "causes", "summary"}` (`impact_document`),
  and `None` means the change removes no stored message.

A key marked `bound` usually comes from the logger the event is logged through
(`log.bind(reconcile_id=...)`), not from the call itself. This module is a table: it does
not log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.model import FieldChange, Impact
from reconciler.plan import describe_impact

LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Key:
    name: str
    note: str = ""
    """What a reader needs beyond the name: its values, its unit, when it is null."""
    bound: bool = False
    """Bound to the logger by a caller (`reconcile_id`, `stream`) rather than passed here."""


@dataclass(frozen=True)
class Event:
    name: str
    level: str
    keys: tuple[Key, ...]
    note: str = ""
    """When the event is logged, if its name does not say it."""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"{self.name}: level {self.level!r} is not one of {LEVELS}")

    @property
    def key_names(self) -> frozenset[str]:
        return frozenset(k.name for k in self.keys)


def change_document(change: FieldChange) -> dict[str, Any]:
    """A field change as events and the plan JSON show it (the API's exact values)."""
    return {"field": change.path, "live": change.live, "desired": change.desired}


def changes_document(changes: Iterable[FieldChange]) -> list[dict[str, Any]]:
    return [change_document(c) for c in changes]


def impact_document(impact: Impact | None) -> dict[str, Any] | None:
    """What a change removes, as events and the plan JSON show it; None: nothing."""
    if impact is None:
        return None
    return {
        "messages": impact.messages,
        "bytes": impact.bytes,
        "exact": impact.exact,
        "causes": list(impact.causes),
        "summary": describe_impact(impact),
    }


def _k(spec: str, note: str = "", *, bound: bool = False) -> Key:
    return Key(spec, note, bound)


_RECONCILE_ID = _k("reconcile_id", bound=True)
_STREAM = _k("stream", bound=True)
_CHANGES = _k("changes", "a list of `field`, `live`, `desired`")
_IMPACT = _k("impact", "`messages`, `bytes`, `exact`, `causes`, `summary`; `null`: nothing lost")

EVENTS: tuple[Event, ...] = (
    # one reconcile pass (reconcile.py, apply.py)
    Event("drift_detected", "info", (
        _k("stream"), _k("action", "create, update, blocked, report"), _CHANGES,
        _k("source", "manifest, server; `null` from `apply`"), _k("actor"), _k("missing"),
        _k("overwritten"), _RECONCILE_ID)),
    Event("stream_created", "info", (
        _STREAM, _k("config"),
        _k("changes", "what the manifest sets beyond the server's defaults"), _RECONCILE_ID)),
    Event("stream_updated", "info", (_STREAM, _CHANGES, _IMPACT, _RECONCILE_ID)),
    Event("stream_adopted", "info", (
        _STREAM, _k("manifest", "the file recorded as declaring it"), _RECONCILE_ID),
          "ownership recorded in the stream's metadata (with its update, if it had changes)"),
    Event("stream_undeclared", "warning", (
        _STREAM, _k("manifest", "the file that declared it when it was last written; null "
                    "when unknown"),
        _k("messages"), _k("bytes"),
        _k("prune", "kept: pruning is off; held: in its grace period; delete; blocked"),
        _RECONCILE_ID),
          "a stream we own that no manifest declares; watch mode logs it once per appearance"),
    Event("stream_deleted", "warning", (
        _STREAM, _k("manifest", "the file that last declared it"),
        _k("impact", "what the deletion destroyed, read just before it; null: no message"),
        _RECONCILE_ID), "pruned: owned and undeclared, with every guard passed"),
    Event("change_blocked", "warning", (
        _STREAM, _k("reasons"), _IMPACT, _CHANGES, _RECONCILE_ID)),
    Event("drift_reported", "info", (_STREAM, _CHANGES, _k("reasons"), _RECONCILE_ID),
          "a stream the plan only reports, left as it is"),
    Event("apply_failed", "error", (
        _STREAM, _k("action"), _k("code"), _k("err_code"), _k("description"), _k("error"),
        _k("in_doubt", "sent, never answered: may have been applied"), _RECONCILE_ID)),
    Event("apply_progress", "info", (_k("done"), _k("total"), _RECONCILE_ID),
          "applies of 100 streams or more, every tenth"),
    Event("stream_unreadable", "warning", (
        _k("stream"), _k("managed"), _k("error"), _RECONCILE_ID),
          "the server could not describe it; left as it is"),
    Event("reconcile_finished", "info", (
        _k("counts", "per outcome"), _k("streams"), _k("unmanaged"),
        _k("undeclared", "owned streams no manifest declares, kept"), _k("degraded"),
        _k("duration_ms"), _k("trigger"), _RECONCILE_ID)),
    # watch mode (daemon)
    Event("reconcile_failed", "error", (_k("error"), _k("reconcile_id")),
          "the pass could not run, e.g. the connection dropped"),
    Event("reconcile_retry", "info", (
        _k("retry_in_s"), _k("reason", "failed, degraded"), _k("reconcile_id")),
          "the pass that did not finish its work"),
    Event("conflict_detected", "warning", (
        _k("stream"), _k("fields"), _k("actor", "the other client"),
        _k("count", "times it changed the stream back"), _k("paused_s"))),
    Event("manifest_invalid", "error", (
        _k("file"), _k("line"), _k("column"), _k("field"), _k("error"))),
    Event("manifests_valid_again", "info", ()),
    Event("manifest_warning", "warning", (
        _k("file"), _k("line"), _k("column"), _k("field"), _k("warning")),
          "a manifest says something not followed here (a NACK Stream's `servers`); logged "
          "when the warnings change"),
    Event("manifest_settling", "warning", (
        _k("file"), _k("reasons"), _k("streams"), _k("settle_s"), _k("retry_in_s")),
          "a new version held back: see Data safety"),
    Event("nats_connected", "info", (_k("servers"),)),
    Event("nats_unreachable", "warning", (_k("error"), _k("retry_in_s"))),
    Event("nats_disconnected", "warning", ()),
    Event("nats_reconnected", "info", ()),
    Event("watch_started", "info", (
        _k("paths"), _k("resync_s"), _k("http_port"), _k("servers"), _k("embedded"),
        _k("identity"), _k("client_name"), _k("lease"), _k("lease_ttl_s"))),
    Event("watch_stopped", "info", (_k("passes"), _k("exit_code"))),
    Event("watch_failed", "error", (_k("task"), _k("error"))),
    Event("http_listening", "info", (_k("host"), _k("port"))),
    Event("advisory", "debug", (
        _k("kind", "api, stream"), _k("stream"), _k("actor"))),
    Event("files_changed", "debug", (_k("files", "the first 20"),)),
    # the lease (lease/)
    Event("leader_elected", "info", (
        _k("lease"), _k("holder", "host or pod name/pid"), _k("this_process"),
        _k("identity", "of the process saying it")), "debug for a one-off `apply`"),
    Event("leadership_lost", "warning", (
        _k("lease"), _k("holder", "this process"), _k("reason"))),
    Event("lease_taken_over", "warning", (
        _k("lease"), _k("previous_holder"), _k("holder"), _k("warning")), "`apply --force`"),
    Event("lease_released", "info", (_k("lease"), _k("holder")),
          "debug for a one-off `apply`"),
    Event("lease_unavailable", "warning", (_k("lease"), _k("error"))),
    # the embedded server (embedded.py)
    Event("embedded_server_started", "info", (
        _k("pid"), _k("url"), _k("server_name"), _k("store_dir"), _k("log_file"))),
    Event("embedded_server_stopped", "info", (_k("pid"),)),
    # the NATS connection (jetstream)
    Event("nats_async_error", "debug", (_k("error"),), "an error nats-py reports asynchronously"),
    Event("nats_connect_attempt_failed", "debug", (_k("error"),)),
    Event("nats_callback_failed", "error", (_k("callback", "disconnected, reconnected"),)),
    Event("advisory_handler_failed", "error", (_k("subject"),)),
    Event("advisory_malformed", "debug", (_k("subject"), _k("error")),
          "an advisory that cannot be read is ignored"),
)

BY_NAME: dict[str, Event] = {e.name: e for e in EVENTS}
if len(BY_NAME) != len(EVENTS):  # pragma: no cover - a table error, caught at import
    raise ValueError("an event is declared twice")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_row(event: Event) -> str:
    keys = ", ".join(f"`{k.name}`" + (f" ({k.note})" if k.note else "") for k in event.keys)
    return f"| `{event.name}` | {event.level} | {_cell(keys)} | {_cell(event.note)} |"


def markdown_table() -> str:
    """README.md's event table: one row per event, in the catalogue's order."""
    rows = ["| event | level | keys | when |", "| --- | --- | --- | --- |"]
    rows += [markdown_row(e) for e in EVENTS]
    return "\n".join(rows) + "\n"

