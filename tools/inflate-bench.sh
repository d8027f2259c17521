#!/usr/bin/env bash
# Measure gzip inflate backends on the same inputs, interleaved, and write docs/BENCHMARKS-inflate.md.
#
#   bash tools/inflate-bench.sh [--quick] [--runs N] [--output FILE]
#
#   --quick       take the layer from compare.sh's --quick image (image-quick) instead of image-full
#   --runs N      timed rounds (runs per command), after one warm-up round (default 7)
#   --output F    write the report to F (default docs/BENCHMARKS-inflate.md)
#
# 1. Installs what it needs if missing (apt: hyperfine pigz cmake, and nasm autoconf automake libtool make for
#    isal-sys's build of ISA-L), and builds tools/inflate-bench (a crate outside the workspace) once per backend,
#    each into its own target dir under tools/inflate-bench/target/: flate2 + zlib-rs (with strata's own decoder
#    in the same binary), flate2 + zlib-ng, flate2 + miniz_oxide, libdeflate, ISA-L (igzip).
# 2. Inputs: (a) the largest gzip layer blob of compare.sh's cached benchmark image
#    (${STRATA_BENCH_DIR:-/var/tmp/strata-bench}/image-full; `bash tools/compare.sh` builds and caches it,
#    `bash tools/compare.sh --quick` the small one that --quick here reads); (b) a tar of /usr/include and
#    (c) a tar of /usr/share/doc, each gzip -6 (sorted names, zero mtimes and owners, gzip -n), written once to
#    the work dir ${STRATA_INFLATE_BENCH_DIR:-/var/tmp/strata-inflate-bench}.
# 3. Checks that every backend gives the same output length and CRC-32 on each input, then times, per input,
#    in rounds: a warm-up round, then N timed ones, each ONE `hyperfine -N --runs 1` invocation running every
#    command once, in an order rotated from round to round, so that the commands' runs interleave (hyperfine
#    alone runs all of one command's runs before the next's). Commands: every backend (whole stream, one pass
#    per process), strata's decoder through LayerReader, strata's whole index pass (read_layer), gzip -dc and
#    pigz -dc (output to /dev/null).
# 4. Writes the report: machine, load before and after, inputs, wall-clock medians, MB/s of output, ratios to
#    flate2 + zlib-rs, and the in-process inflate rates the binaries logged. The "Decision" section is prose
#    written from the figures: it is carried over from the report being replaced, to be re-read.
set -euo pipefail

# One { ... } block: bash reads all of it before running any of it (this tree is edited while scripts run).
{
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
CRATE=$REPO/tools/inflate-bench

die() {
    echo "inflate-bench.sh: $*" >&2
    exit 1
}
step() { echo "== $*" >&2; }

QUICK=0
RUNS=7
OUTPUT=$REPO/docs/BENCHMARKS-inflate.md
while (($# > 0)); do
    case $1 in
    --quick) QUICK=1 ;;
    --runs)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 2 ]] || die "--runs needs a number >= 2"
        RUNS=$2
        shift
        ;;
    --output)
        [[ $# -ge 2 ]] || die "--output needs a file"
        OUTPUT=$(realpath -m -- "$2")
        shift
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

# ---------------------------------------------------------------------------------------------------------
# Tools

need=()
# command:package; isal-sys builds ISA-L with autogen.sh (autoconf, automake, libtoolize), configure, make, nasm.
for t in hyperfine:hyperfine pigz:pigz cmake:cmake python3:python3 gzip:gzip nasm:nasm autoconf:autoconf \
    automake:automake libtoolize:libtool make:make; do
    command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if ((${#need[@]})); then
    ((EUID == 0)) || die "missing: ${need[*]} (apt-get install ${need[*]})"
    step "apt-get install ${need[*]}"
    apt-get install -y "${need[@]}" >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y "${need[@]}" >/dev/null
    }
fi

WORK=$(realpath -m -- "${STRATA_INFLATE_BENCH_DIR:-/var/tmp/strata-inflate-bench}")
BENCH=$(realpath -m -- "${STRATA_BENCH_DIR:-/var/tmp/strata-bench}")
mkdir -p -- "$WORK/bin" "$WORK/results"
rm -f -- "$WORK"/results/*

# ---------------------------------------------------------------------------------------------------------
# Build: one binary per backend (flate2 takes one backend per build)

VARIANTS=(zlib-rs zlib-ng miniz libdeflate isal)
features() {
    case $1 in
    zlib-rs) echo zlib-rs,strata ;;
    *) echo "$1" ;;
    esac
}
for v in "${VARIANTS[@]}"; do
    step "build inflate-bench ($v)"
    cargo build --quiet --release --locked --manifest-path "$CRATE/Cargo.toml" \
        --features "$(features "$v")" --target-dir "$CRATE/target/$v"
    cp -f -- "$CRATE/target/$v/release/inflate-bench" "$WORK/bin/inflate-bench-$v"
done
B=$WORK/bin

# ---------------------------------------------------------------------------------------------------------
# Inputs

KIND=full
((QUICK)) && KIND=quick
BLOBS=$BENCH/image-$KIND/layout/blobs/sha256
[[ -d $BLOBS ]] || die "no cached benchmark image at $BENCH/image-$KIND: run 'bash tools/compare.sh$( ((QUICK)) && echo ' --quick')' once (it builds and caches it), or pass --quick"
LAYER=""
while read -r _ f; do
    if [[ $(head -c2 -- "$f" | od -An -tx1 | tr -d ' \n') == 1f8b ]]; then
        LAYER=$f
        break
    fi
done < <(find "$BLOBS" -type f -printf '%s %p\n' | sort -rn)
[[ -n $LAYER ]] || die "no gzip blob in $BLOBS"

synthetic() { # synthetic NAME DIR: a deterministic gzip -6 tar of /DIR, written once
    local out=$WORK/$1.tar.gz
    if [[ ! -s $out ]]; then
        step "input $out (tar of /$2 | gzip -6 -n)"
        tar -c --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C / "$2" 2>/dev/null |
            gzip -6 -n >"$out.tmp"
        mv -f -- "$out.tmp" "$out"
    fi
    echo "$out"
}
INPUTS=("layer:$LAYER" "usr-include:$(synthetic usr-include usr/include)" "usr-share-doc:$(synthetic usr-share-doc usr/share/doc)")

# ---------------------------------------------------------------------------------------------------------
# Check: every backend, the same bytes

for input in "${INPUTS[@]}"; do
    name=${input%%:*} file=${input#*:}
    step "check $name"
    want=""
    for cmd in "zlib-rs" "zlib-ng" "miniz" "libdeflate" "isal" "zlib-rs --strata"; do
        read -r v args <<<"$cmd"
        # "LABEL run 1: BYTES bytes, crc32 CRC, ..."
        got=$("$B/inflate-bench-$v" $args "$file" 1 | awk '/ run 1: / { print $4, $7 }' | tr -d ,)
        [[ -n $got ]] || die "$cmd on $file printed no run"
        [[ -z $want || $got == "$want" ]] || die "$cmd on $file: '$got', others '$want'"
        want=$got
    done
    gz=$(gzip -dc -- "$file" | wc -c)
    [[ $gz == "${want%% *}" ]] || die "gzip -dc $file gives $gz bytes, the backends ${want%% *}"
    echo "$name ${want%% *}" >>"$WORK/results/sizes.txt"
done

# ---------------------------------------------------------------------------------------------------------
# Time. hyperfine runs all of one command's runs before the next command's, so on a loaded machine a change
# of load lands on some commands and not others. Instead: rounds, each ONE hyperfine invocation running every
# command once (--runs 1), the order rotated from round to round; round 0 is the warm-up and is dropped.

NAMES=("flate2 + zlib-rs" "flate2 + zlib-ng" "flate2 + miniz_oxide" "libdeflate" "ISA-L (igzip, isal-sys 0.5.3)"
    "strata LayerReader (ISA-L)" "strata read_layer (zlib-rs, 2 threads)" "gzip -dc" "pigz -dc")
commands() { # commands FILE LOG: one command line per name, in NAMES' order
    printf '%s\n' "$B/inflate-bench-zlib-rs --log $2 $1" "$B/inflate-bench-zlib-ng --log $2 $1" \
        "$B/inflate-bench-miniz --log $2 $1" "$B/inflate-bench-libdeflate --log $2 $1" \
        "$B/inflate-bench-isal --log $2 $1" "$B/inflate-bench-zlib-rs --strata --log $2 $1" \
        "$B/inflate-bench-zlib-rs --strata-index --log $2 $1" \
        "gzip -dc $1" "pigz -dc $1"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
loadavg >"$WORK/results/load-before.txt"
for input in "${INPUTS[@]}"; do
    name=${input%%:*} file=${input#*:}
    log=$WORK/results/$name.log
    mapfile -t CMDS < <(commands "$file" "$log")
    step "time $name ($file): $RUNS rounds after a warm-up one, load $(loadavg)"
    loadavg >"$WORK/results/$name.load-before"
    for ((round = 0; round <= RUNS; round++)); do
        args=()
        for ((k = 0; k < ${#NAMES[@]}; k++)); do
            i=$(((k + round) % ${#NAMES[@]}))
            args+=(-n "${NAMES[i]}" "${CMDS[i]}")
        done
        hyperfine -N --runs 1 --style none --export-json "$WORK/results/$name.round$round.json" "${args[@]}" \
            >>"$WORK/results/hyperfine.txt" 2>&1
    done
    # Steady state: in-process only, 5 inflates per process, the first dropped (libdeflate's output buffer is
    # then already faulted in, as it would be if reused from layer to layer); 3 rounds.
    step "steady state $name"
    for ((round = 0; round < 3; round++)); do
        for cmd in "zlib-rs" "zlib-ng" "miniz" "libdeflate" "isal" "zlib-rs --strata"; do
            read -r v args <<<"$cmd"
            "$B/inflate-bench-$v" $args --log "$WORK/results/$name.steady.log" "$file" 5 >/dev/null
        done
    done
    loadavg >"$WORK/results/$name.load-after"
done
loadavg >"$WORK/results/load-after.txt"

# ---------------------------------------------------------------------------------------------------------
# Report

step "report $OUTPUT"
# Crate versions from the bench crate's lock file ([[package]] name, then version).
awk '/^\[\[package\]\]/ { n = "" } /^name = / { n = $3 } /^version = / && n != "" { gsub(/"/, "", n); gsub(/"/, "", $3); print n, $3 }' \
    "$CRATE/Cargo.lock" >"$WORK/results/versions.txt"
export WORK RUNS KIND LAYER
export INPUT_LIST="${INPUTS[*]}"
export CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
export CPU_FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512bw|bmi2|pclmulqdq|vpclmulqdq|sha_ni' | tr '\n' ' ')
export CORES=$(nproc)
export MEM=$(free -g | awk '/^Mem:/ { print $2 " GiB" }')
export KERNEL=$(uname -r)
export RUSTC=$(rustc --version)
export GZIP_V=$(gzip --version | head -1)
export PIGZ_V=$(pigz --version 2>&1 | head -1)
export HYPERFINE_V=$(hyperfine --version)
export DATE=$(date -u +%Y-%m-%d)
mkdir -p -- "$(dirname -- "$OUTPUT")"
python3 - "$OUTPUT" <<'PY'
import json, os, statistics, sys

work = os.environ["WORK"]
res = os.path.join(work, "results")
out_path = sys.argv[1]
inputs = [i.split(":", 1) for i in os.environ["INPUT_LIST"].split()]
sizes = dict(line.split() for line in open(os.path.join(res, "sizes.txt")))
versions = dict(line.split() for line in open(os.path.join(res, "versions.txt")))
def read(p):
    return open(os.path.join(res, p)).read().strip()

# The binaries' own log: label, bytes, crc, seconds; the first line of each label is the warm-up.
NAMES = ["flate2 + zlib-rs", "flate2 + zlib-ng", "flate2 + miniz_oxide", "libdeflate", "ISA-L (igzip, isal-sys 0.5.3)",
         "strata LayerReader (ISA-L)", "strata read_layer (zlib-rs, 2 threads)", "gzip -dc", "pigz -dc"]
LOG_LABEL = {
    "flate2 + zlib-rs": "flate2+zlib-rs",
    "flate2 + zlib-ng": "flate2+zlib-ng",
    "flate2 + miniz_oxide": "flate2+miniz_oxide",
    "libdeflate": "libdeflate",
    "ISA-L (igzip, isal-sys 0.5.3)": "isa-l(igzip)",
    "strata LayerReader (ISA-L)": "strata-LayerReader(isa-l)",
    "strata read_layer (zlib-rs, 2 threads)": "strata-read_layer(zlib-rs)",
}

lines = []
w = lines.append
w("# Inflate backends")
w("")
w("Generated by `bash tools/inflate-bench.sh` (%s); the figures below are from one run on %s." % (
    "--quick" if os.environ["KIND"] == "quick" else "full image", os.environ["DATE"]))
w("Which gzip inflater strata should use: flate2 with zlib-rs (strata's backend, through libz-rs-sys's C API),")
w("flate2 with zlib-ng and with miniz_oxide, libdeflate, and ISA-L's igzip, on the same inputs, each decompressing")
w("the whole multi-member stream in one process (`tools/inflate-bench`, one binary per backend), timed with")
w("`hyperfine -N` in a warm-up round and %s timed rounds per input, each round running every command once, so" % os.environ["RUNS"])
w("that the commands' runs interleave.")
w("")
w("## Machine")
w("")
w("- CPU: %s, %s cores (flags: %s); %s of memory; Linux %s" % (
    os.environ["CPU_MODEL"], os.environ["CORES"], os.environ["CPU_FLAGS"].strip(), os.environ["MEM"], os.environ["KERNEL"]))
w("- Load average (1, 5, 15 min) before: %s; after: %s. The machine is shared with other work, so absolute" % (
    read("load-before.txt"), read("load-after.txt")))
w("  times move between runs; the ratios among the interleaved runs of one input are what to read.")
w("- %s; flate2 %s, zlib-rs %s (with `std`: run-time CPU detection), libz-ng-sys %s (zlib-ng 2.3.3, built with" % (
    os.environ["RUSTC"], versions.get("flate2", "?"), versions.get("zlib-rs", "?"), versions.get("libz-ng-sys", "?")))
w("  cmake, its own run-time CPU detection), miniz_oxide %s, libdeflate-sys %s (libdeflate 1.26)," % (
    versions.get("miniz_oxide", "?"), versions.get("libdeflate-sys", "?")))
w("  isal-sys %s (its bundled ISA-L 2.31.0, built static with autotools and nasm, its own run-time CPU" % (
    versions.get("isal-sys", "?")))
w("  dispatch; gzip mode: ISA-L checks each member's CRC-32 and ISIZE too); %s; %s; %s." % (
    os.environ["GZIP_V"], os.environ["PIGZ_V"], os.environ["HYPERFINE_V"]))
w("")
w("## Inputs")
w("")
w("| input | what | gzip bytes | tar bytes | ratio |")
w("|---|---|---:|---:|---:|")
desc = {
    "layer": "the largest layer of compare.sh's benchmark image (image-%s): `%s`" % (
        os.environ["KIND"], os.path.basename(os.environ["LAYER"])[:12] + "…"),
    "usr-include": "`tar -c /usr/include | gzip -6 -n` (text: long matches)",
    "usr-share-doc": "`tar -c /usr/share/doc | gzip -6 -n` (about 40% of its files are already .gz)",
}
for name, path in inputs:
    gz = os.path.getsize(path)
    tar = int(sizes[name])
    w("| %s | %s | %s | %s | %.2f |" % (name, desc[name], f"{gz:,}", f"{tar:,}", tar / gz))
w("")
w("Every backend gave the same length and CRC-32 of the output on every input (checked before timing, and")
w("within each process on every run).")
w("")

summary = {}
runs = int(os.environ["RUNS"])
for name, path in inputs:
    tar = int(sizes[name])
    # Per command: wall and CPU (user + system) seconds of each timed round (round 0, the warm-up, dropped).
    wall, cpu, order = {}, {}, []
    for rnd in range(1, runs + 1):
        for r in json.load(open(os.path.join(res, "%s.round%d.json" % (name, rnd))))["results"]:
            if r["command"] not in wall:
                order.append(r["command"])
            wall.setdefault(r["command"], []).append(r["times"][0])
            cpu.setdefault(r["command"], []).append(r["user"] + r["system"])
    order.sort(key=lambda c: NAMES.index(c))
    log, steady = {}, {}
    for line in open(os.path.join(res, name + ".log")):
        label, _bytes, _crc, secs, _run = line.split("\t")
        log.setdefault(label, []).append(float(secs))
    for line in open(os.path.join(res, name + ".steady.log")):
        label, _bytes, _crc, secs, run = line.split("\t")
        if int(run) > 1:
            steady.setdefault(label, []).append(float(secs))
    base = statistics.median(wall["flate2 + zlib-rs"])
    base_cpu = statistics.median(cpu["flate2 + zlib-rs"])
    w("## %s (%s MB of output)" % (name, f"{tar / 1e6:,.1f}"))
    w("")
    w("Load before: %s; after: %s." % (read(name + ".load-before"), read(name + ".load-after")))
    w("")
    w("| command | median wall s | MB/s of output (wall) | median CPU s | in-process MB/s | steady MB/s | wall vs zlib-rs | CPU vs zlib-rs |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for cmd in order:
        med, c = statistics.median(wall[cmd]), statistics.median(cpu[cmd])
        ip = ""
        if cmd in LOG_LABEL and LOG_LABEL[cmd] in log:
            timed = log[LOG_LABEL[cmd]][1:] or log[LOG_LABEL[cmd]]
            ip = "%.0f" % (tar / 1e6 / statistics.median(timed))
        st = ""
        if cmd in LOG_LABEL and LOG_LABEL[cmd] in steady:
            st = "%.0f" % (tar / 1e6 / statistics.median(steady[LOG_LABEL[cmd]]))
        w("| %s | %.3f | %.0f | %.3f | %s | %s | %.2f× | %.2f× |" % (cmd, med, tar / 1e6 / med, c, ip, st, med / base, c / base_cpu))
        summary.setdefault(cmd, []).append((med / base, c / base_cpu))
    w("")

w("Each figure is the median of %s rounds; a round runs every command once, one after the other, the order" % os.environ["RUNS"])
w("rotated from round to round (hyperfine alone would run all of one command's runs before the next's, and")
w("a change of load would then fall on some commands only). Wall time is the whole process (start, reading")
w("the file from the page cache, inflating, the output CRC-32); CPU is user + system time, less disturbed by")
w("the load than wall time for the single-threaded commands (pigz and read_layer use two threads); the")
w("in-process rate is the inflate alone, as the binary timed it. A ratio below 1 is faster than")
w("flate2 + zlib-rs. libdeflate's system time is mostly page faults: it needs each member's whole output in")
w("one buffer (here 120-135 MB, touched for the first time in each process). The steady rate is in-process")
w("too, from separate processes that inflate the input 5 times and drop the first (3 such processes per")
w("command, run one after the other, not interleaved): libdeflate's buffer is then already faulted in, the")
w("best case for it.")
w("")
w("`strata LayerReader` is strata's own gzip decoder (members parsed")
w("and checked by strata; deflate by ISA-L, as for every read that records no checkpoints) read sequentially")
w("through the random-access")
w("reader; `strata read_layer` is the whole index pass minus writing the index (sha256 of the blob, inflate and")
w("checkpoints on one thread, sha256 of the tar and tar parsing on another; its wall time also holds one sha256")
w("of the blob made before the pass, for the digest it checks), shown for scale, not as a backend.")
w("gzip -dc and pigz -dc write to /dev/null; pigz inflates on one thread (its other threads read, write and")
w("check).")
w("")
w("Geometric mean of the ratios over the %d inputs:" % len(inputs))
w("")
w("| command | wall vs flate2 + zlib-rs | CPU vs flate2 + zlib-rs |")
w("|---|---:|---:|")
for cmd, rs in summary.items():
    w("| %s | %.2f× | %.2f× |" % (cmd, statistics.geometric_mean([a for a, _ in rs]), statistics.geometric_mean([b for _, b in rs])))
w("")
w("## Decision")
w("")
# The decision is prose written from the figures: kept from the report this run replaces, to be re-read.
decision = None
if os.path.exists(out_path):
    old = open(out_path).read()
    if "\n## Decision\n" in old:
        decision = old.split("\n## Decision\n", 1)[1].split("\n## ", 1)[0].strip()
w(decision or "(to be written from the figures above)")
if decision:
    print("inflate-bench.sh: the Decision section was kept from the previous report: re-read it against the new figures",
          file=sys.stderr)
w("")
w("## Reproduce")
w("")
w("```sh")
w("bash tools/compare.sh            # once: builds and caches the benchmark image (or: --quick, then --quick below)")
w("bash tools/inflate-bench.sh      # builds the five variants, checks, times, rewrites this file")
w("```")
w("")
w("One backend by hand: `cargo build --release --manifest-path tools/inflate-bench/Cargo.toml --features zlib-ng")
w("--target-dir tools/inflate-bench/target/zlib-ng`, then `tools/inflate-bench/target/zlib-ng/release/inflate-bench")
w("FILE.gz 5` prints MB/s per run and the median.")
open(out_path, "w").write("\n".join(lines) + "\n")
PY
echo "wrote $OUTPUT" >&2
exit 0
}
