#!/bin/sh
# moepack run: prompt (512 tokens) and decode (128 tokens after them) tokens/s and peak RSS at 1
# and 2 threads, for moby-mixtral and a synthetic Mixtral whose q4_0 pack is about
# 1 GB, each as q4_0 and as the default w4a16, with every expert resident and with
# budgets of 75%, 50% and 25% of the expert bytes (on top of tier 0).
# Baselines measured in the same run:
# - the physical limits: packed weight bytes the decoder reads per decoded token
#   (moepack's own count) over this machine's memory read bandwidth (kern_bench),
#   and, under a budget, expert bytes read from disk per decoded token over the
#   disk's O_DIRECT read speed (dd of the pack's largest tier file);
# - with LLAMA_BENCH=path/to/llama-bench, llama.cpp's pp512, tg128 and tg128 after
#   512 tokens (d512, the depth our decode runs at) on the GGUF export of the same
#   pack, and our ratios to them.
# Every budgeted run's ids are compared with the unlimited run's ("same").
# BIG_CKPT=DIR reuses a synthetic checkpoint made earlier (it takes ~2 min and 3.6 GB).
: "${MOEPACK:?run through make bench}" "${SYNTH:?run through make bench}" "${KERN_BENCH:?run through make bench}"
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/moepack-bench-run-XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap also runs when interrupted

bw=$("$KERN_BENCH" --bandwidth)
echo "$bw"
bw1=$(echo "$bw" | sed -n 's/.*1T \([0-9.]*\) GB\/s.*/\1/p')
bw2=$(echo "$bw" | sed -n 's/.*2T \([0-9.]*\) GB\/s.*/\1/p')

big=${BIG_CKPT:-$dir/big}
if [ ! -f "$big/model.safetensors" ]; then
    "$SYNTH" --family mixtral -o "$big" --layers 8 --hidden 2048 --heads 16 --kv-heads 4 --head-dim 128 --experts 8 \
        --top-k 2 --inter 4608 --vocab 2048 >/dev/null || exit 1
fi
if [ -d "$SHARED/models/moby-mixtral" ]; then
    models="moby:$SHARED/models/moby-mixtral big:$big"
    cp "$SHARED/models/moby-mixtral/tokenizer.json" "$SHARED/models/moby-mixtral/tokenizer.model" "$big/" 2>/dev/null
else
    echo "SKIP: moby-mixtral (../shared absent)"
    models="big:$big"
fi
python3 -c 'import random; random.seed(1); print(" ".join(str(random.randrange(3, 2000)) for _ in range(512)))' >"$dir/prompt.ids"

# run_once PACK THREADS [--budget B]: the --json of one 512 + 128 token run.
run_once() {
    pack=$1 threads=$2; shift 2
    "$MOEPACK" run "$pack" --prompt-ids "$(cat "$dir/prompt.ids")" --temp 0 --max-tokens 129 --ignore-eos \
        --threads "$threads" --json "$@" >"$dir/run.json" || { echo "run failed: $pack $*"; exit 1; }
}

# decode_at_0 PACK THREADS: decode tokens/s from an empty cache (a 1-token prompt, 128
# decoded), the workload of llama-bench's tg128.
decode_at_0() {
    "$MOEPACK" run "$1" --prompt-ids 1 --temp 0 --max-tokens 129 --ignore-eos --threads "$2" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["decode_tokens_per_s"])'
}

# field NAME: a statistic of the last run.
field() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"][sys.argv[2]])' "$dir/run.json" "$1"
}

llama_row() {
    gguf=$1 threads=$2
    [ -n "$LLAMA_BENCH" ] || return
    "$LLAMA_BENCH" -m "$gguf" -p 512 -n 128 -t "$threads" -r 2 -o csv >"$dir/llama.csv" 2>/dev/null &&
        "$LLAMA_BENCH" -m "$gguf" -p 0 -n 128 -d 512 -t "$threads" -r 2 -o csv >"$dir/llama-d512.csv" 2>/dev/null ||
        { echo "llama-bench failed"; return; }
    python3 - "$dir/llama.csv" "$dir/llama-d512.csv" "$dir/ours" <<'PY'
import csv, sys
rows = [r for f in sys.argv[1:3] for r in csv.DictReader(open(f))]
def ts(p, g, d):
    return next(float(r["avg_ts"]) for r in rows
                if r["n_prompt"] == p and r["n_gen"] == g and r.get("n_depth", "0") == d)
pp, tg, tg512 = ts("512", "0", "0"), ts("0", "128", "0"), ts("0", "128", "512")
ours_pp, ours_tg, ours_tg0 = map(float, open(sys.argv[3]).read().split())
print(f"    llama.cpp pp512 {pp:8.1f}  tg128 {tg:7.2f}  tg128@d512 {tg512:7.2f}   moepack/llama.cpp: prompt "
      f"{ours_pp / pp:4.2f}x, decode {ours_tg0 / tg:4.2f}x from empty (tg128), {ours_tg / tg512:4.2f}x after 512 (tg128@d512)")
PY
}

# disk_speed PACK: MB/s of an O_DIRECT read of the pack's largest tier file.
disk_speed() {
    f=$(ls -S "$1"/tier-*.bin | head -1)
    dd if="$f" of=/dev/null bs=16M iflag=direct 2>&1 | sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p' |
        python3 -c 'import os,sys; print("%.0f" % (os.path.getsize(sys.argv[1]) / 1e6 / float(sys.stdin.read())))' "$f"
}

printf '%-5s %-6s %2s %-9s %9s %9s %7s %9s %8s %9s %9s %9s %6s %5s\n' model scheme T budget "prompt/s" "decode/s" \
    "of full" "mem lim/s" "of lim" "disk MB/t" "disk lim/s" "RSS MiB" "hit" ids
for m in $models; do
    name=${m%%:*} ckpt=${m#*:}
    for scheme in q4_0 w4a16; do
        pack=$dir/$name-$scheme.mpk
        "$MOEPACK" convert "$ckpt" -o "$pack" --scheme "$scheme" --quiet || exit 1
        [ -z "$LLAMA_BENCH" ] || "$MOEPACK" export "$pack" --to gguf -o "$dir/$name-$scheme.gguf" --quiet >/dev/null || exit 1
        disk=$(disk_speed "$pack")
        echo "$name $scheme: disk reads the tier file at $disk MB/s (O_DIRECT)"
        for threads in 1 2; do
            bw_t=$([ "$threads" = 1 ] && echo "$bw1" || echo "$bw2")
            for share in 100 75 50 25; do
                if [ "$share" = 100 ]; then
                    d0=$(decode_at_0 "$pack" "$threads") || exit 1
                    run_once "$pack" "$threads"
                    cp "$dir/run.json" "$dir/full.json"
                    tier0=$(field tier0_bytes) experts=$(field expert_bytes)
                    budget=unlimited
                else
                    b=$((tier0 + experts * share / 100))
                    run_once "$pack" "$threads" --budget "$b"
                    budget="$share%"
                fi
                python3 - "$dir/full.json" "$dir/run.json" "$name" "$scheme" "$threads" "$budget" "$bw_t" "$disk" "$d0" <<'PY'
import json, sys
full, run = (json.load(open(f)) for f in sys.argv[1:3])
s = run["stats"]
hits = sum(l["hits"] for l in s["layers"]); misses = sum(l["misses"] for l in s["layers"])
limit = float(sys.argv[7]) * 1e9 / s["weight_bytes_per_decode_token"]
disk_mb = s["disk_bytes_per_decode_token"] / 1e6
disk_limit = f"{float(sys.argv[8]) / disk_mb:10.2f}" if disk_mb > 0 else f"{'-':>10}"
same = "same" if full["replies"][0]["ids"] == run["replies"][0]["ids"] else "DIFF"
of_full = s["decode_tokens_per_s"] / full["stats"]["decode_tokens_per_s"]
print(f"{sys.argv[3]:<5} {sys.argv[4]:<6} {sys.argv[5]:>2} {sys.argv[6]:<9} {s['prompt_tokens_per_s']:9.1f} "
      f"{s['decode_tokens_per_s']:9.2f} {100 * of_full:6.0f}% {limit:9.2f} {100 * s['decode_tokens_per_s'] / limit:7.0f}% "
      f"{disk_mb:9.2f} {disk_limit} {s['peak_rss'] / 2**20:9.1f} {hits / max(1, hits + misses):6.3f} {same:>5}")
if sys.argv[6] == "unlimited":
    print(f"    decode from an empty cache (1-token prompt): {float(sys.argv[9]):.2f} tokens/s")
    open(sys.argv[1].replace("full.json", "ours"), "w").write(f"{s['prompt_tokens_per_s']} {s['decode_tokens_per_s']} {sys.argv[9]}")
PY
                [ "$share" = 100 ] && llama_row "$dir/$name-$scheme.gguf" "$threads"
            done
        done
    done
done
