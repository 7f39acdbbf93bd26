#!/usr/bin/env bash
# Installs every Debian package reslens builds, tests and benchmarks with (the README's first command
# and .ci/run call it). Needs root or sudo; does nothing that is already done. RESLENS_SKIP_DEPS=1
# skips it (a machine set up by other means).
set -euo pipefail
[ "${RESLENS_SKIP_DEPS:-0}" = 1 ] && exit 0
command -v apt-get >/dev/null || { echo "install-deps.sh: no apt-get (install the packages listed here by hand)" >&2; exit 0; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  cmake ninja-build g++ clang-14 libclang-rt-14-dev libomp-14-dev
  libopenblas-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpcre2-dev libsentencepiece-dev libutf8proc-dev zlib1g-dev python3 python3-numpy python3-jsonschema time
  python3-dev pybind11-dev python3-pytest python3-pandas python3-matplotlib python3-nbclient
  python3-ipykernel python3-setuptools python3-torch
  # the HTML report and `reslens serve`'s page (the build runs `npm ci` on web/package-lock.json), and
  # the browser tests
  chromium fonts-dejavu-core
  # `mpirun -np N reslens experiment` (docs/distributed.md; -DRESLENS_MPI)
  libopenmpi-dev openmpi-bin
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
