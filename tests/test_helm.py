"""Acceptance tests of the Helm chart (helm/jetstream-reconciler).

The chart is rendered by Helm's own engine (Helm v4 through the ``helm-python-sdk``
wheel: ``Chart.load`` / ``Chart.render`` / ``lint``, offline, no helm binary, no
cluster), values.schema.json included, and every rendered object is validated
against the Kubernetes OpenAPI schemas with ``kubernetes-validate`` in strict mode
(unknown fields are errors). The ServiceMonitor is a CRD those schemas lack, so
its fields are checked by hand instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "jetstream-reconciler"
HOST_CHART = Path(__file__).resolve().parent / "charts" / "sidecar-host"
KUBERNETES_VERSION = "1.34.0"
RELEASE, NAMESPACE = "streams", "messaging"
FULLNAME = "streams-jetstream-reconciler"

Manifest = dict[str, Any]


# --- rendering --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def host_chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[helm.Chart]:
    """tests/charts/sidecar-host with this chart as its (aliased) dependency in charts/."""
    root = tmp_path_factory.mktemp("host") / "sidecar-host"
    shutil.copytree(HOST_CHART, root)
    shutil.copytree(CHART, root / "charts" / "jetstream-reconciler")
    with helm.Chart.load(root) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> dict[str, Manifest]:
    """Render like `helm install streams --namespace messaging`; objects keyed "Kind/name".

    Every object is validated against the Kubernetes schemas on the way.
    """
    rendered = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: dict[str, Manifest] = {}
    for template, text in rendered.items():
        if template.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            validate(document, template)
            key = f"{document['kind']}/{document['metadata']['name']}"
            assert key not in objects, f"{key} rendered twice"
            objects[key] = document
    return objects


def notes(chart: helm.Chart, values: dict[str, Any] | None = None) -> str:
    rendered = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return next(text for template, text in rendered.items() if template.endswith("NOTES.txt"))


def validate(document: Manifest, template: str) -> None:
    if document["kind"] in ("ServiceMonitor", "PodMonitor"):
        # CRDs: no OpenAPI schema ships for them; the metrics tests check their fields.
        assert document["apiVersion"] == "monitoring.coreos.com/v1"
        return
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        pytest.fail(f"{template}: {document['kind']} is invalid at {path}: {error.message}")


def render_error(chart: helm.Chart, values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return str(caught.value)


# --- reading the pod --------------------------------------------------------------------


def pod_spec(objects: dict[str, Manifest], kind: str = "Deployment") -> Manifest:
    (workload,) = (o for o in objects.values() if o["kind"] == kind)
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def container(spec: Manifest, name: str = "jetstream-reconciler") -> Manifest:
    (found,) = (c for c in spec["containers"] if c["name"] == name)
    return found


def volume(spec: Manifest, name: str) -> Manifest:
    (found,) = (v for v in spec.get("volumes", []) if v["name"] == name)
    return found


def mount(c: Manifest, name: str) -> Manifest:
    (found,) = (m for m in c.get("volumeMounts", []) if m["name"] == name)
    return found


def flag(c: Manifest, name: str) -> str:
    """The value following `name` in the container's args (which the test requires once)."""
    args: list[str] = c["args"]
    assert args.count(name) == 1, f"{name} appears {args.count(name)} times in {args}"
    return args[args.index(name) + 1]


def watched_paths(c: Manifest) -> list[str]:
    """The positional arguments at the end of `watch ... PATH...`."""
    args: list[str] = c["args"]
    paths = []
    for arg in reversed(args):
        if not arg.startswith("/"):
            break
        paths.insert(0, arg)
    return paths


def assert_hardened(c: Manifest, uid: int = 65532) -> None:
    context = c["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == uid
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def assert_no_secret_material(objects: dict[str, Manifest]) -> None:
    """Secrets reach the pod as mounted files only: no env from secrets, no secret-looking flags."""
    for key, document in objects.items():
        text = yaml.safe_dump(document)
        assert "secretKeyRef" not in text, key
        assert "NATS_PASSWORD" not in text and "NATS_TOKEN" not in text, key
        for c in document.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for forbidden in ("--password", "--token"):
                assert forbidden not in c.get("args", []), f"{key}: {c['name']} passes {forbidden}"


def unreadable_secret_files(spec: Manifest, c: Manifest) -> list[str]:
    """The Secret volumes mounted in `c` whose files its user cannot read.

    The kubelet writes a Secret volume's files owned by root, in the group of the pod's
    fsGroup when it has one (root's otherwise), with the volume's mode.
    """
    pod = spec.get("securityContext", {})
    own = c.get("securityContext", {})
    uid = own.get("runAsUser", pod.get("runAsUser", 0))
    fs_group = pod.get("fsGroup")
    groups = {own.get("runAsGroup", pod.get("runAsGroup", uid)), fs_group,
              *pod.get("supplementalGroups", [])}
    unreadable = []
    for m in c.get("volumeMounts", []):
        secret = volume(spec, m["name"]).get("secret")
        if secret is None:
            continue
        for item in secret.get("items", [{"path": "*"}]):
            mode = item.get("mode", secret.get("defaultMode", 0o644))
            group = fs_group if fs_group is not None else 0
            if not (uid == 0 or mode & 0o004 or (mode & 0o040 and group in groups)):
                unreadable.append(f"{m['mountPath']}/{item['path']} (mode {mode:o})")
    return unreadable


STREAMS = [
    {
        "name": "events",
        "subjects": ["events.*"],
        "storage": "file",
        "max_msgs": 10,
        "max_bytes": "300B",
        "reconcile": {"allow_data_loss": False, "drift": "enforce"},
    },
    {"name": "orders", "subjects": ["orders.>"], "storage": "memory", "num_replicas": 1},
]


# --- lint -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        None,
        {"streams": STREAMS, "metrics": {"serviceMonitor": {"enabled": True}}},
        {"gitSync": {"enabled": True, "repo": "https://git.example/streams.git"}},
        {
            "streams": {"events": {"subjects": ["events.*"]}},
            "metrics": {"podMonitor": {"enabled": True}},
            "networkPolicy": {"enabled": True, "from": [{"podSelector": {}}]},
        },
    ],
    ids=["defaults", "streams-and-metrics", "git-sync", "map-podmonitor-networkpolicy"],
)
def test_chart_lints_clean_in_strict_mode(values: dict[str, Any] | None) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.34.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_sidecar_host_chart_lints_clean(tmp_path: Path) -> None:
    # lint() takes a path: the fixture's unpacked copy, with the dependency in charts/.
    root = tmp_path / "sidecar-host"
    shutil.copytree(HOST_CHART, root)
    shutil.copytree(CHART, root / "charts" / "jetstream-reconciler")
    report = helm.lint(root, strict=True, with_subcharts=True, kube_version="v1.34.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


# --- standalone -----------------------------------------------------------------------


def test_defaults(chart: helm.Chart) -> None:
    objects = render(chart)
    assert sorted(objects) == [f"ConfigMap/{FULLNAME}-manifests", f"Deployment/{FULLNAME}"]

    deployment = objects[f"Deployment/{FULLNAME}"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    template = deployment["spec"]["template"]
    # The reconciler watches the mounted files: no checksum annotation, no restarts.
    assert not any(k.startswith("checksum/") for k in template["metadata"]["annotations"])

    spec = template["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert [c["name"] for c in spec["containers"]] == ["jetstream-reconciler"]
    reconciler = container(spec)
    assert_hardened(reconciler)
    assert reconciler["image"] == "ghcr.io/jetstream-reconciler/jetstream-reconciler:0.1.0"
    assert reconciler["args"][0] == "watch"
    assert flag(reconciler, "--server") == "nats://nats:4222"
    assert flag(reconciler, "--log-format") == "json"
    assert flag(reconciler, "--log-level") == "info"
    assert flag(reconciler, "--resync") == "60s"
    assert flag(reconciler, "--concurrency") == "32"
    assert flag(reconciler, "--http-port") == "8081"
    # the CLI defaults to loopback: the probes and Prometheus need the pod's address
    assert flag(reconciler, "--http-host") == "0.0.0.0"
    assert "--allow-data-loss" not in reconciler["args"]
    assert flag(reconciler, "--owner") == "default"
    assert "--prune" not in reconciler["args"]
    assert watched_paths(reconciler) == ["/config"]

    assert reconciler["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"}]
    assert reconciler["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert reconciler["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert mount(reconciler, "reconciler-manifests") == {
        "name": "reconciler-manifests",
        "mountPath": "/config",
        "readOnly": True,
    }
    assert volume(spec, "reconciler-manifests")["configMap"] == {"name": f"{FULLNAME}-manifests"}
    assert objects[f"ConfigMap/{FULLNAME}-manifests"]["data"] == {}
    assert_no_secret_material(objects)


def test_every_cli_setting_comes_from_values(chart: helm.Chart) -> None:
    values = {
        "nats": {"url": "nats://a.nats:4222,nats://b.nats:4222"},
        "logging": {"format": "console", "level": "debug"},
        "reconcile": {"resync": "5m", "allowDataLoss": True, "concurrency": 4,
                      "owner": "team-a",
                      "prune": {"enabled": True, "grace": "10m", "maxDeletes": 3}},
        "http": {"port": 9090, "host": "::"},
        "extraArgs": ["--some-future-flag"],
        "image": {"digest": "sha256:" + "a" * 64},
    }
    reconciler = container(pod_spec(render(chart, values)))
    assert flag(reconciler, "--server") == "nats://a.nats:4222,nats://b.nats:4222"
    assert flag(reconciler, "--log-format") == "console"
    assert flag(reconciler, "--log-level") == "debug"
    assert flag(reconciler, "--resync") == "5m"
    assert flag(reconciler, "--concurrency") == "4"
    assert flag(reconciler, "--http-port") == "9090"
    assert flag(reconciler, "--http-host") == "::"
    assert "--allow-data-loss" in reconciler["args"]
    assert flag(reconciler, "--owner") == "team-a"
    assert "--prune" in reconciler["args"]
    assert flag(reconciler, "--prune-grace") == "10m"
    assert flag(reconciler, "--max-deletes") == "3"
    assert reconciler["args"][-2:] == ["--some-future-flag", "/config"]
    assert reconciler["ports"][0]["containerPort"] == 9090
    assert reconciler["image"].endswith("@sha256:" + "a" * 64)


def test_http_port_zero_turns_off_port_and_probes(chart: helm.Chart) -> None:
    reconciler = container(pod_spec(render(chart, {"http": {"port": 0}})))
    assert flag(reconciler, "--http-port") == "0"
    assert "ports" not in reconciler
    assert "livenessProbe" not in reconciler and "readinessProbe" not in reconciler


@pytest.mark.parametrize("shape", ["list", "map"])
def test_inline_streams_render_one_file_per_stream(chart: helm.Chart, shape: str) -> None:
    streams: Any = STREAMS
    if shape == "map":
        streams = {s["name"]: {k: v for k, v in s.items() if k != "name"} for s in STREAMS}
    objects = render(chart, {"streams": streams})
    data = objects[f"ConfigMap/{FULLNAME}-manifests"]["data"]
    assert sorted(data) == ["events.yaml", "orders.yaml"]
    assert yaml.safe_load(data["events.yaml"]) == STREAMS[0]
    assert yaml.safe_load(data["orders.yaml"]) == STREAMS[1]
    assert data["events.yaml"].startswith('name: "events"\n'), "the name leads the file"
    spec = pod_spec(objects)
    assert volume(spec, "reconciler-manifests")["configMap"]["name"] == f"{FULLNAME}-manifests"


def test_existing_configmap_is_mounted_and_none_rendered(chart: helm.Chart) -> None:
    objects = render(chart, {"manifests": {"existingConfigMap": "my-streams"}})
    assert not any(o["kind"] == "ConfigMap" for o in objects.values())
    spec = pod_spec(objects)
    assert volume(spec, "reconciler-manifests")["configMap"] == {"name": "my-streams"}
    assert watched_paths(container(spec)) == ["/config"]


# --- credentials -------------------------------------------------------------------------

CREDENTIALS = {
    "creds": ({"credsKey": "reconciler.creds"}, ["--creds"], "reconciler.creds", "nats.creds"),
    "nkey": ({"nkeyKey": "seed.nk"}, ["--nkey"], "seed.nk", "nkey.seed"),
    "user-password": (
        {"user": "reconciler", "passwordKey": "password"},
        ["--password-file"],
        "password",
        "password",
    ),
    "token": ({"tokenKey": "token"}, ["--token-file"], "token", "token"),
}


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_credentials_are_mounted_files_from_the_secret(chart: helm.Chart, kind: str) -> None:
    auth, flags, key, file = CREDENTIALS[kind]
    objects = render(chart, {"auth": {"existingSecret": "nats-reconciler", **auth}})
    spec = pod_spec(objects)
    reconciler = container(spec)
    for name in flags:
        assert flag(reconciler, name) == f"/etc/jetstream-reconciler/auth/{file}"
    if kind == "user-password":
        assert flag(reconciler, "--user") == "reconciler"
    assert mount(reconciler, "reconciler-auth") == {
        "name": "reconciler-auth",
        "mountPath": "/etc/jetstream-reconciler/auth",
        "readOnly": True,
    }
    assert volume(spec, "reconciler-auth")["secret"] == {
        "secretName": "nats-reconciler",
        "defaultMode": 0o440,
        "items": [{"key": key, "path": file}],
    }
    other_flags = {"--creds", "--nkey", "--password-file", "--token-file", "--user"} - set(flags)
    if kind == "user-password":
        other_flags.discard("--user")
    assert not other_flags & set(reconciler["args"])
    assert "env" not in reconciler
    assert_no_secret_material(objects)


def test_tls_client_certificate_and_ca(chart: helm.Chart) -> None:
    values = {
        "nats": {"url": "tls://nats:4222"},
        "tls": {"enabled": True, "existingSecret": "mtls"},
    }
    objects = render(chart, values)
    spec = pod_spec(objects)
    reconciler = container(spec)
    assert flag(reconciler, "--server") == "tls://nats:4222"
    assert flag(reconciler, "--tls-cert") == "/etc/jetstream-reconciler/tls/tls.crt"
    assert flag(reconciler, "--tls-key") == "/etc/jetstream-reconciler/tls/tls.key"
    assert flag(reconciler, "--tls-ca") == "/etc/jetstream-reconciler/tls/ca.crt"
    assert mount(reconciler, "reconciler-tls")["readOnly"] is True
    assert volume(spec, "reconciler-tls")["secret"]["items"] == [
        {"key": "tls.crt", "path": "tls.crt"},
        {"key": "tls.key", "path": "tls.key"},
        {"key": "ca.crt", "path": "ca.crt"},
    ]
    assert_no_secret_material(objects)


def test_tls_with_only_a_ca(chart: helm.Chart) -> None:
    values = {"tls": {"enabled": True, "existingSecret": "ca", "certKey": "", "keyKey": ""}}
    reconciler = container(pod_spec(render(chart, values)))
    assert flag(reconciler, "--tls-ca") == "/etc/jetstream-reconciler/tls/ca.crt"
    assert "--tls-cert" not in reconciler["args"] and "--tls-key" not in reconciler["args"]


def test_values_have_no_place_for_a_secret_value(chart: helm.Chart) -> None:
    for values in (
        {"auth": {"password": "hunter2"}},
        {"auth": {"token": "s3cr3t"}},
        {"nats": {"url": "nats://user:hunter2@nats:4222"}},
    ):
        message = render_error(chart, values)
        assert "values don't meet the specifications of the schema" in message


# --- git-sync --------------------------------------------------------------------------


def test_git_sync_keeps_a_checkout_the_reconciler_watches(chart: helm.Chart) -> None:
    values = {
        "gitSync": {
            "enabled": True,
            "repo": "https://git.example/platform.git",
            "ref": "main",
            "subdir": "nats/streams",
            "period": "30s",
            "existingSecret": "git",
            "username": "bot",
            "passwordKey": "token",
        }
    }
    objects = render(chart, values)
    assert not any(o["kind"] == "ConfigMap" for o in objects.values()), "git replaces the values"
    spec = pod_spec(objects)
    assert [c["name"] for c in spec["containers"]] == ["jetstream-reconciler", "git-sync"]
    reconciler, git_sync = container(spec), container(spec, "git-sync")
    assert watched_paths(reconciler) == ["/git/current/nats/streams"]
    assert mount(reconciler, "reconciler-git") == {
        "name": "reconciler-git",
        "mountPath": "/git",
        "readOnly": True,
    }
    assert git_sync["image"].startswith("registry.k8s.io/git-sync/git-sync:v4.")
    assert git_sync["args"] == [
        "--repo=https://git.example/platform.git",
        "--ref=main",
        "--root=/git",
        "--link=current",
        "--period=30s",
        "--depth=1",
        "--username=bot",
        "--password-file=/etc/git-secret/password",
    ]
    assert mount(git_sync, "reconciler-git")["mountPath"] == "/git"
    assert "readOnly" not in mount(git_sync, "reconciler-git")
    assert mount(git_sync, "reconciler-git-secret")["readOnly"] is True
    assert volume(spec, "reconciler-git") == {"name": "reconciler-git", "emptyDir": {}}
    assert volume(spec, "reconciler-git-secret")["secret"]["items"] == [
        {"key": "token", "path": "password"}
    ]
    assert_hardened(git_sync, uid=65533)
    assert_no_secret_material(objects)


def test_git_sync_over_ssh_requires_known_hosts(chart: helm.Chart) -> None:
    base = {"enabled": True, "repo": "git@git.example:org/streams.git", "existingSecret": "git"}
    message = render_error(chart, {"gitSync": {**base, "sshKeyKey": "id_ed25519"}})
    assert "gitSync.knownHostsKey: an ssh key needs the server's host keys too" in message
    values = {"gitSync": {**base, "sshKeyKey": "id_ed25519", "knownHostsKey": "known_hosts"}}
    git_sync = container(pod_spec(render(chart, values)), "git-sync")
    assert "--ssh-key-file=/etc/git-secret/ssh" in git_sync["args"]
    assert "--ssh-known-hosts-file=/etc/git-secret/known_hosts" in git_sync["args"]


def test_git_sync_alongside_inline_streams_watches_both(chart: helm.Chart) -> None:
    values = {"streams": STREAMS, "gitSync": {"enabled": True, "repo": "https://g.example/r"}}
    reconciler = container(pod_spec(render(chart, values)))
    assert watched_paths(reconciler) == ["/config", "/git/current"]


# --- metrics -----------------------------------------------------------------------------


def test_metrics_service_and_service_monitor(chart: helm.Chart) -> None:
    values = {
        "metrics": {
            "serviceMonitor": {
                "enabled": True,
                "labels": {"release": "kube-prometheus-stack"},
                "interval": "15s",
            }
        }
    }
    objects = render(chart, values)
    service = objects[f"Service/{FULLNAME}-metrics"]
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8081, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = objects[f"Deployment/{FULLNAME}"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()

    monitor = objects[f"ServiceMonitor/{FULLNAME}"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]


def test_metrics_need_the_http_server(chart: helm.Chart) -> None:
    message = render_error(chart, {"http": {"port": 0}, "metrics": {"service": {"enabled": True}}})
    assert "http.port: metrics need the HTTP server" in message


def test_service_account_is_optional_and_tokenless(chart: helm.Chart) -> None:
    objects = render(chart, {"serviceAccount": {"create": True}})
    account = objects[f"ServiceAccount/{FULLNAME}"]
    assert account["automountServiceAccountToken"] is False
    spec = pod_spec(objects)
    assert spec["serviceAccountName"] == FULLNAME
    assert spec["automountServiceAccountToken"] is False


# --- sidecar ---------------------------------------------------------------------------


def test_sidecar_templates_in_another_charts_pod(host_chart: helm.Chart) -> None:
    values: dict[str, Any] = {
        "podSecurityContext": {"fsGroup": 65532},
        "reconciler": {
            "streams": STREAMS,
            "auth": {"existingSecret": "nats-reconciler", "credsKey": "reconciler.creds"},
        },
    }
    # The host pod's fsGroup is what lets uid 65532 read the 0440 credentials.
    bare = pod_spec(render(host_chart, {**values, "podSecurityContext": {}}), "StatefulSet")
    assert unreadable_secret_files(bare, container(bare)) == [
        "/etc/jetstream-reconciler/auth/nats.creds (mode 440)"
    ]
    objects = render(host_chart, values)
    # The subchart renders only the ConfigMap; the container runs in the host's pod.
    assert sorted(objects) == ["ConfigMap/streams-reconciler-manifests", "StatefulSet/streams-nats"]
    spec = pod_spec(objects, "StatefulSet")
    assert unreadable_secret_files(spec, container(spec)) == []
    assert [c["name"] for c in spec["containers"]] == ["nats", "jetstream-reconciler"]
    reconciler = container(spec)
    assert flag(reconciler, "--server") == "nats://127.0.0.1:4222"
    assert flag(reconciler, "--creds") == "/etc/jetstream-reconciler/auth/nats.creds"
    assert reconciler["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "reconciler"}
    assert flag(reconciler, "--http-host") == "0.0.0.0", "the kubelet probes the pod's address"
    assert "readinessProbe" not in reconciler, "a failing reconcile must not unready NATS"
    assert_hardened(reconciler)
    assert [v["name"] for v in spec["volumes"]] == [
        "data",
        "reconciler-manifests",
        "reconciler-auth",
    ]
    assert volume(spec, "reconciler-manifests")["configMap"]["name"] == (
        "streams-reconciler-manifests"
    )
    data = objects["ConfigMap/streams-reconciler-manifests"]["data"]
    assert sorted(data) == ["events.yaml", "orders.yaml"]
    assert_no_secret_material(objects)


def test_sidecar_with_git_sync_and_readiness_opt_in(host_chart: helm.Chart) -> None:
    values = {
        "reconciler": {
            "gitSync": {"enabled": True, "repo": "https://g.example/r", "subdir": "streams"},
            "sidecar": {"readinessProbe": True},
        }
    }
    objects = render(host_chart, values)
    assert sorted(objects) == ["StatefulSet/streams-nats"]
    spec = pod_spec(objects, "StatefulSet")
    assert [c["name"] for c in spec["containers"]] == ["nats", "jetstream-reconciler", "git-sync"]
    reconciler = container(spec)
    assert reconciler["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "reconciler"}
    assert watched_paths(reconciler) == ["/git/current/streams"]
    assert {"reconciler-git", "reconciler-git-tmp"} <= {v["name"] for v in spec["volumes"]}


def test_sidecar_port_collides_with_no_port_of_the_nats_pod(host_chart: helm.Chart) -> None:
    """The host pod listens on every port of the official nats chart; ours is another."""
    spec = pod_spec(render(host_chart, {"reconciler": {"sidecar": {"readinessProbe": True}}}),
                    "StatefulSet")
    ports = [p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])]
    assert sorted(ports) == [1883, 4222, 6222, 7222, 7422, 7777, 8080, 8081, 8222, 65432]
    assert container(spec)["ports"] == [
        {"name": "reconciler", "containerPort": 8081, "protocol": "TCP"}
    ]
    example = yaml.safe_load((CHART / "examples" / "nats-sidecar-values.yaml").read_text())
    assert example["podTemplate"]["patch"][0]["value"]["ports"] == container(spec)["ports"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "localhost", "::1", "[::1]"])
def test_loopback_http_host_is_refused_while_probes_are_on(chart: helm.Chart, host: str) -> None:
    assert render_error(chart, {"http": {"host": host}}).endswith(
        f"http.host: {host} is a loopback address, which probes.liveness and probes.readiness "
        "cannot reach from outside the pod; set http.host to 0.0.0.0 (or the pod's address), "
        "or turn them off"
    )


@pytest.mark.parametrize(
    ("values", "users"),
    [
        ({"probes": {"readiness": {"enabled": False}}}, "probes.liveness"),
        (
            {"probes": {"liveness": {"enabled": False}, "readiness": {"enabled": False}},
             "metrics": {"serviceMonitor": {"enabled": True}}},
            "metrics.serviceMonitor",
        ),
    ],
)
def test_loopback_http_host_names_what_cannot_reach_it(
    chart: helm.Chart, values: dict[str, Any], users: str
) -> None:
    message = render_error(chart, {**values, "http": {"host": "127.0.0.1"}})
    assert f"which {users} cannot reach from outside the pod" in message


def test_loopback_http_host_is_fine_without_probes_and_metrics(
    chart: helm.Chart, host_chart: helm.Chart
) -> None:
    off = {"liveness": {"enabled": False}, "readiness": {"enabled": False}}
    values = {"http": {"host": "127.0.0.1"}, "probes": off}
    assert flag(container(pod_spec(render(chart, values))), "--http-host") == "127.0.0.1"
    # the sidecar has no readiness probe unless asked: liveness is all that counts
    sidecar = {"http": {"host": "::1"}, "probes": {"liveness": {"enabled": False}}}
    spec = pod_spec(render(host_chart, {"reconciler": sidecar}), "StatefulSet")
    assert flag(container(spec), "--http-host") == "::1"
    assert "probes.readiness" in render_error(
        host_chart, {"reconciler": {**sidecar, "sidecar": {"readinessProbe": True}}})


def test_official_nats_chart_example_matches_the_sidecar_template(host_chart: helm.Chart) -> None:
    """examples/nats-sidecar-values.yaml is what the sidecar templates render, and valid."""
    example = yaml.safe_load((CHART / "examples" / "nats-sidecar-values.yaml").read_text())
    patch = example["podTemplate"]["patch"]
    assert [(op["op"], op["path"]) for op in patch] == [
        ("add", "/spec/containers/-"),
        ("add", "/spec/volumes/-"),
        ("add", "/spec/volumes/-"),
    ]
    # The names of `helm install streams ./helm/jetstream-reconciler --set deployment.enabled=false`
    # with the example's credentials
    auth = {"existingSecret": "nats-reconciler", "credsKey": "nats.creds"}
    values = {"reconciler": {"fullnameOverride": FULLNAME, "auth": auth}}
    spec = pod_spec(render(host_chart, values), "StatefulSet")
    assert patch[0]["value"] == container(spec)
    assert patch[1]["value"] == volume(spec, "reconciler-manifests")
    assert patch[1]["value"]["configMap"]["name"] == f"{FULLNAME}-manifests"
    assert patch[2]["value"] == volume(spec, "reconciler-auth")


# --- rejected values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"deployment": {"replicas": 2}}, "at '/deployment/replicas': maximum: got 2, want 1"),
        ({"logging": {"level": "verbose"}}, "at '/logging/level'"),
        ({"logging": {"format": "text"}}, "at '/logging/format'"),
        ({"http": {"port": 70000}}, "at '/http/port'"),
        ({"reconcile": {"resync": "60"}}, "at '/reconcile/resync'"),
        ({"reconcile": {"concurrency": 0}}, "at '/reconcile/concurrency'"),
        ({"reconcile": {"concurrency": 257}}, "at '/reconcile/concurrency'"),
        ({"reconcile": {"allowDataLoss": "yes"}}, "at '/reconcile/allowDataLoss'"),
        ({"streams": [{"subjects": ["a.*"]}]}, "missing property 'name'"),
        ({"auth": {"credKey": "x"}}, "additional properties 'credKey' not allowed"),
        ({"gitSync": {"subdir": "../etc"}}, "at '/gitSync/subdir'"),
        ({"replicaCount": 1}, "additional properties 'replicaCount' not allowed"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_schema_rejects_bad_values(chart: helm.Chart, values: dict[str, Any], where: str) -> None:
    message = render_error(chart, values)
    assert "values don't meet the specifications of the schema" in message
    assert where in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"auth": {"existingSecret": "s", "credsKey": "c", "tokenKey": "t"}},
            "auth: use one authentication method, not several (set: credsKey, tokenKey)",
        ),
        (
            {"auth": {"credsKey": "c"}},
            "auth.existingSecret: name the Secret that holds the key(s) set in auth (credsKey)",
        ),
        (
            {"auth": {"existingSecret": "s", "passwordKey": "p"}},
            "auth.user: auth.passwordKey is set, so write the user name in auth.user",
        ),
        (
            {"tls": {"enabled": True}},
            "tls.existingSecret: tls.enabled is true, so name the Secret",
        ),
        (
            {"tls": {"enabled": True, "existingSecret": "t", "keyKey": ""}},
            "tls.keyKey: tls.certKey is set, so name the Secret key holding the private key",
        ),
        (
            {"gitSync": {"enabled": True}},
            "gitSync.repo: gitSync.enabled is true, so write the repository URL",
        ),
        (
            {"streams": [{"name": "a"}, {"name": "a"}]},
            'streams[1].name: stream "a" is declared twice',
        ),
        (
            {"streams": {"a": {"name": "b"}}},
            'streams.a.name: "b" differs from its key',
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_inconsistent_values_fail_with_the_key_to_fix(
    chart: helm.Chart, values: dict[str, Any], expected: str
) -> None:
    assert expected in render_error(chart, values)


# --- NOTES.txt ----------------------------------------------------------------------------


def test_notes_show_how_to_see_drift_and_metrics(chart: helm.Chart) -> None:
    text = notes(chart, {"streams": STREAMS})
    assert (
        f"kubectl -n {NAMESPACE} logs deployment/{FULLNAME} -c jetstream-reconciler -f"
        " | grep drift_detected"
    ) in text
    assert f"kubectl -n {NAMESPACE} port-forward deployment/{FULLNAME} 8081:8081" in text
    assert "curl -s http://127.0.0.1:8081/metrics" in text
    assert "2 stream(s)" in text


# --- documentation ---------------------------------------------------------------------


def test_gitops_example_renders(chart: helm.Chart) -> None:
    values = yaml.safe_load((CHART / "examples" / "gitops-values.yaml").read_text())
    objects = render(chart, values)
    spec = pod_spec(objects)
    assert watched_paths(container(spec)) == ["/git/current/nats/streams"]
    assert flag(container(spec), "--creds") == "/etc/jetstream-reconciler/auth/nats.creds"
    assert f"ServiceMonitor/{FULLNAME}" in objects


def test_readme_values_example_renders(chart: helm.Chart) -> None:
    readme = (CHART / "README.md").read_text()
    block = readme.split("```yaml\n# my-values.yaml\n", 1)[1].split("```", 1)[0]
    objects = render(chart, yaml.safe_load(block))
    data = objects[f"ConfigMap/{FULLNAME}-manifests"]["data"]
    assert sorted(data) == ["events.yaml", "orders.yaml"]
    assert flag(container(pod_spec(objects)), "--server") == "nats://nats.messaging.svc:4222"


# --- the contract with the CLI ----------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        None,
        {
            "logging": {"format": "console", "level": "warning"},
            "reconcile": {"resync": "5m", "allowDataLoss": True, "concurrency": 256,
                          "owner": "team.a", "prune": {"enabled": True, "grace": "1h30m",
                                                       "maxDeletes": 0}},
            "http": {"port": 0},
        },
        *({"auth": {"existingSecret": "s", **auth}} for auth, *_ in CREDENTIALS.values()),
        {"tls": {"enabled": True, "existingSecret": "t"}},
        {"streams": STREAMS, "gitSync": {"enabled": True, "repo": "https://g.example/r"}},
    ],
    ids=["defaults", "settings", *CREDENTIALS, "tls", "git-sync"],
)
def test_the_cli_accepts_the_rendered_arguments(
    chart: helm.Chart, values: dict[str, Any] | None
) -> None:
    """The args the chart writes parse with the real `jetstream-reconciler watch` command."""
    from reconciler.cli import cli

    reconciler = container(pod_spec(render(chart, values)))
    command, *args = reconciler["args"]
    assert command == "watch"
    watch = cli.commands["watch"]
    with watch.make_context("watch", list(args)) as context:
        params = context.params
    assert list(params["paths"]) == watched_paths(reconciler)
    assert params["server"] == flag(reconciler, "--server")
    assert str(params["http_port"]) == flag(reconciler, "--http-port")
    assert params["allow_data_loss"] is ("--allow-data-loss" in args)
    assert params["prune"] is ("--prune" in args)
    assert params["owner"] == flag(reconciler, "--owner")
    for option in ("creds", "nkey", "password_file", "token_file", "tls_cert", "tls_key", "tls_ca"):
        name = "--" + option.replace("_", "-")
        assert params[option] == (flag(reconciler, name) if name in args else None)


# --- defaults a parent chart and the map form meet ---------------------------------------


@pytest.mark.parametrize("shape", ["list", "map"])
def test_streams_in_either_form_render_without_helm_warnings(
    chart: helm.Chart, host_chart: helm.Chart, capfd: pytest.CaptureFixture[str], shape: str
) -> None:
    """Helm warns ("Not a table") when a map replaces a list default, on every render."""
    streams: Any = STREAMS
    if shape == "map":
        streams = {s["name"]: {k: v for k, v in s.items() if k != "name"} for s in STREAMS}
    capfd.readouterr()
    render(chart, {"streams": streams})
    render(host_chart, {"reconciler": {"streams": streams}})
    assert capfd.readouterr().err == ""


def test_parent_charts_condition_key_enabled_is_accepted(host_chart: helm.Chart) -> None:
    """`condition: reconciler.enabled` in a parent's Chart.yaml puts `enabled` in our values."""
    objects = render(host_chart, {"reconciler": {"enabled": True, "streams": STREAMS}})
    assert "ConfigMap/streams-reconciler-manifests" in objects


@pytest.mark.parametrize("name", ["a.b", "orders.>", "a*", "a b", "a/b", "a\\b", "tab\tbed"])
def test_stream_names_as_map_keys_are_checked(chart: helm.Chart, name: str) -> None:
    message = render_error(chart, {"streams": {name: {"subjects": ["x.*"]}}})
    assert f"invalid propertyName {name!r}" in message or "invalid propertyName" in message, message


# --- PodMonitor (the sidecar's metrics) -----------------------------------------------------


def test_pod_monitor_scrapes_the_sidecar_in_the_host_pod(host_chart: helm.Chart) -> None:
    values = {
        "reconciler": {
            "metrics": {
                "podMonitor": {
                    "enabled": True,
                    "selector": {"app.kubernetes.io/name": "nats"},
                    "labels": {"release": "kube-prometheus-stack"},
                }
            }
        }
    }
    objects = render(host_chart, values)
    monitor = objects["PodMonitor/streams-reconciler"]
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "reconciler", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    pod = objects["StatefulSet/streams-nats"]["spec"]["template"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    ports = [p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])]
    assert "reconciler" in ports


def test_pod_monitor_of_the_standalone_pod_selects_it(chart: helm.Chart) -> None:
    objects = render(chart, {"metrics": {"podMonitor": {"enabled": True}}})
    monitor = objects[f"PodMonitor/{FULLNAME}"]
    pod_labels = objects[f"Deployment/{FULLNAME}"]["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "http"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"deployment": {"enabled": False}, "metrics": {"podMonitor": {"enabled": True}}},
            "metrics.podMonitor.selector: the reconciler runs in another chart's pod, so "
            "write that pod's labels (e.g. app.kubernetes.io/name: nats)",
        ),
        (
            {"http": {"port": 0}, "metrics": {"podMonitor": {"enabled": True}}},
            "http.port: metrics need the HTTP server",
        ),
    ],
    ids=["sidecar-without-selector", "no-http"],
)
def test_pod_monitor_needs_what_it_scrapes(
    chart: helm.Chart, values: dict[str, Any], expected: str
) -> None:
    assert expected in render_error(chart, values)


# --- NetworkPolicy ----------------------------------------------------------------------------


def test_network_policy_admits_only_the_allowed_sources_to_the_http_port(
    chart: helm.Chart,
) -> None:
    sources = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    objects = render(chart, {"networkPolicy": {"enabled": True, "from": sources}})
    policy = objects[f"NetworkPolicy/{FULLNAME}"]["spec"]
    pod_labels = objects[f"Deployment/{FULLNAME}"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress"], "egress (to NATS, git) is left alone"
    assert policy["ingress"] == [{"from": sources, "ports": [{"port": "http", "protocol": "TCP"}]}]


def test_network_policy_without_sources_or_port(chart: helm.Chart) -> None:
    open_port = render(chart, {"networkPolicy": {"enabled": True}})
    assert open_port[f"NetworkPolicy/{FULLNAME}"]["spec"]["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}]}
    ]
    closed = render(chart, {"networkPolicy": {"enabled": True}, "http": {"port": 0}})
    assert closed[f"NetworkPolicy/{FULLNAME}"]["spec"]["ingress"] == []
    assert not any(o["kind"] == "NetworkPolicy" for o in render(chart).values()), "off by default"


def test_network_policy_is_refused_for_the_sidecar(chart: helm.Chart) -> None:
    message = render_error(chart, {"deployment": {"enabled": False},
                                   "networkPolicy": {"enabled": True}})
    assert "networkPolicy.enabled: it would select only the standalone Deployment's pod" in message


# --- the official nats chart ----------------------------------------------------------------


def nats_chart_pod(values: dict[str, Any]) -> Manifest:
    """The pod spec the official nats chart (2.x) renders with `values`: its own pod
    template (no securityContext; nats, reloader; config and pid volumes), then
    podTemplate.merge (mergeOverwrite) and podTemplate.patch (JSON Patch) applied."""
    spec: Manifest = {
        "containers": [{"name": "nats", "image": "nats:2.12-alpine"},
                       {"name": "reloader", "image": "natsio/nats-server-config-reloader"}],
        "enableServiceLinks": False,
        "shareProcessNamespace": True,
        "volumes": [{"name": "config", "configMap": {"name": "nats-config"}},
                    {"name": "pid", "emptyDir": {}}],
    }
    pod: Manifest = {"metadata": {"labels": {"app.kubernetes.io/name": "nats"}}, "spec": spec}

    def merge(dst: Manifest, src: Manifest) -> None:
        for key, value in src.items():
            if isinstance(value, dict) and isinstance(dst.get(key), dict):
                merge(dst[key], value)
            else:
                dst[key] = value

    merge(pod, values.get("podTemplate", {}).get("merge", {}))
    for op in values.get("podTemplate", {}).get("patch", []):
        assert op["op"] == "add" and op["path"].endswith("/-"), op
        *parents, _ = op["path"].strip("/").split("/")
        target: Any = pod
        for part in parents:
            target = target[part]
        target.append(op["value"])
    return spec


def test_official_nats_chart_example_reads_its_credentials() -> None:
    """With credentials, the NATS pod needs the fsGroup that makes the 0440 files readable."""
    example = yaml.safe_load((CHART / "examples" / "nats-sidecar-values.yaml").read_text())
    spec = nats_chart_pod(example)
    reconciler = container(spec)
    assert flag(reconciler, "--creds") == "/etc/jetstream-reconciler/auth/nats.creds"
    assert unreadable_secret_files(spec, reconciler) == []
    assert spec["securityContext"] == {"fsGroup": 65532}
    bare = nats_chart_pod({"podTemplate": {"patch": example["podTemplate"]["patch"]}})
    assert unreadable_secret_files(bare, container(bare)) == [
        "/etc/jetstream-reconciler/auth/nats.creds (mode 440)"
    ], "without the fsGroup the check must fail"


def test_docs_name_the_nats_chart_version_in_use() -> None:
    for path in (CHART / "README.md", CHART / "examples" / "nats-sidecar-values.yaml"):
        text = path.read_text()
        assert "1.x" not in text, f"{path.name}: the official nats chart is 2.x"


def test_sidecar_notes_say_what_the_host_pod_needs(chart: helm.Chart) -> None:
    values = {
        "deployment": {"enabled": False},
        "auth": {"existingSecret": "nats-reconciler", "credsKey": "nats.creds"},
        "metrics": {"podMonitor": {"enabled": True,
                                   "selector": {"app.kubernetes.io/name": "nats"}}},
    }
    text = notes(chart, values)
    assert "mounted with mode 0440, readable through the group: give the\nhost pod " \
        "securityContext.fsGroup: 65532" in text
    assert 'in pods labelled {"app.kubernetes.io/name":"nats"}' in text
    assert f"PodMonitor {NAMESPACE}/{FULLNAME}" in text
    assert "fsGroup" not in notes(chart, {"deployment": {"enabled": False}})
