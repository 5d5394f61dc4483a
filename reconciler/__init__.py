"""jetstream-reconciler: keep NATS JetStream streams exactly as declared in YAML manifests.

The names below are the library's public API (what `examples/` and `bench/` use); each is
imported on first use, so that `import reconciler` (and the CLI's `validate`) stays light.

    specs = reconciler.load_or_raise(["config/"])
    async with await reconciler.connect(reconciler.ConnectOptions(servers=(url,))) as js:
        plan = await reconciler.compute_plan(js, specs)
        print(reconciler.render_text(plan), end="")

To plan and apply in one pass: `from reconciler.reconcile import reconcile` (the module
`reconciler.reconcile` shares the function's name, so the package cannot export it).

Tests use `reconciler.testing` (real nats-servers, a test client, `FakeJetStream`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_WHERE = {
    "ConnectOptions": "reconciler.model",
    "Plan": "reconciler.model",
    "StreamPlan": "reconciler.model",
    "StreamSpec": "reconciler.model",
    "LiveStream": "reconciler.model",
    "Impact": "reconciler.model",
    "LoadResult": "reconciler.manifest",
    "load_manifests": "reconciler.manifest",
    "load_or_raise": "reconciler.manifest",
    "JetStream": "reconciler.jetstream",
    "connect": "reconciler.jetstream",
    "compute_plan": "reconciler.reconcile",
    "Result": "reconciler.reconcile",
    "render_text": "reconciler.report",
    "render_json": "reconciler.report",
    "render_markdown": "reconciler.report",
    "setup_logging": "reconciler.logs",
}
#: public names whose attribute in their module is spelt differently
_ATTRIBUTE = {"setup_logging": "setup"}

__all__ = [
    "ConnectOptions", "Impact", "JetStream", "LiveStream", "LoadResult", "Plan", "Result",
    "StreamPlan", "StreamSpec", "__version__", "compute_plan", "connect", "load_manifests",
    "load_or_raise", "render_json", "render_markdown", "render_text",
    "setup_logging",
]

if TYPE_CHECKING:
    from reconciler.jetstream import JetStream, connect
    from reconciler.logs import setup as setup_logging
    from reconciler.manifest import LoadResult, load_manifests, load_or_raise
    from reconciler.model import (
        ConnectOptions,
        Impact,
        LiveStream,
        Plan,
        StreamPlan,
        StreamSpec,
    )
    from reconciler.reconcile import Result, compute_plan
    from reconciler.report import render_json, render_markdown, render_text


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), _ATTRIBUTE.get(name, name))
    globals()[name] = value
    return value
