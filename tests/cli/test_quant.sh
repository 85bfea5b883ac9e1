#!/bin/sh
# moepack quant PACK: a bf16 pack re-quantized gives the tier files and manifest
# (tensors, records, tiers, model, routing statistics) that convert gives from the
# checkpoint it came from: the same encodings of the same bf16 values, for every
# scheme, the overrides, every family stored in bf16, and calibrated gptq (the
# engine reads the same values from either). Calibrated packs check and are the
# same at 1 and 2 threads; lossy inputs quantized again are warned about; errors
# are one line, exit 2, and leave nothing behind.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
TINY=$ROOT/tests/data/tiny-qwen3moe

i=0
while [ $i -lt 300 ]; do
    echo "The quick brown fox $i jumps over the lazy dog while the rain falls on the old stone bridge."
    i=$((i + 1))
done >"$TMP/calib.txt"

manifest() { "$PY" -c "import json,sys; m=json.load(open(sys.argv[1]+'/manifest.json')); print(eval(sys.argv[2]))" "$@"; }
# same_pack NAME A B: the same tier files and side files, the same manifest but for
# its provenance (which says how each was made).
same_pack() {
    _bad=""
    for _f in tier-0.bin config.json generation_config.json tokenizer.json tokenizer_config.json; do
        [ -e "$2/$_f" ] || [ -e "$3/$_f" ] || continue
        cmp -s "$2/$_f" "$3/$_f" || _bad="$_bad $_f"
    done
    for _f in "$3"/tier-*.bin; do
        cmp -s "$_f" "$2/$(basename "$_f")" || _bad="$_bad $(basename "$_f")"
    done
    [ "$(ls "$2" | grep -c '^tier-')" = "$(ls "$3" | grep -c '^tier-')" ] || _bad="$_bad tier-count"
    _keys=$("$PY" -c "
import json, sys
a, b = (json.load(open(d + '/manifest.json')) for d in sys.argv[1:3])
print(' '.join(k for k in sorted(set(a) | set(b)) if k != 'provenance' and a.get(k) != b.get(k)))" "$2" "$3")
    [ -z "$_keys" ] || _bad="$_bad manifest:$_keys"
    if [ -z "$_bad" ]; then pass "$1"; else fail "$1" "differ:$_bad"; fi
}
# nothing_left NAME: neither x.mpk nor a temporary of it in $TMP.
nothing_left() {
    if [ -e "$TMP/x.mpk" ] || ls "$TMP" | grep -q '^x.mpk.tmp'; then fail "$1: nothing left behind"; else pass "$1: nothing left behind"; fi
}
# expect_error NAME CMD...: exit 2, one line on stderr, no output pack.
expect_error() {
    _name=$1; shift
    expect_exit "$_name: exit 2" 2 "$@"
    [ "$(wc -l <"$TMP/err")" -eq 1 ] && pass "$_name: one line" || fail "$_name: one line" "$(head -c 300 "$TMP/err")"
    nothing_left "$_name"
}

"$MOEPACK" convert "$TINY" -o "$TMP/bf16.mpk" --scheme bf16 --quiet || fail "convert --scheme bf16"

# ---- usage and bad input ----
expect_exit "quant --help" 0 "$MOEPACK" quant --help
expect_contains "quant --help documents --scheme" "$TMP/out" "--scheme S"
expect_error "a missing pack" "$MOEPACK" quant "$TMP/none.mpk" -o "$TMP/x.mpk"
expect_contains "it names the pack" "$TMP/err" "none.mpk"
expect_error "a checkpoint instead of a pack" "$MOEPACK" quant "$TINY" -o "$TMP/x.mpk"
expect_contains "it points to convert" "$TMP/err" "moepack convert"
expect_error "a missing -o" "$MOEPACK" quant "$TMP/bf16.mpk"
mkdir "$TMP/x.mpk"
expect_exit "an existing output without --force: exit 2" 2 "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/x.mpk"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && pass "an existing output: one line" || fail "an existing output: one line"
[ -z "$(ls "$TMP/x.mpk")" ] && pass "the existing output is untouched" || fail "the existing output is untouched"
rmdir "$TMP/x.mpk"
expect_error "gptq without --calib" "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/x.mpk" --method gptq
expect_error "a missing calibration text" "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/x.mpk" --method gptq \
    --calib "$TMP/none.txt"
expect_contains "it names the text" "$TMP/err" "none.txt"
expect_error "an --encode that cannot hold a tensor" "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/x.mpk" \
    --encode 'q_norm=w4g64'
expect_contains "it names the tensor" "$TMP/err" "tensor 'layers.0.attn.q_norm'"
# A manifest that is not what its checksum says is corrupt (exit 3, as for check); one
# that is well-formed JSON with a bad field is malformed (exit 2).
cp -r "$TMP/bf16.mpk" "$TMP/bad.mpk"
sed 's/"encoding":"bf16"/"encoding":"bf17"/' "$TMP/bf16.mpk/manifest.json" >"$TMP/bad.mpk/manifest.json"
expect_exit "an edited manifest: exit 3" 3 "$MOEPACK" quant "$TMP/bad.mpk" -o "$TMP/x.mpk"
# its checksum through the libxxhash moepack links (python3-xxhash may be absent)
"$PY" -c "
import ctypes, ctypes.util, sys
lib = ctypes.CDLL(ctypes.util.find_library('xxhash'))
lib.XXH3_64bits.restype, lib.XXH3_64bits.argtypes = ctypes.c_uint64, [ctypes.c_char_p, ctypes.c_size_t]
d = open(sys.argv[1], 'rb').read()
print('%016x' % lib.XXH3_64bits(d, len(d)))" "$TMP/bad.mpk/manifest.json" >"$TMP/bad.mpk/manifest.xxh3"
expect_error "a malformed manifest" "$MOEPACK" quant "$TMP/bad.mpk" -o "$TMP/x.mpk"
expect_contains "it names the tensor and the field" "$TMP/err" "tensor 'embed': unknown encoding"
rm -rf "$TMP/bad.mpk"

# ---- bf16 pack -> w4a16: what convert makes of the checkpoint ----
expect_exit "quant --scheme w4a16" 0 "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/q-w4.mpk" --scheme w4a16
expect_contains "the summary counts what was encoded again" "$TMP/out" "13 copied as stored, 56 encoded again"
[ -s "$TMP/err" ] && fail "no warning for bf16 inputs" "$(head -c 300 "$TMP/err")" || pass "no warning for bf16 inputs"
"$MOEPACK" convert "$TINY" -o "$TMP/c-w4.mpk" --scheme w4a16 --quiet
same_pack "w4a16: tier files and manifest as convert's" "$TMP/q-w4.mpk" "$TMP/c-w4.mpk"
expect_exit "w4a16: check" 0 "$MOEPACK" check "$TMP/q-w4.mpk"
got=$(manifest "$TMP/q-w4.mpk" "m['provenance']['input'] == json.load(open('$TMP/bf16.mpk/manifest.json'))['provenance']")
[ "$got" = True ] && pass "the input's provenance is kept under input" || fail "the input's provenance is kept under input" "$got"
got=$(manifest "$TMP/q-w4.mpk" "m['provenance']['command']")
case "$got" in "moepack quant $TMP/bf16.mpk --scheme w4a16 --group 128 --method rtn"*) pass "the command is recorded" ;;
    *) fail "the command is recorded" "$got" ;; esac
[ -f "$TMP/q-w4.mpk/build.json" ] && pass "build.json is written" || fail "build.json is written"

# ---- the other schemes, methods and overrides ----
for args in "--scheme fp8" "--scheme mixed --cold-codec zstd" "--method hqq" "--method mse --sym --group 64" \
    "--keep layers\.1\.attn --encode experts\.[0-3]\.down=fp8-channel --encode experts=w4g32-sym --encode embed=fp8-tensor"; do
    # shellcheck disable=SC2086
    "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/q.mpk" $args --quiet 2>"$TMP/err" || fail "quant $args" "$(head -c 300 "$TMP/err")"
    # shellcheck disable=SC2086
    "$MOEPACK" convert "$TINY" -o "$TMP/c.mpk" $args --quiet
    same_pack "$args: as convert's" "$TMP/q.mpk" "$TMP/c.mpk"
    rm -rf "$TMP/q.mpk" "$TMP/c.mpk"
done

# ---- calibrated: gptq on the pack = gptq on the checkpoint ----
for t in 1 2; do
    "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/gptq-$t.mpk" --method gptq --calib "$TMP/calib.txt" --calib-ctx 64 \
        --threads $t --quiet 2>"$TMP/err" || fail "gptq at $t threads" "$(head -c 300 "$TMP/err")"
done
expect_exit "gptq: check" 0 "$MOEPACK" check "$TMP/gptq-1.mpk"
if diff -r -x build.json "$TMP/gptq-1.mpk" "$TMP/gptq-2.mpk" >/dev/null; then pass "gptq: identical at 1 and 2 threads"
else fail "gptq: identical at 1 and 2 threads"; fi
"$MOEPACK" convert "$TINY" -o "$TMP/c-gptq.mpk" --method gptq --calib "$TMP/calib.txt" --calib-ctx 64 --quiet
same_pack "gptq: tier files and manifest as convert --calib's" "$TMP/gptq-1.mpk" "$TMP/c-gptq.mpk"
got=$(manifest "$TMP/gptq-1.mpk" "m['provenance']['calibration']['method'], m['provenance']['calibration']['tokens']")
[ "$got" = "('gptq', 12736)" ] && pass "gptq: the manifest records the calibration" || fail "gptq: manifest calibration" "$got"
"$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/awq.mpk" --method awq --calib "$TMP/calib.txt" --calib-ctx 64 --quiet
"$MOEPACK" convert "$TINY" -o "$TMP/c-awq.mpk" --method awq --calib "$TMP/calib.txt" --calib-ctx 64 --quiet
same_pack "awq (rescaled norms staged): as convert --calib's" "$TMP/awq.mpk" "$TMP/c-awq.mpk"
rm -rf "$TMP/gptq-2.mpk" "$TMP/c-gptq.mpk" "$TMP/awq.mpk" "$TMP/c-awq.mpk"

# ---- lossy inputs ----
expect_exit "w4 pack -> fp8" 0 "$MOEPACK" quant "$TMP/q-w4.mpk" -o "$TMP/w4-fp8.mpk" --scheme fp8 --quiet
expect_contains "it warns about re-encoding lossy tensors" "$TMP/err" "warning: 56 tensors stored as w4 or fp8"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && pass "the warning is one line" || fail "the warning is one line"
expect_exit "w4 pack -> fp8: check" 0 "$MOEPACK" check "$TMP/w4-fp8.mpk"
expect_exit "w4 pack -> w4a16 --json" 0 "$MOEPACK" quant "$TMP/q-w4.mpk" -o "$TMP/w4-w4.mpk" --json
got=$("$PY" -c "import json,sys; j=json.load(sys.stdin); print(j['tensors'], j['copied'], j['lossy_requantized'])" <"$TMP/out")
[ "$got" = "69 69 0" ] && pass "the same encoding is copied, without warning" || fail "the same encoding is copied" "$got"
[ -s "$TMP/err" ] && fail "no warning when nothing is requantized" || pass "no warning when nothing is requantized"
cmp -s "$TMP/q-w4.mpk/tier-1.bin" "$TMP/w4-w4.mpk/tier-1.bin" && pass "copied tensors keep their bytes" \
    || fail "copied tensors keep their bytes"

# ---- tiers and routing statistics are kept ----
"$MOEPACK" profile "$TINY" --text "$TMP/calib.txt" --ctx 64 -o "$TMP/tiny.stats" --quiet >/dev/null 2>&1
"$MOEPACK" convert "$TINY" -o "$TMP/bf16-t3.mpk" --scheme bf16 --stats "$TMP/tiny.stats" --tiers 3 --quiet
"$MOEPACK" convert "$TINY" -o "$TMP/c-t3.mpk" --stats "$TMP/tiny.stats" --tiers 3 --cold-codec zstd --quiet
expect_exit "3 tiers -> w4a16, zstd experts" 0 "$MOEPACK" quant "$TMP/bf16-t3.mpk" -o "$TMP/q-t3.mpk" --cold-codec zstd --quiet
same_pack "3 tiers and routing_stats: as convert --stats's" "$TMP/q-t3.mpk" "$TMP/c-t3.mpk"
expect_exit "the expert tiers keep their codec by default" 0 "$MOEPACK" quant "$TMP/c-t3.mpk" -o "$TMP/q-z.mpk" --scheme fp8 --quiet
got=$(manifest "$TMP/q-z.mpk" "[t['codec'] for t in m['tiers']]")
[ "$got" = "['none', 'zstd', 'zstd']" ] && pass "zstd expert tiers stay zstd" || fail "zstd expert tiers stay zstd" "$got"

# ---- every family stored in bf16: the classes from the names are convert's ----
for fam in "mixtral" "qwen2_moe --dense-layers 1" "deepseek_v2" "deepseek_v3" "gpt_oss --mxfp4"; do
    d=$(echo "$fam" | tr ' ' '_')
    # shellcheck disable=SC2086
    "$SYNTH" --family $fam -o "$TMP/$d" >/dev/null 2>&1 || { fail "$d: synth"; continue; }
    "$MOEPACK" convert "$TMP/$d" -o "$TMP/$d-bf16.mpk" --scheme bf16 --quiet
    "$MOEPACK" quant "$TMP/$d-bf16.mpk" -o "$TMP/$d-q.mpk" --scheme mixed --quiet 2>"$TMP/err" || fail "$d: quant" "$(head -c 300 "$TMP/err")"
    "$MOEPACK" convert "$TMP/$d" -o "$TMP/$d-c.mpk" --scheme mixed --quiet
    same_pack "$d: mixed as convert's" "$TMP/$d-q.mpk" "$TMP/$d-c.mpk"
done
# An FP8 pack stays bit-exact through quant --scheme fp8: nothing is encoded again.
"$SYNTH" --family deepseek_v3 --fp8 -o "$TMP/ds-fp8" >/dev/null 2>&1
"$MOEPACK" convert "$TMP/ds-fp8" -o "$TMP/ds-fp8.mpk" --scheme fp8 --quiet
expect_exit "fp8 pack -> fp8" 0 "$MOEPACK" quant "$TMP/ds-fp8.mpk" -o "$TMP/ds-fp8-q.mpk" --scheme fp8
expect_contains "every tensor is copied as stored" "$TMP/out" "0 encoded again"
same_pack "fp8 pack -> fp8 keeps every byte" "$TMP/ds-fp8-q.mpk" "$TMP/ds-fp8.mpk"

# ---- interrupted: no pack under the final name, no temporary after SIGTERM ----
"$SYNTH" --family qwen3_moe --layers 8 --hidden 512 --experts 16 --moe-inter 512 -o "$TMP/big" >/dev/null 2>&1
"$MOEPACK" convert "$TMP/big" -o "$TMP/big.mpk" --scheme bf16 --quiet
"$MOEPACK" quant "$TMP/big.mpk" -o "$TMP/x.mpk" --method mse --threads 1 --quiet 2>/dev/null &
pid=$!
sleep 0.3
kill -TERM "$pid" 2>/dev/null
wait "$pid"
if [ $? -eq 0 ]; then skip "interrupted quant" "finished before the signal"; rm -rf "$TMP/x.mpk"
else nothing_left "SIGTERM"; fi
