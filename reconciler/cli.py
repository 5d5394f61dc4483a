"""The command line: parse, call, map the outcome to an exit code. Nothing else lives here."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import click

from reconciler import __version__
from reconciler.errors import ManifestError, ReconcilerError
from reconciler.manifest import load_manifests
from reconciler.model import Degraded, Status, StreamSpec
from reconciler.redact import redact_servers, redact_text
from reconciler.settings import Settings, client_name, connect_options, identity, lease_name
from reconciler.units import count_of

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

EXIT_OK, EXIT_ERROR, EXIT_PENDING, EXIT_BLOCKED = 0, 1, 2, 3

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


def _settings(paths: Sequence[str], kw: dict[str, Any]) -> Settings:
    # imported here, as the server-side modules below are: `validate` needs none of them
    from reconciler import logs

    logs.setup(kw.pop("log_format", "auto"), kw.pop("log_level", "info"))
    who = identity()
    connect = connect_options(**{k: kw.pop(k) for k in (
        "server", "context", "creds", "nkey", "user", "password", "password_file", "token",
        "token_file", "tls_cert", "tls_key", "tls_ca", "js_domain", "api_prefix")},
        name=client_name(who))
    if "lease" in kw:
        no_lease = kw.pop("no_lease")
        kw["lease"] = None if no_lease else lease_name(kw["lease"])
        kw["lease_ttl_s"] = _duration_s(kw.pop("lease_ttl"), "--lease-ttl", 1.0)
    return Settings(paths=tuple(paths) or ("config",), connect=connect, identity=who, **kw)


def _load(settings: Settings) -> list[StreamSpec]:
    result = load_manifests(settings.paths)
    if result.problems:
        raise ManifestError(result.problems)
    return list(result.specs)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", "-V", prog_name="jetstream-reconciler")
def cli() -> None:
    """Keep NATS JetStream streams exactly as declared in YAML manifests.

    \b
    Write one stream per YAML document (config/events.yaml is an example), then:
      jetstream-reconciler validate config/     check the manifests, no server needed
      jetstream-reconciler plan config/         show what would change on the server
      jetstream-reconciler apply config/        make the server match the manifests
      jetstream-reconciler watch config/        keep it matching: heal drift as it happens

    \b
    Exit codes: 0 in sync / success, 1 error, 2 changes pending (plan
    --detailed-exitcode), 3 a change was blocked (data loss not allowed, or a change the
    server cannot make).
    """


@cli.command(context_settings=CONTEXT_SETTINGS)
@_paths
@click.option("--live", envvar=ENV + "LIVE", is_flag=True,
              help="Also check the manifests against the server (--server / NATS_URL): "
                   "subjects that overlap a stream no manifest declares, more replicas than "
                   "the cluster has servers, sources that close a cycle. Without it, no "
                   f"server is contacted. [env: {ENV}LIVE]")
@_connection_options
@_log_options
def validate(paths: tuple[str, ...], live: bool, **kw: Any) -> int:
    """Check manifests; no server is contacted unless --live is given.

    Reports every problem as FILE:LINE:COLUMN: FIELD: what is wrong; what to write instead.
    Exit 0 when all are valid, 1 otherwise.
    """
    result = load_manifests(paths or ("config",))
    if result.problems:
        raise ManifestError(result.problems)
    summary = (f"{count_of(len(result.files), 'manifest file')} valid: "
               f"{count_of(len(result.specs), 'stream')} ({_names(result.specs)})")
    if not live:
        click.echo(summary + ".")
        return EXIT_OK
    from reconciler.reconcile import check_against_server

    settings = _settings(paths, kw)  # read only now: without --live no setting can fail
    specs = list(result.specs)
    found = _run(_with_server(settings, lambda js: check_against_server(js, specs)))
    for spec in specs:
        for path, reason in found.get(spec.name, ()):
            click.echo(f"{spec.where(path)}: {path}: stream {spec.name}: {reason}", err=True)
    if found:
        click.echo(f"{count_of(len(found), 'stream')} the server would refuse; nothing was "
                   "changed.", err=True)
        return EXIT_ERROR
    click.echo(summary + "; the server would accept them.")
    return EXIT_OK


@cli.command(context_settings=CONTEXT_SETTINGS)
def schema() -> int:
    """Print the JSON Schema of a manifest, for editors.

    \b
    Write it next to your manifests and name it in each file's first line:
      jetstream-reconciler schema > stream.schema.json
      # yaml-language-server: $schema=./stream.schema.json
    VS Code (with the YAML extension) and other editors then complete field names and
    values and mark wrong types and unknown fields as you type. validate checks more: rules
    between fields, subjects, and everything across files.
    """
    import json

    from reconciler.manifest.editor import manifest_schema

    click.echo(json.dumps(manifest_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


#: stream names `validate` shows before it only counts the rest
SHOWN_NAMES = 5


def _names(specs: Sequence[StreamSpec]) -> str:
    """`a, b and c`; past SHOWN_NAMES, the first of them `and N more`."""
    names = [s.name for s in specs]
    if not names:
        return "none"
    if len(names) > SHOWN_NAMES:
        names = [*names[:SHOWN_NAMES], f"{len(names) - SHOWN_NAMES} more"]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@cli.command(context_settings=CONTEXT_SETTINGS)
@_paths
@click.option("--output", "-o", type=click.Choice(["text", "json", "markdown"]), default="text",
              envvar=ENV + "OUTPUT", show_default=True,
              help="text for people, json for programs (schema in the README), markdown for a "
                   f"pull-request comment. [env: {ENV}OUTPUT]")
@click.option("--link-base", envvar=ENV + "LINK_BASE", metavar="URL",
              help="With --output markdown: link each stream to its FILE#LLINE under URL, "
                   "the web address the manifest paths are relative to (e.g. "
                   "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/blob/$GITHUB_SHA). "
                   f"[env: {ENV}LINK_BASE]")
@click.option("--detailed-exitcode", envvar=ENV + "DETAILED_EXITCODE", is_flag=True,
              help="Exit 0 when in sync, 2 when changes are pending, 3 when a change is "
                   f"blocked. [env: {ENV}DETAILED_EXITCODE]")
@click.option("--allow-data-loss", envvar=ENV + "ALLOW_DATA_LOSS", is_flag=True,
              help="Plan changes that discard stored messages as allowed, for every stream. "
                   f"[env: {ENV}ALLOW_DATA_LOSS]")
@_connection_options
@_log_options
def plan(paths: tuple[str, ...], output: str, link_base: str | None, detailed_exitcode: bool,
         **kw: Any) -> int:
    """Show what apply would change on the server, and what each change would delete.

    Reads every live stream configuration (paged STREAM.LIST), predicts the exact messages
    and bytes a change would discard, and never changes anything. Streams on the server that
    no manifest declares are listed as unmanaged.
    """
    settings = _settings(paths, kw)
    specs = _load(settings)
    from reconciler.reconcile import compute_plan
    from reconciler.report import render_json, render_markdown, render_text

    result = _run(_with_server(settings, lambda js: compute_plan(
        js, specs, allow_data_loss=settings.allow_data_loss, concurrency=settings.concurrency)))
    if output == "json":
        click.echo(render_json(result), nl=False)
    elif output == "markdown":
        click.echo(render_markdown(result, link_base=link_base), nl=False)
    else:
        click.echo(render_text(result, colour=sys.stdout.isatty()), nl=False)
    if _report_degraded(result.degraded):
        return EXIT_ERROR
    if not detailed_exitcode:
        return EXIT_OK
    if result.blocked:
        return EXIT_BLOCKED
    return EXIT_PENDING if result.pending else EXIT_OK


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end. (asyncio is imported here: `validate` without --live
    needs none of it.)"""
    import asyncio

    return asyncio.run(main)


async def _with_server(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Connect, run `work(js)`, disconnect. (Imported here: `validate` needs no NATS.)"""
    from reconciler import jetstream

    async with await jetstream.connect(settings.connect) as js:
        return await work(js)


def _report_degraded(degraded: Sequence[Degraded]) -> bool:
    """Say on stderr which declared streams could not be read; whether there were any."""
    managed = [d for d in degraded if d.managed]
    for d in managed:
        click.echo(f"error: {d}; it was left as it is", err=True)
    return bool(managed)


@cli.command(context_settings=CONTEXT_SETTINGS)
@_paths
@click.option("--wait", "wait", envvar=ENV + "WAIT", default="0s", show_default=True,
              metavar="DURATION",
              help="When another reconciler holds the lease, wait up to DURATION for it to "
                   f"be free (e.g. 2m) instead of failing at once. [env: {ENV}WAIT]")
@click.option("--force", envvar=ENV + "FORCE", is_flag=True,
              help="Take the lease from whoever holds it (it stops writing as soon as it "
                   f"sees that); logged as a lease_taken_over warning. [env: {ENV}FORCE]")
@_lease_options
@_apply_options
@_connection_options
@_log_options
def apply(paths: tuple[str, ...], wait: str, force: bool, **kw: Any) -> int:
    """Create and update streams so that the server matches the manifests.

    Sends each stream's whole configuration (an update replaces it on the server). A change
    that would discard stored messages is blocked unless allowed; so is a change the server
    cannot make. Exit 0 when everything is in sync afterwards, 3 when something was blocked,
    1 on any error.

    When there is something to write, takes the lease first (see watch): while a running
    reconciler holds it, apply says who and exits 1, unless --wait or --force.
    """
    wait_s = _duration_s(wait, "--wait", 0.0)
    settings = _settings(paths, kw)
    specs = _load(settings)
    from reconciler.lease import Holder, Lease, holding
    from reconciler.model import Action, Plan
    from reconciler.reconcile import Result, compute_plan, reconcile
    from reconciler.report import connection_lost_line, render_text

    async def work(js: Any) -> Result:
        def run(client: Any, plan: Plan | None = None) -> Awaitable[Result]:
            return reconcile(client, specs, allow_data_loss=settings.allow_data_loss,
                             concurrency=settings.concurrency, trigger="apply", plan=plan)

        if settings.lease is None:
            return await run(js)
        lease = Lease(js, settings.lease, Holder(settings.identity), settings.lease_ttl_s,
                      quiet=True)
        preview = await compute_plan(js, specs, allow_data_loss=settings.allow_data_loss,
                                     concurrency=settings.concurrency)
        if not any(s.action in (Action.CREATE, Action.UPDATE) for s in preview.streams):
            # nothing to write: no lease taken (and no bucket made); a write that turns up
            # after all is refused, not made without the lease
            return await run(lease.fence(js), preview)
        await lease.acquire(wait_s=wait_s, force=force)
        # after waiting, or taking over from a running reconciler, plan afresh; otherwise
        # the preview stands (each update re-reads its stream first anyway)
        fresh = None if wait_s > 0 or force else preview
        result: Result = await holding(lease, lambda: run(lease.fence(js), fresh))
        return result

    result = _run(_with_server(settings, work))
    click.echo(render_text(result.plan, colour=sys.stdout.isatty()), nl=False)
    counts = result.counts()
    order = [Status.CREATED, Status.UPDATED, Status.UNCHANGED, Status.BLOCKED, Status.REPORTED,
             Status.FAILED]
    click.echo("Apply: " + ", ".join(f"{counts.get(str(s), 0)} {s}" for s in order) + ".")
    for outcome in result.outcomes:
        if outcome.status is Status.FAILED and not outcome.connection_lost:
            click.echo(f"error: {outcome.error}", err=True)
    lost = connection_lost_line(result.outcomes, ", ".join(redact_servers(
        settings.connect.servers)))
    if lost is not None:
        click.echo(f"error: {lost}", err=True)
    if _report_degraded(result.plan.degraded) or result.failed:
        return EXIT_ERROR
    return EXIT_BLOCKED if result.blocked else EXIT_OK


@cli.command(context_settings=CONTEXT_SETTINGS)
@_paths
@click.option("--resync", envvar=ENV + "RESYNC", default="60s", show_default=True,
              metavar="DURATION", help="Full resync interval, the safety net for missed "
              f"advisories (e.g. 30s, 5m). [env: {ENV}RESYNC]")
@click.option("--settle", envvar=ENV + "SETTLE", default="2s", show_default=True,
              metavar="DURATION", help="How long a manifest file must be left unchanged before "
              "a new version that is not safe to apply at once (it discards messages, puts a "
              "field whose line went missing back to its default, or ends in an unfinished "
              f"line) is read again and applied. [env: {ENV}SETTLE]")
@click.option("--http-port", envvar=ENV + "HTTP_PORT", default=8080, show_default=True,
              type=click.IntRange(0, 65535), metavar="PORT",
              help="Port of /healthz, /readyz and /metrics; 0 turns them off. "
                   f"[env: {ENV}HTTP_PORT]")
@click.option("--http-host", envvar=ENV + "HTTP_HOST", default="127.0.0.1", show_default=True,
              metavar="HOST", help="Address the HTTP endpoints listen on: this machine only by "
                                   "default; 0.0.0.0 for every interface (a container or pod "
                                   f"that is scraped and probed). [env: {ENV}HTTP_HOST]")
@click.option("--conflict-window", envvar=ENV + "CONFLICT_WINDOW", default="60s",
              show_default=True, metavar="DURATION",
              help="A stream another client changes back 3 times within this window is left "
                   "alone for half of it, then doubling up to ten windows; 0 turns this off. "
                   f"[env: {ENV}CONFLICT_WINDOW]")
@click.option("--embedded", envvar=ENV + "EMBEDDED", is_flag=True,
              help="Start a local nats-server with JetStream (needs the `server` extra; data in "
                   "./.jetstream-reconciler, port from NATS_URL or 4222), reconcile only that "
                   "server, and stop it on exit. Exit 1 if the port or directory is taken. "
                   f"[env: {ENV}EMBEDDED]")
@_lease_options
@_apply_options
@_connection_options
@_log_options
def watch(paths: tuple[str, ...], resync: str, settle: str, conflict_window: str,
          **kw: Any) -> int:
    """Keep the server equal to the manifests until stopped (the main job).

    \b
    Reconciles at start, then again whenever
      - a manifest changes (saved, renamed over, created, deleted, a ConfigMap update),
      - a stream is created, changed or deleted behind its back (JetStream advisories),
      - the connection comes back after an outage,
      - and every --resync interval.
    Each drift is logged as a `drift_detected` event naming the stream, every field with its
    live and desired value, its source (manifest or server) and, when known, who made it.
    A manifest that fails validation changes nothing: its last valid state stays in force and
    /readyz reports the problem until it is fixed. A manifest caught while it is still being
    written is never applied: a new version that discards messages or drops lines waits
    until the file has been left alone for --settle. SIGTERM, SIGHUP or Ctrl-C stops within
    5 seconds.

    Any number of reconcilers may watch one account: only the holder of the lease writes;
    the others plan only, stay ready, and take over within --lease-ttl when it stops.
    """
    from reconciler.daemon import run

    settings = _settings(paths, kw | {
        "resync_s": _seconds(resync, "--resync", "60s"),
        "settle_s": _seconds(settle, "--settle", "2s"),
        "conflict_window_s": _seconds(conflict_window, "--conflict-window", "60s",
                                      zero_ok=True),
    })
    return _run(run(settings))


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; every exit code is decided here."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None,
                        prog_name="jetstream-reconciler", standalone_mode=False)
    except ManifestError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        files = {p.location.file for p in exc.problems}
        click.echo(f"{count_of(len(exc.problems), 'problem')} in {count_of(len(files), 'file')}; "
                   "nothing was changed.", err=True)
        return EXIT_ERROR
    except ReconcilerError as exc:
        click.echo(f"error: {redact_text(str(exc))}", err=True)
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return int(code) if isinstance(code, int) else EXIT_OK
