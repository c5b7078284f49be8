# syntax=docker/dockerfile:1
# One image for every MutualMind role: `docker compose` picks the role by the command
# (`coordinator serve`, `node serve`, `dealer serve`, `cluster certs`, `admin ...`).
# Builds with Docker BuildKit and with podman/buildah 4.3 (which cannot parse heredoc RUN
# steps: keep every step a plain command).
#   docker build -t mutualmind:latest .
#   scripts/podman-setup.sh     # podman: a local Debian base image, torch from the wheel folder
# BASE_IMAGE: any Debian-like image with Python 3.11, pip and useradd on PATH.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Where torch comes from: the CPU index by default (the default wheel pulls several GB of
# CUDA libraries), or, with TORCH_WHEELS set, only a folder of wheels mounted into the
# build (`podman build -v /opt/wheels:/wheels:ro --build-arg TORCH_WHEELS=/wheels`).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_WHEELS=

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRPC_VERBOSITY=ERROR

WORKDIR /app

# torch first, pinned: 2.13.0 CPU (from the folder, only its own requirements from the index).
RUN if [ -n "$TORCH_WHEELS" ]; then \
        pip install --find-links "$TORCH_WHEELS" "torch==2.13.0+cpu"; \
    else \
        pip install --index-url "$TORCH_INDEX" torch==2.13.0; \
    fi
# CrypTen 0.4.1 declares the dead `sklearn` package and torchvision as requirements:
# install it without them; its real runtime needs are in pyproject.toml.
RUN pip install --no-deps crypten==0.4.1

# Dependencies change less often than code: install them from pyproject.toml alone (the
# README, which `pip install .` needs, comes later: editing it must not reinstall them).
COPY pyproject.toml ./
RUN python -c 'import subprocess, sys, tomllib; \
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
subprocess.check_call([sys.executable, "-m", "pip", "install", *deps])'

COPY README.md ./
COPY mutualmind ./mutualmind
COPY proto ./proto
COPY ledger ./ledger
COPY mpcnode ./mpcnode
COPY coordinator ./coordinator
COPY provider ./provider
RUN pip install --no-deps . && python -m mutualmind --help > /dev/null

# An unprivileged user; every volume mount point exists in the image and belongs to it,
# so fresh named volumes are created writable for it (/bundles/<member> for the
# `bundles` service: coordinator, dealer, admin and up to 32 nodes).
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin mutualmind \
    && mkdir -p /ca /certs /data /bundles/coordinator /bundles/dealer /bundles/admin \
    && for i in $(seq 0 31); do mkdir -p /bundles/node$i; done \
    && chown -R mutualmind /ca /certs /data /bundles
USER mutualmind
WORKDIR /data
# gRPC's default c-ares resolver fails compose service names ("dealer:7301: DNS query
# cancelled") when the network's DNS server answers late, as on a loaded host; the native
# resolver (getaddrinfo, with resolv.conf's timeouts and retries) does not.
ENV GRPC_DNS_RESOLVER=native

ENTRYPOINT ["mutualmind"]
CMD ["--help"]
