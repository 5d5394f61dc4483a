"""What the rest of the server allows: a planned create or update can still be refused
because of other streams (overlapping subjects, cycles of sources) or of the cluster's
size. Judged on canonical configurations as the streams will be once the plan is applied."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from reconciler.model import Action, Config, LiveStream, Plan, StreamPlan, Topology
from reconciler.plan.canonical import canonical
from reconciler.subjects import subjects_collide

_WRITES = (Action.CREATE, Action.UPDATE, Action.ADOPT)


def server_blockers(
    plan: Plan,
    live: Iterable[LiveStream],
    topology: Topology | None = None,
    canonical_live: Mapping[str, Config] | None = None,
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Why the server would refuse a planned create or update, judging by what else is on it:
    subjects that overlap a stream no manifest declares (10065), more replicas than the
    cluster has servers (10074 on a single server, 10005 in a cluster), and sources or a
    mirror that close a cycle (`detected cycle`, 10052). Stream name -> (the field at fault:
    `subjects`, `num_replicas`, `sources` or `mirror`; the reason); only streams with a
    reason are in it. `canonical_live`: the live configs in canonical form by name, when
    the caller has them already."""
    known = canonical_live or {}
    configs: dict[str, Config] = {
        s.name: known[s.name] if s.name in known else canonical(s.config) for s in live
    }
    # a stream to prune is still there while the others are written
    declared = {s.name for s in plan.streams if not s.undeclared}
    undeclared = [(name, c) for name, c in configs.items() if name not in declared]
    for stream in plan.streams:  # as the streams will be once this plan is applied
        if stream.config is not None and stream.action in _WRITES:
            configs[stream.name] = stream.config
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for stream in plan.streams:
        if stream.config is None or stream.action not in (*_WRITES, Action.BLOCKED):
            continue  # nothing to send (in sync, or only reported)
        reasons = [
            *_overlaps(stream.config, undeclared),
            *_replicas(stream, topology),
            *_cycle(stream.config, configs, declared),
        ]
        if reasons:
            out[stream.name] = tuple(reasons)
    return out


def with_server_checks(
    plan: Plan,
    live: Iterable[LiveStream],
    topology: Topology | None = None,
    canonical_live: Mapping[str, Config] | None = None,
) -> Plan:
    """`plan` with every create or update that `server_blockers` finds turned into blocked
    (apply then leaves it alone), the reasons added to those it already had."""
    found = server_blockers(plan, live, topology, canonical_live)
    if not found:
        return plan
    streams = tuple(
        replace(s, action=Action.BLOCKED,
                reasons=(*s.reasons, *(reason for _, reason in found[s.name])))
        if s.name in found else s
        for s in plan.streams
    )
    return replace(plan, streams=streams)


def _overlaps(
    config: Config, undeclared: Sequence[tuple[str, Config]]
) -> list[tuple[str, str]]:
    reasons = []
    for name, other in undeclared:
        theirs = other.get("subjects") or []
        for subject in config.get("subjects") or []:
            hit = next((t for t in theirs if subjects_collide(subject, t)), None)
            if hit is not None:
                reasons.append(("subjects",
                    f"subject '{subject}' overlaps '{hit}' of stream '{name}', which is "
                    "on the server and in no manifest (the server refuses overlapping "
                    f"subjects: 10065); choose subjects that '{name}' does not take, "
                    f"or declare or remove '{name}'"
                ))
                break
    return reasons


def _replicas(stream: StreamPlan, topology: Topology | None) -> list[tuple[str, str]]:
    config = stream.config or {}
    replicas = int(config.get("num_replicas") or 1)
    changed = stream.action is Action.CREATE or any(
        c.path == "num_replicas" for c in stream.changes)
    if topology is None or topology.servers is None or replicas <= 1 or not changed:
        return []
    placement = config.get("placement") or {}
    if placement.get("cluster") and placement["cluster"] != topology.cluster:
        return []  # another cluster of a super-cluster: its size is not known here
    if topology.cluster is None:
        return [("num_replicas", f"num_replicas: {replicas} needs a cluster, and the server "
                 "is a single server (it refuses more than one replica: 10074); write "
                 "num_replicas: 1")]
    if replicas > topology.servers:
        return [("num_replicas", f"num_replicas: {replicas} needs {replicas} servers, and cluster "
                f"'{topology.cluster}' has {topology.servers} (the server finds no peers for "
                f"it: 10005); write num_replicas: {topology.servers} at most")]
    return []


def _cycle(
    config: Config, configs: Mapping[str, Config], declared: set[str]
) -> list[tuple[str, str]]:
    """The server's cycle check (`checkStreamCfg` in stream.go) over the streams as they will
    be: a breadth-first walk of mirrors and sources from `config`; reaching a stream twice
    is a cycle (for a source, only when the subjects of the stream reading it match its
    filter). Names the way it went."""
    # (a stream to visit, the way to it, the field of `config` that the way starts from)
    queue: list[tuple[Config, list[str], str]] = [(config, [config["name"]], "")]
    visited: set[str] = set()
    while queue:
        current, path, start = queue.pop(0)
        visited.add(current["name"])
        origins = [(s, False) for s in current.get("sources") or []]
        if current.get("mirror"):
            origins.append((current["mirror"], True))
        for origin, mirror in origins:
            name = origin.get("name", "")
            field = start or ("mirror" if mirror else "sources")
            if origin.get("external"):
                continue
            if name in visited:
                flt = origin.get("filter_subject") or ""
                subjects = current.get("subjects") or []
                if mirror or not flt or any(subjects_collide(s, flt) for s in subjects):
                    way = " -> ".join([*path, name])
                    others = sorted({n for n in [*path, name] if n not in declared})
                    note = (f" ({', '.join(repr(n) for n in others)} in no manifest)"
                            if others else "")
                    return [(field, f"its mirror and sources would close a cycle: {way}{note} (the "
                            "server refuses it: detected cycle, 10052); remove the source "
                            "that leads back, or give it a filter_subject the subjects of "
                            "the stream reading it do not match")]
            elif name in configs:
                queue.append((configs[name], [*path, name], field))
    return []
