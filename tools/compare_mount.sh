#!/usr/bin/env bash
# Time strata's FUSE mount (of an OCI layout, read from the compressed blob; and of the same image pulled into
# a store, read from its layer's diff dir) against squashfuse_ll, ratarmount and kernel overlayfs on one
# tree, in one run, and print a markdown table (medians; ratios against strata's blob-backed mount, and
# ratarmount's against the store-backed one) for docs/BENCHMARKS-mount.md.
#
#   sudo bash tools/compare_mount.sh [--quick] [--runs N]
#
#   --quick   a ~60 MB tree instead of ~430 MB, for trying the script out
#   --runs N  fresh mounts per measurement (default 5); each cell is the median
#
# 1. Installs what it needs if missing (apt: squashfs-tools squashfuse fuse3 pigz jq; pip: ratarmount, in a
#    venv in the work dir), builds strata (release).
# 2. Builds once, and caches, a tree from this machine's own files (/usr/share/doc, /usr/include, python,
#    man pages, ...) plus a 50 MiB file, and from it: one layer .tar.gz (tar --format=pax, pigz) in an OCI
#    layout, a squashfs image (mksquashfs -comp zstd), strata's index of the layer (`strata index -o`), and
#    a store under the work dir holding the image (`strata --root … --runroot … pull`, named `bench`).
# 3. Mounts the same tree five ways: `strata mount --fuse` of the OCI layout ("strata (FUSE)", file bytes
#    from the .tar.gz through the index checkpoints); `strata --root … --runroot … mount --fuse bench` of the
#    store image ("strata (FUSE, store)", file bytes from the layer's diff dir, indexes kept at pull);
#    `squashfuse_ll` of the squashfs; `ratarmount` of the .tar.gz; overlayfs with the unpacked tree as its
#    lower dir. For each, on a fresh
#    mount (unmount, mount; the image files are in the page cache) it times an operation twice, "1st" and
#    "2nd": `find | wc -l`, `du -s`, `cat` of the 50 MiB file, `cat` of every file; runs interleave the tools,
#    so that load from other work on the machine falls on all of them alike. It also times the mounts:
#    strata indexing the layer, strata with the index built beforehand (--index-dir), the store image,
#    ratarmount creating its index, ratarmount with its index, squashfuse_ll, overlayfs.
# 4. Prints the table on stdout (the log goes to stderr) and keeps it in the work dir. Ratios in the peers'
#    columns are against "strata (FUSE)"; the store column's own ratio is ratarmount's time over its.
#
# Needs root (overlayfs, and FUSE as root). Everything it writes is under the work dir,
# ${STRATA_MOUNT_BENCH_DIR:-/var/tmp/strata-mount-bench}; it never drops the kernel's caches (other work
# shares the machine), so "1st" means a fresh mount of files that are in the page cache.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)

QUICK=0
RUNS=5
while (($# > 0)); do
    case $1 in
    --quick) QUICK=1 ;;
    --runs)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 ]] || {
            echo "compare_mount.sh: --runs needs a number >= 1" >&2
            exit 2
        }
        RUNS=$2
        shift
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "compare_mount.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
    printf 'compare_mount.sh: error: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (overlayfs mounts; FUSE mounts as root)"

WORK=$(realpath -m -- "${STRATA_MOUNT_BENCH_DIR:-/var/tmp/strata-mount-bench}")
[[ $WORK == /*/* ]] || die "work dir '$WORK' is too close to /"
mkdir -p -- "$WORK"
if ((QUICK)); then KIND=quick; else KIND=full; fi
DATA=$WORK/$KIND
MNT=$WORK/mnt
mkdir -p -- "$DATA" "$MNT"

# ---------------------------------------------------------------------------------------------------------
step "tools"

missing=()
for t in "mksquashfs squashfs-tools" "squashfuse_ll squashfuse" "fusermount3 fuse3" "pigz pigz" "jq jq"; do
    read -r cmd pkg <<<"$t"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    note "installing with apt: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
RATARMOUNT=$WORK/venv/bin/ratarmount
if [[ ! -x $RATARMOUNT ]]; then
    note "installing ratarmount with pip into $WORK/venv"
    python3 -m venv "$WORK/venv" >&2
    "$WORK/venv/bin/pip" install -q ratarmount >&2
fi
note "ratarmount $("$RATARMOUNT" --version 2>/dev/null | head -1 | awk '{print $NF}')"
note "squashfuse $(dpkg-query -W -f '${Version}' squashfuse 2>/dev/null || echo '?')"

step "build strata (release)"
bash tools/build-deps.sh
cargo build --release -p strata >&2
mkdir -p -- "$WORK/bin"
cp -f -- target/release/strata "$WORK/bin/strata"
STRATA=$WORK/bin/strata
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || COMMIT="$COMMIT-dirty"

# ---------------------------------------------------------------------------------------------------------
# The tree and its three images, built once per kind.

if ((QUICK)); then
    TARGET_MB=60
    TREES="/usr/share/doc /usr/share/zoneinfo"
else
    TARGET_MB=430
    TREES="/usr/share/doc /usr/include /usr/lib/python3.11 /usr/share/man /usr/share/zoneinfo /usr/share/i18n /usr/share/locale"
fi
TREE=$DATA/tree
BIG=big/blob-50M
if [[ ! -e $DATA/.built ]]; then
    step "build the tree ($TARGET_MB MB) and its images"
    rm -rf -- "$TREE" "$DATA/layout" "$DATA/tree.sqfs" "$DATA/idx" "$DATA/layer.tar.gz" "$DATA/store"
    rm -f -- "$DATA/.stored"
    mkdir -p -- "$TREE/big"
    used=0
    for src in $TREES; do
        [[ -d $src ]] || continue
        size=$(du -sm -- "$src" | cut -f1)
        if ((used + size > TARGET_MB)); then
            # Part of it: its subdirectories in order, while they fit.
            for sub in "$src"/*; do
                s=$(du -sm -- "$sub" | cut -f1)
                ((used + s > TARGET_MB)) && continue
                mkdir -p -- "$TREE$src"
                cp -a -- "$sub" "$TREE$src/"
                used=$((used + s))
            done
        else
            mkdir -p -- "$TREE$(dirname "$src")"
            cp -a -- "$src" "$TREE$src"
            used=$((used + size))
        fi
    done
    # 50 MiB of real (compressible) bytes: shared libraries, concatenated.
    find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*' -size +1M -print0 | sort -z |
        xargs -0 cat 2>/dev/null | head -c $((50 << 20)) >"$TREE/$BIG" || true
    [[ $(stat -c %s "$TREE/$BIG") -eq $((50 << 20)) ]] || die "could not make a 50 MiB file"

    note "layer: tar --format=pax | pigz"
    L=$DATA/layout
    mkdir -p -- "$L/blobs/sha256"
    tar --sort=name --format=pax --numeric-owner -C "$TREE" -cf - . |
        tee >(sha256sum | cut -d' ' -f1 >"$DATA/diff_id") | pigz -6 >"$DATA/layer.tar.gz"
    sleep 1
    diff_id=$(cat "$DATA/diff_id")
    layer=$(sha256sum "$DATA/layer.tar.gz" | cut -d' ' -f1)
    cp -- "$DATA/layer.tar.gz" "$L/blobs/sha256/$layer"
    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    printf '{"architecture":"%s","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}' \
        "$arch" "$diff_id" >"$DATA/config.json"
    config=$(sha256sum "$DATA/config.json" | cut -d' ' -f1)
    cp -- "$DATA/config.json" "$L/blobs/sha256/$config"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
        "$config" "$(stat -c %s "$DATA/config.json")" "$layer" "$(stat -c %s "$DATA/layer.tar.gz")" >"$DATA/manifest.json"
    manifest=$(sha256sum "$DATA/manifest.json" | cut -d' ' -f1)
    cp -- "$DATA/manifest.json" "$L/blobs/sha256/$manifest"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
        "$manifest" "$(stat -c %s "$DATA/manifest.json")" >"$L/index.json"

    note "squashfs: mksquashfs -comp zstd"
    mksquashfs "$TREE" "$DATA/tree.sqfs" -comp zstd -noappend -quiet >&2
    touch -- "$DATA/.built"
fi
IMAGE="oci:$DATA/layout:bench"
rm -rf -- "$DATA/idx"
"$STRATA" index -o "$DATA/idx" "$IMAGE" >/dev/null
# The store: pulled once (kept while the tree is); pulled again if this strata cannot read it.
STORE=(--root "$DATA/store/root" --runroot "$DATA/store/run")
STORE_IMAGE=bench
if [[ ! -e $DATA/.stored ]] || ! "$STRATA" "${STORE[@]}" inspect "containers-storage:$STORE_IMAGE" >/dev/null 2>&1; then
    step "strata pull the image into a store under the work dir"
    rm -rf -- "$DATA/store"
    rm -f -- "$DATA/.stored"
    "$STRATA" "${STORE[@]}" pull -q --name "$STORE_IMAGE" "$IMAGE" >&2
    touch -- "$DATA/.stored"
fi
mkdir -p -- "$DATA/empty"
ENTRIES=$(find "$TREE" | wc -l)
FILES=$(find "$TREE" -type f | wc -l)
TREE_MB=$(du -sm -- "$TREE" | cut -f1)
note "tree: $TREE_MB MB, $ENTRIES entries ($FILES files); .tar.gz $(du -m "$DATA/layer.tar.gz" | cut -f1) MB, squashfs $(du -m "$DATA/tree.sqfs" | cut -f1) MB"

# ---------------------------------------------------------------------------------------------------------
# Mounting. Each mount_* returns once the mount answers.

wait_mounted() {
    local i
    for ((i = 0; i < 3000; i++)); do
        mountpoint -q -- "$MNT" && return 0
        sleep 0.01
    done
    die "$1 did not mount within 30 s"
}

mount_strata() { "$STRATA" mount --fuse "$IMAGE" "$MNT" >/dev/null; }
mount_strata_indexed() { "$STRATA" mount --fuse --index-dir "$DATA/idx" "$IMAGE" "$MNT" >/dev/null; }
mount_store() { "$STRATA" "${STORE[@]}" mount --fuse "$STORE_IMAGE" "$MNT" >/dev/null; }
mount_squashfuse() {
    squashfuse_ll "$DATA/tree.sqfs" "$MNT"
    wait_mounted squashfuse_ll
}
mount_ratarmount() {
    "$RATARMOUNT" --index-file "$DATA/ratarmount.index.sqlite" "$DATA/layer.tar.gz" "$MNT" >/dev/null 2>&1
    wait_mounted ratarmount
}
mount_ratarmount_fresh() {
    "$RATARMOUNT" --recreate-index --index-file "$DATA/ratarmount.index.sqlite" "$DATA/layer.tar.gz" "$MNT" \
        >/dev/null 2>&1
    wait_mounted ratarmount
}
mount_overlay() { mount -t overlay overlay -o "ro,lowerdir=$TREE:$DATA/empty" "$MNT"; }

unmount_any() {
    local i
    if mountpoint -q -- "$MNT"; then
        case $(findmnt -n -o FSTYPE --target "$MNT") in
        fuse.strata) "$STRATA" umount "$MNT" ;;
        fuse*) fusermount3 -u -- "$MNT" 2>/dev/null || umount -- "$MNT" ;;
        *) umount -- "$MNT" ;;
        esac
    fi
    for ((i = 0; i < 1000; i++)); do
        mountpoint -q -- "$MNT" || break
        sleep 0.01
    done
    # Let a FUSE server finish exiting before the next mount.
    sleep 0.2
}
trap unmount_any EXIT
unmount_any

warm() {
    case $1 in
    strata) cat "$DATA/layout/blobs/sha256/"* "$DATA/idx/"* >/dev/null ;;
    store) find "$DATA/store/root" -type f -print0 | xargs -0 -r cat >/dev/null ;;
    squashfuse) cat "$DATA/tree.sqfs" >/dev/null ;;
    ratarmount) cat "$DATA/layer.tar.gz" "$DATA/ratarmount.index.sqlite" >/dev/null 2>&1 || true ;;
    overlay) find "$TREE" -type f -print0 | xargs -0 cat >/dev/null ;;
    esac
}

# ---------------------------------------------------------------------------------------------------------
# Timing.

now() { date +%s.%N; }
# timed CMD...: run CMD, print the seconds it took.
timed() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

op_find() { (cd "$MNT" && find . | wc -l); }
op_du() { du -s "$MNT"; }
op_cat50() { cat "$MNT/$BIG"; }
op_catall() { find "$MNT" -type f -print0 | xargs -0 -r cat; }

declare -A R
TOOLS=(strata store squashfuse ratarmount overlay)
OPS=(find du cat50 catall)
LABEL_strata="strata (FUSE)"
LABEL_store="strata (FUSE, store)"
LABEL_squashfuse="squashfuse_ll"
LABEL_ratarmount="ratarmount"
LABEL_overlay="kernel overlayfs"

# The mounts timed: name and function.
MOUNTS=(
    "strata mount_strata"
    "strata_indexed mount_strata_indexed"
    "store mount_store"
    "squashfuse mount_squashfuse"
    "ratarmount mount_ratarmount"
    "ratarmount_fresh mount_ratarmount_fresh"
    "overlay mount_overlay"
)

step "check: every tool shows the whole tree"
for tool in "${TOOLS[@]}"; do
    warm "$tool"
    if [[ $tool == ratarmount && ! -e $DATA/ratarmount.index.sqlite ]]; then
        mount_ratarmount_fresh
        unmount_any
    fi
    unmount_any
    "mount_$tool"
    seen=$(cd "$MNT" && find . | wc -l)
    unmount_any
    note "$tool shows $seen entries (the tree has $ENTRIES)"
    [[ $seen -eq $ENTRIES ]] || note "warning: $tool shows a different number of entries"
done

# Runs interleave the tools (run 1 of each, then run 2 of each, ...), so that load from anything else on the
# machine falls on all of them alike.
step "operations ($RUNS runs, tools interleaved)"
for op in "${OPS[@]}"; do
    for tool in "${TOOLS[@]}"; do
        : >"$WORK/t1-$tool"
        : >"$WORK/t2-$tool"
    done
    for ((r = 0; r < RUNS; r++)); do
        for tool in "${TOOLS[@]}"; do
            unmount_any
            "mount_$tool"
            timed "op_$op" >>"$WORK/t1-$tool"
            timed "op_$op" >>"$WORK/t2-$tool"
        done
    done
    unmount_any
    for tool in "${TOOLS[@]}"; do
        R[$tool,$op,1]=$(median <"$WORK/t1-$tool")
        R[$tool,$op,2]=$(median <"$WORK/t2-$tool")
        note "$(printf '%-8s %-11s 1st %8s s   2nd %8s s' "$op" "$tool" "${R[$tool,$op,1]}" "${R[$tool,$op,2]}")"
    done
done

step "mounts ($RUNS runs, interleaved)"
for m in "${MOUNTS[@]}"; do
    read -r name _ <<<"$m"
    : >"$WORK/tm-$name"
done
for ((r = 0; r < RUNS; r++)); do
    for m in "${MOUNTS[@]}"; do
        read -r name fn <<<"$m"
        unmount_any
        timed "$fn" >>"$WORK/tm-$name"
    done
done
unmount_any
for m in "${MOUNTS[@]}"; do
    read -r name _ <<<"$m"
    R[mount,$name]=$(median <"$WORK/tm-$name")
    note "$(printf 'mount (%s): %s s' "$name" "${R[mount,$name]}")"
done

# ---------------------------------------------------------------------------------------------------------
# The table: seconds (median); in the peers' columns, each one's time as a multiple of strata's blob-backed
# mount (above 1: strata is faster); in the store column, ratarmount's time as a multiple of the store mount's.

cell() { # cell VALUE BASE
    awk -v v="$1" -v b="$2" 'BEGIN {
        if (v == "" || v == "nan") { printf "–"; exit }
        printf "%.3f s", v
        if (b != "" && b != "nan" && b > 0 && v != b) printf " (%.2f×)", v / b
    }'
}
store_cell() { # store_cell VALUE RATARMOUNT
    awk -v v="$1" -v r="$2" 'BEGIN {
        if (v == "" || v == "nan") { printf "–"; exit }
        printf "%.3f s", v
        if (r != "" && r != "nan" && v > 0) printf " (ratarmount %.2f×)", r / v
    }'
}
OUT=$WORK/table-$KIND.md
{
    printf '| operation | %s | %s | %s | %s | %s |\n' "$LABEL_strata" "$LABEL_store" "$LABEL_squashfuse" \
        "$LABEL_ratarmount" "$LABEL_overlay"
    printf '|---|---:|---:|---:|---:|---:|\n'
    for op in "${OPS[@]}"; do
        case $op in
        find) name='`find \| wc -l`' ;;
        du) name='`du -s`' ;;
        cat50) name='`cat` 50 MiB file' ;;
        catall) name="\`cat\` every file ($FILES)" ;;
        esac
        for pass in 1 2; do
            label=$([[ $pass == 1 ]] && echo 1st || echo 2nd)
            base=${R[strata,$op,$pass]}
            printf '| %s, %s | %s | %s | %s | %s | %s |\n' "$name" "$label" "$(cell "$base" "")" \
                "$(store_cell "${R[store,$op,$pass]}" "${R[ratarmount,$op,$pass]}")" \
                "$(cell "${R[squashfuse,$op,$pass]}" "$base")" "$(cell "${R[ratarmount,$op,$pass]}" "$base")" \
                "$(cell "${R[overlay,$op,$pass]}" "$base")"
        done
    done
    base=${R[mount,strata]}
    printf '| mount (strata: layer indexed at mount; ratarmount: index created) | %s | %s | %s | %s | %s |\n' \
        "$(cell "$base" "")" "–" "$(cell "${R[mount,squashfuse]}" "$base")" \
        "$(cell "${R[mount,ratarmount_fresh]}" "$base")" "$(cell "${R[mount,overlay]}" "$base")"
    base=${R[mount,strata_indexed]}
    printf '| mount (strata: `--index-dir`; store: indexes kept at pull; ratarmount: index kept) | %s | %s | %s | %s | %s |\n' \
        "$(cell "$base" "")" "$(store_cell "${R[mount,store]}" "${R[mount,ratarmount]}")" \
        "$(cell "${R[mount,squashfuse]}" "$base")" "$(cell "${R[mount,ratarmount]}" "$base")" \
        "$(cell "${R[mount,overlay]}" "$base")"
    printf '\n'
    printf 'Tree: %s MB, %s entries (%s files), one layer: .tar.gz %s MB (pigz -6), squashfs %s MB (zstd). ' \
        "$TREE_MB" "$ENTRIES" "$FILES" "$(du -m "$DATA/layer.tar.gz" | cut -f1)" "$(du -m "$DATA/tree.sqfs" | cut -f1)"
    printf '"strata (FUSE)" mounts the OCI layout and reads file bytes from the .tar.gz through the index checkpoints; '
    printf '"strata (FUSE, store)" mounts the same image pulled into a store (`strata pull`), reading file bytes from the '
    printf 'layer'"'"'s unpacked diff dir with the indexes kept at pull (the store never indexes at mount). '
    printf 'Medians of %s fresh mounts each; "1st" is the first run on a fresh mount (image files in the page cache), ' "$RUNS"
    printf '"2nd" the same command again. (n×) is the time as a multiple of "strata (FUSE)"'"'"'s; in the store column, '
    printf '(ratarmount n×) is ratarmount'"'"'s time as a multiple of the store mount'"'"'s (above 1: strata is faster). '
    printf 'overlayfs has the unpacked tree as its lower dir. '
    printf 'strata %s, %s, %s cores, load %s at the end. Made by `tools/compare_mount.sh`.\n' \
        "$COMMIT" "$(date -u '+%Y-%m-%d')" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT"
step "table ($OUT)"
cat -- "$OUT"
