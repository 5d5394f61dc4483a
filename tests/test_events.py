"""The event catalogue (`reconciler/events.py`) is the truth about what the product logs:
every logging call in `reconciler/` names a declared event, at its level, with declared keys,
and README.md's event and metric tables are the catalogue and `reconciler/metrics.py`.

`UPDATE_README=1 pytest tests/test_events.py` rewrites the two README tables."""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler import events, metrics
from reconciler.events import BY_NAME, EVENTS
from reconciler.model import FieldChange, Impact

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reconciler"
README = ROOT / "README.md"

#: logger methods that log an event (the event name is their first argument)
_METHODS = {"debug": "debug", "info": "info", "msg": "info", "warning": "warning",
            "warn": "warning", "error": "error", "err": "error", "exception": "error",
            "critical": "critical", "fatal": "critical"}
METHODS = {**_METHODS, **{f"a{m}": level for m, level in _METHODS.items()}}
#: keys structlog itself reads
META = {"exc_info", "stack_info"}


@dataclass(frozen=True)
class Site:
    where: str
    event: str | None
    """None: not a literal."""
    level: str | None
    """None: chosen at run time (`log.log(level, ...)`)."""
    keys: frozenset[str]
    splat: bool


def logging_calls(tree: ast.AST, where: str) -> list[Site]:
    """Every call `<x>.info("event", key=...)` (and the other levels, and `<x>.log(level,
    "event", ...)`) in a module. (`task.exception()`, with no argument, is no event.)"""
    sites = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        if method in METHODS and (node.args or node.keywords):
            level: str | None = METHODS[method]
            args = node.args
        elif method in ("log", "alog") and len(node.args) >= 2:
            level, args = None, node.args[1:]
        else:
            continue
        name = args[0].value if args and isinstance(args[0], ast.Constant) else None
        keys = frozenset(k.arg for k in node.keywords if k.arg is not None) - META
        sites.append(Site(f"{where}:{node.lineno}", name if isinstance(name, str) else None,
                          level, keys, any(k.arg is None for k in node.keywords)))
    return sites


def bound_keys(tree: ast.AST) -> set[str]:
    return {k.arg for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "bind" for k in node.keywords if k.arg is not None}


def scan(package: Path) -> tuple[list[Site], set[str]]:
    sites: list[Site] = []
    bound: set[str] = set()
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        sites += logging_calls(tree, str(path.relative_to(package.parent)))
        bound |= bound_keys(tree)
    return sites, bound


def problems(sites: list[Site], bound: set[str]) -> list[str]:
    """What the code logs that the catalogue does not declare, and the reverse."""
    found = []
    used: dict[str, set[str]] = {}
    for site in sites:
        event = BY_NAME.get(site.event or "")
        if event is None:
            found.append(f"{site.where}: event {site.event!r} is not in reconciler/events.py"
                         if site.event else f"{site.where}: the event name is not a literal")
            continue
        if site.level is not None and site.level != event.level:
            found.append(f"{site.where}: {event.name} logged at {site.level}, declared "
                         f"{event.level}")
        if site.splat:
            found.append(f"{site.where}: {event.name}: keys passed with ** cannot be checked")
        if extra := site.keys - event.key_names:
            found.append(f"{site.where}: {event.name}: keys {sorted(extra)} not declared")
        used.setdefault(event.name, set()).update(site.keys)
    for event in EVENTS:
        if event.name not in used:
            found.append(f"{event.name}: declared, never logged")
            continue
        passed = {k.name for k in event.keys if not k.bound}
        if missing := passed - used[event.name]:
            found.append(f"{event.name}: keys {sorted(missing)} declared, never logged")
        if unbound := {k.name for k in event.keys if k.bound} - bound - used[event.name]:
            found.append(f"{event.name}: keys {sorted(unbound)} declared bound, never bound")
    return found


def test_every_event_logged_is_declared_with_its_keys() -> None:
    sites, bound = scan(PACKAGE)
    assert len(sites) >= len(EVENTS)
    assert problems(sites, bound) == []


VIOLATIONS = {
    'log.info("stream_created", config={}, changes=[], typo=1)':
        "stream_created: keys ['typo'] not declared",
    'log.info("stream_creatd")': "event 'stream_creatd' is not in reconciler/events.py",
    'log.error("nats_connected", servers=[])': "nats_connected logged at error, declared info",
    "log.info(name)": "the event name is not a literal",
    'log.info("nats_connected", **kw)': "nats_connected: keys passed with ** cannot be checked",
    'log.log(level, "nats_connected", servers=[], x=1)': "nats_connected: keys ['x']",
    'await log.awarn("nats_connected", servers=[])':
        "nats_connected logged at warning, declared info",
}


@pytest.mark.parametrize("line", VIOLATIONS)
def test_the_scan_finds_an_undeclared_event_or_key(line: str) -> None:
    sites, bound = scan(PACKAGE)
    extra = logging_calls(ast.parse(line), "new.py")
    assert any(VIOLATIONS[line] in p for p in problems(sites + extra, bound))


def test_the_scan_finds_a_declared_key_never_logged() -> None:
    sites, bound = scan(PACKAGE)
    without = [s for s in sites if s.event != "watch_stopped"]
    without.append(Site("x.py:1", "watch_stopped", "info", frozenset({"passes"}), False))
    assert problems(without, bound) == ["watch_stopped: keys ['exit_code'] declared, "
                                        "never logged"]


# --- one shape for a field change and for an impact -------------------------------------------

def test_a_change_and_an_impact_have_one_shape() -> None:
    assert events.change_document(FieldChange("max_age", 0, 10**9)) == {
        "field": "max_age", "live": 0, "desired": 10**9}
    assert events.impact_document(None) is None
    assert events.impact_document(Impact(3, 99, True, ("max_msgs",))) == {
        "messages": 3, "bytes": 99, "exact": True, "causes": ["max_msgs"],
        "summary": "max_msgs would discard 3 messages (99 bytes)"}


def test_no_other_module_writes_a_change_or_an_impact_by_hand() -> None:
    """`{"field": ..., "live": ..., "desired": ...}` and an impact's keys are written in
    `events.py` only: every event and the plan JSON go through it."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "events.py":
            continue
        text = path.read_text()
        assert not re.search(r'"live":|"desired":|"exact":', text), path


# --- the README tables --------------------------------------------------------------------------

def readme_table(text: str, header: str) -> tuple[int, int]:
    """The first and last+1 line index of the Markdown table that starts with `header`."""
    lines = text.splitlines()
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return start, end


@pytest.mark.parametrize(("header", "table"), [
    ("| event | level | keys | when |", events.markdown_table),
    ("| metric | type | labels | meaning |", metrics.markdown_table),
])
def test_the_readme_tables_are_the_catalogue(header: str, table: object) -> None:
    assert callable(table)
    text = README.read_text()
    start, end = readme_table(text, header)
    lines = text.splitlines()
    if os.environ.get("UPDATE_README"):
        lines[start:end] = table().splitlines()
        README.write_text("\n".join(lines) + "\n")
        start, end = readme_table(README.read_text(), header)
        lines = README.read_text().splitlines()
    assert "\n".join(lines[start:end]) + "\n" == table()


def test_the_registry_serves_every_metric_of_the_table() -> None:
    served = metrics.Metrics().render().decode()
    for m in metrics.METRICS:
        assert f"# TYPE {m.name} {m.kind}" in served, m.name
        for label in m.labels:
            if len(m.labels) == 1:
                for value in label.values:
                    assert f'{m.name}{{{label.name}="{value}"}}' in served
