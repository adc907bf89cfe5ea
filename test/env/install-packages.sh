#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing: python3-ase (the reference reader
# that files we write must satisfy), git-lfs and LAMMPS (real writers of the LFS files and dumps we read), xz and
# bzip2 (the compressors of the run files we read). Needs
# root for apt-get; otherwise says what to install.
set -euo pipefail

missing=()
/usr/bin/python3 -c "import ase" 2>/dev/null || missing+=(python3-ase)
git lfs version >/dev/null 2>&1 || missing+=(git-lfs)
command -v lmp >/dev/null 2>&1 || missing+=(lammps)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
command -v bzip2 >/dev/null 2>&1 || missing+=(bzip2)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test setup: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "test setup: installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
