#!/bin/sh
# GPTQ's two targets on ../shared's moby-dsv3 (--gptq-target, quant/calib.c):
#   original (default): each linear fitted to the original model's output at the same
#     tokens from the quantized model's inputs, W* = W C H^-1 then GPTQ onto the grid.
#     That is `moepack distill --keep-router`'s objective with the original as teacher,
#     so the two commands must store the same bytes: distill's objective has its own
#     float64 oracle (test_distill.sh), and this checks that gptq reaches it.
#   layer: each linear's own output on the quantized inputs (gptq.py).
# Both are byte-identical at 1 and 2 threads, record their target in the provenance,
# and on held-out text the original target has the lower KLD. --keep'd tensors keep
# the checkpoint's values, and experts with too few tokens are still quantized.
. "$(dirname "$0")/lib.sh"
PY=${PYTHON:-/usr/bin/python3}
MOBY=$SHARED/models/moby-dsv3
if [ ! -d "$MOBY" ]; then
    skip "gptq targets on moby-dsv3" "no $MOBY"
    exit 0
fi
head -c 60000 "$SHARED/corpus/calib.txt" >"$TMP/calib.txt"
CAL="--calib $TMP/calib.txt --calib-ctx 128 --calib-tokens 2048"

expect_exit "--gptq-target without gptq is refused" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/x.mpk" --method awq $CAL \
    --gptq-target layer
expect_exit "an unknown --gptq-target is refused" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/x.mpk" --method gptq $CAL \
    --gptq-target teacher
[ -e "$TMP/x.mpk" ] && fail "a refused convert leaves no output"

for target in original layer; do
    for t in 1 2; do
        "$MOEPACK" convert "$MOBY" -o "$TMP/$target-$t.mpk" --method gptq $CAL --gptq-target $target --threads $t \
            --quiet 2>"$TMP/err" || fail "gptq $target at $t threads converts" "$(head -c 300 "$TMP/err")"
    done
    if diff -r -x build.json "$TMP/$target-1.mpk" "$TMP/$target-2.mpk" >/dev/null; then
        pass "gptq $target: identical at 1 and 2 threads"
    else
        fail "gptq $target: identical at 1 and 2 threads"
    fi
    expect_exit "gptq $target: the pack passes check" 0 "$MOEPACK" check "$TMP/$target-1.mpk"
    expect_contains "gptq $target: the provenance records the target" "$TMP/$target-1.mpk/manifest.json" \
        "\"gptq_target\":\"$target\""
done
if cmp -s "$TMP/original-1.mpk/tier-0.bin" "$TMP/layer-1.mpk/tier-0.bin"; then
    fail "the two targets store different weights"
else
    pass "the two targets store different weights"
fi

# distill from any student of the same encodings reaches the same W*: here the RTN pack.
# (Every expert saw enough tokens: distill would keep an under-calibrated one as the
# student has it, gptq quantizes it by the fallback.)
"$MOEPACK" convert "$MOBY" -o "$TMP/rtn.mpk" --quiet
"$MOEPACK" distill --teacher "$MOBY" --student "$TMP/rtn.mpk" $CAL --keep-router -o "$TMP/distill.mpk" --quiet \
    2>"$TMP/err" || fail "distill --keep-router of the RTN pack" "$(head -c 300 "$TMP/err")"
same=1
for tier in "$TMP"/original-1.mpk/tier-*.bin; do
    cmp -s "$tier" "$TMP/distill.mpk/$(basename "$tier")" || same=0
done
if [ $same = 1 ]; then pass "gptq original stores the bytes distill --keep-router fits"
else fail "gptq original stores the bytes distill --keep-router fits"; fi

if [ ! -x "$PY" ]; then
    skip "kept tensors and KLD of the targets" "no $PY"
    exit 0
fi
# A --keep'd tensor is the checkpoint's under the original target (distill would fit
# it): its weight error is 0.
"$MOEPACK" convert "$MOBY" -o "$TMP/kept.mpk" --method gptq $CAL --keep 'layers\.1\.attn\.o$' --quiet
"$MOEPACK" verify "$TMP/kept.mpk" --reference "$MOBY" --text "$SHARED/corpus/eval.txt" --chunks 8 --json \
    --quiet >"$TMP/orig.json" 2>"$TMP/err"
kept=$("$PY" -c "
import json
w = json.load(open('$TMP/orig.json'))['weights']
print([x.get('rel_err') for x in w if x.get('name') == 'layers.1.attn.o'])" 2>&1)
if [ "$kept" = "[0.0]" ]; then pass "a --keep'd tensor keeps the checkpoint's values under the original target"
else fail "a --keep'd tensor keeps the checkpoint's values under the original target" "rel_err $kept"; fi

"$MOEPACK" reference "$MOBY" --text "$SHARED/corpus/eval.txt" --ctx 256 --chunks 40 -o "$TMP/eval.ref" --quiet
kld() { "$MOEPACK" verify "$1" --reference "$TMP/eval.ref" --json --quiet | "$PY" -c "import json,sys; print(json.load(sys.stdin)['kld_mean'])"; }
orig=$(kld "$TMP/original-1.mpk"); layer=$(kld "$TMP/layer-1.mpk")
"$PY" -c "import sys; sys.exit(0 if $orig < $layer else 1)" && pass "original target KLD $orig < layer target $layer" \
    || fail "original target KLD < layer target" "original $orig, layer $layer"
