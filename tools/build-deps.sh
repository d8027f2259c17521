#!/usr/bin/env bash
# Installs what building strata needs beyond a Rust toolchain and a C compiler, when it is missing: the tools
# isal-sys uses to build ISA-L (strata's faster inflater for random-access reads) from its bundled source —
# nasm, autoconf, automake, libtool and make. Needs root and apt-get to install; otherwise it names what is
# missing and fails.
set -euo pipefail

# One "command apt-package" pair per line.
NEEDS=(
    "nasm nasm"
    "autoconf autoconf"
    "automake automake"
    "libtoolize libtool"
    "make make"
)

missing=()
for need in "${NEEDS[@]}"; do
    read -r command package <<<"$need"
    command -v "$command" >/dev/null 2>&1 || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "build-deps: missing ${missing[*]}: install them (needs root and apt-get here)" >&2
    exit 1
fi
echo "build-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
