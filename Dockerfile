# syntax=docker/dockerfile:1
# One image for every MutualMind role: `docker compose` picks the role by the command
# (`coordinator serve`, `node serve`, `dealer serve`, `cluster certs`, `admin ...`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRPC_VERBOSITY=ERROR

WORKDIR /app

# torch first, the CPU build (the default wheel pulls several GB of CUDA libraries).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
# CrypTen 0.4.1 declares the dead `sklearn` package and torchvision as requirements:
# install it without them; its real runtime needs are in pyproject.toml.
RUN pip install --no-deps crypten==0.4.1

# Dependencies change less often than code: install them from pyproject.toml alone.
COPY pyproject.toml README.md ./
RUN python - <<'PY'
import subprocess, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
subprocess.check_call([sys.executable, "-m", "pip", "install", *deps])
PY

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

ENTRYPOINT ["mutualmind"]
CMD ["--help"]
