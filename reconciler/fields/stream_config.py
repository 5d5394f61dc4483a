"""The stream configuration as `TypedDict`s (every key optional: a manifest names only
what it sets). Generated from the vendored schema by `python -m reconciler.fields.generate`;
do not edit by hand."""

from __future__ import annotations

from typing import TypedDict


class SubjectTransform(TypedDict, total=False):
    src: str
    dest: str


class Placement(TypedDict, total=False):
    cluster: str
    tags: list[str]
    preferred: str


class SourceConsumer(TypedDict, total=False):
    name: str
    deliver_subject: str


class ExternalStream(TypedDict, total=False):
    api: str
    deliver: str


class StreamSource(TypedDict, total=False):
    name: str
    opt_start_seq: int
    opt_start_time: str
    filter_subject: str
    subject_transforms: list[SubjectTransform] | None
    consumer: SourceConsumer
    external: ExternalStream


class RePublish(TypedDict, total=False):
    src: str
    dest: str
    headers_only: bool


class ConsumerLimits(TypedDict, total=False):
    inactive_threshold: int  # nanoseconds
    max_ack_pending: int


class StreamConfig(TypedDict, total=False):
    name: str
    description: str
    subjects: list[str]
    subject_transform: SubjectTransform
    retention: str
    max_consumers: int
    max_msgs: int
    max_msgs_per_subject: int
    max_bytes: int
    max_age: int  # nanoseconds
    max_msg_size: int
    storage: str
    compression: str
    first_seq: int
    num_replicas: int
    no_ack: bool
    discard: str
    duplicate_window: int  # nanoseconds
    placement: Placement
    mirror: StreamSource
    sources: list[StreamSource]
    sealed: bool
    deny_delete: bool
    deny_purge: bool
    allow_rollup_hdrs: bool
    allow_direct: bool
    allow_atomic: bool
    allow_msg_counter: bool
    allow_msg_schedules: bool
    mirror_direct: bool
    republish: RePublish
    discard_new_per_subject: bool
    metadata: dict[str, str]
    consumer_limits: ConsumerLimits
    allow_msg_ttl: bool
    subject_delete_marker_ttl: int  # nanoseconds
    persist_mode: str
    allow_batched: bool
