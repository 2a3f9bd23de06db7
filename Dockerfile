# The recluster image: operator, node daemon (with redis-server and redis-sentinel), services
# rigger and service broker, one entrypoint `recluster <part>`. Plain Dockerfile syntax: the same
# file builds the published image (`docker build .`) and the local cluster's image (buildah, on a
# debootstrap base tagged as BASE_IMAGE; see docs/image.md).
#
# Engines (docs/image.md): Debian trixie's Redis 8.0 (redis-server, redis-sentinel, redis-tools: the
# default engine and the one sentinel for all), trixie's Valkey 8.1 (valkey-server), and Debian
# bookworm's Redis 7.0.15 redis-server, copied from a bookworm stage to /opt/engines/redis-7.0 for the
# databases created on it.

ARG BASE_IMAGE=docker.io/library/debian:trixie-slim
ARG REDIS70_BASE_IMAGE=docker.io/library/debian:bookworm-slim

# ---- redis70: bookworm's redis-server 7.0.15, the binary alone --------------------------------------
FROM ${REDIS70_BASE_IMAGE} AS redis70
ENV DEBIAN_FRONTEND=noninteractive
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && mkdir -p /stage/opt/engines/redis-7.0/bin \
 && cp /usr/bin/redis-server /stage/opt/engines/redis-7.0/bin/redis-server \
 && /stage/opt/engines/redis-7.0/bin/redis-server --version

# ---- deps: a virtualenv with the pinned dependencies ---------------------------------------------
FROM ${BASE_IMAGE} AS deps

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/recluster
WORKDIR /build

# Optional: a CA bundle file for pip, for builds behind a TLS-inspecting proxy. The local build mounts
# the host's bundle for RUN steps only; it is never part of a layer. Empty: pip's own CAs.
ARG PIP_CA_BUNDLE=

# From the lock file alone, so a source change reuses this layer. requirements/runtime.lock (made
# by scripts/lock-deps from pyproject.toml) pins every package of the tree, pip and the build backend
# setuptools included, with its hashes: a build next month installs the same files or fails.
# Wheels only: the image has no compiler, and a dependency that would need one should fail here.
COPY requirements/runtime.lock ./requirements/
RUN if [ -n "$PIP_CA_BUNDLE" ]; then export PIP_CERT="$PIP_CA_BUNDLE"; fi \
 && /opt/recluster/bin/pip install --only-binary=:all: --require-hashes -r requirements/runtime.lock

# ---- venv: what the image gets of it (no pip, no setuptools) ----------------------------------------
FROM deps AS venv
RUN /opt/recluster/bin/python3 -m pip uninstall --yes pip setuptools

# ---- project: the project installed over the dependencies; its own files staged under /stage ------
FROM deps AS project
# build arguments are per stage
ARG PIP_CA_BUNDLE=
# Every module is imported once with the image's Python (3.13; the host's tests run 3.11), so a
# module that only this Python refuses fails the build, not a pod.
# the build context is an allow-list, see .dockerignore. --no-build-isolation: the build backend is
# the locked setuptools installed in deps, so nothing unhashed is fetched here.
COPY . ./
RUN if [ -n "$PIP_CA_BUNDLE" ]; then export PIP_CERT="$PIP_CA_BUNDLE"; fi \
 && /opt/recluster/bin/pip install --no-deps --no-build-isolation . \
 && /opt/recluster/bin/pip check \
 && /opt/recluster/bin/recluster --version \
 && /opt/recluster/bin/python3 -c 'import importlib, pkgutil, recluster; \
[importlib.import_module(m.name) for m in pkgutil.walk_packages(recluster.__path__, "recluster.") \
 if not m.name.endswith("__main__")]' \
 && /opt/recluster/bin/python3 -c 'import importlib.metadata as md, os, shutil; \
dist = md.distribution("recluster"); \
paths = [os.path.normpath(str(dist.locate_file(f))) for f in dist.files]; \
[(os.makedirs(os.path.dirname("/stage" + p), exist_ok=True), shutil.copy2(p, "/stage" + p)) \
 for p in paths if os.path.isfile(p)]' \
 && test -x /stage/opt/recluster/bin/recluster

# ---- final: runtime packages, the virtualenv, a non-root user ---------------------------------------
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive
# policy-rc.d: Debian's redis packages must not start their services while the image is built.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      python3 \
      redis-sentinel \
      redis-server \
      redis-tools \
      valkey-server \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /var/log/apt/* /var/log/dpkg.log \
 && groupadd --gid 1001 recluster \
 && useradd --uid 1001 --gid 1001 --home-dir /var/lib/recluster --create-home --shell /usr/sbin/nologin recluster

# Redis 7.0.15 from bookworm: its shared libraries (jemalloc, lua 5.1, lzf, openssl 3, systemd) are
# those trixie's redis-server needs too; the RUN fails the build if one is missing.
COPY --from=redis70 /stage/opt/engines /opt/engines
RUN ! ldd /opt/engines/redis-7.0/bin/redis-server | grep -F 'not found' \
 && /opt/engines/redis-7.0/bin/redis-server --version | grep -F 'v=7.0.' \
 && /usr/bin/redis-server --version | grep -F 'v=8.0.' \
 && /usr/bin/valkey-server --version | grep -F 'v=8.1.'

# The same Debian python3 as in the deps stage, so the virtualenv's bin/python3 -> /usr/bin/python3
# holds. Two layers: the dependencies (reused while runtime.lock is unchanged) and the project's
# own files (small), so a source change rebuilds and re-imports little.
COPY --from=venv /opt/recluster /opt/recluster
COPY --from=project /stage/opt/recluster /opt/recluster

ENV PATH=/opt/recluster/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/recluster \
    RECLUSTER_NODE_ENGINES="/usr/bin/redis-server /opt/engines/redis-7.0/bin/redis-server /usr/bin/valkey-server" \
    RECLUSTER_NODE_CCS_SERVER=/opt/engines/redis-7.0/bin/redis-server
WORKDIR /var/lib/recluster
USER 1001
ENTRYPOINT ["/opt/recluster/bin/recluster"]
CMD ["--help"]

ARG VERSION=0.1.0
ARG SOURCE=https://github.com/recluster/recluster
LABEL org.opencontainers.image.title="recluster" \
      org.opencontainers.image.description="Redis Enterprise-style clusters on Kubernetes: operator, node daemon, services rigger, service broker" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
