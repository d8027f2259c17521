#!/usr/bin/env bash
# Time `strata copy` against `skopeo copy` (issue 16, "tools/compare") in one run, and write
# docs/BENCHMARKS-copy.md: medians of N runs, ratios, the machine.
#
#   bash tools/compare_copy.sh [--runs N] [--output FILE]
#
#   --runs N     timed runs per row, after one untimed warm-up round (default 5); each figure is the median
#   --output F   write the report to F instead of docs/BENCHMARKS-copy.md
#
# 1. Installs the peers if missing (apt: docker-registry skopeo python3), builds strata in release.
# 2. Makes the benchmark image once, deterministically (no clock, no randomness): 4 gzip layers of 32 MiB of
#    tar each — 24 MiB of a keyed ChaCha20 stream (incompressible, `openssl enc` of zeros with a fixed key)
#    and 8 MiB of numbered text lines — fixed names, modes and mtimes, `gzip -n -6`; about 105 MB of
#    compressed layers in an OCI layout written by python3. The layout is kept in the work dir.
# 3. Starts a real docker-registry (Distribution) on 127.0.0.1, filesystem storage in the work dir, and
#    times, rows interleaved round by round, each run to a fresh name so no blob is already there:
#      oci: → docker://        (push: HEAD, upload; to a second registry emptied before each run)
#      docker:// → oci:        (pull into a fresh layout)
#      docker:// → docker://   (another repository of the same registry: both tools may mount)
#      gzip → zstd             (docker:// → oci: with --dest-compress-format zstd: every layer decompressed,
#                               re-encoded and hashed)
#    strata with its defaults, skopeo 1.9 with its defaults; plain HTTP (--dest/src-tls-verify=false), an
#    empty auth file.
# 4. Writes the report: this script's intro, the run and the machine, the table (wall median, min, max,
#    user+sys CPU median, ratio skopeo/strata).
#
# The work dir is ${STRATA_COPY_BENCH_DIR:-/var/tmp/strata-copy-bench} (about 0.5 GB: the layout, the
# registry's storage, pulled layouts removed after each run). About 5 minutes on 2 cores with 5 runs.
set -euo pipefail

# One { ... } block, so that bash has read the whole script before running it (the tree may be edited meanwhile).
{
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)

RUNS=5
OUTPUT=$REPO/docs/BENCHMARKS-copy.md
while (($# > 0)); do
    case $1 in
    --runs)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 ]] || {
            echo "compare_copy.sh: --runs needs a number >= 1" >&2
            exit 2
        }
        RUNS=$2
        shift
        ;;
    --output)
        [[ $# -ge 2 ]] || {
            echo "compare_copy.sh: --output needs a file" >&2
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
        echo "compare_copy.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

WORK=${STRATA_COPY_BENCH_DIR:-/var/tmp/strata-copy-bench}
mkdir -p "$WORK"

missing=()
for tool in docker-registry skopeo python3 openssl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
command -v /usr/bin/time >/dev/null || missing+=(time)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]} > 0)); then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
cargo build --release -q -p strata
cp "$CARGO_TARGET_DIR/release/strata" "$WORK/strata"
STRATA=$WORK/strata

# --- The image -------------------------------------------------------------------------------------------
LAYOUT=$WORK/image
if [[ ! -f $LAYOUT/index.json ]]; then
    rm -rf "$LAYOUT" "$WORK/build"
    mkdir -p "$WORK/build"
    for n in 1 2 3 4; do
        root=$WORK/build/layer$n
        mkdir -p "$root/data$n"
        # 24 MiB of a keyed stream: the same bytes on every machine, incompressible.
        head -c $((24 << 20)) /dev/zero |
            openssl enc -chacha20 -K "$(printf '%064x' "$n")" -iv 00000000000000000000000000000000 \
            >"$root/data$n/blob.bin"
        # 8 MiB of text that compresses as text does.
        # (seq is cut off by head: its SIGPIPE is expected.)
        { seq -f "line %.0f of layer $n: the quick brown fox jumps over the lazy dog" 1 200000 || true; } |
            head -c $((8 << 20)) >"$root/data$n/text.txt"
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX \
            -C "$root" -cf "$WORK/build/layer$n.tar" "data$n"
        gzip -n -6 -c "$WORK/build/layer$n.tar" >"$WORK/build/layer$n.tar.gz"
    done
    python3 - "$WORK/build" "$LAYOUT" <<'PY'
import hashlib, json, os, sys
build, layout = sys.argv[1], sys.argv[2]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d
layers, diff_ids = [], []
for n in range(1, 5):
    with open(os.path.join(build, f"layer{n}.tar"), "rb") as f:
        diff_ids.append("sha256:" + hashlib.sha256(f.read()).hexdigest())
    with open(os.path.join(build, f"layer{n}.tar.gz"), "rb") as f:
        gz = f.read()
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": put(gz), "size": len(gz)})
config = json.dumps({
    "created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {n}"} for n in range(1, 5)],
}, separators=(",", ":")).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
               "size": len(config)},
    "layers": layers,
}, separators=(",", ":")).encode()
md = put(manifest)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
PY
    rm -rf "$WORK/build"
fi
LAYER_BYTES=$(python3 -c '
import json, sys, os
layout = sys.argv[1]
idx = json.load(open(os.path.join(layout, "index.json")))
d = idx["manifests"][0]["digest"].split(":")[1]
m = json.load(open(os.path.join(layout, "blobs", "sha256", d)))
print(sum(l["size"] for l in m["layers"]))' "$LAYOUT")

# --- The registries ---------------------------------------------------------------------------------------
# start_registry NAME: a docker-registry on a free loopback port, storage in $WORK/NAME; sets REGISTRY_HOST.
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
start_registry() {
    local name=$1 port host
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    host=127.0.0.1:$port
    rm -rf "${WORK:?}/$name"
    mkdir -p "$WORK/$name"
    cat >"$WORK/$name/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/$name/storage
  delete:
    enabled: true
http:
  addr: $host
  secret: strata-bench-secret
EOF
    docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do
        curl -fs "http://$host/v2/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    REGISTRY_HOST=$host
}
# The registry the docker:// rows read from and mirror within.
start_registry registry
HOST=$REGISTRY_HOST
# The registry pushed to, emptied before each push: skopeo's blob info cache
# (/var/lib/containers/cache) remembers where it saw each blob and would mount it from an earlier run's
# repository instead of uploading; in an empty registry the mount fails and the blobs are sent.
start_registry push-registry
PUSH_HOST=$REGISTRY_HOST
AUTH=$WORK/auth.json
echo '{"auths":{}}' >"$AUTH"

# The image pushed once by skopeo as the source of the docker:// rows.
skopeo copy --quiet --dest-tls-verify=false --authfile "$AUTH" "oci:$LAYOUT:bench" "docker://$HOST/src/bench:v1"
SRC=docker://$HOST/src/bench:v1

# --- Timing ----------------------------------------------------------------------------------------------
TIMES=$WORK/times.tsv
: >"$TIMES"
COUNTER=0

# run ROW TOOL CMD...: times one run (wall, user+sys of the process and its children) into $TIMES.
run() {
    local row=$1 tool=$2
    shift 2
    local start end
    start=$(date +%s.%N)
    if ! /usr/bin/time -f '%U %S' -o "$WORK/last.time" "$@" >/dev/null 2>"$WORK/last.err"; then
        echo "compare_copy.sh: $tool failed on row '$row':" >&2
        cat "$WORK/last.err" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\n' "$row" "$tool" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
        "$(awk '{ print $1 + $2 }' "$WORK/last.time")" >>"$TIMES"
}

round() {
    local timed=$1 n
    for tool in strata skopeo; do
        COUNTER=$((COUNTER + 1))
        n=$COUNTER
        local dest_oci=$WORK/out-$n
        rm -rf "$dest_oci"
        if [[ $tool == strata ]]; then
            push=("$STRATA" copy --quiet --authfile "$AUTH" --dest-tls-verify=false)
            pull=("$STRATA" copy --quiet --authfile "$AUTH" --src-tls-verify=false)
            both=("$STRATA" copy --quiet --authfile "$AUTH" --src-tls-verify=false --dest-tls-verify=false)
        else
            push=(skopeo copy --quiet --authfile "$AUTH" --dest-tls-verify=false)
            pull=(skopeo copy --quiet --authfile "$AUTH" --src-tls-verify=false)
            both=(skopeo copy --quiet --authfile "$AUTH" --src-tls-verify=false --dest-tls-verify=false)
        fi
        if ((timed)); then
            rm -rf "${WORK:?}/push-registry/storage"
            run "oci: → docker://" "$tool" "${push[@]}" "oci:$LAYOUT:bench" "docker://$PUSH_HOST/push$n/bench:v1"
            run "docker:// → oci:" "$tool" "${pull[@]}" "$SRC" "oci:$dest_oci:bench"
            run "docker:// → docker:// (same registry)" "$tool" "${both[@]}" "$SRC" "docker://$HOST/mirror$n/bench:v1"
            rm -rf "$dest_oci"
            run "gzip → zstd (docker:// → oci:)" "$tool" "${pull[@]}" --dest-compress-format zstd "$SRC" "oci:$dest_oci:bench"
        else
            rm -rf "${WORK:?}/push-registry/storage"
            "${push[@]}" "oci:$LAYOUT:bench" "docker://$PUSH_HOST/push$n/bench:v1" >/dev/null
            "${pull[@]}" "$SRC" "oci:$dest_oci:bench" >/dev/null
            "${both[@]}" "$SRC" "docker://$HOST/mirror$n/bench:v1" >/dev/null
        fi
        rm -rf "$dest_oci"
    done
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
round 0
for _ in $(seq "$RUNS"); do
    round 1
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# Where a push's time goes: one more push per tool, with the registry's CPU time (utime + stime of its
# process, from /proc) counted beside the tool's.
PUSH_PID=${PIDS[1]}
registry_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$PUSH_PID/stat"; }
PROFILE=$WORK/profile.tsv
: >"$PROFILE"
for tool in strata skopeo; do
    COUNTER=$((COUNTER + 1))
    rm -rf "${WORK:?}/push-registry/storage"
    if [[ $tool == strata ]]; then
        cmd=("$STRATA" copy --quiet --authfile "$AUTH" --dest-tls-verify=false)
    else
        cmd=(skopeo copy --quiet --authfile "$AUTH" --dest-tls-verify=false)
    fi
    before=$(registry_cpu)
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$WORK/last.time" "${cmd[@]}" "oci:$LAYOUT:bench" \
        "docker://$PUSH_HOST/push$COUNTER/bench:v1" >/dev/null
    end=$(date +%s.%N)
    after=$(registry_cpu)
    printf '%s\t%s\t%s\t%s\n' "$tool" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
        "$(awk '{ print $1 + $2 }' "$WORK/last.time")" "$(awk -v a="$before" -v b="$after" 'BEGIN { print b - a }')" \
        >>"$PROFILE"
done

# --- Report ----------------------------------------------------------------------------------------------
STRATA_VERSION=$("$STRATA" --version 2>/dev/null || echo strata)
SKOPEO_VERSION=$(skopeo --version)
REGISTRY_VERSION=$(docker-registry --version 2>/dev/null | head -1 || echo docker-registry)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
{
    echo "# \`strata copy\` vs \`skopeo copy\`"
    echo
    echo "Made by \`tools/compare_copy.sh\` (its header says how); do not edit by hand."
    echo
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$REPO/tools/compare_copy.sh" |
        sed -n '/^1\./,/^4\./p' | sed '$d'
    echo
    echo "## The run"
    echo
    echo "- Started $STARTED; $RUNS timed runs per row after one warm-up round; rows interleaved."
    echo "- Image: 4 gzip layers, $LAYER_BYTES bytes of layers ($((LAYER_BYTES / 1000000)) MB)."
    echo "- $STRATA_VERSION (release); $SKOPEO_VERSION; $REGISTRY_VERSION."
    echo "- Machine: $(nproc) cores ($CPU), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); load average $LOAD_START at the start, $LOAD_END at the end (the machine is shared)."
    echo "- Registry and both tools on the same machine over loopback: the figures are the tools' own costs"
    echo "  (hashing, compression checks, requests, disk) with the registry's, not a network's."
    echo
    echo "## Results"
    echo
    python3 - "$TIMES" <<'PY'
import statistics, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    row, tool, wall, cpu = line.rstrip("\n").split("\t")
    if row not in rows:
        rows[row] = {}
        order.append(row)
    rows[row].setdefault(tool, []).append((float(wall), float(cpu)))
print("Seconds. ratio = skopeo's median / strata's (above 1: strata is faster; the goal is 2 or more).")
print()
print("| copy | tool | wall median | min | max | CPU (user+sys) median | ratio |")
print("|---|---|---|---|---|---|---|")
for row in order:
    med = {t: statistics.median(w for w, _ in v) for t, v in rows[row].items()}
    for tool in ("strata", "skopeo"):
        v = rows[row].get(tool, [])
        if not v:
            continue
        walls = [w for w, _ in v]
        cpu = statistics.median(c for _, c in v)
        ratio = "1.00 (baseline)" if tool == "strata" else f"{med['skopeo'] / med['strata']:.2f}"
        print(f"| {row} | {tool} | **{med[tool]:.2f}** | {min(walls):.2f} | {max(walls):.2f} | {cpu:.2f} | {ratio} |")
PY
    echo
    echo "## Where a push's time goes"
    echo
    echo "One more push of the image per tool to the emptied registry, the registry's CPU time (its process's"
    echo "utime + stime) counted beside the tool's. Both tools wait on the same registry work: receiving,"
    echo "hashing and writing the ~100 MB; what differs is the tool's own CPU and how many blobs it has in flight."
    echo
    echo "| tool | wall | tool CPU (user+sys) | registry CPU |"
    echo "|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %.2f | %.2f | %.2f |\n", $1, $2, $3, $4 }' "$PROFILE"
    echo
    awk -F'\t' '
        $1 == "strata" { sw = $2; sc = $3; sr = $4 }
        $1 == "skopeo" { kw = $2; kc = $3; kr = $4 }
        END {
            printf "strata spent %.2f s of CPU of its own on the push, skopeo %.2f s (%.1fx); the registry spent %.2f s\n", sc, kc, (sc > 0 ? kc / sc : 0), sr
            printf "under strata and %.2f s under skopeo. strata'"'"'s own work is a small part of its %.2f s wall: the rest is\n", kr, sw
            printf "the registry'"'"'s work (Distribution receives, hashes and writes every byte: at best %.2f s of wall even\n", sr / 2
            printf "spread over both cores) and waiting for the machine'"'"'s 2 cores, shared with the registry and with other\n"
            printf "work (the load average above). Where a ratio is short of 2, that is where the time goes, not strata'"'"'s\n"
            printf "CPU; skopeo'"'"'s extra CPU is what makes it slower. Over a real network both tools wait on the link instead.\n"
        }' "$PROFILE"
} >"$OUTPUT"
echo "compare_copy.sh: wrote $OUTPUT"
}
