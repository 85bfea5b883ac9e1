#!/bin/sh
# Quality per bit of every w4 method on moby-mixtral, scored like llama-perplexity
# --kl-divergence over the whole of eval.txt at ctx 256 (calibration on calib.txt):
# RTN, MSE, HQQ, imatrix MSE, AWQ, GPTQ (with and without act-order), FP8 and the
# mixed scheme, and the best configuration within the size of llama.cpp's
# Q4_K_M+imatrix GGUF (9,040,832 bytes). Prints moepack compare's table (size, bits per
# weight, PPL, KLD mean / p99, same top-1, time to make) and its bits-vs-KLD plot, then
# each method's KLD and time as ratios to RTN's, measured in the same run. The HTML
# report and the SVG plot go to $BENCH_OUT (default bench/out).
: "${MOEPACK:?run through make bench}"
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
M=$SHARED/models/moby-mixtral
CALIB=$SHARED/corpus/calib.txt
if [ ! -d "$M" ]; then
    echo "SKIP: bench_quality (../shared absent)"
    exit 0
fi
OUT=${BENCH_OUT:-$(dirname "$0")/out}
mkdir -p "$OUT"
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/moepack-quality-XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$MOEPACK" reference "$M" --text "$SHARED/corpus/eval.txt" --ctx 256 -o "$dir/eval.ref" --quiet || exit 1

make_pack() { # NAME ARGS...
    _name=$1; shift
    "$MOEPACK" convert "$M" -o "$dir/$_name.mpk" --quiet "$@" || { echo "convert $_name failed"; exit 1; }
}
make_pack rtn
make_pack mse --method mse
make_pack hqq --method hqq
make_pack mse-imatrix --method mse --calib "$CALIB"
make_pack awq --method awq --calib "$CALIB"
make_pack gptq --method gptq --calib "$CALIB"
make_pack gptq-act-order --method gptq --act-order --calib "$CALIB"
make_pack fp8 --scheme fp8
make_pack mixed-rtn --scheme mixed
make_pack best --method gptq --act-order --calib "$CALIB" --encode '^embed$=fp8-channel' --encode 'attn\.(q|k|v|o)$=fp8'

packs=""
for p in rtn mse hqq mse-imatrix awq gptq gptq-act-order fp8 mixed-rtn best; do packs="$packs $dir/$p.mpk"; done
# shellcheck disable=SC2086
"$MOEPACK" compare $packs --reference "$dir/eval.ref" --report "$OUT/quality.html" --quiet || exit 1
# shellcheck disable=SC2086
"$MOEPACK" compare $packs --reference "$dir/eval.ref" --json --quiet >"$dir/cmp.json" || exit 1
sed -n '/<svg/,/<\/svg>/p' "$OUT/quality.html" | sed -n '1,/<\/svg>/p' >"$OUT/quality.svg"

python3 - "$dir/cmp.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
base = next(r for r in rows if r["name"] == "rtn.mpk")
print("\n%-20s %12s %9s %10s %12s %10s" % ("pack", "weight bytes", "bits/w", "KLD mean", "KLD / RTN", "time / RTN"))
for r in rows:
    t = r["build_seconds"] / base["build_seconds"] if r.get("build_seconds") and base.get("build_seconds") else float("nan")
    print("%-20s %12d %9.3f %10.6f %12.3f %10.1f" % (r["name"][:-4], r["bytes"], r["bits_per_weight"], r["kld_mean"],
                                                  r["kld_mean"] / base["kld_mean"], t))
best = next(r for r in rows if r["name"] == "best.mpk")
print("\nbest within 9,040,832 bytes: %d bytes, KLD %.6f (llama.cpp Q4_K_M+imatrix 0.002899: %.2fx; "
      "its best expert-only 4-bit row 0.001255: %+.6f)" % (best["bytes"], best["kld_mean"], best["kld_mean"] / 0.002899,
                                                         best["kld_mean"] - 0.001255))
PY
echo "report: $OUT/quality.html, plot: $OUT/quality.svg"
