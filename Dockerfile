# syntax=docker/dockerfile:1
#
# jetstream-reconciler image: `docker build -t jetstream-reconciler .`
#
# Two stages. The builder installs the package and its pinned dependencies
# (constraints.txt, the same pins the test suite runs with) into a virtualenv;
# the final stage copies only that virtualenv onto a clean slim Python.
#
# At run time the process writes nothing to disk, runs as a numeric non-root
# user and works with a read-only root filesystem. It watches /config, where
# the Helm chart (or `docker run -v ./config:/config:ro`) mounts the manifests.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_CONSTRAINT=/src/constraints.txt

RUN python -m venv /opt/venv

WORKDIR /src
# pip resolves every dependency against the pins; PIP_CONSTRAINT (above) pins
# the build backend in pip's isolated build environment as well.
COPY constraints.txt pyproject.toml README.md ./
COPY reconciler/ reconciler/
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt . \
    && /opt/venv/bin/pip check \
    && mkdir -p /rootfs/config


FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="jetstream-reconciler" \
      org.opencontainers.image.description="Keeps NATS JetStream streams exactly as declared in YAML manifests: plan, apply, watch and heal drift." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

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
# `docker run` and Compose. It follows --http-port through the environment.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('JETSTREAM_RECONCILER_HTTP_PORT', '8080'), timeout=2)"]

ENTRYPOINT ["jetstream-reconciler"]
CMD ["watch", "/config"]
