"""Prometheus metrics of the watch daemon, in a registry of its own.

`METRICS` is the one list of them: the registry is built from it, and README.md's metric
table is `markdown_table()` (`tests/test_events.py` checks it; `UPDATE_README=1` rewrites it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "jetstream_reconciler"

_KINDS: dict[str, Any] = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}


@dataclass(frozen=True)
class Label:
    name: str
    values: tuple[str, ...] = ()
    """The values it takes, when they are a closed set (a metric with one such label has
    each of them from the start, at zero)."""


@dataclass(frozen=True)
class Metric:
    attr: str
    """The attribute of `Metrics` that holds it."""
    kind: str
    suffix: str
    help: str
    labels: tuple[Label, ...] = ()

    @property
    def name(self) -> str:
        """The name Prometheus scrapes (a counter gains `_total`)."""
        return f"{PREFIX}_{self.suffix}" + ("_total" if self.kind == "counter" else "")


DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

METRICS: tuple[Metric, ...] = (
    Metric("reconciles", "counter", "reconciles", "Reconcile passes by result.",
           (Label("result", ("success", "blocked", "failed")),)),
    Metric("reconcile_duration", "histogram", "reconcile_duration_seconds",
           "Duration of one reconcile pass."),
    Metric("drift_events", "counter", "drift_events",
           "Drift detected, by stream and where it came from (manifest: the manifests "
           "changed; server: the live stream changed).",
           (Label("stream"), Label("source", ("manifest", "server")))),
    Metric("streams", "gauge", "streams", "Declared streams by state after the last reconcile.",
           (Label("state", ("in_sync", "drifted", "blocked", "degraded")),)),
    Metric("changes_blocked", "counter", "changes_blocked",
           "Changes blocked (data loss not allowed, or a change the server cannot make), "
           "by stream.", (Label("stream"),)),
    Metric("conflicts", "gauge", "conflicts",
           "Streams in a conflict with another client (healing paused, or resumed and "
           "watched)."),
    Metric("conflicts_detected", "counter", "conflicts_detected",
           "Conflicts started or renewed (healing paused), by stream.", (Label("stream"),)),
    Metric("last_success", "gauge", "last_success_timestamp_seconds",
           "Unix time of the last reconcile that succeeded."),
    Metric("connected", "gauge", "nats_connected", "1 while connected to NATS, else 0."),
    Metric("manifests_valid", "gauge", "manifests_valid",
           "1 when every manifest passed validation, else 0."),
    Metric("manifest_problems", "gauge", "manifest_problems",
           "Problems found in the manifests at the last load."),
    Metric("undeclared_streams", "gauge", "undeclared_streams",
           "Streams this reconciler owns that no manifest declares (kept, in their grace "
           "period, or about to be pruned) after the last reconcile."),
    Metric("streams_deleted", "counter", "streams_deleted",
           "Streams deleted by prune, by stream.", (Label("stream"),)),
    Metric("leader", "gauge", "leader",
           "1 while this process holds the lease and may write, else 0 (a standby, or no "
           "lease: see --lease)."),
)


class Metrics:
    reconciles: Counter
    reconcile_duration: Histogram
    drift_events: Counter
    streams: Gauge
    changes_blocked: Counter
    conflicts: Gauge
    conflicts_detected: Counter
    last_success: Gauge
    connected: Gauge
    manifests_valid: Gauge
    manifest_problems: Gauge
    undeclared_streams: Gauge
    streams_deleted: Counter
    leader: Gauge

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for m in METRICS:
            extra = {"buckets": DURATION_BUCKETS} if m.kind == "histogram" else {}
            metric = _KINDS[m.kind](f"{PREFIX}_{m.suffix}", m.help,
                                    [label.name for label in m.labels], registry=self.registry,
                                    **extra)
            if len(m.labels) == 1:
                for value in m.labels[0].values:
                    metric.labels(value)
            setattr(self, m.attr, metric)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def markdown_table() -> str:
    """README.md's metric table: one row per metric, in `METRICS` order."""
    rows = ["| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]
    for m in METRICS:
        labels = ", ".join(
            f"`{label.name}`" + (f": {', '.join(label.values)}" if label.values else "")
            for label in m.labels)
        rows.append(f"| `{m.name}` | {m.kind} | {labels} | {m.help} |")
    return "\n".join(rows) + "\n"
