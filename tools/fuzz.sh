#!/usr/bin/env bash
# Builds strata's cargo-fuzz targets and runs each for a while: "errors are fine; panics are bugs".
#
#   bash tools/fuzz.sh            # 60 s per target
#   bash tools/fuzz.sh --smoke    # a few seconds per target (what tools/test.sh runs)
#
# The targets are built with the same coverage instrumentation cargo-fuzz uses (SanitizerCoverage through
# stable `-C` flags), so libFuzzer is coverage-guided on a stable toolchain; AddressSanitizer needs nightly
# (`cargo +nightly fuzz run TARGET` in the crate's fuzz/ directory) and is not used here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=60
[[ ${1:-} == --smoke ]] && seconds=5

export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

# An explicit --target keeps RUSTFLAGS off build scripts, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
for crate in strata-index strata-layer; do
    manifest=crates/$crate/fuzz/Cargo.toml
    cargo build --release --manifest-path "$manifest" --target-dir target/fuzz --target "$host"
    for target in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | tail -n +2); do
        corpus=target/fuzz/corpus/$target
        mkdir -p "$corpus" target/fuzz/artifacts
        echo "==> fuzz $target (${seconds}s)"
        log=target/fuzz/$target.log
        if ! target/fuzz/"$host"/release/"$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=target/fuzz/artifacts/ "$corpus" >"$log" 2>&1; then
            tail -n 40 "$log"
            echo "fuzz target $target found a failure; the reproducer is in target/fuzz/artifacts/"
            exit 1
        fi
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" | sed 's/^/    /'
    done
done
