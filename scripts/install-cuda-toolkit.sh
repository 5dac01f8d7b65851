#!/usr/bin/env bash
# Installs what the CUDA build needs on Debian (bookworm or later): Debian's CUDA toolkit
# (nvcc 11.8, package nvidia-cuda-toolkit from the contrib/non-free components) and
# CMake. Idempotent: returns at once when nvcc and cmake are already on PATH. Needs root
# (or sudo) the first time; about 1.5 minutes and 5.5 GB.
set -euo pipefail

if command -v nvcc >/dev/null 2>&1 && command -v cmake >/dev/null 2>&1; then
  echo "install-cuda-toolkit: nvcc and cmake present: $(nvcc --version | tail -1); $(cmake --version | head -1)"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi

# add_components FILE: add contrib non-free non-free-firmware to every Debian
# "Components:" (deb822) or "deb ..." (one-line) entry of FILE that lacks them.
add_components() {
  local f=$1
  [ -f "$f" ] || return 0
  case "$f" in
  *.sources)
    $SUDO sed -i -E \
      -e '/^Components:/{/ contrib/!s/$/ contrib/}' \
      -e '/^Components:/{/ non-free( |$)/!s/$/ non-free/}' \
      -e '/^Components:/{/ non-free-firmware/!s/$/ non-free-firmware/}' "$f"
    ;;
  *)
    $SUDO sed -i -E \
      -e '/^deb(-src)? .*debian/{/ contrib/!s/$/ contrib/}' \
      -e '/^deb(-src)? .*debian/{/ non-free( |$)/!s/$/ non-free/}' \
      -e '/^deb(-src)? .*debian/{/ non-free-firmware/!s/$/ non-free-firmware/}' "$f"
    ;;
  esac
}

add_components /etc/apt/sources.list
add_components /etc/apt/sources.list.d/debian.sources

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit cmake make g++ >/dev/null
echo "install-cuda-toolkit: $(nvcc --version | tail -1); $(cmake --version | head -1)"
