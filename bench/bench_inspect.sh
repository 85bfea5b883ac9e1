#!/bin/sh
# inspect of the DeepSeek-V3-shaped synthetic checkpoint (61 layers, 256 routed +
# 1 shared experts, FP8 with scales, MTP; ~90k tensors over 163 shards).
# Baseline: reading every byte of the checkpoint once (cat > /dev/null), which is
# the least any tool that looks at every file must do.
: "${MOEPACK:?run through make bench}" "${SYNTH:?run through make bench}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap also runs when interrupted
"$SYNTH" --deepseek-v3-full -o "$dir/dsv3" >/dev/null || exit 3

best() { # best of 5 wall-clock runs of "$@", in seconds
    min=""
    for i in 1 2 3 4 5; do
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s.%N)
        min=$(echo "$t0 $t1 $min" | awk '{d = $2 - $1; if ($3 == "" || d < $3) print d; else print $3}')
    done
    echo "$min"
}

read_all() { cat "$dir"/dsv3/* >/dev/null; }
tensors=$("$MOEPACK" inspect --json "$dir/dsv3" | sed -n 's/^  "tensors": \([0-9]*\).*/\1/p')
files=$(ls "$dir/dsv3" | grep -c "\.safetensors$")
bytes=$(du -sb "$dir/dsv3" | cut -f1)
t_inspect=$(best "$MOEPACK" inspect "$dir/dsv3")
t_read=$(best read_all)
awk -v t="$t_inspect" -v r="$t_read" -v n="$tensors" -v f="$files" -v b="$bytes" 'BEGIN {
    printf "deepseek-v3-shaped: %d tensors in %d shards, %.1f MB\n", n, f, b / 1e6
    printf "inspect             %.3f s  (%.0f tensors/s)\n", t, n / t
    printf "baseline read-all   %.3f s\n", r
    printf "ratio inspect/read  %.2f\n", t / r
}'
