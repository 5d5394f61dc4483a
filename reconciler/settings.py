"""Settings: one frozen object, resolved flag > environment > NATS context > default.

Only the CLI builds it; nothing deeper reads `os.environ`.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import SettingsError
from reconciler.model import ConnectOptions
from reconciler.redact import redact_url
from reconciler.urls import DEFAULT_PORT, split_servers

DEFAULT_SERVER = f"nats://127.0.0.1:{DEFAULT_PORT}"
SCHEMES = ("nats", "tls", "ws", "wss")
"""URL schemes of a NATS server: the client protocol, over TLS, over WebSocket."""
_LEASE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def identity(hostname: str | None = None, pid: int | None = None) -> str:
    """Who this process is, for people: its host (in Kubernetes, the pod name) and pid."""
    host = hostname or socket.gethostname() or "localhost"
    return f"{host}/{pid if pid is not None else os.getpid()}"


def client_name(who: str) -> str:
    """The connection name the server shows in advisories and its connection list."""
    return f"jetstream-reconciler/{who}"


def lease_name(name: str) -> str:
    if not _LEASE_NAME.match(name):
        raise SettingsError(f"--lease {name!r}: a lease name takes letters, digits, '_' and "
                            "'-' only, e.g. 'default'")
    return name


@dataclass(frozen=True)
class Settings:
    paths: tuple[str, ...] = ("config",)
    """Manifest files or directories (searched recursively for *.yaml / *.yml)."""
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    allow_data_loss: bool = False
    """Accept every change that discards stored messages (default: only per-stream opt-in)."""
    concurrency: int = 32
    """API requests in flight at once (the server drops requests past 10,000 pending)."""
    resync_s: float = 60.0
    """Seconds between full resyncs in watch mode (advisories are at-most-once)."""
    conflict_window_s: float = 60.0
    """A stream another client changes back 3 times within this many seconds is left alone
    for half of it, then doubling up to ten (`conflicts.py`); 0 turns this off."""
    settle_s: float = 2.0
    """Watch mode: seconds a manifest file must be left unchanged before a new version that
    may not be applied at once (it discards messages, reverts a field whose line went
    missing, or ends in an unfinished line) is read again and applied."""
    http_host: str = "127.0.0.1"
    """Address of the HTTP endpoints: loopback, as they have no authentication; the image and
    the Helm chart set 0.0.0.0 so that probes and Prometheus reach them."""
    http_port: int = 8080
    """Port of /healthz, /readyz and /metrics in watch mode; 0 turns the endpoint off."""
    embedded: bool = False
    """Watch mode starts its own nats-server (from the `server` extra)."""
    embedded_dir: str = ".jetstream-reconciler"
    """Where the embedded server keeps its data, under the working directory."""
    lease: str | None = "default"
    """Key of the lease in the `jetstream_reconciler` bucket; only its holder writes.
    None: write without a lease (only safe for a single reconciler)."""
    lease_ttl_s: float = 10.0
    """How long a lease outlives its holder's last renew; a standby takes over after it."""
    identity: str = field(default_factory=identity)
    """This process for people and for the lease (host or pod name, pid)."""
    owner: str = "default"
    """Recorded in the metadata of every stream this reconciler writes (`plan.ownership`)."""
    prune: bool = False
    """Delete owned streams that no manifest declares (`plan.prune`, with its guards)."""
    max_deletes: int = 1
    """At most this many deletions per pass; more block them all."""
    prune_grace_s: float = 300.0
    """Watch mode: how long a stream must stay undeclared before it is pruned."""


def context_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "nats" / "context"


def load_context(name: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    """A `nats` CLI context (`~/.config/nats/context/NAME.json`); the selected one when
    `name` is empty and `nats context select` chose one. Missing default context: {}."""
    directory = context_dir(env)
    explicit = bool(name)
    if not name:
        selected = directory.parent / "context.txt"
        if not selected.is_file():
            return {}
        name = selected.read_text().strip()
        if not name:
            return {}
    path = directory / f"{name}.json"
    if not path.is_file():
        if explicit:
            raise SettingsError(
                f"NATS context {name!r} not found: no file {path}; "
                "list contexts with `nats context ls` or pass --server"
            )
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path}: cannot read NATS context: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: a NATS context must be a JSON object")
    return data


_TOKEN = re.compile(r"^[^\s.*>]+$")
_PREFIX = re.compile(r"^[^\s.*>]+(\.[^\s.*>]+)*$")


def jetstream_api(
    js_domain: str | None, api_prefix: str | None, ctx: Mapping[str, Any], context: str | None
) -> tuple[str | None, str | None]:
    """The JetStream domain or API prefix, from the flags, else from the NATS context
    (`jetstream_domain`, `jetstream_api_prefix`, as the `nats` CLI writes them): at most
    one of the two."""
    if not js_domain and not api_prefix:
        js_domain = str(ctx.get("jetstream_domain") or "") or None
        api_prefix = str(ctx.get("jetstream_api_prefix") or "") or None
        where = f"the NATS context {context or '(selected)'} sets both jetstream_domain and " \
                "jetstream_api_prefix"
    else:
        where = "--js-domain and --api-prefix are both given"
    if js_domain and api_prefix:
        raise SettingsError(f"{where}: a domain stands for the prefix $JS.<domain>.API, so "
                            "give only one (--js-domain hub, or --api-prefix '$JS.hub.API')")
    if js_domain and not _TOKEN.match(js_domain):
        raise SettingsError(f"--js-domain {js_domain!r}: a domain is one subject token: no "
                            "'.', '*', '>' or spaces, e.g. 'hub'")
    if api_prefix:
        api_prefix = api_prefix.rstrip(".")
        if not _PREFIX.match(api_prefix):
            raise SettingsError(f"--api-prefix {api_prefix!r}: write a subject without "
                                "wildcards or spaces, e.g. '$JS.hub.API' or 'js.orders.API'")
    return js_domain, api_prefix


def read_secret_file(path: str | None, what: str) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise SettingsError(f"cannot read the {what} file {path}: {exc.strerror}") from exc


def check_scheme(url: str) -> None:
    """A server URL with a scheme NATS does not speak (http://, https://) is refused, with the
    URL to write instead; one with no scheme means nats://."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() not in SCHEMES:
        raise SettingsError(
            f"--server {redact_url(url)}: {scheme}:// is not a NATS URL; write "
            f"{redact_url('nats://' + rest)} (or tls:// for TLS; NATS does not speak HTTP)"
        )


def connect_options(
    *,
    server: str | None,
    context: str | None,
    creds: str | None,
    nkey: str | None,
    user: str | None,
    password: str | None,
    password_file: str | None,
    token: str | None,
    token_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    js_domain: str | None = None,
    api_prefix: str | None = None,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
) -> ConnectOptions:
    """Flags (already merged with their environment variables by the CLI) over the context."""
    env = os.environ if env is None else env
    ctx = load_context(context, env)

    def pick(value: str | None, key: str) -> str | None:
        got = value or ctx.get(key) or None
        return str(got) if got is not None else None

    url = pick(server, "url") or DEFAULT_SERVER
    servers = tuple(split_servers([url]))
    if not servers:
        raise SettingsError("--server is empty; write nats://HOST:PORT")
    for server in servers:
        check_scheme(server)
    for path, flag in ((creds, "--creds"), (nkey, "--nkey"), (tls_cert, "--tls-cert"),
                       (tls_key, "--tls-key"), (tls_ca, "--tls-ca")):
        if path and not Path(path).is_file():
            raise SettingsError(f"{flag} {path}: no such file")
    domain, prefix = jetstream_api(js_domain, api_prefix, ctx, context)
    return ConnectOptions(
        servers=servers,
        js_domain=domain,
        api_prefix=prefix,
        creds=pick(creds, "creds"),
        nkey=pick(nkey, "nkey"),
        user=pick(user, "user"),
        password=password or read_secret_file(password_file, "password") or pick(None, "password"),
        token=token or read_secret_file(token_file, "token") or pick(None, "token"),
        tls_cert=pick(tls_cert, "cert"),
        tls_key=pick(tls_key, "key"),
        tls_ca=pick(tls_ca, "ca"),
        name=name or client_name(identity()),
    )
