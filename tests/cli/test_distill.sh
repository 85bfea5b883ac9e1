#!/bin/sh
# moepack distill: every family's synthetic checkpoint converts to w4a16, distills
# against its checkpoint, and the result checks, runs and exports to GGUF with every
# tensor in its encoding and the tensors distill does not fit byte for byte
# (tests/ref/distill_ref.py same). On moby-mixtral: the distilled RTN pack's KLD is
# below the RTN pack's, the bytes do not depend on the thread count, layer 0's attn.o
# is what the objective says (tests/ref/distill_ref.py objective, float64), and a
# pruned student distills and verifies. Bad input exits 2 with one line.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
MOBY=$SHARED/models/moby-mixtral
HAVE_NUMPY=1
"$PY" -c 'import numpy' 2>/dev/null || HAVE_NUMPY=0

oracle() { # oracle NAME ARGS...: distill_ref.py's PASS/FAIL lines, prefixed with NAME
    _what=$1; shift
    "$PY" "$ROOT/tests/ref/distill_ref.py" "$@" >"$TMP/ora" 2>&1
    _rc=$?
    sed -n "s/^\(PASS\|FAIL\): /\1: $_what: /p" "$TMP/ora"
    grep -q '^FAIL: ' "$TMP/ora" || [ "$_rc" -eq 0 ] || fail "$_what: the oracle ran" "$(tail -3 "$TMP/ora")"
}

expect_exit "distill --help" 0 "$MOEPACK" distill --help
for opt in --teacher --student --calib --tokens --calib-tokens --calib-ctx --act-order --threads --json --quiet \
    --force "Norms"; do
    expect_contains "--help documents $opt" "$TMP/out" "$opt"
done

# Widths that are whole k-quant blocks, and a tokenizer, so that the packs export to GGUF
# (as tests/cli/test_export_gguf.sh makes them).
shape() {
    case $1 in
    mixtral | olmoe | gpt_oss) echo "--hidden 256 --inter 256 --vocab 320" ;;
    deepseek_* | kimi_k2) echo "--hidden 256 --inter 256 --moe-inter 256 --vocab 320 --kv-lora-rank 32" ;;
    *) echo "--hidden 256 --inter 256 --moe-inter 256 --vocab 320" ;;
    esac
}
awk 'BEGIN { for (i = 0; i < 700; i++) printf "%d ", (i * 37 + 11) % 300; print "" }' >"$TMP/ids.txt"
for fam in mixtral qwen2_moe qwen3_moe olmoe deepseek_v2 deepseek_v3 kimi_k2 glm4_moe gpt_oss; do
    # shellcheck disable=SC2046
    "$SYNTH" --family "$fam" -o "$TMP/$fam" $(shape "$fam") >/dev/null 2>"$TMP/err" &&
        "$PY" "$ROOT/tests/ref/gguf_tokenizer.py" spm_bpe 320 "$TMP/$fam" 2>"$TMP/err" &&
        "$MOEPACK" convert "$TMP/$fam" -o "$TMP/$fam.mpk" --scheme w4a16 --quiet 2>"$TMP/err" ||
        { fail "$fam: synth and convert" "$(head -c 300 "$TMP/err")"; continue; }
    expect_exit "$fam: distill" 0 "$MOEPACK" distill --teacher "$TMP/$fam" --student "$TMP/$fam.mpk" \
        -o "$TMP/$fam-d.mpk" --tokens "$TMP/ids.txt" --calib-ctx 64 --json --quiet
    [ -d "$TMP/$fam-d.mpk" ] || continue
    expect_exit "$fam: the distilled pack checks" 0 "$MOEPACK" check "$TMP/$fam-d.mpk"
    expect_exit "$fam: the distilled pack runs" 0 "$MOEPACK" run "$TMP/$fam-d.mpk" --prompt-ids "1 2 3 4" --max-tokens 4
    expect_exit "$fam: the distilled pack exports to GGUF" 0 "$MOEPACK" export "$TMP/$fam-d.mpk" --to gguf \
        -o "$TMP/$fam-d.gguf" --quiet
    if [ "$HAVE_NUMPY" = 1 ]; then
        oracle "$fam" same "$TMP/$fam" "$TMP/$fam.mpk" "$TMP/$fam-d.mpk"
    fi
    rm -rf "$TMP/$fam" "$TMP/$fam.mpk" "$TMP/$fam-d.mpk" "$TMP/$fam-d.gguf"
done

# Bad input: one line, exit 2.
"$SYNTH" --family qwen3_moe -o "$TMP/other" >/dev/null 2>&1
"$SYNTH" --family mixtral -o "$TMP/mix" >/dev/null 2>&1
"$MOEPACK" convert "$TMP/mix" -o "$TMP/mix.mpk" --scheme w4a16 --quiet 2>/dev/null
expect_exit "a student that is not a pack: exit 2" 2 "$MOEPACK" distill --teacher "$TMP/mix" --student "$TMP/mix" \
    -o "$TMP/x.mpk" --tokens "$TMP/ids.txt" --calib-ctx 64 --quiet
if [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "not a pack" "$TMP/err"; then pass "it says so in one line"
else fail "it says so in one line" "$(head -c 300 "$TMP/err")"; fi
expect_exit "a teacher of another model: exit 2" 2 "$MOEPACK" distill --teacher "$TMP/other" --student "$TMP/mix.mpk" \
    -o "$TMP/x.mpk" --tokens "$TMP/ids.txt" --calib-ctx 64 --quiet
if [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "$TMP/other" "$TMP/err" && grep -q "$TMP/mix.mpk" "$TMP/err"; then
    pass "the one line names both models"
else fail "the one line names both models" "$(head -c 300 "$TMP/err")"; fi
[ -e "$TMP/x.mpk" ] && fail "no output after an error" || pass "no output after an error"

if ! have_shared || [ ! -d "$MOBY" ]; then
    skip "moby-mixtral" "no $SHARED/models"
    exit 0
fi
# A small slice keeps the test short: 4096 calibration tokens, ~20 KB of eval.txt.
head -c 20000 "$SHARED/corpus/eval.txt" >"$TMP/eval.txt"
"$MOEPACK" convert "$MOBY" -o "$TMP/rtn.mpk" --scheme w4a16 --quiet 2>"$TMP/err" ||
    fail "moby: convert w4a16" "$(head -c 300 "$TMP/err")"
"$MOEPACK" tokenize "$TMP/rtn.mpk" --text "$SHARED/corpus/calib.txt" --ids >"$TMP/calib.ids"
"$MOEPACK" reference "$MOBY" --text "$TMP/eval.txt" -o "$TMP/eval.ref" --quiet 2>"$TMP/err" ||
    fail "moby: reference" "$(head -c 300 "$TMP/err")"
for t in 1 2; do
    expect_exit "moby: distill at --threads $t" 0 "$MOEPACK" distill --teacher "$MOBY" --student "$TMP/rtn.mpk" \
        -o "$TMP/d$t.mpk" --tokens "$TMP/calib.ids" --calib-ctx 256 --calib-tokens 4096 --threads $t --quiet
done
same_bytes=1
for f in "$TMP"/d1.mpk/tier-*.bin; do
    cmp -s "$f" "$TMP/d2.mpk/$(basename "$f")" || same_bytes=0
done
[ "$same_bytes" = 1 ] && pass "moby: the same tier bytes at --threads 1 and 2" ||
    fail "moby: the same tier bytes at --threads 1 and 2"
kld() { "$MOEPACK" verify "$1" --reference "$TMP/eval.ref" --json --quiet |
    sed -n 's/^ *"kld_mean": \([0-9.e+-]*\),*$/\1/p'; }
k_rtn=$(kld "$TMP/rtn.mpk")
k_d=$(kld "$TMP/d1.mpk")
if [ -n "$k_rtn" ] && [ -n "$k_d" ] && awk "BEGIN { exit !($k_d < $k_rtn) }"; then
    pass "moby: distilled KLD $k_d below the RTN pack's $k_rtn"
else fail "moby: distilled KLD below the RTN pack's" "distilled '$k_d', rtn '$k_rtn'"; fi
expect_exit "moby: the distilled pack exports to GGUF" 0 "$MOEPACK" export "$TMP/d1.mpk" --to gguf \
    -o "$TMP/d1.gguf" --quiet
if [ "$HAVE_NUMPY" = 1 ]; then
    oracle "moby" same "$MOBY" "$TMP/rtn.mpk" "$TMP/d1.mpk"
    oracle "moby" objective "$MOBY" "$TMP/rtn.mpk" "$TMP/d1.mpk" --ids "$TMP/calib.ids" --ctx 256 --chunks 16 --bos 1
else
    skip "moby: float64 oracles" "no numpy for $PY (apt-get install python3-numpy)"
fi
rm -rf "$TMP/d2.mpk" "$TMP/d1.gguf"

# A pruned student: experts mapped to the teacher's by provenance.prune.
expect_exit "moby: prune --keep 0.75" 0 "$MOEPACK" prune "$TMP/rtn.mpk" -o "$TMP/p.mpk" --tokens "$TMP/calib.ids" \
    --keep 0.75 --calib-tokens 4096 --quiet
expect_exit "moby: the pruned pack distills" 0 "$MOEPACK" distill --teacher "$MOBY" --student "$TMP/p.mpk" \
    -o "$TMP/pd.mpk" --tokens "$TMP/calib.ids" --calib-ctx 256 --calib-tokens 4096 --quiet
expect_exit "moby: the distilled pruned pack checks" 0 "$MOEPACK" check "$TMP/pd.mpk"
expect_exit "moby: the distilled pruned pack verifies" 0 "$MOEPACK" verify "$TMP/pd.mpk" --reference "$TMP/eval.ref" \
    --quiet
k_p=$(kld "$TMP/p.mpk")
k_pd=$(kld "$TMP/pd.mpk")
if [ -n "$k_p" ] && [ -n "$k_pd" ] && awk "BEGIN { exit !($k_pd < $k_p) }"; then
    pass "moby: distilling the pruned pack lowers its KLD ($k_p -> $k_pd)"
else fail "moby: distilling the pruned pack lowers its KLD" "pruned '$k_p', distilled '$k_pd'"; fi
