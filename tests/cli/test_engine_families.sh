#!/bin/sh
# The engine's logits against an independent NumPy reference of the HF forward pass
# (tests/ref/moe_forward.py, written from the HF modeling code, not from the engine)
# on synthetic checkpoints of every family and variant, and on the real trained
# tiny-qwen3moe in ../shared. Agreement: max|engine - ref| / max|ref| <= 1e-4.
#
# Families the engine does not run yet make engine_logits exit 2: those print SKIP
# unless listed in REQUIRED, where a refusal is a FAIL. Add a family to REQUIRED when
# the engine lands it.
REQUIRED="mixtral qwen2_moe qwen3_moe olmoe deepseek_v2 deepseek_v3 kimi_k2 glm4_moe gpt_oss"
. "$(dirname "$0")/lib.sh"
: "${BUILD:?run through make test}" "${SYNTH:?run through make test}"
PY=/usr/bin/python3
REF=tests/ref/moe_forward.py
ENGINE=$BUILD/engine_logits
TOKENS="254 3 17 42 99 7 128 200 5 61 61 8 250 33 90 141 2 77 19 160 222 11 64 1"

if ! "$PY" -c 'import numpy' 2>/dev/null; then
    skip "engine against the NumPy reference" "$PY has no numpy: apt-get install python3-numpy"
    exit 0
fi

# compare NAME ENGINE_F32 REF_F32: prints the figures; exit 0 when within tolerance.
compare() {
    "$PY" - "$2" "$3" <<'EOF'
import sys
import numpy as np
a, b = (np.fromfile(f, "<f4").astype(np.float64) for f in sys.argv[1:3])
if a.size != b.size or a.size == 0:
    print(f"sizes differ: engine {a.size}, reference {b.size} values")
    sys.exit(1)
scale = np.abs(b).max()
d = np.abs(a - b)
big = np.abs(b) >= 0.01 * scale
print(f"max|a-b|/max|b| {d.max() / scale:.2e}, max elementwise rel {np.max(d[big] / np.abs(b[big])):.2e} "
      f"(|b| >= 1% of max {scale:.3g}), {a.size} logits")
sys.exit(0 if np.isfinite(a).all() and d.max() <= 1e-4 * scale else 1)
EOF
}

# check NAME FAMILY DIR TOKENS: reference and engine on DIR, compared.
check() {
    name=$1 fam=$2 dir=$3 toks=$4
    if ! "$PY" "$REF" "$dir" --tokens "$toks" --out "$TMP/ref.f32" --margins 2>"$TMP/referr"; then
        fail "$name: reference" "$(head -c 300 "$TMP/referr")"
        return
    fi
    margins=$(grep 'routing margins' "$TMP/referr")
    "$ENGINE" "$dir" "$toks" "$TMP/eng.f32" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q 'engine refuses' "$TMP/err"; then
        case " $REQUIRED " in
        *" $fam "*) fail "$name: engine refuses" "$(head -c 300 "$TMP/err")" ;;
        *) skip "$name" "engine does not run $fam yet" ;;
        esac
        return
    elif [ "$rc" -ne 0 ]; then
        fail "$name: engine" "exit $rc: $(head -c 300 "$TMP/err")"
        return
    fi
    if figures=$(compare "$name" "$TMP/eng.f32" "$TMP/ref.f32"); then
        pass "$name: $figures"
    else
        fail "$name" "$figures; $margins"
    fi
}

# name | family | synth options (all with --outliers: a few hot activation channels)
while IFS='|' read -r name fam opts; do
    [ -z "$name" ] && continue
    d="$TMP/$name"
    # shellcheck disable=SC2086
    if ! "$SYNTH" --family $fam $opts --outliers -o "$d" >/dev/null 2>"$TMP/err"; then
        fail "$name: synth" "$(head -c 300 "$TMP/err")"
        continue
    fi
    check "$name" "$fam" "$d" "$TOKENS"
done <<'EOF'
mixtral|mixtral|
mixtral-tied-f32|mixtral|--tie --dtype f32
qwen2_moe|qwen2_moe|
qwen2_moe-dense-layer|qwen2_moe|--dense-layers 1 --layers 3
qwen3_moe|qwen3_moe|
qwen3_moe-sharded|qwen3_moe|--shards 3 --dtype f16
olmoe|olmoe|
deepseek_v2|deepseek_v2|
deepseek_v2-no-q-lora|deepseek_v2|--q-lora-rank 0
deepseek_v3|deepseek_v3|
deepseek_v3-fp8-partial-blocks|deepseek_v3|--fp8 --hidden 200 --inter 160 --shards 3
deepseek_v3-yarn|deepseek_v3|--yarn 40
kimi_k2|kimi_k2|
glm4_moe|glm4_moe|
glm4_moe-no-shared|glm4_moe|--shared 0
gpt_oss-bf16|gpt_oss|
gpt_oss-mxfp4|gpt_oss|--mxfp4
EOF

# The reference's own decoders where facts exist: the same logical weights stored as
# FP8 blocks (partial edge blocks included) and as MXFP4 must decode to the bf16 ones
# within the format's precision (e4m3: 2^-4 of the block max; e2m1 with a power-of-two
# scale: 1/4 of the 32-value group max, rounding half a step of 0.5 at the top binade).
"$SYNTH" --family deepseek_v3 --hidden 200 --inter 160 -o "$TMP/v3-bf16" >/dev/null &&
    "$SYNTH" --family deepseek_v3 --hidden 200 --inter 160 --fp8 -o "$TMP/v3-fp8" >/dev/null &&
    "$SYNTH" --family gpt_oss -o "$TMP/oss-bf16" >/dev/null &&
    "$SYNTH" --family gpt_oss --mxfp4 -o "$TMP/oss-fp4" >/dev/null
if out=$("$PY" - "$TMP" <<'EOF' 2>&1
import sys
sys.path.insert(0, "tests/ref")
import numpy as np
from moe_forward import Checkpoint
t = sys.argv[1]
a, b = Checkpoint(t + "/v3-fp8"), Checkpoint(t + "/v3-bf16")
worst = 0.0
for name in a.entries:
    if a.entries[name][2]["dtype"] != "F8_E4M3":
        continue
    x, y = a.get(name), b.get(name)
    r, c = y.shape
    for i in range(0, r, 128):
        for j in range(0, c, 128):
            blk = np.abs(y[i:i + 128, j:j + 128]).max()
            worst = max(worst, np.abs(x - y)[i:i + 128, j:j + 128].max() / blk)
a, b = Checkpoint(t + "/oss-fp4"), Checkpoint(t + "/oss-bf16")
w4 = 0.0
for part in ("gate_up_proj", "down_proj"):
    x = a.mxfp4("model.layers.0.mlp.experts." + part)
    y = b.get("model.layers.0.mlp.experts." + part).transpose(0, 2, 1)
    g = np.abs(y).reshape(*y.shape[:2], -1, 32).max(-1, keepdims=True)
    w4 = max(w4, (np.abs(x - y).reshape(g.shape[:-1] + (32,)) / g).max())
print(f"fp8 worst error / block max {worst:.3g}, mxfp4 worst error / group max {w4:.3g}")
sys.exit(0 if worst <= 2 ** -4 and w4 <= 0.25 else 1)
EOF
); then pass "reference decoders: $out"; else fail "reference decoders" "$out"; fi

# The real trained model: the engine reproduces PyTorch's perplexity on it, so the
# reference must agree with the engine there too (256 calibration tokens).
IDS=$SHARED/models/token-ids/tiny-qwen3moe.calib.ids
if have_shared && [ -f "$IDS" ]; then
    toks=$(tr -s ' \n' '  ' <"$IDS" | cut -d' ' -f1-256)
    check "tiny-qwen3moe (trained, 256 tokens)" qwen3_moe "$SHARED/models/tiny-qwen3moe" "$toks"
else
    skip "tiny-qwen3moe against the reference" "$SHARED/models absent"
fi
