"""What a pass leaves behind for /readyz and /metrics: the last result, the connection, the
fights going on."""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog

from reconciler.conflicts import Conflicts
from reconciler.metrics import Metrics
from reconciler.model import Action, Degraded, Problem, Status
from reconciler.reconcile import Result
from reconciler.units import count_of

log: structlog.typing.FilteringBoundLogger = structlog.get_logger("reconciler.daemon")


class Health:
    """The daemon's state as /readyz tells it, kept in step with the metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.connected = False
        self.last_ok: bool | None = None
        """None until a pass has finished; then whether the last one did not fail."""
        self.degraded: tuple[Degraded, ...] = ()

    @property
    def clean(self) -> bool:
        """The last pass neither failed nor left a declared stream unread."""
        return bool(self.last_ok) and not self.degraded

    def set_connected(self, up: bool) -> None:
        self.connected = up
        self.metrics.connected.set(1 if up else 0)

    def reasons(self, problems: tuple[Problem, ...], others: Iterable[str]) -> list[str]:
        """Why this process is not ready (none: it is); `others` are added at the end."""
        reasons = []
        if not self.connected:
            reasons.append("not connected to NATS")
        if problems:
            reasons.append(f"{count_of(len(problems), 'manifest problem')} (first: {problems[0]})")
        if self.last_ok is None:
            reasons.append("no reconcile has finished yet")
        elif not self.last_ok:
            reasons.append("the last reconcile failed")
        if self.degraded:
            reasons.append("degraded: " + "; ".join(str(d) for d in self.degraded))
        reasons.extend(others)
        return reasons

    def record(self, result: Result | None) -> None:
        """A pass finished with `result` (None: it failed before it had one)."""
        m = self.metrics
        if result is None:
            self.last_ok = False
            self.degraded = ()
            m.reconciles.labels(result="failed").inc()
            return
        self.degraded = result.degraded
        for drift in result.drifts:
            m.drift_events.labels(stream=drift.stream, source=drift.source or "server").inc()
        for outcome in result.outcomes:
            if outcome.status is Status.BLOCKED:
                m.changes_blocked.labels(stream=outcome.name).inc()
            elif outcome.status is Status.DELETED:
                m.streams_deleted.labels(stream=outcome.name).inc()
        for state, count in _states(result).items():
            m.streams.labels(state=state).set(count)
        self.last_ok = not result.failed
        if result.failed or result.degraded:
            m.reconciles.labels(result="failed").inc()
        elif result.blocked:
            m.reconciles.labels(result="blocked").inc()
        else:
            m.reconciles.labels(result="success").inc()
        if not result.failed and not result.degraded:
            m.last_success.set(time.time())


def _states(result: Result) -> dict[str, int]:
    """Declared streams by state after the pass (the `streams` gauge)."""
    states = {"in_sync": 0, "drifted": 0, "blocked": 0, "degraded": len(result.degraded)}
    if not result.outcomes:  # a standby plans only
        for stream in (s for s in result.plan.streams if not s.undeclared):
            states[{Action.NOOP: "in_sync", Action.BLOCKED: "blocked"}.get(
                stream.action, "drifted")] += 1
    for outcome in (o for o in result.outcomes if not o.plan.undeclared):
        if outcome.status is Status.BLOCKED:
            states["blocked"] += 1
        elif outcome.status in (Status.REPORTED, Status.FAILED):
            states["drifted"] += 1
        else:
            states["in_sync"] += 1
    return states


def track_conflicts(conflicts: Conflicts, metrics: Metrics, result: Result | None) -> list[float]:
    """Count each outside change we put back; a fight pauses healing of its stream (the plan
    then only reports it). The pauses that started or were renewed: a pass is due when each
    ends."""
    pauses = []
    if result is not None:
        outside = {d.stream: d for d in result.drifts if d.source == "server"}
        fought = {c.stream for c in conflicts.active()}
        for outcome in result.outcomes:
            drift = outside.get(outcome.name)
            if outcome.status not in (Status.CREATED, Status.UPDATED) or (
                drift is None and outcome.name not in fought
            ):
                continue
            # the heal that ends a pause puts back a drift already logged during it
            conflict = conflicts.healed(
                outcome.name, drift.actor if drift else None, drift.fields if drift else ())
            if conflict is not None:
                log.warning("conflict_detected", stream=conflict.stream,
                            fields=list(conflict.fields), actor=conflict.actor,
                            count=conflict.count, paused_s=round(conflict.pause_s, 1))
                metrics.conflicts_detected.labels(stream=conflict.stream).inc()
                pauses.append(conflict.pause_s)
    metrics.conflicts.set(len(conflicts.active()))
    return pauses
