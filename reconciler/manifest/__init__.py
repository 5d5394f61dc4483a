"""Find, parse and validate stream manifests. Pure: reads files, talks to nobody, logs nothing.

A manifest file holds one or more YAML documents (`---`); each non-empty document declares one
stream with the JetStream API's own field names, plus an optional `reconcile:` block:

    name: events
    subjects: ["events.*"]
    max_age: 7d            # durations: 100ms, 90s, 1h30m, 7d, or 0
    max_bytes: 512MiB      # sizes: bytes, KiB/MiB/GiB/TiB, KB/MB/GB/TB, or unlimited
    reconcile:
      allow_data_loss: false
      drift: enforce       # or report
      ignore_fields: [metadata.owner]

NACK `Stream` objects (`nack`) and natscli's JSON in `*.json` files (`natscli`) are read too,
turned into the mapping of a manifest of ours made of their own YAML nodes; `convert` writes
what they load to as YAML manifests.

Every problem in every file is reported in one run, each with `file:line:column`, the field
path, what is wrong and what to write instead. A document with any problem yields no spec.

The data flow, one module each:

    discover   paths -> manifest files (directories walked, special files refused)
    load       files -> bytes (size limits) -> parses, cached per file -> LoadResult
    document   a file's text -> YAML documents (yamlparse) -> immutable Documents, each read
               by a DocumentReader (reader) of its own: values of the field tree (values,
               tree), the rule table (rules, checks, facts), the JSON Schema (schemacheck)
    across     all Documents -> the problems between them (names, subjects, origins)

Field facts the checks use (limits, what a mirror may not set, type hints) are in
`fieldfacts`; names and subjects in `names`.
"""

from __future__ import annotations

from reconciler.manifest.discover import discover, discover_with_problems
from reconciler.manifest.document import SUPPORTED_KINDS
from reconciler.manifest.load import (
    MAX_FILE_BYTES,
    LoadResult,
    load_manifests,
    load_or_raise,
    load_texts,
)
from reconciler.manifest.reader import MAX_NODES
from reconciler.manifest.tree import compile_schema as _compile
from reconciler.manifest.tree import fits as _fits
from reconciler.manifest.tree import manifest_schema as _manifest_schema
from reconciler.manifest.tree import validator as _validator
from reconciler.subjects import subject_is_subset, subjects_collide

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "SUPPORTED_KINDS",
    "LoadResult",
    "discover",
    "discover_with_problems",
    "load_manifests",
    "load_or_raise",
    "load_texts",
    "subject_is_subset",
    "subjects_collide",
]
# the schema's compiled test and validator, for the tests that compare them
_SCHEMA_CHECKS = (_compile, _fits, _manifest_schema, _validator)
