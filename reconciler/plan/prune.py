"""Retiring streams: owned streams that no manifest declares any more.

They are always listed (`Plan.undeclared`), and deleted only when pruning is asked for
(`Prune`), each deletion guarded: the whole set is refused when the manifests cannot be
trusted to be complete (`Prune.refuse`: no manifest at all, a path missing, an invalid
manifest); more deletions than `Prune.max_deletes` block them all; a stream whose messages
may not be deleted (`deny_delete`, which `sealed` forces) is never deleted either, although
the server would delete the whole stream; one that holds
messages needs the data-loss consent; in watch mode a stream must stay undeclared for the
grace period first (`Prune.ripe`). Streams that are not ours are never candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from reconciler.model import Action, Impact, LiveStream, Location, StreamPlan, Undeclared
from reconciler.plan.ownership import manifest_of, owner_of

DELETING = "deleting the stream"
"""The cause of a deletion's impact."""


@dataclass(frozen=True)
class Prune:
    """Pruning is on, with its limits."""

    max_deletes: int = 1
    """At most this many deletions in one pass; more block them all."""
    refuse: str | None = None
    """Why nothing may be deleted in this pass: the manifests cannot be trusted to be whole."""
    ripe: frozenset[str] | None = None
    """Watch mode: only these streams have been undeclared for the whole grace period; the
    others are kept with `hold`. None: no grace period (a CLI run)."""
    hold: str = ""
    """Why a stream not in `ripe` is kept."""


def refusal(*, declared: int, failed: Sequence[str] = ()) -> str | None:
    """Why no deletion may be made when the manifests read declare `declared` streams and
    the paths or files `failed` could not be read or failed validation: the manifests may be
    incomplete (an empty ConfigMap, a half-cloned repository), so what they leave out
    proves nothing. None: pruning may go on."""
    if failed:
        return (f"{', '.join(sorted(set(failed)))}: missing, unreadable or invalid: nothing is "
                "deleted until every manifest path can be read and is valid")
    if not declared:
        return ("no manifest declares any stream: pruning would delete every stream this "
                "reconciler owns, so nothing is deleted (an empty directory or ConfigMap, or a "
                "half-cloned repository, looks like this)")
    return None


def undeclared_streams(
    live: Iterable[LiveStream], declared: Iterable[str], owner: str
) -> tuple[LiveStream, ...]:
    """The live streams `owner` owns that no manifest declares, by name."""
    names = set(declared)
    return tuple(sorted((s for s in live if s.name not in names and owner_of(s.config) == owner),
                        key=lambda s: s.name))


def plan_prune(
    candidates: Iterable[LiveStream], prune: Prune | None, *, allow_data_loss: bool
) -> tuple[tuple[StreamPlan, ...], tuple[Undeclared, ...]]:
    """The deletions (or their refusals) of the undeclared owned streams `candidates`, and
    the ones kept. Without `prune` every one is kept."""
    candidates = tuple(candidates)
    if prune is None:
        return (), tuple(_kept(s) for s in candidates)
    ripe = [s for s in candidates if prune.ripe is None or s.name in prune.ripe]
    kept = tuple(_kept(s, prune.hold) for s in candidates if s not in ripe)
    plans = [plan_delete(s, allow_data_loss=allow_data_loss) for s in ripe]
    if prune.refuse:
        plans = [_refused(p, prune.refuse) for p in plans]
    deletes = sum(1 for p in plans if p.action is Action.DELETE)
    if deletes > prune.max_deletes:
        why = (f"{deletes} streams would be deleted, more than --max-deletes "
               f"{prune.max_deletes} allows: none is deleted; check the list, then pass "
               f"--max-deletes {deletes}")
        plans = [_refused(p, why) if p.action is Action.DELETE else p for p in plans]
    return tuple(plans), kept


def plan_delete(live: LiveStream, *, allow_data_loss: bool) -> StreamPlan:
    """Delete one undeclared owned stream, unless the server would refuse it or it destroys
    messages without consent. The impact is the stream's whole content."""
    manifest = manifest_of(live.config)
    location = Location(manifest) if manifest else None
    impact = (Impact(live.state.messages, live.state.bytes, causes=(DELETING,))
              if live.state.messages > 0 else None)
    reasons: list[str] = []
    if live.config.get("deny_delete") or live.config.get("sealed"):
        why = "sealed" if live.config.get("sealed") else "deny_delete is set"
        reasons.append(f"{why}: its messages may not be deleted, so prune never deletes the "
                       "stream either; delete it by hand if it must go")
    elif impact is not None and not allow_data_loss:
        reasons.append(
            f"deleting it destroys {impact.messages} "
            f"{'message' if impact.messages == 1 else 'messages'} ({impact.bytes} bytes); "
            "pass --allow-data-loss to accept the loss, or declare the stream again to keep it")
    action = Action.BLOCKED if reasons else Action.DELETE
    return StreamPlan(live.name, action, (), None, tuple(reasons), impact, location,
                      basis=live.config, undeclared=True)


def _refused(plan: StreamPlan, why: str) -> StreamPlan:
    if plan.action is Action.BLOCKED:
        return replace(plan, reasons=(why, *plan.reasons))
    return replace(plan, action=Action.BLOCKED, reasons=(why,))


def _kept(live: LiveStream, note: str | None = None) -> Undeclared:
    return Undeclared(live.name, manifest_of(live.config), live.state.messages,
                      live.state.bytes, note)
