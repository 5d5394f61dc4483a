"""jetstream-reconciler: keep NATS JetStream streams exactly as declared in YAML manifests."""

__version__ = "0.1.0"
