"""The options several commands share: connection, logging, applying and the lease."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
ENV = "JETSTREAM_RECONCILER_"


def _connection_options(f: F) -> F:
    options = [
        click.option("--server", "-s", envvar="NATS_URL", metavar="URLS",
                     help="NATS server URL(s), comma-separated. [env: NATS_URL; "
                          "default: nats://127.0.0.1:4222]"),
        click.option("--context", envvar="NATS_CONTEXT", metavar="NAME",
                     help="Use a `nats` CLI context (~/.config/nats/context/NAME.json); "
                          "flags override its values. [env: NATS_CONTEXT]"),
        click.option("--creds", envvar="NATS_CREDS", metavar="FILE",
                     help="User credentials file (JWT and seed). [env: NATS_CREDS]"),
        click.option("--nkey", envvar="NATS_NKEY", metavar="FILE",
                     help="NKey seed file. [env: NATS_NKEY]"),
        click.option("--user", envvar="NATS_USER", help="User name. [env: NATS_USER]"),
        click.option("--password", envvar="NATS_PASSWORD",
                     help="Password; prefer --password-file. [env: NATS_PASSWORD]"),
        click.option("--password-file", envvar="NATS_PASSWORD_FILE", metavar="FILE",
                     help="Read the password from FILE. [env: NATS_PASSWORD_FILE]"),
        click.option("--token", envvar="NATS_TOKEN",
                     help="Auth token; prefer --token-file. [env: NATS_TOKEN]"),
        click.option("--token-file", envvar="NATS_TOKEN_FILE", metavar="FILE",
                     help="Read the auth token from FILE. [env: NATS_TOKEN_FILE]"),
        click.option("--tls-cert", envvar="NATS_CERT", metavar="FILE",
                     help="TLS client certificate. [env: NATS_CERT]"),
        click.option("--tls-key", envvar="NATS_KEY", metavar="FILE",
                     help="TLS client key. [env: NATS_KEY]"),
        click.option("--tls-ca", envvar="NATS_CA", metavar="FILE",
                     help="CA certificate to verify the server. [env: NATS_CA]"),
        click.option("--js-domain", envvar=ENV + "JS_DOMAIN", metavar="DOMAIN",
                     help="Manage the streams of this JetStream domain (a leaf node's, or a "
                          "hub's from a leaf): API requests go to $JS.DOMAIN.API. "
                          f"[env: {ENV}JS_DOMAIN]"),
        click.option("--api-prefix", envvar=ENV + "API_PREFIX", metavar="SUBJECT",
                     help="Reach the JetStream API under this prefix instead of $JS.API "
                          "(JetStream imported from another account). Not with --js-domain. "
                          f"[env: {ENV}API_PREFIX]"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _log_options(f: F) -> F:
    f = click.option("--log-level", envvar=ENV + "LOG_LEVEL", default="info",
                     type=click.Choice(["debug", "info", "warning", "error"]),
                     show_default=True, help=f"[env: {ENV}LOG_LEVEL]")(f)
    f = click.option("--log-format", envvar=ENV + "LOG_FORMAT", default="auto",
                     type=click.Choice(["auto", "json", "console"]), show_default=True,
                     help="Events on stderr: JSON lines, or readable console output; auto "
                          f"picks console on a terminal. [env: {ENV}LOG_FORMAT]")(f)
    return f


def _apply_options(f: F) -> F:
    f = click.option("--concurrency", envvar=ENV + "CONCURRENCY", default=32, show_default=True,
                     type=click.IntRange(1, 256), metavar="N",
                     help=f"API requests in flight at once. [env: {ENV}CONCURRENCY]")(f)
    f = click.option("--allow-data-loss", envvar=ENV + "ALLOW_DATA_LOSS", is_flag=True,
                     help="Apply changes that discard stored messages, for every stream "
                          "(per stream: `reconcile: {allow_data_loss: true}`). "
                          f"[env: {ENV}ALLOW_DATA_LOSS]")(f)
    return f


def _lease_options(f: F) -> F:
    f = click.option("--no-lease", envvar=ENV + "NO_LEASE", is_flag=True,
                     help="Write without a lease: only safe when no other reconciler runs "
                          f"against this account. [env: {ENV}NO_LEASE]")(f)
    f = click.option("--lease-ttl", envvar=ENV + "LEASE_TTL", default="10s", show_default=True,
                     metavar="DURATION",
                     help="How long the lease outlives its holder's last renew (renewed "
                          "every third of it); a standby takes over after it. "
                          f"[env: {ENV}LEASE_TTL]")(f)
    f = click.option("--lease", envvar=ENV + "LEASE", default="default", show_default=True,
                     metavar="NAME",
                     help="Only the holder of this lease (a key in the JetStream key-value "
                          "bucket jetstream_reconciler) writes; reconcilers sharing a lease "
                          f"name take turns. [env: {ENV}LEASE]")(f)
    return f


_paths = click.argument("paths", nargs=-1, metavar="[PATH]...")


def _duration_s(text: str, flag: str, minimum_s: float) -> float:
    from reconciler.units import UnitError, parse_duration

    try:
        ns = parse_duration(text)
    except UnitError as exc:
        raise click.BadParameter(f"{text!r}: {exc}", param_hint=flag) from exc
    if ns < minimum_s * 1e9:
        raise click.BadParameter(f"must be at least {minimum_s:g}s", param_hint=flag)
    return ns / 1e9
