#!/bin/sh
# moepack prune --merge and --refit-router: the merge assignment, the similarities and the
# merged weights of moby-mixtral (bf16 pack) against a float64 oracle (tests/ref/prune_merge.py
# over moe_forward.py), and the least-squares router of layers 1 and 3; the pruned packs
# checked from their bytes (tests/ref/check_prune.py: merges stay within groups, untouched
# experts are byte copies); every family's synthetic checkpoint merges and refits (grouped
# routing included) and runs; --keep 1 --merge is the identity.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
MOBY=$SHARED/models/moby-mixtral
CALIB=$SHARED/corpus/calib.txt

. "$(dirname "$0")/prune_checked.sh"

expect_exit "prune --help" 0 "$MOEPACK" prune --help
expect_contains "--help documents --merge" "$TMP/out" "--merge"
expect_contains "--help says whether the router refit is on by default" "$TMP/out" "On by"

awk 'BEGIN { for (i = 0; i < 700; i++) printf "%d ", (i * 37 + 11) % 200; print "" }' >"$TMP/ids.txt"
for fam in mixtral qwen2_moe qwen3_moe olmoe deepseek_v2 deepseek_v3 kimi_k2 glm4_moe gpt_oss; do
    extra=""
    [ "$fam" = deepseek_v3 ] && extra="--experts 16" # 4 groups of 4: half keeps 2 per group
    "$SYNTH" --family "$fam" $extra -o "$TMP/$fam" >/dev/null 2>"$TMP/err" &&
        "$MOEPACK" convert "$TMP/$fam" -o "$TMP/$fam.mpk" --scheme w4a16 --quiet 2>"$TMP/err" ||
        { fail "$fam: synth and convert" "$(head -c 300 "$TMP/err")"; continue; }
    expect_exit "$fam: prune --keep 0.5 --merge --refit-router" 0 "$MOEPACK" prune "$TMP/$fam.mpk" \
        -o "$TMP/$fam-m.mpk" --tokens "$TMP/ids.txt" --ctx 64 --keep 0.5 --merge --refit-router --json --quiet
    cp "$TMP/out" "$TMP/$fam.json"
    if grep -q '"experts_merged": [1-9]' "$TMP/$fam.json" && grep -q '"experts_aligned": [1-9]' "$TMP/$fam.json" &&
        grep -q '"residual_after"' "$TMP/$fam.json"; then
        pass "$fam: experts were aligned, merged and routers refit"
    else fail "$fam: experts were aligned, merged and routers refit" "$(head -c 300 "$TMP/out") $(head -c 300 "$TMP/err")"; fi
    expect_exit "$fam: the merged pack checks" 0 "$MOEPACK" check "$TMP/$fam-m.mpk"
    expect_exit "$fam: the merged pack runs" 0 "$MOEPACK" run "$TMP/$fam-m.mpk" --prompt-ids "1 2 3 4" --max-tokens 4
    checked "$fam" "$TMP/$fam.mpk" "$TMP/$fam-m.mpk"
done
# The refit must fit: on every layer but the first (whose inputs the pruning has not
# changed yet) the residual after is below the residual before.
"$PY" - "$TMP/mixtral.json" <<'PYEOF'
import json, sys
fits = json.load(open(sys.argv[1]))["router_refit"]["layers"]
ok = all(f["residual_after"] <= f["residual_before"] * (1 + 1e-9) + 1e-12 for f in fits) and \
    any(f["residual_after"] < f["residual_before"] for f in fits)
print(("PASS" if ok else "FAIL") + ": mixtral: the refit never raises a layer's router residual " +
      str([(round(f["residual_before"], 4), round(f["residual_after"], 4)) for f in fits]))
PYEOF

# --keep 1 --merge (router refit on by default): nothing to merge, no router input changed,
# every record and router byte for byte.
expect_exit "mixtral: --keep 1 --merge" 0 "$MOEPACK" prune "$TMP/mixtral.mpk" -o "$TMP/all.mpk" \
    --tokens "$TMP/ids.txt" --ctx 64 --keep 1 --merge --quiet
checked "--keep 1 --merge is the identity" "$TMP/mixtral.mpk" "$TMP/all.mpk"
expect_exit "mixtral: --keep 1 --merge: the same tensors" 0 cmp "$TMP/mixtral.mpk/tier-0.bin" "$TMP/all.mpk/tier-0.bin"

if ! have_shared || [ ! -d "$MOBY" ]; then
    skip "moby-mixtral" "no $SHARED/models"
    exit 0
fi
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    skip "moby-mixtral oracles" "no numpy for $PY (apt-get install python3-numpy)"
    exit 0
fi
"$MOEPACK" convert "$MOBY" -o "$TMP/moby-bf16.mpk" --scheme bf16 --quiet 2>"$TMP/err" ||
    fail "moby bf16 convert" "$(head -c 300 "$TMP/err")"
"$MOEPACK" tokenize "$TMP/moby-bf16.mpk" --text "$CALIB" --ids >"$TMP/calib.ids"
# bf16 makes the merged weights bf16(exact average): the oracle allows one rounding.
expect_exit "moby bf16: prune --keep 0.5 --merge" 0 "$MOEPACK" prune "$TMP/moby-bf16.mpk" -o "$TMP/bm.mpk" \
    --calib "$CALIB" --keep 0.5 --merge --calib-tokens 512 --quiet
checked "moby bf16 merge" "$TMP/moby-bf16.mpk" "$TMP/bm.mpk"
"$PY" "$ROOT/tests/ref/prune_merge.py" merge "$MOBY" "$TMP/bm.mpk" --ids "$TMP/calib.ids" --ctx 256 --chunks 2 \
    --bos 1 2>"$TMP/err" | sed 's/^\(PASS\|FAIL\): /\1: moby merge oracle: /'
grep -q . "$TMP/err" && fail "the merge oracle ran" "$(tail -3 "$TMP/err")"
expect_exit "moby bf16: prune --keep 0.75 --refit-router" 0 "$MOEPACK" prune "$TMP/moby-bf16.mpk" -o "$TMP/br.mpk" \
    --calib "$CALIB" --keep 0.75 --refit-router --calib-tokens 512 --quiet
checked "moby bf16 refit" "$TMP/moby-bf16.mpk" "$TMP/br.mpk"
for layer in 1 3; do
    "$PY" "$ROOT/tests/ref/prune_merge.py" refit "$MOBY" "$TMP/br.mpk" --ids "$TMP/calib.ids" --ctx 256 --chunks 2 \
        --bos 1 --layer $layer 2>"$TMP/err" | sed 's/^\(PASS\|FAIL\): /\1: moby refit oracle: /'
    grep -q . "$TMP/err" && fail "the refit oracle ran (layer $layer)" "$(tail -3 "$TMP/err")"
done

# w4a16: merged experts re-encoded on the pack's own w4 grids; the pack checks, runs,
# verifies against the checkpoint's reference and exports.
"$MOEPACK" convert "$MOBY" -o "$TMP/moby.mpk" --scheme w4a16 --quiet 2>/dev/null
expect_exit "moby w4a16: prune --keep 0.75 --merge --refit-router" 0 "$MOEPACK" prune "$TMP/moby.mpk" \
    -o "$TMP/moby-m.mpk" --calib "$CALIB" --keep 0.75 --merge --refit-router --calib-tokens 4096 --quiet
checked "moby w4a16 merge+refit" "$TMP/moby.mpk" "$TMP/moby-m.mpk"
expect_exit "the merged moby checks" 0 "$MOEPACK" check "$TMP/moby-m.mpk"
head -c 20000 "$SHARED/corpus/eval.txt" >"$TMP/eval-head.txt"
"$MOEPACK" reference "$MOBY" --text "$TMP/eval-head.txt" -o "$TMP/moby.ref" --quiet 2>/dev/null
expect_exit "the merged moby verifies against the checkpoint's reference" 0 "$MOEPACK" verify "$TMP/moby-m.mpk" \
    --reference "$TMP/moby.ref" --json --quiet
if grep -Eq '"kld_mean": [0-9.]+(e-?[0-9]+)?,' "$TMP/out"; then pass "its KLD is finite ($(grep kld_mean "$TMP/out" | tr -d ' ,'))"
else fail "its KLD is finite" "$(grep kld_mean "$TMP/out")"; fi
expect_exit "the merged moby exports to GGUF" 0 "$MOEPACK" export "$TMP/moby-m.mpk" --to gguf -o "$TMP/moby-m.gguf"
# On the same grids: the export treats every tensor class of the merged pack as it treats
# the original pack's (same copies, same re-encodings; docs/export.md: w4 -> Q4_1 keeps the codes).
"$MOEPACK" export "$TMP/moby-m.mpk" --to gguf -o "$TMP/moby-m2.gguf" --json >"$TMP/export-m.json" 2>/dev/null
"$MOEPACK" export "$TMP/moby.mpk" --to gguf -o "$TMP/moby.gguf" --json >"$TMP/export.json" 2>/dev/null
"$PY" - "$TMP/export.json" "$TMP/export-m.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p))["classes"] for p in sys.argv[1:3])
print(("PASS" if a == b and b["experts"]["copied"] + sum(b["experts"]["re_encoded"].values()) > 0 else "FAIL") +
      f": the merged pack exports class by class as the original: {b}")
PYEOF

# SIGINT while the routers are refit (the intermediate pack OUT.unrefit-PID exists):
# neither OUT nor any intermediate stays behind.
"$MOEPACK" prune "$TMP/moby.mpk" -o "$TMP/int.mpk" --calib "$CALIB" --keep 0.5 --calib-tokens 16384 --quiet \
    >/dev/null 2>"$TMP/int.err" &
pid=$!
i=0
while [ $i -lt 600 ] && ! ls -d "$TMP"/int.mpk.unrefit-* >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
if ls -d "$TMP"/int.mpk.unrefit-* >/dev/null 2>&1; then
    sleep 0.3
    kill -INT $pid
    wait $pid
    left=$(ls -d "$TMP"/int.mpk* 2>/dev/null)
    if [ -z "$left" ]; then pass "SIGINT during the router refit leaves nothing behind"
    else fail "SIGINT during the router refit leaves nothing behind" "$left"; fi
else
    wait $pid
    fail "the intermediate pack appeared before the refit" "$(ls "$TMP" | grep int | head -3)"
fi
