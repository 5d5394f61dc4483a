"""JetStream domains and API prefixes, against real servers: a hub and a leaf node with a
JetStream domain of its own, each a nats-server started from a config file written here.
The reconciler connects to the hub and manages the leaf's streams through `--js-domain`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler import testing
from reconciler.cli import main
from reconciler.errors import JetStreamError, SettingsError
from reconciler.model import Advisory, ConnectOptions
from reconciler.settings import connect_options
from reconciler.testing import NatsServer, TestClient, free_port

MANIFEST = """\
name: orders
subjects: ["orders.>"]
max_msgs: 100
"""


@dataclass
class HubAndLeaf:
    hub: NatsServer
    leaf: NatsServer


def _server(base: Path, name: str, config: str) -> NatsServer:
    base.mkdir(parents=True, exist_ok=True)
    conf = base / f"{name}.conf"
    conf.write_text(config)
    return NatsServer(base / name, extra_args=("-c", str(conf), "--server_name", name))


async def _until_reachable(url: str, domain: str, timeout: float = 30.0) -> None:
    """Until the hub reaches the leaf's JetStream (the leaf node connection is up)."""
    deadline = time.monotonic() + timeout
    async with await testing.connect(ConnectOptions(servers=(url,), js_domain=domain,
                                                    request_timeout=1.0)) as client:
        while True:
            try:
                await client.list_streams()
                return
            except JetStreamError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


@pytest.fixture
def hub_and_leaf(tmp_path: Path) -> Iterator[HubAndLeaf]:
    leaf_port = free_port()
    hub = _server(tmp_path, "hub", f"leafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n"
                                   "jetstream { domain: hub }\n")
    leaf = _server(tmp_path, "leaf",
                   f"leafnodes {{ remotes: [ {{ url: \"nats://127.0.0.1:{leaf_port}\" }} ] }}\n"
                   "jetstream { domain: leaf }\n")
    hub.start()
    try:
        leaf.start()
        try:
            asyncio.run(_until_reachable(hub.url, "leaf"))
            yield HubAndLeaf(hub, leaf)
        finally:
            leaf.stop()
    finally:
        hub.stop()


async def _has_stream(url: str, name: str, **opts: Any) -> bool:
    async with await testing.connect(ConnectOptions(servers=(url,), **opts)) as client:
        return await client.stream_info(name) is not None


def _config(tmp_path: Path, text: str = MANIFEST) -> str:
    path = tmp_path / "config" / "orders.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path.parent)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--log-format", "json"])
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_through_the_hub_creates_the_stream_in_the_leafs_domain(
    hub_and_leaf: HubAndLeaf, tmp_path: Path, capsys: Any
) -> None:
    """plan, apply (with its lease, a key-value bucket in the leaf's domain) and plan again,
    all through the hub: the stream lives on the leaf, not on the hub."""
    hub, leaf = hub_and_leaf.hub.url, hub_and_leaf.leaf.url
    config = _config(tmp_path)
    code, out, _ = run(capsys, "plan", "--server", hub, "--js-domain", "leaf",
                       "--detailed-exitcode", config)
    assert (code, out.splitlines()[0]) == (2, f"+ orders ({config}/orders.yaml:1:1): create")
    code, out, err = run(capsys, "apply", "--server", hub, "--js-domain", "leaf", config)
    assert code == 0, err
    assert "Apply: 1 created" in out
    assert asyncio.run(_has_stream(leaf, "orders"))  # the leaf's own, local API
    assert asyncio.run(_has_stream(leaf, "KV_jetstream_reconciler"))  # the lease too
    assert not asyncio.run(_has_stream(hub, "orders"))
    assert not asyncio.run(_has_stream(hub, "KV_jetstream_reconciler"))
    # the same through the prefix the domain stands for, from the environment
    code, out, _ = run(capsys, "plan", "--server", hub, "--api-prefix", "$JS.leaf.API",
                       "--detailed-exitcode", config)
    assert (code, out.splitlines()[0]) == (0, f"= orders ({config}/orders.yaml:1:1): no changes")
    # an update goes there too, and takes the lease again (a put through the prefix)
    _config(tmp_path, MANIFEST.replace("100", "50"))
    code, out, err = run(capsys, "apply", "--server", hub, "--js-domain", "leaf", config)
    assert code == 0 and "Apply: 0 created, 1 updated" in out, err

    async def leaf_max_msgs() -> int:
        async with await testing.connect(ConnectOptions(servers=(leaf,))) as client:
            live = await client.stream_info("orders")
            assert live is not None
            return int(live.config["max_msgs"])

    assert asyncio.run(leaf_max_msgs()) == 50


def test_the_hub_domain_from_the_leaf(hub_and_leaf: HubAndLeaf, tmp_path: Path,
                                      capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other way round, the domain from the environment: through the leaf to the hub."""
    monkeypatch.setenv("JETSTREAM_RECONCILER_JS_DOMAIN", "hub")
    code, _, err = run(capsys, "apply", "--server", hub_and_leaf.leaf.url, "--no-lease",
                         _config(tmp_path))
    assert code == 0, err
    assert asyncio.run(_has_stream(hub_and_leaf.hub.url, "orders"))
    assert not asyncio.run(_has_stream(hub_and_leaf.leaf.url, "orders"))


def test_a_domain_nobody_serves_is_named(hub_and_leaf: HubAndLeaf, tmp_path: Path,
                                         capsys: Any) -> None:
    code, _, err = run(capsys, "plan", "--server", hub_and_leaf.hub.url, "--js-domain",
                       "elsewhere", _config(tmp_path))
    assert code == 1
    assert err.endswith(
        f"error: no JetStream answers on $JS.elsewhere.API through {hub_and_leaf.hub.url} (no "
        "responders): no server of domain 'elsewhere' is reachable from here (is the leaf "
        "node connected, and is its domain spelt so?)\n")


async def test_advisories_are_those_of_the_domain_managed(hub_and_leaf: HubAndLeaf) -> None:
    """Advisories reach the hub from both domains on the same subjects: a watch through the
    hub for the leaf's domain hears the leaf's changes only, and a plain watch on the hub
    its own only."""
    hub, leaf = hub_and_leaf.hub.url, hub_and_leaf.leaf.url
    heard: dict[str, list[Advisory]] = {"leaf": [], "hub": []}

    async def listen(key: str, **opts: Any) -> TestClient:
        client = await testing.connect(ConnectOptions(servers=(hub,), **opts))

        async def handler(advisory: Advisory) -> None:
            heard[key].append(advisory)

        await client.watch_advisories(handler)
        return client

    for_leaf = await listen("leaf", js_domain="leaf")
    for_hub = await listen("hub")
    try:
        async with await testing.connect(ConnectOptions(servers=(leaf,))) as on_leaf, \
                await testing.connect(ConnectOptions(servers=(hub,))) as on_hub:
            await on_leaf.create_stream({"name": "only_on_leaf", "subjects": ["l.>"]})
            await on_hub.create_stream({"name": "only_on_hub", "subjects": ["h.>"]})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            {a.stream for a in heard["leaf"]} >= {"only_on_leaf"}
            and {a.stream for a in heard["hub"]} >= {"only_on_hub"}
        ):
            await asyncio.sleep(0.05)
        # the other domain's advisory was sent at the same time: give it as long again
        await asyncio.sleep(0.5)
    finally:
        await for_leaf.close()
        await for_hub.close()
    assert {a.stream for a in heard["leaf"]} == {"only_on_leaf"}
    assert {a.stream for a in heard["hub"]} == {"only_on_hub"}


async def test_our_own_change_through_the_hub_is_not_taken_for_someone_elses(
    hub_and_leaf: HubAndLeaf,
) -> None:
    """The leaf's API advisory of a request that came through the hub names the leaf node
    connection, not the client: it is dropped, and the stream advisory (which watch mode
    takes as our echo right after our own change) is all that is heard."""
    heard: list[Advisory] = []

    async def handler(advisory: Advisory) -> None:
        heard.append(advisory)

    async with await testing.connect(ConnectOptions(servers=(hub_and_leaf.hub.url,),
                                                    js_domain="leaf")) as client:
        await client.watch_advisories(handler)
        await client.create_stream({"name": "ours", "subjects": ["o.>"]})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not heard:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the API advisory follows the stream advisory at once
    assert [(a.kind, a.stream) for a in heard] == [("created", "ours")]


# --- settings: flags, environment, NATS context ----------------------------------------------

def _options(tmp_path: Path, context: dict[str, Any] | None = None,
             **flags: str | None) -> ConnectOptions:
    env = {"HOME": str(tmp_path)}
    name = None
    if context is not None:
        directory = tmp_path / ".config" / "nats" / "context"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ctx.json").write_text(json.dumps(context))
        name = "ctx"
    args: dict[str, Any] = dict.fromkeys(
        ("server", "creds", "nkey", "user", "password", "password_file", "token",
         "token_file", "tls_cert", "tls_key", "tls_ca", "js_domain", "api_prefix"))
    return connect_options(**{**args, **flags}, context=name, env=env)


@pytest.mark.parametrize(("context", "flags", "api"), [
    (None, {}, "$JS.API"),
    (None, {"js_domain": "leaf"}, "$JS.leaf.API"),
    (None, {"api_prefix": "js.orders.API."}, "js.orders.API"),
    ({"jetstream_domain": "hub"}, {}, "$JS.hub.API"),  # as `nats context add --js-domain`
    ({"jetstream_api_prefix": "$JS.x.API"}, {}, "$JS.x.API"),
    ({"jetstream_domain": "hub"}, {"api_prefix": "imported.API"}, "imported.API"),  # flag wins
    ({"jetstream_api_prefix": "imported.API"}, {"js_domain": "leaf"}, "$JS.leaf.API"),
])
def test_where_the_api_is(tmp_path: Path, context: dict[str, Any] | None,
                          flags: dict[str, str], api: str) -> None:
    assert _options(tmp_path, context, **flags).api == api


@pytest.mark.parametrize(("context", "flags", "error"), [
    (None, {"js_domain": "leaf", "api_prefix": "$JS.leaf.API"},
     "--js-domain and --api-prefix are both given: a domain stands for the prefix "
     "$JS.<domain>.API, so give only one (--js-domain hub, or --api-prefix '$JS.hub.API')"),
    ({"jetstream_domain": "a", "jetstream_api_prefix": "b.API"}, {},
     "the NATS context ctx sets both jetstream_domain and jetstream_api_prefix: a domain "
     "stands for the prefix $JS.<domain>.API, so give only one (--js-domain hub, or "
     "--api-prefix '$JS.hub.API')"),
    (None, {"js_domain": "a.b"},
     "--js-domain 'a.b': a domain is one subject token: no '.', '*', '>' or spaces, e.g. 'hub'"),
    (None, {"api_prefix": "$JS.*.API"},
     "--api-prefix '$JS.*.API': write a subject without wildcards or spaces, e.g. "
     "'$JS.hub.API' or 'js.orders.API'"),
])
def test_what_is_refused(tmp_path: Path, context: dict[str, Any] | None,
                         flags: dict[str, str], error: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _options(tmp_path, context, **flags)
    assert str(caught.value) == error


def test_both_on_the_command_line_is_one_clear_line(tmp_path: Path, capsys: Any) -> None:
    code, out, err = run(capsys, "plan", "--js-domain", "a", "--api-prefix", "b.API",
                         _config(tmp_path))
    assert (code, out) == (1, "")
    assert err.startswith("error: --js-domain and --api-prefix are both given")


