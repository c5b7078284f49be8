#!/usr/bin/env bash
# Makes this machine able to build and run MutualMind's containers with podman, without
# Docker Hub, and builds the project's image. Idempotent; the compose test
# (tests/compose/) and `make test-compose` call it.
#
#   scripts/podman-setup.sh [--base-only]
#
# 1. installs podman 4.3 with runc (apt), configured for a cgroup v1 kernel without
#    systemd: runc + cgroupfs (crun refuses the hybrid cgroup layout), and the host's
#    file/process limits inherited (they are below podman's defaults here);
# 2. builds a base image, localhost/mm-python:3.11 (MM_BASE_IMAGE), from Debian's own
#    packages (debootstrap): Python 3.11 with pip in a venv on PATH, pip trusting the
#    host's CA bundle. ~45 s, once;
# 3. builds the project's image, mutualmind:latest (MM_IMAGE), from that base, with the
#    host's CA bundle mounted (pip reaches the package index through it) and torch from
#    the wheel folder pip's config names as find-links (`pip config get
#    global.find-links`), mounted at /wheels; without such a folder, from the CPU index.
# Started from ../shared/tools/podman-base.sh (whose checks by hand are repeated by the
# compose test); copied here because that folder is not there in every checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${MM_BASE_IMAGE:-localhost/mm-python:3.11}
image=${MM_IMAGE:-mutualmind:latest}
ca_bundle=/etc/ssl/certs/ca-certificates.crt

if ! command -v podman >/dev/null || ! command -v runc >/dev/null \
    || ! command -v debootstrap >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "podman-setup: podman is missing; run me as root to install it" >&2; exit 1; }
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<'CONF'
[containers]
# the hard file and process limits here are below podman's defaults: inherit them
default_ulimits = []
[engine]
# crun refuses this kernel's hybrid cgroup layout; runc with cgroupfs works
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
fi

if ! podman image exists "$base"; then
  # The Debian mirror this machine's apt already uses.
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" /bin/sh -c 'apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates >/dev/null && python3 -m venv /opt/venv && apt-get clean && rm -rf /var/lib/apt/lists/*'
  : > "$root/etc/resolv.conf"
  tar -C "$root" -c . | podman import \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV PIP_CERT=$ca_bundle" \
    --change 'CMD ["python"]' - "$base" >/dev/null
  podman run --rm "$base" python -c 'import sys; print("base image ok:", sys.version.split()[0])'
fi
[ "${1:-}" = "--base-only" ] && exit 0

build=(podman build --build-arg "BASE_IMAGE=$base" -t "$image")
[ -f "$ca_bundle" ] && build+=(-v "$ca_bundle:$ca_bundle:ro")
wheels=$(pip config get global.find-links 2>/dev/null || python3 -m pip config get global.find-links 2>/dev/null || true)
if [ -n "$wheels" ] && ls "$wheels"/torch-*.whl >/dev/null 2>&1; then
  build+=(-v "$wheels:/wheels:ro" --build-arg TORCH_WHEELS=/wheels)
fi
"${build[@]}" .
