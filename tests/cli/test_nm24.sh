#!/bin/sh
# convert --nm 2:4 (docs/FORMAT.md "2:4 sparse fp8 and w4", quant/nm_sparse.h): usage
# errors are one line with exit 2; on moby-mixtral a SparseGPT and a Wanda 2:4 pack
# (every linear 2:4) pass `check`, are byte-identical at 1 and 2 threads, hold 2 zeros
# in every group of 4 of every linear, verify against the checkpoint with a finite KLD
# (SparseGPT's below Wanda's), run, and export to GGUF value for value (w4 sym 2:4 is
# Q4_0 exactly); compressed-tensors export refuses 2:4.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REF=$ROOT/tests/ref
BUILD=${BUILD:-$(dirname "$SYNTH")}
PY=${PYTHON:-/usr/bin/python3}
MOBY=$SHARED/models/moby-mixtral
CALIB=$SHARED/corpus/calib.txt

# ---- usage ----
"$SYNTH" --family mixtral -o "$TMP/mixtral" >/dev/null 2>&1 || fail "synth mixtral"
echo "The quick brown fox jumps over the lazy dog." >"$TMP/calib.txt"
expect_exit "--nm 2:4 without --calib is refused" 2 "$MOEPACK" convert "$TMP/mixtral" -o "$TMP/x.mpk" --nm 2:4
expect_contains "it asks for --calib" "$TMP/err" "--calib FILE"
expect_exit "--nm 3:4 is refused" 2 "$MOEPACK" convert "$TMP/mixtral" -o "$TMP/x.mpk" --nm 3:4
expect_exit "--nm-method magnitude is refused" 2 "$MOEPACK" convert "$TMP/mixtral" -o "$TMP/x.mpk" --nm 2:4 \
    --nm-method magnitude --method mse --calib "$TMP/calib.txt"
expect_exit "--nm 2:4 on a grid scheme is refused" 2 "$MOEPACK" convert "$TMP/mixtral" -o "$TMP/x.mpk" --nm 2:4 \
    --scheme q4_k --method mse --calib "$TMP/calib.txt"
expect_exit "a 2:4 --encode without calibration is refused" 2 "$MOEPACK" convert "$TMP/mixtral" -o "$TMP/x.mpk" \
    --encode 'experts=w4g32-2:4'
expect_contains "it says 2:4 needs calibration" "$TMP/err" "2:4"

if ! have_shared; then
    skip "2:4 packs of moby-mixtral" "../shared absent"
    exit 0
fi

# ---- packs ----
make_pack() { # NAME THREADS ARGS...
    name=$1 t=$2; shift 2
    "$MOEPACK" convert "$MOBY" -o "$TMP/$name.mpk" --quiet --threads "$t" --nm 2:4 --sym --group 32 --method mse \
        --calib "$CALIB" --calib-tokens 4096 --calib-ctx 256 "$@" >/dev/null 2>"$TMP/err" ||
        fail "$name: converts" "$(head -c 300 "$TMP/err")"
}
make_pack sgpt 2 --nm-method sparsegpt
make_pack sgpt1 1 --nm-method sparsegpt
make_pack wanda 2 --nm-method wanda
for p in sgpt wanda; do
    expect_exit "$p: check" 0 "$MOEPACK" check "$TMP/$p.mpk"
done
same=1
for f in "$TMP"/sgpt.mpk/*.bin "$TMP"/sgpt.mpk/manifest.json; do
    cmp -s "$f" "$TMP/sgpt1.mpk/$(basename "$f")" || same=0
done
[ $same = 1 ] && pass "sparsegpt: byte-identical at 1 and 2 threads" || fail "sparsegpt: byte-identical at 1 and 2 threads"

# every linear is w4_2:4 and decodes with at most 2 nonzeros per group of 4
mkdir -p "$TMP/dump" && "$BUILD/pack_dump" "$TMP/sgpt.mpk" "$TMP/dump" >/dev/null 2>&1
"$PY" - "$TMP/sgpt.mpk/manifest.json" "$TMP/dump" <<'PYEOF' >"$TMP/cmp" 2>&1 && pass "sparsegpt: every linear is w4_2:4 and 2:4 ($(cat "$TMP/cmp"))" || fail "sparsegpt: every linear 2:4" "$(tail -c 300 "$TMP/cmp")"
import json, os, re, sys
import numpy as np
m = json.load(open(sys.argv[1]))
lin = [t for t in m["tensors"] if re.search(r"\.(q|k|v|o|gate|up|down)$", t["name"])]
assert lin and all(t["encoding"] == "w4_2:4" for t in lin), "not all linears are w4_2:4"
n = 0
for t in lin:
    path = os.path.join(sys.argv[2], t["name"] + ".f32")
    if not os.path.exists(path):
        continue
    w = np.fromfile(path, dtype=np.float32).reshape(t["shape"][0], -1, 4)
    assert ((w != 0).sum(axis=2) <= 2).all(), t["name"]
    n += 1
assert n == len(lin), f"{n} of {len(lin)} linears dumped"
print(f"{n} linears")
PYEOF

# SparseGPT's output error sum (w - w')H(w - w')^T on the real expert weights and their
# calibration activations is below Wanda's (experts only 2:4, the rest w4 by mse)
for m in sparsegpt wanda; do
    "$MOEPACK" convert "$MOBY" -o "$TMP/e-$m.mpk" --json --method mse --calib "$CALIB" --calib-tokens 4096 \
        --calib-ctx 256 --encode 'experts\.[0-9]+\.(gate|up|down)$=w4g128-2:4' --nm-method $m >"$TMP/e-$m.json" \
        2>"$TMP/err" || fail "experts 2:4 $m: converts" "$(head -c 300 "$TMP/err")"
done
"$PY" - "$TMP/e-sparsegpt.json" "$TMP/e-wanda.json" <<'PYEOF' >"$TMP/cmp" 2>&1 && pass "experts: sparsegpt output error below wanda's ($(cat "$TMP/cmp"))" || fail "experts: output error" "$(cat "$TMP/cmp")"
import json, sys
s, w = (json.load(open(f))["calibration"] for f in sys.argv[1:3])
print(f"{s['nm_tensors']} tensors: sparsegpt {s['nm_output_error']:.4g}, wanda {w['nm_output_error']:.4g}")
sys.exit(0 if s["nm_tensors"] == w["nm_tensors"] == 96 and s["nm_output_error"] < w["nm_output_error"] else 1)
PYEOF

# ---- verify, run, export ----
head -c 12000 "$SHARED/corpus/eval.txt" >"$TMP/eval.txt"
for p in sgpt wanda; do
    "$MOEPACK" verify "$TMP/$p.mpk" --reference "$MOBY" --text "$TMP/eval.txt" --ctx 256 --json >"$TMP/$p.json" 2>"$TMP/err" ||
        fail "$p: verify" "$(head -c 300 "$TMP/err")"
done
"$PY" - "$TMP/sgpt.json" "$TMP/wanda.json" <<'PYEOF' >"$TMP/cmp" 2>&1 && pass "verify: KLD finite, sparsegpt below wanda ($(cat "$TMP/cmp"))" || fail "verify: KLD" "$(cat "$TMP/cmp")"
import json, math, sys
s, w = (json.load(open(f))["kld_mean"] for f in sys.argv[1:3])
print(f"sparsegpt {s:.4f}, wanda {w:.4f}")
sys.exit(0 if math.isfinite(s) and math.isfinite(w) and 0 < s < w else 1)
PYEOF
"$MOEPACK" run "$TMP/sgpt.mpk" --prompt-ids "1 415 293" --temp 0 --max-tokens 8 --json >"$TMP/run.json" 2>"$TMP/err" &&
    "$PY" -c 'import json,sys; sys.exit(0 if len(json.load(open(sys.argv[1]))["replies"][0]["ids"]) > 0 else 1)' "$TMP/run.json" &&
    pass "sparsegpt: run generates" || fail "sparsegpt: run" "$(head -c 300 "$TMP/err")"
expect_exit "compressed-tensors export refuses 2:4" 2 "$MOEPACK" export "$TMP/sgpt.mpk" --to compressed-tensors -o "$TMP/ct"
expect_contains "it names 2:4" "$TMP/err" "2:4"
if "$PY" -c "import numpy" 2>/dev/null; then
    d=$TMP/gguf
    mkdir -p "$d/g" "$d/p"
    if "$MOEPACK" export "$TMP/sgpt.mpk" --to gguf -o "$d/out.gguf" --json --quiet >"$d/export.json" 2>"$d/err" &&
        "$PY" "$REF/gguf_read.py" "$d/out.gguf" --dump "$d/g" >/dev/null 2>"$d/err" &&
        "$BUILD/pack_dump" "$TMP/sgpt.mpk" "$d/p" >/dev/null 2>&1 &&
        "$PY" "$REF/gguf_vs_pack.py" "$d/export.json" "$d/g" "$d/p" >"$d/cmp" 2>&1; then
        pass "sparsegpt: GGUF export equals the pack value for value ($(tail -n 1 "$d/cmp"))"
    else
        fail "sparsegpt: GGUF export" "$(grep -E 'DIFFERS|Error|error' "$d/cmp" "$d/err" 2>/dev/null | head -n 3)"
    fi
else
    skip "GGUF values" "python3-numpy missing for $PY"
fi
