#!/usr/bin/env bash
# Time strata's lazy registry reads against full pulls on a shaped link (issue 13, "Time on a shaped link"), in
# one run, and write docs/BENCHMARKS-lazy.md: medians, ratios, bytes fetched, the machine.
#
#   sudo bash tools/compare_lazy.sh [--runs N] [--output FILE]
#
#   --runs N     timed runs per row, after one untimed warm-up round (default 5); each figure is the median
#   --output F   write the report to F instead of docs/BENCHMARKS-lazy.md
#
# 1. Installs the peers if missing (apt: docker-registry skopeo umoci podman fuse3 stargz-snapshotter
#    containerd), builds strata and the timing tool `lazy-bench` (tests/bin/lazy_bench.rs, in the test
#    support's package) in release, and copies both into the work dir.
# 2. lazy-bench makes the test support's big lazy fixture once (4 layers, 118.5 MB compressed; umoci, then
#    ctr-remote's eStargz and zstd:chunked, skopeo's zstd:chunked) and keeps it in the work dir; starts a real
#    docker-registry on 127.0.0.1 holding it in all four formats, and in front of it the support's proxy
#    shaped as Link::wan(): 20 ms each way, 100 Mbit/s, counting the blob bytes it serves.
# 3. Through the proxy, rows interleaved round by round: per lazy image, `strata cat IMG /etc/os-release`
#    (fresh process, fresh $HOME) and `strata mount --fuse IMG DIR` + `ls -R DIR/etc` (`strata umount` timed
#    apart); on the gzip image, `skopeo copy` + `umoci unpack` + `cat`, `podman pull` (fresh store) +
#    `podman image mount` + `cat`, and `strata cat` reading every layer whole; and podman through
#    `strata layer-store` (issue 14: started apart, cache empty): `podman pull` + `podman image mount` +
#    `cat` of each lazy image and of the gzip image with its index published.
# 4. Writes the report: this script's intro, the run and the machine, then lazy-bench's tables.
#
# Needs root (FUSE, umoci, podman's overlay mounts, the private containerd). Everything it writes but the
# report and cargo's target dir is under the work dir, ${STRATA_LAZY_BENCH_DIR:-/var/tmp/strata-lazy} (about
# 1 GB: the fixture in four layouts and the registry's copy; each full pull's output is removed after its
# run). Delete the work dir to make the fixture again. About 5 minutes on 2 cores with the default 5 runs.
set -euo pipefail

# One { ... } block, so that bash has read the whole script before running it (the tree may be edited meanwhile).
{
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)

RUNS=5
OUTPUT=$REPO/docs/BENCHMARKS-lazy.md
while (($# > 0)); do
    case $1 in
    --runs)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 ]] || {
            echo "compare_lazy.sh: --runs needs a number >= 1" >&2
            exit 2
        }
        RUNS=$2
        shift
        ;;
    --output)
        [[ $# -ge 2 ]] || {
            echo "compare_lazy.sh: --output needs a file" >&2
            exit 2
        }
        OUTPUT=$(realpath -m -- "$2")
        shift
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "compare_lazy.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
    printf 'compare_lazy.sh: error: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (FUSE mounts, umoci unpack, podman's overlay mounts, a private containerd)"

# The work dir: a directory that is not empty and lacks our marker is refused.
WORK=$(realpath -m -- "${STRATA_LAZY_BENCH_DIR:-/var/tmp/strata-lazy}")
MARKER=.strata-lazy-bench-workdir
[[ $WORK == /*/* ]] || die "work dir '$WORK' is too close to /"
if [[ -d $WORK && ! -e $WORK/$MARKER && -n $(ls -A -- "$WORK") ]]; then
    die "work dir '$WORK' is not empty and was not made by this script; set STRATA_LAZY_BENCH_DIR elsewhere"
fi
mkdir -p -- "$WORK"
touch -- "$WORK/$MARKER"
# The registry's storage, podman's stores and the fixtures' scratch space go in $WORK/tmp. podman refuses run
# roots over 50 characters; the support's stores are $TMPDIR/sst-XXXXXXXXX-N/run.
TMP=$WORK/tmp
((${#TMP} <= 30)) || die "'$TMP' is too long for podman's run root (at most 30 characters here): set STRATA_LAZY_BENCH_DIR to a shorter path"
mkdir -p -- "$TMP" "$WORK/bin"

# unmount_under DIR: whatever is mounted at or below DIR (a left-over strata or podman mount), deepest first.
unmount_under() {
    local mnt
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
        while IFS= read -r mnt; do
            umount -- "$mnt" 2>/dev/null || umount -l -- "$mnt" 2>/dev/null || true
        done
}
trap 'unmount_under "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unmount_under "$WORK"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
SECONDS=0

# ---------------------------------------------------------------------------------------------------------
step "tools"

# One "command apt-package" pair per line.
PEERS=(
    "docker-registry docker-registry"
    "skopeo skopeo"
    "umoci umoci"
    "podman podman"
    "fusermount3 fuse3"
    "ctr-remote stargz-snapshotter"
    "containerd containerd"
)
missing=()
for peer in "${PEERS[@]}"; do
    read -r cmd pkg <<<"$peer"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    note "installing with apt: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
version_of() { "$@" 2>&1 | head -n1; }

step "build strata and lazy-bench (release)"
bash tools/build-deps.sh
cargo build --release -p strata --bin strata >&2
cargo build --release -p strata-tests --bin lazy-bench >&2
TARGET=$(realpath -m -- "${CARGO_TARGET_DIR:-$REPO/target}")
# Copies: a rebuild of the tree during the run changes nothing timed.
cp -f -- "$TARGET/release/strata" "$TARGET/release/lazy-bench" "$WORK/bin/"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || COMMIT="$COMMIT-dirty"

# ---------------------------------------------------------------------------------------------------------
step "lazy-bench ($RUNS runs)"

TABLES=$WORK/tables.md
rm -f -- "$TABLES"
STRATA_BIN=$WORK/bin/strata TMPDIR=$TMP "$WORK/bin/lazy-bench" --work "$WORK" --runs "$RUNS" \
    --markdown "$TABLES" --json "$WORK/results.json"
[[ -s $TABLES ]] || die "lazy-bench wrote no tables"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
TOOK="$((SECONDS / 60)) min $((SECONDS % 60)) s"
CPU_MODEL=$(lscpu 2>/dev/null | awk -F: '/^Model name/ { sub(/^[ \t]+/, "", $2); print $2; exit }')
HYPERVISOR=$(lscpu 2>/dev/null | awk -F: '/^Hypervisor vendor/ { sub(/^[ \t]+/, "", $2); print $2; exit }')
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
OS=$(awk -F= '$1 == "PRETTY_NAME" { gsub(/"/, "", $2); print $2 }' /etc/os-release 2>/dev/null || echo unknown)
ARGS="--runs $RUNS"

step "report ($OUTPUT)"
mkdir -p -- "$(dirname -- "$OUTPUT")"
{
    cat <<'EOF'
# Lazy registry reads on a shaped link

How long strata takes to show one file of a registry image it reads lazily — eStargz and zstd:chunked, through
their tables of contents — next to the ways of getting the same file by pulling the whole image, all through
one imitated wide-area link, in one run on one machine (issue 13, "Time on a shaped link"). This file is
generated: `sudo bash tools/compare_lazy.sh` rebuilds it. Edit the intro in the script, not here. Local reads
are in docs/BENCHMARKS.md, the FUSE mount's in docs/BENCHMARKS-mount.md.

How to read it:

- **The image** is the test support's big lazy fixture (`big_image` in tests/support/lazy.rs): 4 layers of
  incompressible files (113 MiB) around a small `/etc`, built with umoci (gzip), converted with
  `ctr-remote images convert --estargz --oci` and `--zstdchunked --oci` (Debian's stargz-snapshotter, in a
  private containerd) and with `skopeo copy --dest-compress-format zstd:chunked`. It is pushed with skopeo to
  Debian's `docker-registry` on 127.0.0.1 (plain HTTP), started for the run, its blobs in the page cache.
- **The link**: every command reaches the registry through the test support's proxy (tests/support/proxy.rs,
  `Link::wan()`), which delivers each byte 20 ms after it was sent, each way, carries at most 100 Mbit/s each
  way (shared by all connections, as one link is), and holds a new connection's first request for one round
  trip (the TCP handshake). It is imitated in user space: this kernel has no netem. At that cap the gzip
  image's layers alone take 9.5 s to arrive.
- **Lazy rows**: `strata cat` is a fresh process with a fresh `$HOME` each run, so nothing is kept from an
  earlier one. `strata mount --fuse` returns once the mount is ready; `ls -R DIR/etc` then stats every entry
  of `/etc` (no file is read); `strata umount` is timed apart (in parentheses, not in the row's time).
- **Full-pull rows** read the gzip image, the one every tool takes whole: `skopeo copy` into an OCI layout,
  `umoci unpack` of it (as root), `cat` of the file; `podman pull` into a fresh store (graph root and run root
  under the work dir, `--storage-driver overlay`), `podman image mount`, `cat`; and `strata cat` of the gzip
  image, which reads every layer whole because gzip layers carry no table of contents. Their outputs are
  removed and `sync`ed after each run, untimed.
- **Bytes fetched** are the body bytes the proxy sent in answer to blob GETs (layers and config; manifests
  aside), per command; the share is of that image's compressed layers. **Requests** are all of them (ping,
  manifests, blobs); **connections** are those the proxy accepted, including the HTTPS attempt every tool here
  makes first when told `--tls-verify=false` (answered at once with HTTP 400, as Go's server does).
- Every output is checked (the file's bytes, the listing). Each figure is the median of the timed runs; a
  round runs every row once, in the order of the table, after one untimed warm-up round, so that load from
  other work on the machine falls on all rows alike. Ratios are a full-pull path's median over a lazy
  `cat`'s: above 1, the lazy `cat` is faster.
EOF
    echo
    echo "## Run"
    echo
    echo "- date: $DATE; took $TOOK"
    echo "- strata commit: \`$COMMIT\`"
    echo "- command: \`sudo bash tools/compare_lazy.sh $ARGS\`"
    echo
    echo "## Machine"
    echo
    echo "- CPU: $CPU_MODEL, $(nproc) cores$([[ -n $HYPERVISOR ]] && echo ", under $HYPERVISOR")"
    echo "- memory: $MEM"
    echo "- kernel: $(uname -r) ($OS)"
    echo "- load average (1, 5, 15 min): $LOAD_START at start, $LOAD_END at end; the machine may be shared with other work"
    echo "- tools: $(version_of skopeo --version); $(version_of umoci --version); $(version_of podman --version); $(version_of docker-registry --version); ctr-remote $(dpkg-query -W -f '${Version}' stargz-snapshotter 2>/dev/null || echo '?'); $(version_of containerd --version); $(version_of rustc --version)"
    echo
    cat -- "$TABLES"
} >"$OUTPUT"
cat -- "$OUTPUT"
}
exit
