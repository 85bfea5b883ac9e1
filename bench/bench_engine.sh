#!/bin/sh
# The forward engine: prefill tokens/s of moby-mixtral (the f32-computed bf16
# checkpoint, and a w4a16 pack of it) at 1 and 2 threads, over the first 40 chunks
# of calib.txt at ctx 256, against this machine's sgemm throughput measured in the
# same run with the engine's own tiled sgemm: achieved GFLOP/s = tokens/s x FLOPs
# per token, and its share of the sgemm rate.
: "${MOEPACK:?run through make bench}" "${ENGINE_LIMITS:?run through make bench}"
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
M=$SHARED/models/moby-mixtral
if [ ! -d "$M" ]; then
    echo "SKIP: bench_engine (../shared absent)"
    exit 0
fi
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/moepack-bench-XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap also runs when interrupted
"$MOEPACK" convert "$M" -o "$dir/w4.mpk" --scheme w4a16 --quiet

for threads in 1 2; do
    limits=$("$ENGINE_LIMITS" "$M" 256 "$threads")
    flops=$(echo "$limits" | sed -n 's/^flops_per_token //p')
    sgemm=$(echo "$limits" | sed -n 's/^sgemm_gflops //p')
    for model in "$M" "$dir/w4.mpk"; do
        best=0
        for i in 1 2 3; do
            "$MOEPACK" reference "$model" --text "$SHARED/corpus/calib.txt" --chunks 40 --top-k 1 --threads "$threads" \
                --json -o "$dir/x.ref" >"$dir/run.json" || { echo "reference failed"; exit 1; }
            tps=$(sed -n 's/.*"tokens_per_s": \([0-9.]*\).*/\1/p' "$dir/run.json")
            best=$(awk -v a="$tps" -v b="$best" 'BEGIN { print (a > b ? a : b) }')
        done
        name=$(basename "$model")
        awk -v n="$name" -v t="$threads" -v tps="$best" -v f="$flops" -v s="$sgemm" 'BEGIN {
            g = tps * f / 1e9
            printf "%-14s threads %d  %8.0f tokens/s  %5.2f MFLOP/token  %6.2f GFLOP/s  sgemm %6.2f GFLOP/s  %5.1f%% of sgemm\n",
                n, t, tps, f / 1e6, g, s, 100 * g / s }'
    done
done
