# jetstream-reconciler image: `docker build -t jetstream-reconciler .`
#
# No `# syntax=` line: the builder built into the engine reads this file, so a build needs no
# frontend image from a registry. The base image is pinned by digest; to build from another
# one (a local image, a mirror, a newer digest) pass it whole:
#   docker build --build-arg PYTHON_IMAGE=my/python:3.11-slim -t jetstream-reconciler .
# It must provide python3.11+ with pip on PATH (the builder) and python3 (the runtime).
# Refresh the digest with `docker buildx imagetools inspect python:3.11-slim-bookworm`.
#
# Two stages. The builder installs the package and its pinned dependencies
# (constraints.txt, the same pins the test suite runs with) into a virtualenv;
# the final stage copies only that virtualenv onto a clean slim Python.
#
# At run time the process writes nothing to disk, runs as a numeric non-root
# user and works with a read-only root filesystem. It watches /config, where
# the Helm chart (or `docker run -v ./config:/config:ro`) mounts the manifests.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_CONSTRAINT=/src/constraints.txt

# The venv gets no pip and no setuptools of its own (25 MB that the runtime never uses
# and scanners flag): the base image's pip installs into it from outside.
RUN python -m venv --without-pip /opt/venv

WORKDIR /src
# pip resolves every dependency against the pins; PIP_CONSTRAINT (above) pins
# the build backend in pip's isolated build environment as well.
COPY constraints.txt pyproject.toml README.md ./
COPY reconciler/ reconciler/
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir -c constraints.txt . \
    && python -m pip --python /opt/venv/bin/python check \
    && mkdir -p /rootfs/config


FROM ${PYTHON_IMAGE}

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="jetstream-reconciler" \
      org.opencontainers.image.description="Keeps NATS JetStream streams exactly as declared in YAML manifests: plan, apply, watch and heal drift." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JETSTREAM_RECONCILER_LOG_FORMAT=json \
    JETSTREAM_RECONCILER_HTTP_HOST=0.0.0.0

COPY --from=builder /opt/venv /opt/venv
# An empty /config, so that the default command names a directory that exists;
# mount the manifests over it.
COPY --from=builder /rootfs/config /config

# 65532 is the conventional "nonroot" id; no passwd entry is needed.
USER 65532:65532
WORKDIR /config

EXPOSE 8080

# The CLI serves /healthz, /readyz and /metrics on loopback by default; in the
# container they listen on every interface of its own network namespace (above),
# so that `docker run -p 8080:8080` and a Prometheus container reach them.
# Kubernetes ignores HEALTHCHECK (the chart declares probes); this serves
# `docker run` and Compose. It probes the port watch listens on: --http-port PORT or
# --http-port=PORT among the container's arguments (/proc/1/cmdline), else
# JETSTREAM_RECONCILER_HTTP_PORT, else 8080; port 0 turns HTTP off, so there is nothing to probe.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; a = open('/proc/1/cmdline', 'rb').read().decode().split(chr(0)); p = ([a[i + 1] for i, x in enumerate(a[:-1]) if x == '--http-port'] + [x[12:] for x in a if x.startswith('--http-port=')] + [os.environ.get('JETSTREAM_RECONCILER_HTTP_PORT', '8080')])[0]; p == '0' or urllib.request.urlopen('http://127.0.0.1:%s/healthz' % p, timeout=2)"]

ENTRYPOINT ["jetstream-reconciler"]
CMD ["watch", "/config"]
