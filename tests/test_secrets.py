"""No secret leaves the process: a distinct secret is planted in every way a credential can
arrive, and every output is searched for it.

Channels: --password, --password-file, NATS_PASSWORD, --token, --token-file, NATS_TOKEN,
the password and the token in NATS_URL's user-info, a `nats` CLI context (password, token,
URL with user-info, nkey seed file, creds file), an nkey seed file, a creds file (a real
operator-mode server, JWTs signed here with `nkeys`), and a TLS client key file.

Each channel runs, against a real nats-server that demands that credential: validate,
--help, plan (text, JSON, Markdown), apply, plan against a server that refuses the
credential and against a closed port, and the watch daemon as a subprocess, once connected
and once refused, with /healthz, /readyz and /metrics scraped. stdout, stderr (JSON logs at
debug level) and the HTTP bodies are all searched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
import pytest
import structlog

from reconciler.cli import main
from reconciler.testing import NatsServer, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "name: events\nsubjects: ['events.*']\nmax_msgs: 10\n"
DEADLINE_S = 30.0


# --- credentials and the servers that demand them ----------------------------------------


def _seed(prefix: int) -> tuple[bytes, Any]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return seed, nkeys.from_seed(bytearray(seed))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(signer: Any, subject: str, kind: str, nats: dict[str, Any]) -> str:
    """A NATS JWT (v2) for `subject`, signed by `signer` (an nkeys key pair)."""
    claims: dict[str, Any] = {"iat": int(time.time()), "iss": signer.public_key.decode(),
                              "name": kind, "sub": subject,
                              "nats": {**nats, "type": kind, "version": 2}}
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    signed = _b64(b'{"typ":"JWT","alg":"ed25519-nkey"}') + "." + _b64(json.dumps(claims).encode())
    return signed + "." + _b64(signer.sign(signed.encode()))


def operator_mode(directory: Path) -> tuple[Path, Path, str]:
    """A server configuration in operator mode (memory resolver, JetStream for the account)
    and a creds file for a user of it; returns (config, creds, the user's seed)."""
    operator_seed, operator = _seed(nkeys.PREFIX_BYTE_OPERATOR)
    _, account = _seed(nkeys.PREFIX_BYTE_ACCOUNT)
    _, system = _seed(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, user = _seed(nkeys.PREFIX_BYTE_USER)
    del operator_seed
    every = {k: -1 for k in ("subs", "data", "payload", "imports", "exports", "conn", "leaf")}
    acc, sys_ = account.public_key.decode(), system.public_key.decode()
    op_jwt = directory / "operator.jwt"
    op_jwt.write_text(_jwt(operator, operator.public_key.decode(), "operator",
                           {"system_account": sys_}))
    account_jwt = _jwt(operator, acc, "account", {"limits": {
        **every, "wildcards": True, "mem_storage": -1, "disk_storage": -1, "streams": -1,
        "consumer": -1}})
    system_jwt = _jwt(operator, sys_, "account", {"limits": {**every, "wildcards": True}})
    user_jwt = _jwt(account, user.public_key.decode(), "user",
                    {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1})
    config = directory / "operator.conf"
    config.write_text(f'operator: "{op_jwt}"\nresolver: MEMORY\nsystem_account: {sys_}\n'
                      f'resolver_preload: {{ {acc}: "{account_jwt}", {sys_}: "{system_jwt}" }}\n')
    creds = directory / "user.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n" + user_jwt +
                     "\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n" +
                     user_seed.decode() + "\n------END USER NKEY SEED------\n")
    return config, creds, user_seed.decode()


def nkey_user(directory: Path) -> tuple[Path, Path, str]:
    """A server configuration with one nkey user, and that user's seed file."""
    seed, pair = _seed(nkeys.PREFIX_BYTE_USER)
    config = directory / "nkey.conf"
    config.write_text(f'authorization {{ users = [ {{ nkey: "{pair.public_key.decode()}" }} ] }}\n')
    seed_file = directory / "user.nk"
    seed_file.write_bytes(seed + b"\n")
    return config, seed_file, seed.decode()


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def tls_files(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test-ca",
            "-days", "2", cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", "san.ext",
                cwd=directory)
    return {n: directory / n for n in ("ca.crt", "server.crt", "server.key", "client.crt",
                                       "client.key")}


def pem_body(path: Path) -> tuple[str, ...]:
    """The base64 lines of a PEM file: each one is part of the secret."""
    return tuple(line for line in path.read_text().splitlines()
                 if line and not line.startswith("-----"))


@dataclass
class Channel:
    """One way a credential arrives. `connect(port, xdg)` gives the CLI arguments and
    environment that reach a server on `port` (writing a context file under `xdg`)."""

    name: str
    secrets: tuple[str, ...]
    server_args: tuple[str, ...]
    connect: Callable[[int, Path], tuple[list[str], dict[str, str]]]
    shown: tuple[str, ...] = ()
    """What the logs must show instead (the URL redacted): proof the URL was logged."""


def url(port: int, userinfo: str = "", scheme: str = "nats") -> str:
    return f"{scheme}://{userinfo}{'@' if userinfo else ''}127.0.0.1:{port}"


def context(xdg: Path, name: str, body: dict[str, str]) -> str:
    directory = xdg / "nats" / "context"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(body))
    return name


def make_channel(name: str, tmp: Path) -> Channel:
    """The channel `name`, with a fresh secret; files it needs are written under `tmp`."""
    secret = f"S3cret-{name}-{os.urandom(4).hex()}"
    user_pw = ("--user", "alice", "--pass", secret)
    token = ("--auth", secret)

    def file(text: str) -> str:
        path = tmp / f"{name}.secret"
        path.write_text(text + "\n")
        return str(path)

    if name == "password-flag":
        return Channel(name, (secret,), user_pw, lambda p, xdg: (
            ["--server", url(p), "--user", "alice", "--password", secret], {}))
    if name == "password-file":
        return Channel(name, (secret,), user_pw, lambda p, xdg: (
            ["--server", url(p), "--user", "alice", "--password-file", file(secret)], {}))
    if name == "password-env":
        return Channel(name, (secret,), user_pw, lambda p, xdg: (
            [], {"NATS_URL": url(p), "NATS_USER": "alice", "NATS_PASSWORD": secret}))
    if name == "token-flag":
        return Channel(name, (secret,), token, lambda p, xdg: (
            ["--server", url(p), "--token", secret], {}))
    if name == "token-file":
        return Channel(name, (secret,), token, lambda p, xdg: (
            ["--server", url(p), "--token-file", file(secret)], {}))
    if name == "token-env":
        return Channel(name, (secret,), token, lambda p, xdg: (
            [], {"NATS_URL": url(p), "NATS_TOKEN": secret}))
    if name == "url-password":
        return Channel(name, (secret,), user_pw, lambda p, xdg: (
            [], {"NATS_URL": url(p, f"alice:{secret}")}), shown=("nats://alice:***@127.0.0.1:",))
    if name == "url-token":
        # a list whose first server is down: each URL is named in an error
        return Channel(name, (secret,), token, lambda p, xdg: (
            [], {"NATS_URL": f"{url(free_port(), secret)},{url(p, secret)}"}),
            shown=("nats://***@127.0.0.1:",))
    if name == "context-password":
        return Channel(name, (secret,), user_pw, lambda p, xdg: (["--context", context(
            xdg, "pw", {"url": url(p), "user": "alice", "password": secret})], {}))
    if name == "context-token":
        return Channel(name, (secret,), token, lambda p, xdg: (
            [], {"NATS_CONTEXT": context(xdg, "tk", {"url": url(p), "token": secret})}))
    if name == "context-url":
        return Channel(name, (secret,), user_pw, lambda p, xdg: (["--context", context(
            xdg, "u", {"url": url(p, f"alice:{secret}")})], {}),
            shown=("nats://alice:***@127.0.0.1:",))
    if name in ("nkey-file", "context-nkey"):
        conf, seed_file, seed = nkey_user(tmp)
        if name == "nkey-file":
            return Channel(name, (seed,), ("-c", str(conf)), lambda p, xdg: (
                ["--server", url(p), "--nkey", str(seed_file)], {}))
        return Channel(name, (seed,), ("-c", str(conf)), lambda p, xdg: (["--context", context(
            xdg, "nk", {"url": url(p), "nkey": str(seed_file)})], {}))
    if name in ("creds-file", "context-creds"):
        conf, creds, seed = operator_mode(tmp)
        if name == "creds-file":
            return Channel(name, (seed,), ("-c", str(conf)), lambda p, xdg: (
                [], {"NATS_URL": url(p), "NATS_CREDS": str(creds)}))
        return Channel(name, (seed,), ("-c", str(conf)), lambda p, xdg: (["--context", context(
            xdg, "cr", {"url": url(p), "creds": str(creds)})], {}))
    assert name == "tls-key", name
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make TLS certificates")
    t = tls_files(tmp)
    return Channel(
        name, pem_body(t["client.key"]),
        ("--tlsverify", "--tlscert", str(t["server.crt"]), "--tlskey", str(t["server.key"]),
         "--tlscacert", str(t["ca.crt"])),
        lambda p, xdg: (["--server", url(p, scheme="tls"), "--tls-ca", str(t["ca.crt"]),
                    "--tls-cert", str(t["client.crt"]), "--tls-key", str(t["client.key"])], {}))


CHANNELS = ["password-flag", "password-file", "password-env", "token-flag", "token-file",
            "token-env", "url-password", "url-token", "context-password", "context-token",
            "context-url", "context-nkey", "context-creds", "nkey-file", "creds-file", "tls-key"]


# --- running the CLI ------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith(("NATS_", "JETSTREAM_RECONCILER_")):
            monkeypatch.delenv(key)
    yield
    structlog.reset_defaults()


class Outputs:
    """Everything the process said, by where it said it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> str:
        self.seen.append((where, text))
        return text

    def leaks(self, secrets: tuple[str, ...]) -> list[str]:
        return [f"{where}: {text[max(0, text.find(s) - 200):text.find(s) + 80]!r}"
                for where, text in self.seen for s in secrets if s in text]


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            outputs: Outputs, what: str, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    with monkeypatch.context() as m:
        for key, value in env.items():
            m.setenv(key, value)
        try:
            code = main(list(args))
        finally:
            structlog.reset_defaults()
    out, err = capsys.readouterr()
    outputs.add(f"{what} stdout", out)
    outputs.add(f"{what} stderr", err)
    return code, out, err


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Watch:
    """The daemon as a subprocess. `scrape()` waits until it is ready (or, `ready=False`, has
    logged that NATS refused it) and reads its endpoints; `terminate()` sends SIGTERM and
    `stop()` waits for the exit."""

    def __init__(self, config: Path, args: list[str], env: dict[str, str], log: Path) -> None:
        self.http = free_port()
        self.log = log
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("NATS_", "JETSTREAM_RECONCILER_"))}
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reconciler", "watch", str(config), *args,
                 "--http-port", str(self.http), "--log-format", "json", "--log-level", "debug"],
                env=base | env, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)

    def _there(self, ready: bool) -> bool:
        try:
            status, _ = get(self.http, "/readyz")
        except OSError:
            return False
        if ready:
            return status == 200
        return status == 503 and b"nats_unreachable" in self.log.read_bytes()

    def scrape(self, outputs: Outputs, what: str, *, ready: bool) -> dict[str, tuple[int, str]]:
        deadline = time.monotonic() + DEADLINE_S
        while not self._there(ready):
            assert self.proc.poll() is None, f"watch exited: {self.log.read_text()}"
            assert time.monotonic() < deadline, f"watch never got there: {self.log.read_text()}"
            time.sleep(0.05)
        bodies = {path: get(self.http, path) for path in ("/healthz", "/readyz", "/metrics")}
        for path, (_, body) in bodies.items():
            outputs.add(f"{what} GET {path}", body)
        return bodies

    def terminate(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self, outputs: Outputs, what: str) -> None:
        try:
            code = self.proc.wait(timeout=10)  # after terminate(): one SIGTERM is enough
        except subprocess.TimeoutExpired:
            code = stop_process(self.proc)
        assert self.proc.stdout is not None
        outputs.add(f"{what} stdout", self.proc.stdout.read().decode())
        self.proc.stdout.close()
        outputs.add(f"{what} stderr", self.log.read_text())
        assert code == 0, self.log.read_text()


@pytest.mark.parametrize("name", CHANNELS)
def test_no_secret_in_any_output(name: str, tmp_path: Path, clean_env: None,
                                 capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    channel = make_channel(name, tmp_path)
    config = tmp_path / "config"
    config.mkdir()
    (config / "events.yaml").write_text(MANIFEST)
    outputs = Outputs()
    server = NatsServer(tmp_path / "js", extra_args=channel.server_args).start()
    # A server that demands other credentials than the channel's.
    refusing = NatsServer(tmp_path / "js-refusing",
                          extra_args=("--user", "bob", "--pass", "not-the-secret")).start()
    try:
        def reach(port: int, xdg: str = "xdg") -> tuple[list[str], dict[str, str]]:
            """Arguments and environment (with a config directory of its own) to `port`."""
            args, env = channel.connect(port, tmp_path / xdg)
            return args, env | {"XDG_CONFIG_HOME": str(tmp_path / xdg)}

        args, env = reach(server.port)
        debug = ["--log-format", "json", "--log-level", "debug"]

        def cli(what: str, *extra: str, to: tuple[list[str], dict[str, str]] = (args, env)
                ) -> tuple[int, str, str]:
            return run_cli(capsys, monkeypatch, outputs, what, to[1], *extra, *to[0])

        for command in ("validate", "plan", "apply", "watch"):
            assert cli(f"{command} --help", command, "--help", to=([], env))[0] == 0
        assert cli("validate", "validate", str(config), to=([], env))[0] == 0
        code, out, err = cli("plan", "plan", str(config), *debug)
        assert code == 0 and out.startswith("+ events"), err
        for output in ("json", "markdown"):
            assert cli(f"plan {output}", "plan", "-o", output, str(config), *debug)[0] == 0
        code, out, err = cli("apply", "apply", str(config), *debug)
        assert code == 0 and "Apply: 1 created" in out, err
        code, _, err = cli("plan refused", "plan", str(config), *debug,
                           to=reach(refusing.port))
        assert code == 1 and err.strip(), err
        if name != "tls-key":
            assert "authorization violation" in err
        code, _, err = cli("plan unreachable", "plan", str(config), *debug,
                           to=reach(free_port()))
        assert code == 1 and "connection refused" in err, err

        # the daemon, connected and refused, side by side
        up = Watch(config, *reach(server.port), tmp_path / "watch.log")
        down = Watch(config, *reach(refusing.port, "refused"), tmp_path / "watch-refused.log")
        try:
            up_bodies = up.scrape(outputs, "watch", ready=True)
            down_bodies = down.scrape(outputs, "watch refused", ready=False)
        finally:
            up.terminate()
            down.terminate()
            up.stop(outputs, "watch")
            down.stop(outputs, "watch refused")
        assert up_bodies["/readyz"][0] == 200
        assert up_bodies["/readyz"][1].startswith("ready\nleader: this process (")
        assert "jetstream_reconciler_nats_connected 1.0" in up_bodies["/metrics"][1]
        assert down_bodies["/readyz"][1].startswith("not ready: not connected to NATS")
    finally:
        refusing.stop()
        server.stop()

    logs = "".join(text for where, text in outputs.seen if "stderr" in where)
    assert '"event": "watch_started"' in logs and '"event": "nats_connected"' in logs
    # no --http-host given: the unauthenticated endpoints are on loopback only
    assert '"host": "127.0.0.1", "port": ' in logs and '"0.0.0.0"' not in logs
    assert not outputs.leaks(channel.secrets), "\n".join(outputs.leaks(channel.secrets))
    for shown in channel.shown:
        assert shown in logs, f"the redacted URL {shown!r} is not in the logs"
