"""Hundreds of streams: every page of STREAM.LIST, bounded concurrency, progress events."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from reconciler import jetstream
from reconciler.manifest import load_or_raise
from reconciler.model import Action, Status
from reconciler.reconcile import compute_plan, reconcile

COUNT = 300  # more than one page of STREAM.LIST (256)



def write_manifests(root: Path, count: int, max_msgs: int) -> None:
    for f in range(3):
        docs = [
            f"name: s{i}\nsubjects: ['s{i}.>']\nstorage: memory\nmax_msgs: {max_msgs}\n"
            for i in range(f, count, 3)
        ]
        (root / f"streams-{f}.yaml").write_text("---\n".join(docs))


async def test_hundreds_of_streams(tmp_path: Path, js: jetstream.JetStream) -> None:
    write_manifests(tmp_path, COUNT, 10)
    specs = load_or_raise([tmp_path])
    assert len(specs) == COUNT
    with capture_logs() as logs:
        result = await reconcile(js, specs, concurrency=16)
    assert {o.status for o in result.outcomes} == {Status.CREATED}
    progress = [(e["done"], e["total"]) for e in logs if e["event"] == "apply_progress"]
    assert progress == [(100, COUNT), (200, COUNT), (300, COUNT)]
    assert len((await js.list_streams()).streams) == COUNT

    plan = await compute_plan(js, specs)
    assert plan.count(Action.NOOP) == COUNT

    write_manifests(tmp_path, COUNT, 20)
    result = await reconcile(js, load_or_raise([tmp_path]))
    assert result.counts() == {"updated": COUNT}
    plan = await compute_plan(js, load_or_raise([tmp_path]))
    assert plan.count(Action.NOOP) == COUNT and not plan.unmanaged
