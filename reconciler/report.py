"""Plans and results as text for people, JSON for programs, Markdown for pull requests.

Pure functions: a Plan in, a string out. The JSON document is versioned by
`format_version`; README.md documents its schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote

import click

from reconciler.events import changes_document, impact_document
from reconciler.fields import STREAM
from reconciler.model import (
    WRITES,
    Action,
    FieldChange,
    Location,
    Outcome,
    Plan,
    StreamPlan,
    Undeclared,
)
from reconciler.plan import describe_impact
from reconciler.units import count_of, format_duration, format_size

FORMAT_VERSION = 2

_SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.BLOCKED: "!", Action.NOOP: "=",
           Action.REPORT: "*", Action.ADOPT: "@", Action.DELETE: "-"}
_COLOUR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.BLOCKED: "red",
           Action.NOOP: None, Action.REPORT: "cyan", Action.ADOPT: "blue", Action.DELETE: "red"}
_VERB = {Action.NOOP: "no changes", Action.REPORT: "report only",
         Action.ADOPT: "adopt: in sync; apply records ownership in its metadata",
         Action.DELETE: "delete (owned, and no manifest declares it any more)"}
#: the actions whose impact is allowed data loss
_LOSSY = (Action.UPDATE, Action.DELETE)


def show_value(path: str, value: Any) -> str:
    """A field's value in the units a manifest would use (the field's unit in the registry)."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        row = STREAM.get(path)
        unit = row.unit if row is not None else None
        if unit == "duration":
            return format_duration(value)
        if unit == "size":
            return format_size(value)
        if unit == "count" and value == -1:
            return "unlimited"
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


def summary_line(plan: Plan) -> str:
    parts = [
        f"{plan.count(Action.CREATE)} to create",
        f"{plan.count(Action.UPDATE)} to update",
    ]
    if plan.count(Action.ADOPT):
        parts.append(f"{plan.count(Action.ADOPT)} to adopt")
    if plan.count(Action.DELETE):
        parts.append(f"{plan.count(Action.DELETE)} to delete")
    parts += [
        f"{plan.count(Action.BLOCKED)} blocked",
        f"{plan.count(Action.NOOP)} unchanged",
    ]
    if plan.count(Action.REPORT):
        parts.append(f"{plan.count(Action.REPORT)} report only")
    if plan.undeclared:
        parts.append(f"{len(plan.undeclared)} undeclared")
    if plan.unmanaged:
        parts.append(f"{len(plan.unmanaged)} unmanaged")
    if plan.degraded:
        parts.append(f"{len(plan.degraded)} degraded")
    return "Plan: " + ", ".join(parts) + "."


def _where(stream: StreamPlan) -> str:
    if stream.undeclared and stream.location:
        return f" (last declared in {stream.location.file})"
    return f" ({stream.location})" if stream.location and stream.location.line else ""


def undeclared_line(u: Undeclared) -> str:
    """One kept undeclared stream, for people."""
    where = f"last declared in {u.manifest}" if u.manifest else "where it was declared is unknown"
    what = f"{count_of(u.messages, 'message')} ({u.bytes} bytes)"
    kept = u.note or "kept; --prune deletes it"
    return f"{u.name}: undeclared: owned, in no manifest ({where}); {what}; {kept}"


def _change_line(change: FieldChange, missing: bool) -> str:
    if missing:
        return f"{change.path}: {show_value(change.path, change.desired)}"
    return (f"{change.path}: {show_value(change.path, change.live)} -> "
            f"{show_value(change.path, change.desired)}")


def render_text(plan: Plan, *, colour: bool = False) -> str:
    def style(text: str, fg: str | None, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if colour and (fg or bold) else text

    lines: list[str] = []
    for stream in plan.streams:
        fg = _COLOUR[stream.action]
        verb = _VERB.get(stream.action, str(stream.action))
        lines.append(style(f"{_SYMBOL[stream.action]} {stream.name}", fg, bold=True)
                     + f"{_where(stream)}: {style(verb, fg)}")
        for change in stream.changes:
            lines.append(f"    {_change_line(change, stream.missing)}")
        if stream.impact and stream.action in _LOSSY:
            lines.append(style(f"    data loss (allowed): {describe_impact(stream.impact)}",
                               "yellow"))
        label = "blocked" if stream.action is Action.BLOCKED else "left alone"
        for reason in stream.reasons:
            lines.append(style(f"    {label}: {reason}", fg))
    for degraded in plan.degraded:
        if degraded.managed:
            where = f" ({degraded.location})" if degraded.location else ""
            lines.append(style(f"! {degraded.name}", "red", bold=True) + f"{where}: "
                         + style(f"degraded: {degraded}; left as it is", "red"))
    for u in plan.undeclared:
        lines.append(style(f"? {undeclared_line(u)}", "magenta"))
    unreadable = {d.name: d for d in plan.degraded if not d.managed}
    for name in plan.unmanaged:
        line = f"? {name}: unmanaged (on the server, in no manifest; left alone)"
        if name in unreadable:
            line += f"; degraded: {unreadable[name]}"
        lines.append(line)
    if lines:
        lines.append("")
    lines.append(style(summary_line(plan), None, bold=True))
    lines.append("")  # the text ends with a newline
    return "\n".join(lines)


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready document (schema: README.md, "Plan JSON")."""
    return {
        "format_version": FORMAT_VERSION,
        "summary": {
            "create": plan.count(Action.CREATE),
            "update": plan.count(Action.UPDATE),
            "adopt": plan.count(Action.ADOPT),
            "delete": plan.count(Action.DELETE),
            "blocked": plan.count(Action.BLOCKED),
            "noop": plan.count(Action.NOOP),
            "report": plan.count(Action.REPORT),
            "undeclared": len(plan.undeclared),
            "unmanaged": len(plan.unmanaged),
            "degraded": len(plan.degraded),
            "pending": plan.pending,
        },
        "streams": [_stream_document(s) for s in plan.streams],
        "undeclared": [
            {"name": u.name, "manifest": u.manifest, "messages": u.messages, "bytes": u.bytes,
             "note": u.note}
            for u in plan.undeclared
        ],
        "unmanaged": list(plan.unmanaged),
        "degraded": [
            {"name": d.name, "managed": d.managed,
             "file": d.location.file if d.location else None,
             "line": d.location.line if d.location else None,
             "error": str(d)}
            for d in plan.degraded
        ],
    }


def _stream_document(stream: StreamPlan) -> dict[str, Any]:
    return {
        "name": stream.name,
        "action": str(stream.action),
        "file": stream.location.file if stream.location else None,
        "line": stream.location.line if stream.location else None,
        "changes": changes_document(stream.changes),
        "impact": impact_document(stream.impact),
        "reasons": list(stream.reasons),
        "config": dict(stream.config) if stream.config is not None
        and stream.action is not Action.NOOP else None,
        "adopt": stream.adopt,
        "undeclared": stream.undeclared,
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_document(plan), indent=2) + "\n"


MARKDOWN_MARKER = "<!-- jetstream-reconciler plan -->"
"""The first line of every Markdown plan: a bot finds its own comment by it, to update it."""

#: rows of a Markdown section shown open; a longer section is collapsed
MARKDOWN_OPEN_ROWS = 10

#: characters that Markdown or HTML would read as syntax (`|` ends a table cell), written as
#: character references instead, which render as themselves everywhere
_MARKDOWN_SYNTAX = {c: f"&#{ord(c)};" for c in "\\`*_[]<>&|~"}


def md_text(text: str) -> str:
    """`text` as Markdown that renders exactly as `text`, on one line, in a table cell too."""
    escaped = "".join(_MARKDOWN_SYNTAX.get(c, c) for c in text)
    return " ".join(escaped.splitlines()) if "\n" in escaped or "\r" in escaped else escaped


def md_code(text: str) -> str:
    """`text` in a monospace font, escaped (a code span cannot hold a backtick or `|`)."""
    return f"<code>{md_text(text)}</code>"


def _md_where(location: Location | None, link_base: str | None) -> str:
    """`file:line`, linked to the line under `link_base` when the file is relative."""
    if location is None or not location.line:
        return ""
    text = md_text(f"{location.file}:{location.line}")
    if not link_base or PurePath(location.file).is_absolute():
        return text
    path = quote(PurePosixPath(*PurePath(location.file).parts).as_posix())
    return f"[{text}]({link_base.rstrip('/')}/{path}#L{location.line})"


def _md_section(title: str, body: list[str], rows: int) -> list[str]:
    """A section with its title, collapsed under `<details>` when it has many rows."""
    if rows <= MARKDOWN_OPEN_ROWS:
        return [f"**{title}**", "", *body, ""]
    return [f"<details><summary>{title}</summary>", "", *body, "", "</details>", ""]


def render_markdown(plan: Plan, *, link_base: str | None = None) -> str:
    """The plan as a pull-request comment (GitHub and GitLab Markdown).

    Starts with `MARKDOWN_MARKER`; every value from a manifest or the server is escaped;
    each stream links to its `file:line` under `link_base` (a URL that the manifests' paths,
    as given to the CLI, are relative to), and a section longer than `MARKDOWN_OPEN_ROWS`
    rows is collapsed.
    """
    lines = [MARKDOWN_MARKER, "### JetStream plan", "", f"**{summary_line(plan)}**", ""]
    for action, title in ((Action.BLOCKED, "Blocked"), (Action.DELETE, "To delete"),
                          (Action.CREATE, "To create"), (Action.UPDATE, "To update"),
                          (Action.ADOPT, "To adopt (ownership recorded, nothing else changes)"),
                          (Action.REPORT, "Report only (left as they are)")):
        streams = [s for s in plan.streams if s.action is action]
        if not streams:
            continue
        table = ["| | stream | file | details |", "|---|---|---|---|"]
        for s in streams:
            detail = "<br>".join(
                [f"⛔ {md_text(r)}" if s.action is Action.BLOCKED else md_text(r)
                 for r in s.reasons]
                + [md_code(_change_line(c, s.missing)) for c in s.changes]
                + ([f"data loss (allowed): {md_text(describe_impact(s.impact))}"]
                   if s.impact and s.action in _LOSSY else [])
            )
            table.append(f"| {_SYMBOL[s.action]} | {md_code(s.name)} | "
                         f"{_md_where(s.location, link_base)} | {detail} |")
        lines += _md_section(f"{title} ({len(streams)})", table, len(streams))
    degraded = [
        " ".join(filter(None, ("- ⚠️", md_code(d.name), "" if d.managed else "(unmanaged)",
                               _md_where(d.location, link_base))))
        + f": {md_text(str(d))}"
        for d in plan.degraded
    ]
    if degraded:
        lines += _md_section(f"Degraded ({len(degraded)})", degraded, len(degraded))
    undeclared = [f"- {md_text(undeclared_line(u))}" for u in plan.undeclared]
    if undeclared:
        lines += _md_section(f"Undeclared: owned, in no manifest ({len(undeclared)})",
                             undeclared, len(undeclared))
    for names, title in (
        ([s.name for s in plan.streams if s.action is Action.NOOP], "Unchanged"),
        (list(plan.unmanaged), "Unmanaged: on the server, in no manifest, left alone"),
    ):
        if names:
            lines += _md_section(f"{title} ({len(names)})",
                                 [", ".join(md_code(n) for n in names)], len(names))
    return "\n".join(lines)


def connection_lost_line(outcomes: Sequence[Outcome], server: str) -> str | None:
    """One line for the streams an apply could not apply because the connection to `server`
    went away: how many, and which were sent but never answered (they may or may not have
    been applied). None when the connection held."""
    lost = [o for o in outcomes if o.connection_lost]
    if not lost:
        return None
    writes = sum(1 for o in outcomes if o.plan.action in WRITES)
    doubt = [o.name for o in lost if o.in_doubt]
    text = (f"the connection to {server} was lost during the apply: {len(lost)} of {writes} "
            f"streams to write were not applied: {len(lost) - len(doubt)} were not "
            "sent")
    if doubt:
        text += (f", {len(doubt)} were sent but not answered and may or may not have been "
                 f"applied ({', '.join(doubt)})")
    return text + "; run apply again once the server is back"
