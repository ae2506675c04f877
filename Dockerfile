# syntax=docker/dockerfile:1
# modelfleet operator image: ghcr.io/modelfleet/modelfleet:<appVersion>
#
#   docker build -t ghcr.io/modelfleet/modelfleet:0.1.0 .
#
# Both stages use the same slim Python base, pinned by tag and digest (multi-arch index).
# To move to a newer patch release: docker buildx imagetools inspect python:3.11-slim-bookworm

# --- builder: build the modelfleet wheel and wheels for all its dependencies ----------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# Every dependency ships a manylinux wheel for CPython 3.11; --only-binary keeps it that
# way (a missing wheel fails here instead of needing a compiler).
RUN pip wheel --wheel-dir /wheels --only-binary=:all: --no-binary=modelfleet .

# --- final: the wheels installed into a clean base, nothing else -----------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

LABEL org.opencontainers.image.title="modelfleet" \
      org.opencontainers.image.description="Kubernetes operator that runs fleets of self-hosted vLLM servers" \
      org.opencontainers.image.source="https://github.com/modelfleet/modelfleet" \
      org.opencontainers.image.licenses="Apache-2.0"

# Read-only root filesystem: no .pyc writes at run time (they are compiled at install),
# unbuffered logs, and HOME on the /tmp emptyDir for anything that insists on a home.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp

# Install from the builder's wheels only (no index, no sdists, so no compiler needed),
# compile bytecode now, then drop pip: the image never installs anything at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --compile modelfleet \
 && pip uninstall --yes pip setuptools wheel

USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["modelfleet", "run"]
