#!/usr/bin/env bash
# Docker for the test suite, on a fresh machine or again (idempotent, seconds when done):
# Debian's docker.io, busybox-static, debootstrap; dockerd in the background on its unix socket
# plus a loopback tcp listener (the remote-engine tests); base images bootstrapped without a
# registry; the worker images built (cached layers make a rebuild quick), also for arm64 and
# armv7 under qemu user emulation where it is enabled (first time: minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
TCP_PORT=${WORKBENCH_DOCKER_TCP_PORT:-23750}

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg-query -W busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
if ((${#need[@]})); then
  echo "docker.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

engine_up() { "$PY" -c 'import docker; docker.from_env(timeout=5).ping()' >/dev/null 2>&1; }
if ! engine_up; then
  echo "docker.sh: starting dockerd (log: /tmp/dockerd.log)"
  nohup dockerd -H unix:///var/run/docker.sock -H "tcp://127.0.0.1:${TCP_PORT}" >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 60); do engine_up && break; sleep 1; done
  engine_up || { echo "docker.sh: dockerd did not start"; tail -20 /tmp/dockerd.log; exit 1; }
fi
DOCKER_HOST="tcp://127.0.0.1:${TCP_PORT}" "$PY" -c 'import docker; docker.from_env(timeout=5).ping()' >/dev/null 2>&1 \
  || echo "docker.sh: warning: no loopback tcp listener on port ${TCP_PORT} (restart dockerd with -H tcp://127.0.0.1:${TCP_PORT})"

"$PY" -m workbench images bootstrap
"$PY" -m workbench images build
# ARM images under qemu user emulation (.ci/run enables it; skipped where it is absent)
for platform in linux/arm64 linux/arm/v7; do
  if "$PY" -c 'import sys; from workbench.containers.emulation import emulation_problem as problem
from workbench.containers.imagemap import parse_platform
sys.exit(problem(parse_platform(sys.argv[1])) is not None)' "$platform"; then
    "$PY" -m workbench images bootstrap --platform "$platform"
    "$PY" -m workbench images build --platform "$platform"
  else
    echo "docker.sh: no qemu user emulation for $platform: its images are not built"
  fi
done
