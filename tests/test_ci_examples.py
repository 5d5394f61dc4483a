"""The CI examples under examples/ci are valid workflow files, and every
`jetstream-reconciler` command in them runs as written against a real server, on a copy of
the repository's config/.

The schemas are schemastore's, as vendored by check-jsonschema (`vendor.github-workflows`,
`vendor.gitlab-ci`): no network is needed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.report import MARKDOWN_MARKER
from reconciler.testing import NatsServer, free_port
from tests.repo import ROOT, committed_copy

EXAMPLES = ROOT / "examples" / "ci"
GITHUB = EXAMPLES / "github-actions.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}
BIN = Path(sys.executable).parent
CHECK = [str(BIN / "check-jsonschema")]

#: what the CI systems would put in the environment
CI_ENV = {
    "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/streams",
    "GITHUB_SHA": "0123abc", "CI_PROJECT_URL": "https://gitlab.example.com/acme/streams",
    "CI_COMMIT_SHA": "0123abc",
}
LINKS = {GITHUB: "https://github.com/acme/streams/blob/0123abc/config/events.yaml#L",
         GITLAB: "https://gitlab.example.com/acme/streams/-/blob/0123abc/config/events.yaml#L"}


def scripts(path: Path) -> list[tuple[str, str]]:
    """(job or step name, shell script) in the order the file lists them."""
    document = yaml.safe_load(path.read_text())
    out: list[tuple[str, str]] = []
    if path == GITHUB:
        for job, body in document["jobs"].items():
            for step in body["steps"]:
                if "run" in step:
                    out.append((f"{job}/{step.get('name', '')}", step["run"]))
        return out
    before = document.get("default", {}).get("before_script", [])
    for job, body in document.items():
        if isinstance(body, dict) and "script" in body:
            out.append((job, "\n".join([*body.get("before_script", before),
                                        *body["script"]])))
    return out


def commands(path: Path) -> list[str]:
    """Every `jetstream-reconciler ...` invocation, as a shell command line (continuation
    lines joined; a trailing `|| ...` that records the exit code left off)."""
    found = []
    for _, script in scripts(path):
        for line in script.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("jetstream-reconciler "):
                found.append(line.split(" || ")[0])
    return found


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_is_a_valid_workflow_file(path: Path, tmp_path: Path) -> None:
    check = subprocess.run([*CHECK, "--builtin-schema", SCHEMAS[path], str(path)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    # and the check can fail: a misspelt key in a job is refused
    document = yaml.safe_load(path.read_text())
    job = document["apply"] if path == GITLAB else document["jobs"]["apply"]
    job["concurency"] = job.pop("resource_group" if path == GITLAB else "concurrency")
    broken = tmp_path / path.name
    broken.write_text(yaml.safe_dump(document))
    check = subprocess.run([*CHECK, "--builtin-schema", SCHEMAS[path], str(broken)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1, check.stdout


def _env(server: str, **extra: str) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
            "NATS_URL": server, **CI_ENV, **extra}


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_every_command_runs(path: Path, nats_server: NatsServer, tmp_path: Path) -> None:
    work = committed_copy(tmp_path, "config")
    found = commands(path)
    assert [shlex.split(c)[1] for c in found] == ["validate", "plan", "apply"], found
    env = _env(nats_server.url)
    for command in found:
        run = _bash(command, work, env)
        expected = {0, 2} if "--detailed-exitcode" in command else {0}  # 2: changes pending
        assert run.returncode in expected, f"{command}\n{run.stdout}{run.stderr}"
        if " plan " in f" {command} ":
            plan = (work / "plan.md").read_text()
            assert plan.startswith(MARKDOWN_MARKER + "\n") and "To create (1)" in plan
            assert f"]({LINKS[path]}" in plan
    assert "0 failed" in run.stdout and "1 created" in run.stdout  # the apply


def test_the_github_comment_step_finds_comments_by_the_plans_marker() -> None:
    (comment,) = [s for name, s in scripts(GITHUB) if name == "plan/Comment"]
    assert f"marker='{MARKDOWN_MARKER}'" in comment


def _plan_step(path: Path) -> str:
    """The plan job's script without the step that posts the comment (it needs GitHub or
    GitLab): what decides the job's outcome."""
    if path == GITHUB:
        return dict(scripts(GITHUB))["plan/Plan"]
    document = yaml.safe_load(GITLAB.read_text())
    return "\n".join(line for line in document["plan"]["script"]
                     if not line.startswith("python3"))


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
@pytest.mark.parametrize(("manifest", "code"), [
    ("name: events\nsubjects: [\"events.*\"]\n", 2),                # pending: passes
    ("name: events\nsubjects: [\"events.*\"]\nnum_replicas: 3\n", 3),  # blocked: fails
])
def test_the_plan_job_fails_on_blocked_changes(
    path: Path, manifest: str, code: int, nats_server: NatsServer, tmp_path: Path
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "events.yaml").write_text(manifest)
    outputs = tmp_path / "github_output"
    env = _env(nats_server.url, GITHUB_OUTPUT=str(outputs),
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary"))
    run = _bash(_plan_step(path), tmp_path, env)
    plan = (tmp_path / "plan.md").read_text()
    if path == GITHUB:  # the plan step records the code; a later step fails on 3
        assert run.returncode == 0, run.stderr
        assert outputs.read_text() == f"code={code}\n"
        assert (tmp_path / "summary").read_text() == plan
    else:
        assert run.returncode == (1 if code == 3 else 0), run.stderr
    assert ("Blocked (1)" in plan) == (code == 3)


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_the_plan_job_fails_when_the_server_cannot_be_reached(
    path: Path, tmp_path: Any
) -> None:
    committed_copy(tmp_path, "config")
    env = _env(f"nats://127.0.0.1:{free_port()}", GITHUB_OUTPUT=str(tmp_path / "out"),
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary"))
    run = _bash(_plan_step(path), tmp_path, env)
    assert run.returncode == 1 and "connection refused" in run.stderr, run.stderr
