"""How the commands run: the event loop, the connection, and reading the manifests while the
server lists its streams. (asyncio and the NATS client are imported on first use: `validate`
without --live needs neither.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import click

from reconciler.errors import ManifestError
from reconciler.manifest import load_manifests
from reconciler.model import Listing, Problem, StreamSpec
from reconciler.settings import Settings

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end.

    The result is handed back outside the task: on its way out, Python 3.11's asyncio.run
    formats the repr of its main task, result included (`signal.getsignal` describing the
    SIGINT handler), which for a plan of 10,000 streams took 0.2 s."""
    import asyncio

    result: list[T] = []

    async def run() -> None:
        result.append(await main)

    asyncio.run(run())
    return result[0]


async def with_server(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Connect, run `work(js)`, disconnect."""
    from reconciler import jetstream

    async with await jetstream.connect(settings.connect) as js:
        return await work(js)


def load_specs(settings: Settings) -> list[StreamSpec]:
    """The declared streams; ManifestError when any manifest has a problem."""
    result = load_manifests(settings.paths, keep=False)
    if result.problems:
        raise ManifestError(result.problems)
    warn(result.warnings)
    return list(result.specs)


async def load_and_list(
    settings: Settings, work: Callable[[Any, list[StreamSpec], Listing], Awaitable[T]]
) -> T:
    """Read the manifests while connecting and listing every stream (the server's work and
    ours overlap), then run `work(js, specs, listing)`. A manifest problem is reported as
    when no server is contacted: it wins over a connection error, and nothing is written."""
    import asyncio

    from reconciler import jetstream

    async def connect() -> tuple[Any, Listing]:
        js = await jetstream.connect(settings.connect)
        try:
            return js, await js.list_streams()
        except BaseException:
            await js.close()
            raise

    server = asyncio.ensure_future(connect())
    try:
        specs = await asyncio.to_thread(load_specs, settings)
    except BaseException:
        server.cancel()
        done = (await asyncio.gather(server, return_exceptions=True))[0]
        if isinstance(done, tuple):
            await done[0].close()
        raise
    js, listing = await server
    async with js:
        return await work(js, specs, listing)


def warn(warnings: Sequence[Problem]) -> None:
    """What the manifests say that is not followed here (they still load), on stderr."""
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
