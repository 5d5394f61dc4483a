"""Our own values: frozen dataclasses that every layer shares. Nothing here does I/O.

Units on the wire, and so everywhere inside the package:
durations are integer nanoseconds, sizes are integer bytes, `-1` means unlimited.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: The JetStream key-value bucket where reconcilers keep their leases (one key per lease
#: name), and the stream that holds it. Never planned, never written by a plan.
LEASE_BUCKET = "jetstream_reconciler"
LEASE_STREAM = f"KV_{LEASE_BUCKET}"

#: A stream configuration as the JetStream API's JSON (`$JS.API.STREAM.CREATE` body), as a dict.
Config = Mapping[str, Any]


@dataclass(frozen=True, order=True, slots=True)
class Location:
    """A place in a manifest file; line and column count from 1."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class Places(Mapping[str, Location]):
    """Where each field of a document in `file` is written, by dotted path: a `Location`
    made when asked for. Each place comes packed as one number, `line << 32 | column`
    (`pack`), and is kept in one machine word: 10,000 loaded streams held 6 MB of Location
    objects and 2.7 MB of dicts of them (tracemalloc), now 5.7 MB less RSS in all."""

    __slots__ = ("_at", "_paths", "file")

    def __init__(self, file: str, packed: Mapping[str, int]) -> None:
        self.file = file
        self._paths = tuple(packed)
        self._at = array("Q", packed.values())

    @staticmethod
    def pack(line: int, column: int) -> int:
        return line << 32 | column

    @staticmethod
    def unpack(file: str, at: int) -> Location:
        return Location(file, at >> 32, at & 0xFFFFFFFF)

    def __getitem__(self, path: str) -> Location:
        try:
            return Places.unpack(self.file, self._at[self._paths.index(path)])
        except ValueError:
            raise KeyError(path) from None

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, said so that a person can fix it."""

    location: Location
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: {self.path}: " if self.path else f"{self.location}: "
        text = f"{where}{self.message}"
        return f"{text}; {self.hint}" if self.hint else text


class DriftMode(StrEnum):
    ENFORCE = "enforce"
    """Heal drift: put the server back to the manifest."""
    REPORT = "report"
    """Log and count drift, change nothing."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The `reconcile:` block of a stream manifest. Never sent to the server."""

    allow_data_loss: bool = False
    drift: DriftMode = DriftMode.ENFORCE
    ignore_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream as a manifest declares it.

    `config` holds only the fields the manifest names, already in wire units (ns, bytes);
    a field left out means the server's default.
    """

    name: str
    config: Config
    policy: Policy = Policy()
    location: Location = Location("<memory>")
    #: where each field path (dotted, e.g. `max_age`, `sources.0.name`) was written
    field_locations: Mapping[str, Location] = field(default_factory=dict, compare=False)

    def where(self, path: str) -> Location:
        """The location of `path` or of its nearest written parent, else the document."""
        while path:
            if path in self.field_locations:
                return self.field_locations[path]
            path = path.rpartition(".")[0]
        return self.location


@dataclass(frozen=True, slots=True)
class StreamState:
    """The part of `StreamInfo.state` that decides what a change does to data."""

    messages: int = 0
    bytes: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_ts_ns: int = 0
    """Timestamp of the oldest stored message, nanoseconds since the epoch; 0 when empty."""
    consumer_count: int = 0
    num_subjects: int = 0
    num_deleted: int = 0


@dataclass(frozen=True, slots=True)
class LiveStream:
    """A stream as the server reports it."""

    name: str
    config: Config
    state: StreamState = StreamState()


@dataclass(frozen=True)
class Listing:
    """Every stream on the server: those it could describe, and those it could not.

    In a cluster a stream whose leader does not answer (its only node is down, say) is known
    by name only; `unreadable` maps each such name to the reason, and nothing about its
    configuration or messages can be trusted until it answers again.
    """

    streams: tuple[LiveStream, ...] = ()
    unreadable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    """How many servers could hold a stream's replicas, as the connected server tells it."""

    cluster: str | None = None
    """The cluster's name; None for a server that is not in a cluster."""
    servers: int | None = 1
    """Servers in that cluster (each could hold one replica); None when the server does not
    say (it advertises no client URLs)."""


@dataclass(frozen=True)
class ServerIdentity:
    """The server a connection is on, as its INFO names it (the header of an export)."""

    url: str
    """Without credentials."""
    name: str
    version: str


@dataclass(frozen=True)
class Degraded:
    """A stream the server could not describe: left out of the plan, left as it is."""

    name: str
    reason: str
    managed: bool
    """Declared by a manifest (so the reconciler could not do its job for it)."""
    location: Location | None = None

    def __str__(self) -> str:
        return f"could not read stream {self.name}: {self.reason}"


@dataclass(frozen=True)
class StoredMessage:
    """A stored message as the impact probe sees it: enough to know its stored size and age."""

    seq: int
    subject: str
    time_ns: int
    payload_len: int
    headers_len: int = 0
    marker: bool = False
    """A subject delete marker (its headers name a `Nats-Marker-Reason`)."""


@dataclass(frozen=True)
class MessageSample:
    """Messages of a stream read oldest first, for predicting what a change discards.

    `messages` is every stored message from the first on, in sequence order, unless
    `complete` is false: then the probe stopped at its read budget and only a prefix is here.
    `subject_counts` is filled when a per-subject limit is lowered.
    """

    messages: tuple[StoredMessage, ...] = ()
    complete: bool = True
    subject_counts: Mapping[str, int] | None = None
    now_ns: int = 0
    """The server-side notion of now the sample was read at (for max_age)."""


class Action(StrEnum):
    """What the plan decided for one stream; `apply` only carries it out."""

    CREATE = "create"
    UPDATE = "update"
    NOOP = "noop"
    """Live equals desired: nothing to do."""
    BLOCKED = "blocked"
    """A write is needed but refused: the server cannot make it, or it loses data not agreed to."""
    REPORT = "report"
    """The stream differs (or is missing) but is left as it is and the difference only logged:
    its policy is `drift: report`, or watch mode paused healing it (a conflict)."""
    ADOPT = "adopt"
    """The stream matches its manifest but is not ours yet: record ownership in its metadata
    (nothing else changes)."""
    DELETE = "delete"
    """An owned stream that no manifest declares any more: delete it (prune, opt-in only)."""


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs: `path` is dotted (`max_age`, `metadata.owner`)."""

    path: str
    live: Any
    desired: Any


@dataclass(frozen=True)
class Impact:
    """Stored messages a change removes, now or at the server's next restart.

    There is no zero impact: a change that removes nothing has none (None). `messages` and
    `bytes` count the removed messages and the bytes they take in the stream's accounting;
    the delete markers the server may write in their place are not counted.
    """

    messages: int
    bytes: int
    exact: bool = True
    """False when the figures are a lower bound: the stream was too large to read whole, or
    what goes depends on consumers' acknowledgements (then the figures may be 0)."""
    causes: tuple[str, ...] = ()
    """The fields whose change removes messages (e.g. `max_bytes`, `retention`)."""

    def __post_init__(self) -> None:
        if self.exact and self.messages <= 0:
            raise ValueError("an exact impact removes at least one message; use None")


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """What the reconciler will do to one stream, and why."""

    name: str
    action: Action
    changes: tuple[FieldChange, ...] = ()
    config: Config | None = None
    """The whole configuration to send on create/update (an update replaces the config)."""
    reasons: tuple[str, ...] = ()
    """Why the stream is blocked or only reported, one sentence each."""
    impact: Impact | None = None
    location: Location | None = None
    missing: bool = False
    """The stream is not on the server (`changes` then list what the manifest sets)."""
    basis: Config | None = field(default=None, compare=False, repr=False)
    """The live configuration (as read) this plan was made against; None when missing."""
    adopt: bool = False
    """This update also records ownership: the stream was not ours until now."""
    undeclared: bool = False
    """No manifest declares the stream: a deletion that pruning plans (or refuses)."""


@dataclass(frozen=True)
class Undeclared:
    """A stream this reconciler owns that no manifest declares any more, left as it is (not
    pruned): where it was last declared, and what deleting it would destroy."""

    name: str
    manifest: str | None
    """The manifest file recorded in the stream's metadata when it was last written."""
    messages: int = 0
    bytes: int = 0
    note: str | None = None
    """Why it is kept although pruning is on (watch mode's grace period)."""


#: the actions that write to the server
WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.ADOPT, Action.DELETE})
#: the writes that change a stream: all but adoption, which only records ownership
CHANGES = WRITES - {Action.ADOPT}


@dataclass(frozen=True)
class Plan:
    streams: tuple[StreamPlan, ...] = ()
    unmanaged: tuple[str, ...] = ()
    """Streams on the server that no manifest declares and this reconciler does not own:
    listed, never touched."""
    degraded: tuple[Degraded, ...] = ()
    """Streams the server could not describe: reported, not planned, never touched."""
    undeclared: tuple[Undeclared, ...] = ()
    """Owned streams that no manifest declares, kept (pruning is off, or their grace period
    runs); those to prune are in `streams` as `Action.DELETE` (or blocked)."""

    def count(self, action: Action) -> int:
        return sum(1 for s in self.streams if s.action is action)

    @property
    def pending(self) -> bool:
        """A stream is to be created, updated or deleted (adoption changes no stream)."""
        return any(s.action in CHANGES for s in self.streams)

    @property
    def writes(self) -> bool:
        """Apply has something to write, adoptions included."""
        return any(s.action in WRITES for s in self.streams)

    @property
    def blocked(self) -> bool:
        return any(s.action is Action.BLOCKED for s in self.streams)


class Status(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    BLOCKED = "blocked"
    """Refused by policy (data loss not allowed) or impossible for the server."""
    REPORTED = "reported"
    """Drift left in place, as the plan decided (`Action.REPORT`)."""
    ADOPTED = "adopted"
    """Ownership recorded (`Action.ADOPT`)."""
    DELETED = "deleted"
    """Deleted by prune (`Action.DELETE`)."""
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """The result of applying one stream's plan."""

    plan: StreamPlan
    status: Status
    error: str | None = None
    err_code: int | None = None
    connection_lost: bool = False
    """FAILED because the connection to the server went away during the apply."""
    in_doubt: bool = False
    """FAILED with its request sent and never answered (the connection was lost, or no
    answer came in time): the change may or may not have been made. Otherwise a FAILED
    stream was left as it was."""

    @property
    def name(self) -> str:
        return self.plan.name


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach and authenticate to NATS. Secrets never appear in repr()."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    creds: str | None = None
    nkey: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    name: str = "jetstream-reconciler"
    """Client name; the server reports it in API advisories, which is how our own changes are
    told apart from everyone else's. The CLI names each process (`client_name()`)."""
    js_domain: str | None = None
    """The JetStream domain to manage (a leaf node's, say): every API request goes to
    `$JS.<domain>.API`. Exclusive with `api_prefix`."""
    api_prefix: str | None = None
    """The subject prefix under which the JetStream API is reached (imported from another
    account), instead of `$JS.API`."""
    connect_timeout: float = 2.0
    request_timeout: float = 5.0
    ping_interval: float = 1.0
    """Seconds between pings; a server that leaves `max_outstanding_pings` of them
    unanswered is taken for dead (a frozen server is noticed within about 4 s)."""
    max_outstanding_pings: int = 3

    @property
    def api(self) -> str:
        """The subject prefix of every JetStream API request."""
        if self.js_domain:
            return f"$JS.{self.js_domain}.API"
        return self.api_prefix or "$JS.API"


@dataclass(frozen=True)
class Advisory:
    """A JetStream advisory that says a stream's configuration may have changed.

    `kind` is "created", "updated" or "deleted" for `$JS.EVENT.ADVISORY.STREAM.*` (whose payload
    names no client, so `actor` is None and `own` False), or "api" for a stream create, update
    or delete request seen on `$JS.EVENT.ADVISORY.API`, which names the client that made it.
    """

    kind: str
    stream: str | None
    actor: str | None
    """The client's connection name, else its user; None when the advisory names no client."""
    own: bool
    """Made by this connection (same client id and name)."""
    subject: str
    """For "api": the request subject (`$JS.API.STREAM.UPDATE.events`); else the advisory's."""
    time_ns: int
    """The advisory's timestamp, nanoseconds since the epoch."""
    client_id: int | None = None
    """The server's id for the client connection (`cid`), when the advisory names one."""
    user: str | None = None
    config: Config | None = None
    """For "api" create and update: the whole configuration the client sent (an update
    replaces the configuration), which tells exactly what the change set."""


@dataclass(frozen=True)
class KvEntry:
    """The latest value of one key of a key-value bucket."""

    key: str
    revision: int
    """The bucket stream's sequence of this value: it changes on every write, on any host."""
    value: bytes
