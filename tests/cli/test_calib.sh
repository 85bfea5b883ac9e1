#!/bin/sh
# convert --calib (mse, awq, gptq), hqq and --bits: usage errors refused with one
# line and no pack left; calibrated packs pass `moepack check` and are byte-identical
# at 1 and 2 threads; under-calibrated experts fall back, are listed in the summary
# and in the manifest, and are still quantized; the --bits plan is printed, recorded
# and kept within its budget; on moby-mixtral the calibrated methods lower the KL
# divergence against RTN by the margins the full eval.txt run shows (bench/quality).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
TINY=$ROOT/tests/data/tiny-qwen3moe
MOBY=$SHARED/models/moby-mixtral

# A calibration text the tiny model's tokenizer handles: plain English.
i=0
while [ $i -lt 300 ]; do
    echo "The quick brown fox $i jumps over the lazy dog while the rain falls on the old stone bridge."
    i=$((i + 1))
done >"$TMP/calib.txt"

manifest() { "$PY" -c "import json,sys; m=json.load(open(sys.argv[1]+'/manifest.json')); print(eval(sys.argv[2]))" "$@"; }

# ---- usage ----
expect_exit "gptq without --calib is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --method gptq
expect_contains "it says what is missing" "$TMP/err" "--calib FILE"
expect_exit "--calib with rtn is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --calib "$TMP/calib.txt"
expect_exit "unknown method is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --method gpt
expect_exit "--act-order without gptq is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --method awq \
    --calib "$TMP/calib.txt" --act-order
expect_exit "--bits without --stats is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --bits 4.5
expect_exit "a missing calibration text is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --method gptq \
    --calib "$TMP/none.txt"
expect_contains "the error names the text" "$TMP/err" "none.txt"
if [ -e "$TMP/x.mpk" ] || ls "$TMP" | grep -q '^x.mpk.tmp'; then fail "no pack is left behind"; else pass "no pack is left behind"; fi

# ---- every method converts, checks, and is the same at 1 and 2 threads ----
for method in mse awq gptq; do
    for t in 1 2; do
        "$MOEPACK" convert "$TINY" -o "$TMP/$method-$t.mpk" --method $method --calib "$TMP/calib.txt" --calib-ctx 64 \
            --threads $t --quiet >"$TMP/out" 2>"$TMP/err" || fail "$method at $t threads converts" "$(head -c 300 "$TMP/err")"
    done
    expect_exit "$method pack passes check" 0 "$MOEPACK" check "$TMP/$method-1.mpk"
    if diff -r -x build.json "$TMP/$method-1.mpk" "$TMP/$method-2.mpk" >/dev/null; then pass "$method: identical at 1 and 2 threads"
    else fail "$method: identical at 1 and 2 threads"; fi
    got=$(manifest "$TMP/$method-1.mpk" "m['provenance']['calibration']['method']")
    [ "$got" = "$method" ] && pass "$method: the manifest records the calibration" || fail "$method: manifest calibration" "$got"
done
expect_exit "hqq converts without calibration" 0 "$MOEPACK" convert "$TINY" -o "$TMP/hqq.mpk" --method hqq --quiet
expect_exit "hqq pack passes check" 0 "$MOEPACK" check "$TMP/hqq.mpk"
if cmp -s "$TMP/hqq.mpk/tier-1.bin" "$TMP/gptq-1.mpk/tier-1.bin"; then fail "methods give different experts"
else pass "methods give different experts"; fi
seconds=$("$PY" -c "import json; print(json.load(open('$TMP/gptq-1.mpk/build.json'))['seconds'] > 0)")
[ "$seconds" = True ] && pass "build.json records the time to make" || fail "build.json records the time to make"

# ---- under-calibrated experts ----
expect_exit "a high --calib-min-tokens still converts" 0 "$MOEPACK" convert "$TINY" -o "$TMP/fb.mpk" --method gptq \
    --calib "$TMP/calib.txt" --calib-ctx 64 --calib-min-tokens 1000000
expect_contains "the summary lists the experts that fell back" "$TMP/out" "16 experts saw too few tokens"
expect_contains "and names them" "$TMP/out" "layers.1.experts.7"
n=$(manifest "$TMP/fb.mpk" "len(m['provenance']['calibration']['fallbacks'])")
[ "$n" = 16 ] && pass "the manifest lists 16 fallbacks" || fail "the manifest lists 16 fallbacks" "$n"
w4=$(manifest "$TMP/fb.mpk" "sum(1 for t in m['tensors'] if '.experts.' in t['name'] and t['encoding'] == 'w4')")
[ "$w4" = 48 ] && pass "fallback experts are still quantized (48 w4 tensors)" || fail "fallback experts are still quantized" "$w4"
expect_exit "--calib-all-experts converts" 0 "$MOEPACK" convert "$TINY" -o "$TMP/all.mpk" --method gptq \
    --calib "$TMP/calib.txt" --calib-ctx 64 --calib-all-experts
expect_contains "with every token, every expert is calibrated" "$TMP/out" "every expert saw enough tokens"

# ---- --bits ----
"$MOEPACK" profile "$TINY" --text "$TMP/calib.txt" --ctx 64 -o "$TMP/tiny.stats" --quiet >/dev/null 2>&1
expect_exit "--bits 4.6 converts" 0 "$MOEPACK" convert "$TINY" -o "$TMP/bits.mpk" --bits 4.6 --stats "$TMP/tiny.stats"
expect_contains "the plan is printed" "$TMP/out" "bit plan    4.600 bits per weight asked"
achieved=$(manifest "$TMP/bits.mpk" "m['provenance']['bit_plan']['achieved']")
"$PY" -c "import sys; sys.exit(0 if 4.4 < $achieved <= 4.6 else 1)" && pass "the plan uses the budget ($achieved bits)" \
    || fail "the plan uses the budget" "$achieved"
kinds=$(manifest "$TMP/bits.mpk" "len(set(t['group'] for t in m['tensors'] if t['encoding'] == 'w4'))")
[ "$kinds" -ge 2 ] && pass "the plan mixes w4 groups" || fail "the plan mixes w4 groups" "$kinds"
expect_exit "--bits below the smallest encoding is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/b2.mpk" --bits 4 \
    --stats "$TMP/tiny.stats"

# ---- every family calibrates (synthetic checkpoints with the tiny model's tokenizer) ----
if [ -n "$SYNTH" ]; then
    for f in mixtral qwen2_moe olmoe deepseek_v2 deepseek_v3 glm4_moe gpt_oss; do
        "$SYNTH" --family $f --vocab 1024 -o "$TMP/syn-$f" >/dev/null 2>&1 && cp "$TINY/tokenizer.json" "$TMP/syn-$f/"
        for method in gptq awq; do
            "$MOEPACK" convert "$TMP/syn-$f" -o "$TMP/syn-$f-$method.mpk" --method $method --calib "$TMP/calib.txt" \
                --calib-ctx 64 --calib-tokens 1024 --quiet >"$TMP/out" 2>"$TMP/err" \
                && "$MOEPACK" check "$TMP/syn-$f-$method.mpk" >/dev/null 2>&1 \
                && "$MOEPACK" verify "$TMP/syn-$f-$method.mpk" --reference "$TMP/syn-$f" --text "$TMP/calib.txt" --ctx 64 \
                    --chunks 2 --quiet >/dev/null 2>&1 \
                && pass "$f: $method calibrates, checks and verifies" \
                || fail "$f: $method calibrates, checks and verifies" "$(head -c 300 "$TMP/err")"
        done
    done
fi

# ---- quality on moby-mixtral (a slice of eval.txt; the whole text is bench/quality) ----
case "$BUILD" in *-san) SAN=1 ;; *) SAN=0 ;; esac
if ! have_shared; then
    skip "calibrated quality on moby-mixtral" "no ../shared"
    exit 0
fi
if [ "$SAN" = 1 ]; then
    skip "calibrated quality on moby-mixtral" "too slow under the sanitizers; the plain build runs it"
    exit 0
fi
"$MOEPACK" reference "$MOBY" --text "$SHARED/corpus/eval.txt" --ctx 256 --chunks 150 -o "$TMP/moby.ref" --quiet
kld() { "$MOEPACK" verify "$1" --reference "$TMP/moby.ref" --json --quiet | "$PY" -c "import json,sys; print(json.load(sys.stdin)['kld_mean'])"; }
"$MOEPACK" convert "$MOBY" -o "$TMP/m-rtn.mpk" --quiet
for method in gptq awq; do
    "$MOEPACK" convert "$MOBY" -o "$TMP/m-$method.mpk" --method $method --calib "$SHARED/corpus/calib.txt" --quiet
done
rtn=$(kld "$TMP/m-rtn.mpk"); gptq=$(kld "$TMP/m-gptq.mpk"); awq=$(kld "$TMP/m-awq.mpk")
"$PY" -c "import sys; sys.exit(0 if $gptq <= 0.65 * $rtn else 1)" && pass "gptq KLD $gptq <= 0.65 x rtn $rtn" \
    || fail "gptq KLD <= 0.65 x rtn" "gptq $gptq, rtn $rtn"
"$PY" -c "import sys; sys.exit(0 if $awq <= 0.9 * $rtn else 1)" && pass "awq KLD $awq <= 0.9 x rtn $rtn" \
    || fail "awq KLD <= 0.9 x rtn" "awq $awq, rtn $rtn"
"$MOEPACK" convert "$MOBY" -o "$TMP/m-gptq-1.mpk" --method gptq --calib "$SHARED/corpus/calib.txt" --threads 1 --quiet
if diff -r -x build.json "$TMP/m-gptq.mpk" "$TMP/m-gptq-1.mpk" >/dev/null; then pass "moby-mixtral gptq: identical at 1 and 2 threads"
else fail "moby-mixtral gptq: identical at 1 and 2 threads"; fi
