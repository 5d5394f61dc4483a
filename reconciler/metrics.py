"""Prometheus metrics of the watch daemon, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "jetstream_reconciler"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconciles = Counter(
            f"{PREFIX}_reconciles", "Reconcile passes by result (success, blocked, failed).",
            ["result"], registry=r)
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds", "Duration of one reconcile pass.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r)
        self.drift_events = Counter(
            f"{PREFIX}_drift_events", "Drift detected, by stream and where it came from "
            "(manifest: the manifests changed; server: the live stream changed).",
            ["stream", "source"], registry=r)
        self.streams = Gauge(
            f"{PREFIX}_streams", "Declared streams by state after the last reconcile.",
            ["state"], registry=r)
        self.changes_blocked = Counter(
            f"{PREFIX}_changes_blocked", "Changes blocked (data loss not allowed, or a change "
            "the server cannot make), by stream.", ["stream"], registry=r)
        self.conflicts = Gauge(
            f"{PREFIX}_conflicts", "Streams in a conflict with another client (healing paused, "
            "or resumed and watched).", registry=r)
        self.conflicts_detected = Counter(
            f"{PREFIX}_conflicts_detected", "Conflicts started or renewed (healing paused), by "
            "stream.", ["stream"], registry=r)
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time of the last reconcile that succeeded.", registry=r)
        self.connected = Gauge(
            f"{PREFIX}_nats_connected", "1 while connected to NATS, else 0.", registry=r)
        self.manifests_valid = Gauge(
            f"{PREFIX}_manifests_valid", "1 when every manifest passed validation, else 0.",
            registry=r)
        self.leader = Gauge(
            f"{PREFIX}_leader", "1 while this process holds the lease and may write, else 0 "
            "(a standby, or no lease: see --lease).", registry=r)
        self.manifest_problems = Gauge(
            f"{PREFIX}_manifest_problems", "Problems found in the manifests at the last load.",
            registry=r)
        for state in ("in_sync", "drifted", "blocked", "degraded"):
            self.streams.labels(state=state).set(0)
        for result in ("success", "blocked", "failed"):
            self.reconciles.labels(result=result)

    def render(self) -> bytes:
        return generate_latest(self.registry)
