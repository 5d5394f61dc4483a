"""The options several commands share: connection, logging, applying, ownership and pruning,
and the lease."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def _ownership_options(f: F) -> F:
    f = click.option("--max-deletes", envvar=ENV + "MAX_DELETES", default=1, show_default=True,
                     type=click.IntRange(0), metavar="N",
                     help="With --prune: at most N streams deleted in one run; more block "
                          f"every deletion. [env: {ENV}MAX_DELETES]")(f)
    f = click.option("--prune", envvar=ENV + "PRUNE", is_flag=True,
                     help="Delete streams this reconciler owns that no manifest declares any "
                          "more (never when no manifest declares any stream, when a manifest "
                          "is invalid, nor one with deny_delete; one that holds messages also "
                          f"needs --allow-data-loss). [env: {ENV}PRUNE]")(f)
    f = click.option("--owner", envvar=ENV + "OWNER", default="default", show_default=True,
                     metavar="NAME", callback=_owner,
                     help="Who this reconciler is, recorded in the metadata of every stream it "
                          "creates or adopts; only streams of this owner are ever pruned. "
                          "Reconcilers of different manifest sets in one account take "
                          f"different owners. [env: {ENV}OWNER]")(f)
    return f


def _owner(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from reconciler.plan.ownership import valid_owner

    if not valid_owner(value):
        raise click.BadParameter(f"{value!r}: an owner is 1 to 64 letters, digits, '_', '-' "
                                 "or '.', e.g. team-payments")
    return value


def _prune(settings: Any, specs: Sequence[Any]) -> Any:
    """The pruning asked for (`plan.prune.Prune`), or None. Manifests that failed to load
    never get here: the command stops first."""
    if not settings.prune:
        return None
    from reconciler.plan.prune import Prune, refusal

    return Prune(settings.max_deletes, refusal(declared=len(specs)))


def _seconds(text: str, flag: str, example: str, *, zero_ok: bool = False) -> float:
    """A duration option above 0 (or 0 when `zero_ok`), in seconds."""
    from reconciler.units import UnitError, parse_duration

    try:
        ns = parse_duration(text)
    except UnitError as exc:
        raise click.BadParameter(f"{text!r}: {exc}", param_hint=flag) from exc
    if ns < 0 or (ns == 0 and not zero_ok):
        raise click.BadParameter(f"must be above 0, e.g. {example}", param_hint=flag)
    return ns / 1e9


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
