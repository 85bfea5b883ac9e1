#!/bin/sh
# moepack convert: input MB/s per scheme and method, against the I/O limit measured
# in the same run (the time to read the input and to write as many bytes as the
# output has), and peak RSS against input size. Inputs: ../shared/models/moby-mixtral
# and a synthetic Qwen3-MoE checkpoint of about 2.4 GB (BENCH_SMALL=1 skips it).
: "${MOEPACK:?run through make bench}" "${SYNTH:?run through make bench}"
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/moepack-bench-XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap also runs when interrupted

now() { date +%s.%N; }
elapsed() { echo "$1 $2" | awk '{printf "%.4f", $2 - $1}'; }

# io_limit INPUT_DIR OUT_BYTES: seconds to read every input file and write OUT_BYTES
# (best of 3; dirty pages of earlier runs are flushed first so they do not interfere).
io_limit() {
    best_io=""
    for i in 1 2 3; do
        sync
        t0=$(now)
        cat "$1"/*.safetensors >/dev/null
        dd if=/dev/zero of="$dir/io.bin" bs=1M count=$(( ($2 + 1048575) / 1048576 )) 2>/dev/null
        t1=$(now)
        rm -f "$dir/io.bin"
        t=$(elapsed "$t0" "$t1")
        if [ -z "$best_io" ] || awk -v a="$t" -v b="$best_io" 'BEGIN{exit !(a < b)}'; then best_io=$t; fi
    done
    echo "$best_io"
}

# bench_one NAME CKPT ARGS...: best of 3 converts.
bench_one() {
    label=$1 ckpt=$2; shift 2
    best=""
    for i in 1 2 3; do
        rm -rf "$dir/out.mpk"
        sync
        "$MOEPACK" convert "$ckpt" -o "$dir/out.mpk" --quiet --json "$@" >"$dir/run.json" || { echo "$label: convert failed"; return; }
        t=$(sed -n 's/.*"seconds": \([0-9.e-]*\).*/\1/p' "$dir/run.json")
        if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$t; cp "$dir/run.json" "$dir/best.json"; fi
    done
    in=$(sed -n 's/.*"bytes_in": \([0-9]*\).*/\1/p' "$dir/best.json")
    out=$(sed -n 's/.*"bytes_out": \([0-9]*\).*/\1/p' "$dir/best.json")
    rss=$(sed -n 's/.*"peak_rss_kb": \([0-9]*\).*/\1/p' "$dir/best.json")
    bpw=$(sed -n 's/^  "bits_per_weight": \([0-9.]*\).*/\1/p' "$dir/best.json")
    io=$(io_limit "$ckpt" "$out")
    awk -v l="$label" -v t="$best" -v io="$io" -v inb="$in" -v out="$out" -v rss="$rss" -v bpw="$bpw" 'BEGIN {
        printf "%-34s %7.3f s %8.1f MB/s  io-limit %6.3f s (%7.1f MB/s)  %5.1f%% of limit  %6.2f bpw  out %7.1f MB  peak RSS %6.1f MB (%.3f of input)\n",
            l, t, inb / 1e6 / t, io, inb / 1e6 / io, 100 * io / t, bpw, out / 1e6, rss / 1024, rss * 1024 / inb }'
}

bench_model() {
    name=$1 ckpt=$2
    bench_one "$name bf16" "$ckpt" --scheme bf16
    bench_one "$name fp8" "$ckpt" --scheme fp8
    bench_one "$name mixed" "$ckpt" --scheme mixed
    bench_one "$name w4a16 rtn" "$ckpt" --scheme w4a16 --method rtn
    bench_one "$name w4a16 rtn sym g32" "$ckpt" --scheme w4a16 --method rtn --sym --group 32
    bench_one "$name w4a16 mse" "$ckpt" --scheme w4a16 --method mse
    bench_one "$name w4a16 rtn zstd experts" "$ckpt" --scheme w4a16 --cold-codec zstd
}

echo "threads: $(nproc)"; echo
if [ -d "$SHARED/models/moby-mixtral" ]; then
    bench_model moby-mixtral "$SHARED/models/moby-mixtral"
else
    echo "moby-mixtral: skipped (no ../shared)"
fi
if [ "${BENCH_SMALL:-0}" != 1 ]; then
    "$SYNTH" --family qwen3_moe --layers 10 --hidden 2048 --experts 16 --moe-inter 1024 --heads 16 --kv-heads 4 \
        --head-dim 128 --vocab 32000 -o "$dir/synth" >/dev/null || exit 3
    echo "synthetic qwen3_moe: $(du -sb "$dir/synth" | cut -f1) bytes"
    bench_model synthetic-2.4GB "$dir/synth"
fi
