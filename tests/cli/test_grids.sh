#!/bin/sh
# llama.cpp's grids as pack encodings: every --scheme grid and every method (rtn, mse,
# hqq, and with calibration mse, awq, gptq) makes a pack that passes check, stores the
# grid it was asked for (a 256-block grid falls back to its 32-block stand-in where 256
# does not divide the columns, and says so), is byte-identical at 1 and 2 threads, and
# decodes close to the original weights. --bits plans over grids: per tensor within the
# pack's padded bytes, and with --bits-stacked one encoding for all experts of a layer's
# projection within GGUF's bytes. (Decoding is checked bit for bit against an
# independent NumPy decoder in test_pack_decode.sh, and against ggml's layouts in
# tests/unit/test_grid.c.)
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
TINY=$ROOT/tests/data/tiny-qwen3moe

i=0
while [ $i -lt 200 ]; do
    echo "The quick brown fox $i jumps over the lazy dog while the rain falls on the old stone bridge."
    i=$((i + 1))
done >"$TMP/calib.txt"

manifest() { "$PY" -c "import json,sys; m=json.load(open(sys.argv[1]+'/manifest.json')); print(eval(sys.argv[2]))" "$@"; }
# encodings PACK: "name=encoding" for every tensor, one per line
encodings() { manifest "$1" "'\n'.join(t['name'] + '=' + t['encoding'] for t in m['tensors'])"; }

# ---- every grid scheme, uncalibrated methods ----
for grid in q8_0 q4_0 q4_1 q4_k q5_k q6_k iq4_nl iq4_xs; do
    for method in rtn mse hqq; do
        out=$TMP/$grid-$method.mpk
        if ! "$MOEPACK" convert "$TINY" -o "$out" --scheme $grid --method $method --quiet >"$TMP/out" 2>"$TMP/err"; then
            fail "$grid $method converts" "$(head -c 300 "$TMP/err")"
            continue
        fi
        expect_exit "$grid $method: check passes" 0 "$MOEPACK" check "$out"
    done
    encodings "$TMP/$grid-rtn.mpk" >"$TMP/enc"
    # experts' down projections have 256 input columns: every grid holds them as asked
    if grep -q "^layers.0.experts.3.down=$grid\$" "$TMP/enc"; then pass "$grid: the experts' down is $grid"
    else fail "$grid: the experts' down is $grid" "$(grep experts.3.down "$TMP/enc")"; fi
    case $grid in
    q4_k) want=q4_1 ;; q5_k | q6_k) want=q8_0 ;; iq4_xs) want=iq4_nl ;; *) want=$grid ;;
    esac
    # attention has 128 input columns: a 256-block grid falls back
    if grep -q "^layers.0.attn.q=$want\$" "$TMP/enc"; then pass "$grid: 128-column attention gets $want"
    else fail "$grid: 128-column attention gets $want" "$(grep attn.q= "$TMP/enc")"; fi
    if grep -q "^embed=bf16\$" "$TMP/enc" && grep -q "router=bf16\$" "$TMP/enc"; then pass "$grid: embeddings and routers stay bf16"
    else fail "$grid: embeddings and routers stay bf16"; fi
    if cmp -s "$TMP/$grid-rtn.mpk/tier-1.bin" "$TMP/$grid-mse.mpk/tier-1.bin"; then fail "$grid: mse differs from rtn"
    else pass "$grid: mse differs from rtn"; fi
done
"$MOEPACK" convert "$TINY" -o "$TMP/fb.mpk" --scheme q4_k >"$TMP/out" 2>&1
expect_contains "the fallback is reported" "$TMP/out" "took a 32-value grid or bf16 in place of q4_k"

# ---- the error each grid leaves, in order of its bits (pack_dump against bf16) ----
DUMP=$(dirname "$SYNTH")/pack_dump
"$MOEPACK" convert "$TINY" -o "$TMP/bf16.mpk" --scheme bf16 --quiet
mkdir -p "$TMP/d-bf16" && "$DUMP" "$TMP/bf16.mpk" "$TMP/d-bf16" >/dev/null 2>&1
for grid in q8_0 q6_k q5_k q4_1 q4_k iq4_xs; do
    mkdir -p "$TMP/d-$grid" && "$DUMP" "$TMP/$grid-mse.mpk" "$TMP/d-$grid" >/dev/null 2>&1
done
"$PY" - "$TMP" >"$TMP/errors" <<'PY'
import sys, numpy as np
t = sys.argv[1]
a = np.fromfile(t + "/d-bf16/layers.1.experts.5.down.f32", dtype=np.float32)
for g in ["q8_0", "q6_k", "q5_k", "q4_1", "q4_k", "iq4_xs"]:
    b = np.fromfile(t + "/d-%s/layers.1.experts.5.down.f32" % g, dtype=np.float32)
    print(g, float(np.sum((a - b) ** 2) / np.sum(a * a)))
PY
"$PY" - "$TMP/errors" <<'PY' && pass "relative errors grow as bits shrink: $(tr '\n' ' ' <"$TMP/errors")" || fail "relative errors grow as bits shrink" "$(tr '\n' ' ' <"$TMP/errors")"
import sys
e = dict((l.split()[0], float(l.split()[1])) for l in open(sys.argv[1]))
ok = e["q8_0"] < 1e-4 < e["q6_k"] < e["q5_k"] < e["q4_k"] < 0.02 and e["q5_k"] < e["q4_1"] and e["iq4_xs"] < 0.02
sys.exit(0 if ok else 1)
PY

# ---- calibrated methods onto grids ----
for method in mse awq gptq; do
    for t in 1 2; do
        "$MOEPACK" convert "$TINY" -o "$TMP/c-$method-$t.mpk" --scheme q4_k --method $method --calib "$TMP/calib.txt" \
            --calib-ctx 64 --threads $t --quiet >"$TMP/out" 2>"$TMP/err" || fail "$method onto q4_k at $t threads" "$(head -c 300 "$TMP/err")"
    done
    expect_exit "$method onto q4_k: check passes" 0 "$MOEPACK" check "$TMP/c-$method-1.mpk"
    if diff -r -x build.json "$TMP/c-$method-1.mpk" "$TMP/c-$method-2.mpk" >/dev/null; then pass "$method onto q4_k: identical at 1 and 2 threads"
    else fail "$method onto q4_k: identical at 1 and 2 threads"; fi
    n=$(encodings "$TMP/c-$method-1.mpk" | grep -c "experts.*down=q4_k\$")
    [ "$n" = 16 ] && pass "$method: all 16 experts' down are q4_k" || fail "$method: all 16 experts' down are q4_k" "$n"
done
if cmp -s "$TMP/c-gptq-1.mpk/tier-1.bin" "$TMP/c-mse-1.mpk/tier-1.bin"; then fail "gptq and mse give different grids"
else pass "gptq and mse give different grids"; fi
"$MOEPACK" convert "$TINY" -o "$TMP/rule.mpk" --method gptq --calib "$TMP/calib.txt" --calib-ctx 64 \
    --encode 'experts=iq4_nl' --encode 'attn=q8_0' --quiet >"$TMP/out" 2>&1
encodings "$TMP/rule.mpk" >"$TMP/enc"
if grep -q "experts.0.gate=iq4_nl" "$TMP/enc" && grep -q "attn.o=q8_0" "$TMP/enc"; then pass "--encode rules reach the grids"
else fail "--encode rules reach the grids"; fi
expect_exit "an --encode grid that cannot hold a tensor is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/no.mpk" \
    --encode 'attn.q=q4_k'
expect_contains "naming the tensor and the block" "$TMP/err" "layers.0.attn.q"
expect_exit "quant re-encodes a pack onto a grid" 0 "$MOEPACK" quant "$TMP/bf16.mpk" -o "$TMP/requant.mpk" --scheme q6_k --method mse
encodings "$TMP/requant.mpk" >"$TMP/enc"
grep -q "experts.2.down=q6_k\$" "$TMP/enc" && pass "quant's pack holds q6_k" || fail "quant's pack holds q6_k"

# ---- --bits over grids ----
CK=$TMP/synth
"$SYNTH" --family mixtral --hidden 256 --inter 256 --layers 2 --experts 4 -o "$CK" >/dev/null 2>&1
"$PY" -c "import random; random.seed(1); print(' '.join(str(random.randrange(256)) for _ in range(1024)))" >"$TMP/ids"
"$MOEPACK" profile "$CK" --tokens "$TMP/ids" -o "$TMP/s.stats" --quiet >/dev/null 2>"$TMP/err" ||
    fail "profile of the synthetic checkpoint" "$(head -c 300 "$TMP/err")"
GRIDS=iq4_xs,q4_k,q5_k,q6_k,q8_0
for mode in tensor stacked; do
    flag=""; [ $mode = stacked ] && flag=--bits-stacked
    if ! "$MOEPACK" convert "$CK" -o "$TMP/b-$mode.mpk" --bits 5.2 --bits-encodings $GRIDS $flag --stats "$TMP/s.stats" \
        --quiet >"$TMP/out" 2>"$TMP/err"; then
        fail "--bits $mode over grids converts" "$(head -c 300 "$TMP/err")"
        continue
    fi
    "$PY" - "$TMP/b-$mode.mpk" $mode >"$TMP/why" 2>&1 <<'PY' && pass "--bits $mode: $(cat "$TMP/why")" || fail "--bits $mode" "$(cat "$TMP/why")"
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
plan, mode = m["provenance"]["bit_plan"], sys.argv[2]
planned = [t for t in m["tensors"] if len(t["shape"]) == 2 and (".attn." in t["name"] or ".experts." in t["name"])]
params = sum(t["shape"][0] * t["shape"][1] for t in planned)
kinds = set(t["encoding"] for t in planned)
assert kinds <= set("iq4_xs q4_k q5_k q6_k q8_0".split()), kinds
assert len(kinds) > 1, "one encoding only: %s" % kinds
budget = plan["bits"] * params / 8
if mode == "stacked":
    for layer in range(2):
        for proj in ["gate", "up", "down"]:
            e = set(t["encoding"] for t in planned if t["name"].startswith("layers.%d.experts." % layer) and t["name"].endswith("." + proj))
            assert len(e) == 1, "layer %d %s: %s" % (layer, proj, e)
    ggml = {"iq4_xs": 136 / 256, "q4_k": 144 / 256, "q5_k": 176 / 256, "q6_k": 210 / 256, "q8_0": 34 / 32}
    total = sum(-(-int(t["shape"][0] * t["shape"][1] * ggml[t["encoding"]]) // 32) * 32 for t in planned)
else:
    # real bytes: each planned part padded to 64, each expert record to 4 KiB
    total = 0
    for r in m["records"]:
        parts = [p for p in r["parts"] if m["tensors"][p["tensor"]] in planned]
        if not parts:
            continue
        size = max(p["offset"] + p["length"] for p in r["parts"])
        size = -(-size // (4096 if r["expert"] >= 0 else 64)) * (4096 if r["expert"] >= 0 else 64)
        total += size - sum(p["length"] for p in r["parts"] if m["tensors"][p["tensor"]] not in planned)
assert total <= budget, "%d bytes above the budget %d" % (total, budget)
assert total == plan["bytes"], "recorded %d, counted %d" % (plan["bytes"], total)
print("%s within %d bytes (%d used)" % (sorted(kinds), budget, total))
PY
done
