"""Helpers for testing code that uses the reconciler: an in-memory JetStream (`fake`)."""
