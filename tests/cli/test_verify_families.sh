#!/bin/sh
# Every family's synthetic checkpoint (FP8 and MXFP4 storage included) converts to
# w4a16, fp8 and mixed, and each pack verifies against its checkpoint through the
# engine; an FP8 DeepSeek checkpoint converted to fp8 blocks keeps the same bits, so
# verify reports zero weight error and zero KLD.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
echo "0 5 9 14 3 22 7 31 2 18 11 25 6 30 1 17 8 27 4 20 13 29 10 24" >"$TMP/ids.txt"

for fam in "mixtral" "qwen2_moe --dense-layers 1" "qwen3_moe" "olmoe" "deepseek_v2" "deepseek_v3 --fp8" \
           "kimi_k2" "glm4_moe" "gpt_oss --mxfp4"; do
    name=$(echo "$fam" | tr ' ' '_')
    ck="$TMP/$name"
    # shellcheck disable=SC2086
    "$SYNTH" --family $fam --outliers -o "$ck" >/dev/null 2>&1 || { fail "$name: synth"; continue; }
    for scheme in w4a16 fp8 mixed; do
        "$MOEPACK" convert "$ck" -o "$TMP/p.mpk" --scheme "$scheme" --quiet --force 2>"$TMP/err" \
            || { fail "$name $scheme: convert" "$(head -c 200 "$TMP/err")"; continue; }
        expect_exit "$name $scheme: verify against the checkpoint" 0 "$MOEPACK" verify "$TMP/p.mpk" --reference "$ck" \
            --tokens "$TMP/ids.txt" --ctx 12 --json
        grep -q '"kld_mean": [0-9]' "$TMP/out" && grep -q '"hidden_cosine": [0-9]' "$TMP/out" \
            && pass "$name $scheme: finite KLD and per-layer figures" || fail "$name $scheme: finite KLD" "$(head -c 200 "$TMP/out")"
    done
done

# FP8 blocks in, FP8 blocks out: the same bits, so nothing differs.
"$MOEPACK" convert "$TMP/deepseek_v3_--fp8" -o "$TMP/same.mpk" --scheme fp8 --quiet --force
expect_exit "fp8 DeepSeek pack: verify" 0 "$MOEPACK" verify "$TMP/same.mpk" --reference "$TMP/deepseek_v3_--fp8" \
    --tokens "$TMP/ids.txt" --ctx 12 --json
python3 - "$TMP/out" <<'PY' && pass "fp8 DeepSeek pack: zero weight error on every tensor stored fp8, KLD 0" || fail "fp8 DeepSeek pack: same bits"
import json, sys
r = json.load(open(sys.argv[1]))
# every fp8 tensor but the MTP eh_proj, which the checkpoint stores in bf16 (so it is quantized)
fp8 = [w for w in r["weights"] if w["encoding"].startswith("fp8") and not w["name"].endswith("eh_proj")]
sys.exit(0 if fp8 and all(w["rel_err"] == 0 for w in fp8) and r["kld_mean"] == 0 else 1)
PY
