"""The plan of a whole pass: every declared stream, the live streams no manifest declares, and
what the rest of the server allows. `prepare_pass` brings every live configuration to
canonical form once; asking what to sample, planning, and the server checks all use it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.model import (
    Config,
    LiveStream,
    MessageSample,
    Plan,
    StreamPlan,
    StreamSpec,
    Topology,
)
from reconciler.plan.canonical import canonical
from reconciler.plan.impact import SampleRequest
from reconciler.plan.ownership import DEFAULT_OWNER
from reconciler.plan.prune import Prune, plan_prune, undeclared_streams
from reconciler.plan.server import server_blockers, with_server_checks
from reconciler.plan.stream import StreamInputs, prepare


@dataclass(frozen=True)
class PassInputs:
    """The declared streams and the live ones, in canonical form once for the whole pass."""

    streams: tuple[StreamInputs, ...]
    live: tuple[LiveStream, ...]
    canonical_live: Mapping[str, Config]
    """Live configurations in canonical form by name (those not in it are made so when
    needed)."""
    owner: str = DEFAULT_OWNER
    planned: Mapping[str, StreamPlan] = field(default_factory=dict)
    """Declared streams whose plan is already made: in sync, from these same inputs (a
    stream in sync is left alone whatever the samples, holds or consent)."""

    def sample_requests(self) -> dict[str, SampleRequest]:
        """Declared stream name -> what to read of its live messages to predict the loss;
        only the streams that need some."""
        planned = self.planned
        requests = ((s.spec.name, s.sample_request()) for s in self.streams
                    if s.spec.name not in planned)
        return {name: request for name, request in requests if request is not None}

    def without(self, names: Collection[str]) -> PassInputs:
        """The pass without the streams `names` (declared or live): e.g. unreadable ones."""
        if not names:
            return self
        return PassInputs(
            tuple(s for s in self.streams if s.spec.name not in names),
            tuple(s for s in self.live if s.name not in names),
            {n: c for n, c in self.canonical_live.items() if n not in names},
            self.owner,
            {n: p for n, p in self.planned.items() if n not in names},
        )

    def build(
        self,
        samples: Mapping[str, MessageSample] | None = None,
        *,
        allow_data_loss: bool = False,
        holds: Mapping[str, str] | None = None,
        prune: Prune | None = None,
    ) -> Plan:
        """See `build_plan`."""
        samples = samples or {}
        holds = holds or {}
        declared = {s.spec.name for s in self.streams}
        planned = self.planned
        streams = tuple(
            planned.get(s.spec.name) or s.plan(
                samples.get(s.spec.name), allow_data_loss=allow_data_loss,
                hold=holds.get(s.spec.name))
            for s in self.streams
        )
        ours = undeclared_streams(self.live, declared, self.owner)
        deletions, kept = plan_prune(ours, prune, allow_data_loss=allow_data_loss)
        unmanaged = tuple(sorted({s.name for s in self.live} - declared - {s.name for s in ours}))
        return Plan(streams + deletions, unmanaged, undeclared=kept)

    def plan(
        self,
        samples: Mapping[str, MessageSample] | None = None,
        *,
        allow_data_loss: bool = False,
        holds: Mapping[str, str] | None = None,
        topology: Topology | None = None,
        prune: Prune | None = None,
    ) -> Plan:
        """The plan (`build`) with what the server would refuse blocked (`with_server_checks`)."""
        built = self.build(samples, allow_data_loss=allow_data_loss, holds=holds, prune=prune)
        return with_server_checks(built, self.live, topology, self.canonical_live)

    def server_blockers(
        self, topology: Topology | None = None
    ) -> dict[str, tuple[tuple[str, str], ...]]:
        """Why the server would refuse the plan's creates and updates (`server_blockers`)."""
        return server_blockers(self.build(), self.live, topology, self.canonical_live)


def prepare_pass(
    specs: Iterable[StreamSpec], live: Iterable[LiveStream], owner: str = DEFAULT_OWNER
) -> PassInputs:
    """`specs` and `live` in canonical form: each live configuration once. `owner` is who
    this reconciler is (`plan.ownership`)."""
    inputs = _declared(specs, live, owner)
    known = inputs.canonical_live
    return PassInputs(inputs.streams, inputs.live, {
        s.name: known[s.name] if s.name in known else canonical(s.config) for s in inputs.live
    }, owner)


def _declared(
    specs: Iterable[StreamSpec], live: Iterable[LiveStream], owner: str = DEFAULT_OWNER
) -> PassInputs:
    """The pass with only the declared streams' live configurations made canonical."""
    live = tuple(live)
    by_name = {s.name: s for s in live}
    streams = tuple(prepare(spec, by_name.get(spec.name), owner) for spec in specs)
    return PassInputs(streams, live, {
        s.spec.name: s.current for s in streams if s.current is not None
    }, owner)


def build_plan(
    specs: Iterable[StreamSpec],
    live: Iterable[LiveStream],
    samples: Mapping[str, MessageSample] | None = None,
    *,
    allow_data_loss: bool = False,
    holds: Mapping[str, str] | None = None,
    owner: str = DEFAULT_OWNER,
    prune: Prune | None = None,
) -> Plan:
    """The plan for every declared stream, plus the live streams no manifest declares:
    those `owner` owns kept or, with `prune`, deleted (`plan.prune`); the others unmanaged.
    `holds` names streams to leave alone for now, with the reason (see `plan_stream`)."""
    return _declared(specs, live, owner).build(samples, allow_data_loss=allow_data_loss,
                                               holds=holds, prune=prune)
