"""The CLI called as a user calls it: exit codes, outputs, errors, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import cli, main
from reconciler.testing import NatsServer, free_port

pytestmark = pytest.mark.usefixtures("clean_env")

ROOT = Path(__file__).resolve().parent.parent
HELP = Path(__file__).parent / "help"

EVENTS = """\
name: events
subjects: ["events.*"]
storage: file
max_msgs: {max_msgs}
{extra}"""




def manifest(tmp_path: Path, max_msgs: int = 10, extra: str = "") -> Path:
    path = tmp_path / "config" / "events.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EVENTS.format(max_msgs=max_msgs, extra=extra))
    return path.parent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_valid(tmp_path: Path, capsys: Any) -> None:
    assert run(capsys, "validate", str(manifest(tmp_path))) == (
        0, "1 manifest file valid: 1 stream (events).\n", "")


def test_validate_names_a_handful_of_streams_and_counts_the_rest(
    tmp_path: Path, capsys: Any
) -> None:
    def streams(count: int) -> Path:
        directory = tmp_path / str(count)
        directory.mkdir()
        (directory / "s.yaml").write_text(
            "---\n".join(f"name: s{i}\nsubjects: [s{i}]\n" for i in range(count))
        )
        return directory

    assert run(capsys, "validate", str(streams(2)))[1] == (
        "1 manifest file valid: 2 streams (s0 and s1).\n")
    assert run(capsys, "validate", str(streams(5)))[1] == (
        "1 manifest file valid: 5 streams (s0, s1, s2, s3 and s4).\n")
    assert run(capsys, "validate", str(streams(2000)))[1] == (
        "1 manifest file valid: 2000 streams (s0, s1, s2, s3, s4 and 1995 more).\n")


def test_validate_reports_every_problem_and_changes_nothing(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: events\nmax_age: 30\nmax_msg: 3\n")
    code, out, err = run(capsys, "validate", str(bad))
    assert code == 1 and out == ""
    assert err == (
        f"{bad}:2:10: max_age: 30 has no unit; write '30s' (seconds) or '30ms' (milliseconds)\n"
        f"{bad}:3:1: max_msg: unknown field 'max_msg'; did you mean 'max_msgs'?\n"
        "2 problems in 1 file; nothing was changed.\n"
    )


def test_plan_exit_codes(tmp_path: Path, nats_server: NatsServer, capsys: Any) -> None:
    config = str(manifest(tmp_path))
    server = ["--server", nats_server.url, "--log-format", "json"]
    assert run(capsys, "plan", config, *server)[0] == 0
    assert run(capsys, "plan", "--detailed-exitcode", config, *server)[0] == 2
    assert run(capsys, "apply", config, *server)[0] == 0
    assert run(capsys, "plan", "--detailed-exitcode", config, *server)[0] == 0
    # storage cannot change: blocked
    manifest(tmp_path, extra="max_bytes: 1KiB\n")
    assert run(capsys, "plan", "--detailed-exitcode", config, *server)[0] == 2
    (tmp_path / "config" / "events.yaml").write_text(
        EVENTS.format(max_msgs=10, extra="").replace("file", "memory"))
    code, out, _ = run(capsys, "plan", "--detailed-exitcode", config, *server)
    assert code == 3
    assert ("    blocked: storage cannot change on an existing stream (file -> memory); keep "
            "storage: file, or declare a new stream with the new storage and move the data\n"
            ) in out
    code, out, _ = run(capsys, "apply", config, *server)
    assert code == 3
    assert out.endswith("Apply: 0 created, 0 updated, 0 unchanged, 1 blocked, 0 reported, "
                        "0 failed.\n")


def test_report_only_is_neither_pending_nor_blocked(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    config = str(manifest(tmp_path))
    server = ["--server", nats_server.url, "--log-format", "json"]
    assert run(capsys, "apply", config, *server)[0] == 0
    # the server holds max_msgs 10; the manifest, report-only, says 20 and another storage
    report = "reconcile:\n  drift: report\n"
    (tmp_path / "config" / "events.yaml").write_text(
        EVENTS.format(max_msgs=20, extra=report).replace("file", "memory"))
    code, out, _ = run(capsys, "plan", "--detailed-exitcode", config, *server)
    assert code == 0
    assert out.endswith(
        "* events (" + config + "/events.yaml:1:1): report only\n"
        "    storage: file -> memory\n"
        "    max_msgs: 10 -> 20\n"
        "    left alone: reconcile.drift is report: left as it is, the difference is only "
        "logged\n\n"
        "Plan: 0 to create, 0 to update, 0 blocked, 0 unchanged, 1 report only.\n")
    code, out, _ = run(capsys, "plan", "--output", "json", config, *server)
    document = json.loads(out)
    assert document["summary"] == {"create": 0, "update": 0, "adopt": 0, "delete": 0,
                                   "blocked": 0, "noop": 0, "report": 1, "undeclared": 0,
                                   "unmanaged": 0, "degraded": 0, "pending": False}
    assert document["streams"][0]["action"] == "report"
    assert document["streams"][0]["config"] is None
    code, out, err = run(capsys, "apply", config, *server)
    assert code == 0
    assert out.endswith("Apply: 0 created, 0 updated, 0 unchanged, 0 blocked, 1 reported, "
                        "0 failed.\n")
    events = [json.loads(line) for line in err.splitlines()]
    assert [e["event"] for e in events] == ["drift_detected", "drift_reported",
                                            "reconcile_finished"]
    assert events[0]["action"] == "report"
    assert events[0]["source"] is None  # one run cannot tell which side moved
    # every event gives field changes in one shape
    assert events[1]["changes"] == events[0]["changes"] == [
        {"field": "storage", "live": "file", "desired": "memory"},
        {"field": "max_msgs", "live": 10, "desired": 20}]


def test_plan_json_and_markdown(tmp_path: Path, nats_server: NatsServer, capsys: Any) -> None:
    config = str(manifest(tmp_path))
    server = ["--server", nats_server.url, "--log-format", "json"]
    code, out, _ = run(capsys, "plan", "--output", "json", config, *server)
    assert code == 0
    document = json.loads(out)
    assert document["format_version"] == 2
    assert document["summary"] == {"create": 1, "update": 0, "adopt": 0, "delete": 0,
                                   "blocked": 0, "noop": 0, "report": 0, "undeclared": 0,
                                   "unmanaged": 0, "degraded": 0, "pending": True}
    (stream,) = document["streams"]
    assert stream["action"] == "create" and stream["config"]["max_msgs"] == 10
    assert stream["file"].endswith("events.yaml") and stream["line"] == 1
    _code, out, _ = run(capsys, "plan", "--output", "markdown", config, *server)
    assert out.startswith("<!-- jetstream-reconciler plan -->\n### JetStream plan\n\n**Plan: "
                          "1 to create, 0 to update, 0 blocked, 0 unchanged.**\n")
    assert ("| + | <code>events</code> | " in out
            and "/events.yaml:1 | <code>subjects: &#91;\"events.&#42;\"&#93;</code><br>"
            "<code>max&#95;msgs: 10</code> |" in out)


def test_data_loss_is_guarded_then_allowed(tmp_path: Path, nats_server: NatsServer,
                                           capsys: Any) -> None:
    config = str(manifest(tmp_path))
    server = ["--server", nats_server.url, "--log-format", "json"]
    assert run(capsys, "apply", config, *server)[0] == 0
    subprocess.run([sys.executable, "-c", _PUBLISH, nats_server.url], check=True)
    manifest(tmp_path, max_msgs=2)
    code, out, err = run(capsys, "apply", config, *server)
    assert code == 3
    assert ("    blocked: max_msgs would discard 3 messages (117 bytes); set "
            "reconcile.allow_data_loss: true in the manifest or pass --allow-data-loss to "
            "accept the loss\n") in out
    blocked = next(json.loads(line) for line in err.splitlines()
               if '"change_blocked"' in line)
    assert blocked["stream"] == "events"
    assert blocked["changes"] == [{"field": "max_msgs", "live": 10, "desired": 2}]
    assert blocked["impact"] == {
        "messages": 3, "bytes": 117, "exact": True, "causes": ["max_msgs"],
        "summary": "max_msgs would discard 3 messages (117 bytes)"}
    # the plan JSON shows the same change and impact as the event
    (planned,) = json.loads(run(capsys, "plan", "--output", "json", config, *server)[1])[
        "streams"]
    assert (planned["changes"], planned["impact"]) == (blocked["changes"], blocked["impact"])
    code, out, _ = run(capsys, "apply", "--allow-data-loss", config, *server)
    assert code == 0
    assert "    data loss (allowed): max_msgs would discard 3 messages (117 bytes)\n" in out


_PUBLISH = """
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    for s in ("events.a1", "events.b1", "events.c1", "events.d1", "events.e1"):
        await js.publish(s, b"")
    await nc.close()
asyncio.run(main())
"""


def test_apply_failure_is_exit_1_with_the_servers_words(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    # more bytes than the server has room for: only the server knows
    config = manifest(tmp_path, extra="max_bytes: 1000000000000000000\n")
    code, out, err = run(capsys, "apply", str(config), "--server", nats_server.url,
                         "--log-format", "json")
    assert code == 1
    assert "0 created" in out and "1 failed" in out
    assert "error: stream events: insufficient storage resources available (status 500, " \
           "error 10047)" in err


def test_a_stream_no_manifest_declares_blocks_an_overlap_before_apply(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    config = manifest(tmp_path)
    # a stream no manifest declares already owns the subject
    subprocess.run([sys.executable, "-c", _CREATE_OTHER, nats_server.url], check=True)
    code, out, _ = run(capsys, "apply", str(config), "--server", nats_server.url,
                         "--log-format", "json")
    assert code == 3
    assert "? other: unmanaged (on the server, in no manifest; left alone)" in out
    assert ("    blocked: subject 'events.*' overlaps 'events.x' of stream 'other', which is "
            "on the server and in no manifest") in out


_CREATE_OTHER = """
import asyncio, json, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    await nc.request("$JS.API.STREAM.CREATE.other",
                     json.dumps({"name": "other", "subjects": ["events.x"]}).encode())
    await nc.close()
asyncio.run(main())
"""


def test_unreachable_server_is_one_line(tmp_path: Path, capsys: Any) -> None:
    port = free_port()
    code, _out, err = run(capsys, "plan", str(manifest(tmp_path)), "--server",
                         f"nats://127.0.0.1:{port}")
    assert code == 1
    assert err == f"error: cannot connect to nats://127.0.0.1:{port}: connection refused\n"


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_bad_manifest_stops_before_the_server(tmp_path: Path, capsys: Any,
                                              command: str) -> None:
    # the manifests are read while the server is contacted: their problem wins
    config = manifest(tmp_path, extra="retention: forever\n")
    code, _, err = run(capsys, command, str(config), "--server", "nats://127.0.0.1:1")
    assert code == 1
    assert "retention: unknown value 'forever'; write one of: limits, interest, workqueue" in err
    assert "cannot connect" not in err


def test_nats_context_supplies_the_url(tmp_path: Path, nats_server: NatsServer,
                                       capsys: Any) -> None:
    contexts = tmp_path / "xdg" / "nats" / "context"
    contexts.mkdir(parents=True)
    (contexts / "local.json").write_text(json.dumps({"url": nats_server.url}))
    config = str(manifest(tmp_path))
    assert run(capsys, "plan", "--context", "local", config, "--log-format", "json")[0] == 0
    code, _, err = run(capsys, "plan", "--context", "nope", config)
    assert code == 1 and "NATS context 'nope' not found" in err


def test_environment_variables(tmp_path: Path, nats_server: NatsServer, capsys: Any,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", nats_server.url)
    monkeypatch.setenv("JETSTREAM_RECONCILER_LOG_FORMAT", "json")
    code, out, _ = run(capsys, "plan", "--detailed-exitcode", str(manifest(tmp_path)))
    assert code == 2 and out.startswith("+ events")


@pytest.mark.parametrize(
    "command", ["", "validate", "plan", "apply", "watch", "export", "convert", "schema"])
def test_help_matches_the_committed_copy(command: str) -> None:
    """`--help` is part of the interface: changes to it show up in review."""
    from click.testing import CliRunner

    args = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(cli, args, prog_name="jetstream-reconciler",
                                terminal_width=100)
    assert result.exit_code == 0
    copy = HELP / f"{command or 'main'}.txt"
    if os.environ.get("UPDATE_HELP"):
        copy.parent.mkdir(exist_ok=True)
        copy.write_text(result.output)
    assert result.output == copy.read_text()


def test_http_endpoints_listen_on_loopback_by_default() -> None:
    """/metrics and /readyz have no authentication: a laptop does not serve them to its
    network unless asked (the image and the Helm chart ask for 0.0.0.0)."""
    with cli.commands["watch"].make_context("watch", []) as context:
        assert context.params["http_host"] == "127.0.0.1"
    with cli.commands["watch"].make_context("watch", ["--http-host", "0.0.0.0"]) as context:
        assert context.params["http_host"] == "0.0.0.0"


def test_python_dash_m(tmp_path: Path) -> None:
    run_ = subprocess.run([sys.executable, "-m", "reconciler", "validate",
                           str(manifest(tmp_path))], capture_output=True, text=True)
    assert run_.returncode == 0 and run_.stdout.startswith("1 manifest file valid")


@pytest.mark.parametrize(("args", "env", "error"), [
    (["--settle", "0"], {}, "Invalid value for --settle: must be above 0, e.g. 2s"),
    (["--settle", "2"], {}, "Invalid value for --settle: '2': "),
    ([], {"JETSTREAM_RECONCILER_SETTLE": "0s"},
     "Invalid value for --settle: must be above 0, e.g. 2s"),
    (["--resync", "0"], {}, "Invalid value for --resync: must be above 0, e.g. 60s"),
])
def test_watch_durations_are_checked(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                     args: list[str], env: dict[str, str], error: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = run(capsys, "watch", *args, "--http-port", "0", str(manifest(tmp_path)))
    assert (code, out) == (1, "")
    assert error in err


@pytest.mark.parametrize(("args", "env", "settle_s"), [
    ([], {}, 2.0),
    (["--settle", "500ms"], {}, 0.5),
    ([], {"JETSTREAM_RECONCILER_SETTLE": "5s"}, 5.0),
    (["--settle", "1s"], {"JETSTREAM_RECONCILER_SETTLE": "5s"}, 1.0),
])
def test_watch_settle_reaches_the_daemon(tmp_path: Path, capsys: Any,
                                         monkeypatch: pytest.MonkeyPatch, args: list[str],
                                         env: dict[str, str], settle_s: float) -> None:
    import reconciler.daemon

    seen: list[Any] = []

    async def run_(settings: Any) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(reconciler.daemon, "run", run_)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert run(capsys, "watch", *args, str(manifest(tmp_path)))[0] == 0
    assert seen[0].settle_s == settle_s


# --- every option has an environment variable, listed in --help, that works ---------------

def _options() -> list[tuple[str, Any]]:
    import click

    return [(name, param) for name, command in sorted(cli.commands.items())
            for param in command.params
            if isinstance(param, click.Option) and param.name not in ("help", "version")]


def _env_value(option: Any) -> str:
    """A value for the option's variable that differs from its default."""
    import click

    if option.is_flag:
        return "1"
    if isinstance(option.type, click.Choice):
        return next(c for c in reversed(option.type.choices) if c != option.default)
    if isinstance(option.type, click.IntRange):
        return str((option.type.min or 0) + 7)
    return "from-the-environment"


@pytest.mark.parametrize(("command", "option"), _options(),
                         ids=[f"{c}{o.opts[0]}" for c, o in _options()])
def test_every_option_reads_its_listed_environment_variable(
    command: str, option: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    assert isinstance(option.envvar, str) and option.envvar, f"{command} {option.opts[0]}"
    shown = " ".join(CliRunner().invoke(cli, [command, "--help"], terminal_width=100)
                     .output.split())
    assert f"env: {option.envvar}" in shown, f"{command} --help does not list {option.envvar}"
    value = _env_value(option)
    monkeypatch.setenv(option.envvar, value)
    with cli.commands[command].make_context(command, []) as context:
        # a repeatable option reads a list from its variable, separated by whitespace
        given = option.type.split_envvar_value(value) if option.multiple else value
        assert context.params[option.name] == option.type_cast_value(context, given)
        assert context.params[option.name] != option.default


def test_output_from_the_environment(tmp_path: Path, nats_server: NatsServer, capsys: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", nats_server.url)
    monkeypatch.setenv("JETSTREAM_RECONCILER_OUTPUT", "json")
    code, out, _ = run(capsys, "plan", str(manifest(tmp_path)))
    assert code == 0 and json.loads(out)["summary"]["create"] == 1


# --- server URLs ---------------------------------------------------------------------------

def test_an_http_url_is_refused_with_the_nats_url_to_write(tmp_path: Path, capsys: Any) -> None:
    code, out, err = run(capsys, "plan", "--server", "http://alice:s3cret@127.0.0.1:4222",
                         str(manifest(tmp_path)))
    assert (code, out) == (1, "")
    assert err == ("error: --server http://alice:***@127.0.0.1:4222: http:// is not a NATS "
                   "URL; write nats://alice:***@127.0.0.1:4222 (or tls:// for TLS; NATS does "
                   "not speak HTTP)\n")


def test_tls_to_a_plaintext_server_is_refused_before_connect(
    tmp_path: Path, capsys: Any
) -> None:
    """nats-py would carry on in plaintext, credentials and all; we stop at the server's INFO."""
    server = NatsServer(tmp_path / "js", extra_args=("-DV", "--user", "u", "--pass", "p")).start()
    try:
        host = server.url.removeprefix("nats://")
        code, out, err = run(capsys, "apply", "--server", f"tls://{host}", "--user", "u",
                             "--password", "p", str(manifest(tmp_path)))
        assert (code, out) == (1, "")
        assert err == (f"error: cannot connect to tls://{host}: the server does not offer TLS, "
                       "which tls:// or a --tls option asks for; nothing was sent: write "
                       "nats:// to connect without TLS\n")
        assert "CONNECT" not in server.log.read_text()
        # the same server over nats:// works
        code, _, _ = run(capsys, "apply", "--server", server.url, "--user", "u",
                         "--password", "p", str(manifest(tmp_path)))
        assert code == 0 and "CONNECT" in server.log.read_text()
    finally:
        server.stop()


# --- log lines for people ------------------------------------------------------------------

def test_console_logs_speak_manifest_units_and_json_keeps_exact_values(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    path = manifest(tmp_path, extra="max_bytes: 300B\n") / "events.yaml"
    code, _, err = run(capsys, "apply", "-s", nats_server.url, "--log-format", "console",
                       str(path))
    assert code == 0
    (created,) = [line for line in err.splitlines() if "stream_created" in line]
    assert "changes='subjects: [\"events.*\"]; max_msgs: 10; max_bytes: 300B'" in created
    assert "config=" not in created and "max_consumers" not in created

    path.write_text(path.read_text() + "max_age: 100ms\n")
    code, _, err = run(capsys, "apply", "-s", nats_server.url, "--log-format", "console",
                       str(path))
    assert code == 0
    (updated,) = [line for line in err.splitlines() if "stream_updated" in line]
    assert "max_age: 0 -> 100ms" in updated and "100000000" not in updated

    path.write_text(path.read_text().replace("100ms", "200ms"))
    code, _, err = run(capsys, "apply", "-s", nats_server.url, "--log-format", "json", str(path))
    assert code == 0
    (event,) = [e for e in map(json.loads, err.splitlines()) if e["event"] == "stream_updated"]
    assert {"field": "max_age", "live": 100_000_000, "desired": 200_000_000} in event["changes"]


# --- export -------------------------------------------------------------------------------


def test_export_writes_what_plan_reads_back_with_no_change(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    server = ["--server", nats_server.url, "--log-format", "json"]
    assert run(capsys, "apply", str(manifest(tmp_path, extra="max_age: 90061s\n")), *server,
               "--no-lease")[0] == 0
    code, out, err = run(capsys, "export", "--stream", "events", *server)
    assert (code, err) == (0, "")
    header, body = out.split("name: events\n")
    assert header.startswith(f"# Exported by jetstream-reconciler from {nats_server.url} at ")
    assert body == 'subjects: [events.*]\nmax_msgs: 10\nmax_age: 1d1h1m1s\n'

    out_dir = tmp_path / "exported"
    code, out, err = run(capsys, "export", "--all", "--out", str(out_dir), *server)
    assert (code, out, err) == (0, f"1 stream exported to {out_dir} (events.yaml).\n", "")
    assert run(capsys, "plan", "--detailed-exitcode", str(out_dir), *server)[0] == 0

    # a second export into the same place writes nothing, and says what to do instead
    (out_dir / "events.yaml").write_text("# edited\n" + (out_dir / "events.yaml").read_text())
    code, out, err = run(capsys, "export", "--all", "--out", str(out_dir), *server)
    assert (code, out) == (1, "")
    assert err == (f"error: {out_dir / 'events.yaml'} already exists; nothing was written. "
                   "Export to a new directory (--out DIR), or to standard output (--out -) to "
                   "compare, move the files away, or add --overwrite to replace them\n")
    assert (out_dir / "events.yaml").read_text().startswith("# edited\n")
    assert run(capsys, "export", "--all", "--out", str(out_dir), "--overwrite", *server)[0] == 0
    assert (out_dir / "events.yaml").read_text().startswith("# Exported by")


def test_export_json_for_programs(tmp_path: Path, nats_server: NatsServer, capsys: Any) -> None:
    server = ["--server", nats_server.url, "--log-format", "json"]
    assert run(capsys, "apply", str(manifest(tmp_path)), *server, "--no-lease")[0] == 0
    code, out, _ = run(capsys, "export", "--all", "-o", "json", *server)
    assert code == 0
    body = json.loads(out)
    assert body["streams"] == [{"name": "events", "subjects": ["events.*"], "max_msgs": 10}]
    assert body["server"]["url"] == nats_server.url and body["errors"] == []
    code, out, err = run(capsys, "export", "--all", "-o", "json", "--out", str(tmp_path),
                         *server)
    assert (code, out) == (1, "")
    assert err.endswith("\nError: --output json prints one document to standard output: give "
                        "--out - (manifests in a directory are YAML)\n")


@pytest.mark.parametrize(("args", "said"), [
    ((), "error: say which streams to export: --stream NAME (once per stream) or --all\n"),
    (("--stream", "nope"), "error: no stream named nope on the server; nothing was exported "
                           "(the server has 0 streams)\n"),
])
def test_export_says_what_to_choose(args: tuple[str, ...], said: str, nats_server: NatsServer,
                                    capsys: Any) -> None:
    code, out, err = run(capsys, "export", *args, "--server", nats_server.url,
                         "--log-format", "json")
    assert (code, out, err) == (1, "", said)


def test_bad_manifest_changes_nothing_on_a_live_server(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    # connected and listed while the manifests were read, the apply still writes nothing
    good = manifest(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: other\nretention: forever\n")
    code, _, err = run(capsys, "apply", str(tmp_path), "--server", nats_server.url)
    assert code == 1 and "unknown value 'forever'" in err
    code, out, _ = run(capsys, "plan", str(good), "--server", nats_server.url,
                       "--detailed-exitcode")
    assert code == 2 and "to create" in out
