"""What watch mode keeps from one pass to the next, so that a pass after a change to a few
streams reads, prepares and plans only those (`Known`), and the read of a pass
(`read_listing`): every stream listed, or the last listing with the streams that may have
changed read again. The plan made from it is the one a full read makes
(`tests/test_known.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from reconciler.errors import JetStreamError
from reconciler.jetstream.protocol import JetStreamAPI
from reconciler.model import Action, Config, Listing, LiveStream, Plan, StreamPlan, StreamSpec
from reconciler.plan import PassInputs, StreamInputs, canonical, prepare
from reconciler.plan.ownership import DEFAULT_OWNER, owner_of


class Known:
    """What watch mode keeps from one pass to the next, so that a pass after a change to a
    few streams reads and prepares only those: the live streams as last read, and each
    declared stream's inputs (`plan.prepare`, pure) by the spec and live stream they were
    made from. A stream no trigger names is taken as last read: another client's change is
    announced by an advisory naming the stream (`compute_plan(changed=...)`), every stream
    that was not in sync is read again, and the periodic resync reads everything."""

    #: streams are read one by one when they are at most this many, and at most one in
    #: `SHARE` of all; otherwise listing them all is cheaper
    MAX_READS = 64
    SHARE = 8

    def __init__(self) -> None:
        self.listing: Listing | None = None
        self._inputs: dict[str, StreamInputs] = {}
        self._canonical: dict[str, tuple[LiveStream, Config]] = {}
        self._in_sync: set[str] = set()
        """Declared streams whose live config is the desired one (in canonical form)."""
        self._plans: dict[str, StreamPlan] = {}
        """The last plan of each stream in sync (to leave it alone), by name."""

    def forget(self) -> None:
        """The next pass lists everything (the connection or the leader changed)."""
        self.listing = None

    def stale(self, specs: Sequence[StreamSpec], changed: Collection[str]) -> set[str]:
        """The streams to read again: those named, those whose manifest changed, and those
        that were not in sync (their messages, state and config matter to the plan)."""
        names = set(changed)
        for spec in specs:
            last = self._inputs.get(spec.name)
            if last is None or last.spec is not spec or spec.name not in self._in_sync:
                names.add(spec.name)
        return names

    async def read(self, js: JetStreamAPI, names: Collection[str],
                   gate: asyncio.Semaphore) -> Listing | None:
        """The last listing with `names` read again (STREAM.INFO each); None when one of
        the reads failed (then everything is listed)."""
        assert self.listing is not None

        async def info(name: str) -> LiveStream | None:
            async with gate:
                return await js.stream_info(name)

        try:
            found = await asyncio.gather(*(info(n) for n in names))
        except asyncio.CancelledError:
            raise
        except JetStreamError:
            return None
        fresh = dict(zip(names, found, strict=True))
        streams = [fresh.pop(s.name) if s.name in fresh else s for s in self.listing.streams]
        streams.extend(fresh.values())
        unreadable = {n: r for n, r in self.listing.unreadable.items() if n not in names}
        return Listing(tuple(s for s in streams if s is not None), unreadable)

    def prepare(self, specs: Sequence[StreamSpec], live: Sequence[LiveStream],
                owner: str = DEFAULT_OWNER, *, targeted: bool = False) -> PassInputs:
        """`plan.prepare_pass`, reusing what was prepared from the same spec and live stream.
        `targeted` (a pass that read again only the streams that may have changed): a
        stream still in sync from the same inputs keeps its last plan, so that such a pass
        plans only the streams it read again; a full pass plans every stream."""
        by_name = {s.name: s for s in live}
        inputs: dict[str, StreamInputs] = {}
        in_sync: set[str] = set()
        planned: dict[str, StreamPlan] = {}
        for spec in specs:
            current = by_name.get(spec.name)
            last = self._inputs.get(spec.name)
            # in sync on the same config as read before: the same plan (its state, which
            # only a change's impact needs, may differ)
            reuse = last is not None and last.spec is spec and last.owner == owner and (
                last.live is current or (
                    last.live is not None and current is not None
                    and spec.name in self._in_sync and last.live.config == current.config))
            if last is not None and reuse:
                inputs[spec.name] = last
                if spec.name in self._in_sync:
                    in_sync.add(spec.name)
                    if targeted and (plan := self._plans.get(spec.name)) is not None:
                        planned[spec.name] = plan
            else:
                inputs[spec.name] = made = prepare(spec, current, owner)
                if _in_sync(made):  # (in sync, `prepare` keeps one copy of the config)
                    in_sync.add(spec.name)
        canonical_live: dict[str, Config] = {}
        others: dict[str, tuple[LiveStream, Config]] = {}
        for stream in live:
            declared = inputs.get(stream.name)
            if declared is not None and declared.current is not None:
                canonical_live[stream.name] = declared.current
                continue
            known = self._canonical.get(stream.name)
            same = known is not None and (known[0] is stream
                                          or known[0].config == stream.config)
            config = known[1] if known is not None and same else canonical(stream.config)
            canonical_live[stream.name] = config
            others[stream.name] = (stream, config)
        self._inputs, self._canonical, self._in_sync = inputs, others, in_sync
        self._plans = planned
        return PassInputs(tuple(inputs[s.name] for s in specs), tuple(live), canonical_live,
                          owner, planned)

    def planned(self, plan: Plan) -> Plan:
        """`plan`, having kept the plan of each stream in sync (left alone) for the next
        targeted pass."""
        in_sync = self._in_sync
        plans = self._plans
        for stream in plan.streams:
            if stream.action is Action.NOOP and stream.name in in_sync:
                plans.setdefault(stream.name, stream)
        return plan


def _in_sync(inputs: StreamInputs) -> bool:
    """The live stream is as declared and ours: its plan is to leave it alone."""
    return (inputs.live is not None and inputs.current is not None
            and inputs.desired == inputs.current
            and owner_of(inputs.live.config) == inputs.owner)


async def read_listing(js: JetStreamAPI, specs: Sequence[StreamSpec], known: Known | None,
                       changed: Collection[str] | None, gate: asyncio.Semaphore,
                       listing: Listing | None = None) -> Listing:
    """Every stream on the server: `listing` when the caller has just listed them, else
    listed, or the last listing with the streams that may have changed read again (see
    `Known`)."""
    if listing is None and known is not None and known.listing is not None \
            and changed is not None:
        names = known.stale(specs, changed)
        listing = known.listing
        if len(names) > min(Known.MAX_READS, len(listing.streams) // Known.SHARE):
            listing = None
        elif names:
            listing = await known.read(js, names, gate)
    if listing is None:
        listing = await js.list_streams()
    if known is not None:
        known.listing = listing
    return listing
