#!/bin/sh
# DeepSeek-V3's real structure at tiny widths (synth --deepseek-v3-full: 61 layers, 3
# dense, 256 routed + 1 shared experts, 8 groups, YaRN, FP8, 163 shards, an MTP layer)
# goes through the whole chain: the engine runs the FP8 checkpoint, convert makes a
# w4a16 pack, and verify runs the pack against the checkpoint layer by layer.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
CK=$TMP/v3-full
"$SYNTH" --deepseek-v3-full -o "$CK" >/dev/null 2>"$TMP/err" || fail "synth --deepseek-v3-full" "$(head -c 300 "$TMP/err")"
python3 -c "print(' '.join(str(i * 7 % 64) for i in range(32)))" >"$TMP/ids.txt"

expect_exit "reference on the FP8 checkpoint" 0 "$MOEPACK" reference "$CK" --tokens "$TMP/ids.txt" --ctx 16 -o "$TMP/v3.ref" --json
grep -q '"ppl": [0-9]' "$TMP/out" && pass "checkpoint: finite PPL" || fail "checkpoint: finite PPL" "$(head -c 300 "$TMP/out")"

expect_exit "convert to w4a16" 0 "$MOEPACK" convert "$CK" -o "$TMP/v3.mpk" --scheme w4a16 --quiet
expect_exit "verify the pack against the checkpoint" 0 "$MOEPACK" verify "$TMP/v3.mpk" --reference "$CK" \
    --tokens "$TMP/ids.txt" --ctx 16 --chunks 1 --json
# 61 decoder layers compared (the MTP layer is not run), finite figures, and the
# first layer (dense, MLA) close to the checkpoint's despite 4-bit weights.
if out=$(python3 - "$TMP/out" <<'EOF' 2>&1
import json, math, sys
r = json.load(open(sys.argv[1]))
layers = r["layers"]
ok = len(layers) == 61 and all(math.isfinite(l["hidden_cosine"]) for l in layers)
ok = ok and math.isfinite(r["ppl"]) and math.isfinite(r["kld_mean"]) and layers[0]["hidden_cosine"] > 0.95
print(f"{len(layers)} layers, PPL pack {r['ppl']:.4g} checkpoint {r['ppl_reference']:.4g}, "
      f"layer 0 cosine {layers[0]['hidden_cosine']:.4f}")
sys.exit(0 if ok else 1)
EOF
); then pass "verify report: $out"; else fail "verify report" "$out"; fi
