#!/bin/sh
# moepack prune: saliencies (freq, REAP, EAN) against an independent float64 forward pass
# of the checkpoint (tests/ref/prune_saliency.py over tests/ref/moe_forward.py); the pruned
# pack checked from its bytes by tests/ref/check_prune.py (counts, groups, routers = the
# input's kept rows, expert records = the input's kept records); every family's synthetic
# checkpoint prunes (routers cut exactly with --no-refit-router) and runs; --keep 1 gives
# the original logits (with the default router refit, which must leave them alone); bad inputs exit 2.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
MOBY=$SHARED/models/moby-mixtral
CALIB=$SHARED/corpus/calib.txt

have_numpy=""
"$PY" -c 'import numpy' 2>/dev/null && have_numpy=yes

. "$(dirname "$0")/prune_checked.sh"

expect_exit "prune --help" 0 "$MOEPACK" prune --help
expect_contains "--help documents --method" "$TMP/out" "freq | reap | ean"

# Synthetic checkpoints of every family: prune to half the experts, check, run.
awk 'BEGIN { for (i = 0; i < 700; i++) printf "%d ", (i * 37 + 11) % 200; print "" }' >"$TMP/ids.txt"
for fam in mixtral qwen2_moe qwen3_moe olmoe deepseek_v2 deepseek_v3 kimi_k2 glm4_moe gpt_oss; do
    extra=""
    [ "$fam" = deepseek_v3 ] && extra="--experts 16" # 4 groups of 4: half keeps 2 per group
    "$SYNTH" --family "$fam" $extra -o "$TMP/$fam" >/dev/null 2>"$TMP/err" &&
        "$MOEPACK" convert "$TMP/$fam" -o "$TMP/$fam.mpk" --scheme w4a16 --quiet 2>"$TMP/err" ||
        { fail "$fam: synth and convert" "$(head -c 300 "$TMP/err")"; continue; }
    expect_exit "$fam: prune --keep 0.5" 0 "$MOEPACK" prune "$TMP/$fam.mpk" -o "$TMP/$fam-p.mpk" \
        --tokens "$TMP/ids.txt" --ctx 64 --keep 0.5 --method reap --no-refit-router --quiet
    cp "$TMP/err" "$TMP/$fam.err"
    expect_exit "$fam: the pruned pack checks" 0 "$MOEPACK" check "$TMP/$fam-p.mpk"
    expect_exit "$fam: the pruned pack runs" 0 "$MOEPACK" run "$TMP/$fam-p.mpk" --prompt-ids "1 2 3 4" --max-tokens 4
    checked "$fam" "$TMP/$fam.mpk" "$TMP/$fam-p.mpk"
done
expect_contains "deepseek_v3: its MTP layer is said to be unscored" "$TMP/deepseek_v3.err" "MTP layer"

# Bad inputs: exit 2, one line naming the numbers, nothing left behind.
P=$TMP/mixtral.mpk
expect_exit "keeping fewer than top_k" 2 "$MOEPACK" prune "$P" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" --keep-per-layer 1
expect_contains "the error names top_k" "$TMP/err" "fewer than the 2 experts each token is routed to"
expect_exit "--keep 0.1 rounds below top_k" 2 "$MOEPACK" prune "$P" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" --keep 0.1
expect_exit "uneven groups" 2 "$MOEPACK" prune "$TMP/deepseek_v3.mpk" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" \
    --keep-per-layer 10
expect_contains "the error lists the valid counts" "$TMP/err" "valid counts: 8, 12, 16"
expect_exit "missing calibration file" 2 "$MOEPACK" prune "$P" -o "$TMP/bad.mpk" --calib "$TMP/none.txt" --keep 0.5
expect_contains "the missing file is named" "$TMP/err" "$TMP/none.txt"
expect_exit "--keep and --keep-per-layer together" 2 "$MOEPACK" prune "$P" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" \
    --keep 0.5 --keep-per-layer 4
expect_exit "--keep 1.5" 2 "$MOEPACK" prune "$P" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" --keep 1.5
expect_exit "unknown --method" 2 "$MOEPACK" prune "$P" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" --keep 0.5 --method x
mkdir -p "$TMP/neither"
echo '{}' >"$TMP/neither/tokenizer.json"
expect_exit "a directory that is neither pack nor checkpoint" 2 "$MOEPACK" prune "$TMP/neither" -o "$TMP/bad.mpk" \
    --tokens "$TMP/ids.txt" --keep 0.5
expect_contains "the error names the directory and what was expected" "$TMP/err" \
    "$TMP/neither: neither a pack (manifest.json) nor a checkpoint (config.json)"
if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass "it is one line"; else fail "it is one line" "$(cat "$TMP/err")"; fi
expect_exit "a file instead of a pack" 2 "$MOEPACK" prune "$TMP/ids.txt" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" --keep 0.5
echo '{"model_type": "mixtral"}' >"$TMP/neither/config.json"
expect_exit "a checkpoint without weights" 2 "$MOEPACK" prune "$TMP/neither" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" \
    --keep 0.5
if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass "its error is one line ($(cat "$TMP/err"))"; else fail "its error is one line" "$(cat "$TMP/err")"; fi
expect_exit "an encoding option with a pack input" 2 "$MOEPACK" prune "$P" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" \
    --keep 0.5 --scheme q4_k
expect_contains "the error says the pack is already encoded" "$TMP/err" "is a pack, already encoded: --scheme applies"
expect_exit "an unknown --scheme" 2 "$MOEPACK" prune "$TMP/mixtral" -o "$TMP/bad.mpk" --tokens "$TMP/ids.txt" \
    --keep 0.5 --scheme q3_q
expect_exit "a bad encoding option convert refuses" 2 "$MOEPACK" prune "$TMP/mixtral" -o "$TMP/bad.mpk" \
    --tokens "$TMP/ids.txt" --keep 0.5 --group 48
expect_contains "convert's own error is shown" "$TMP/err" "--group 48"
expect_exit "--quant-method gptq needs --calib text" 2 "$MOEPACK" prune "$TMP/mixtral" -o "$TMP/bad.mpk" \
    --tokens "$TMP/ids.txt" --keep 0.5 --quant-method gptq
if ls "$TMP" | grep -q 'bad.mpk'; then fail "failed prunes leave no output"; else pass "failed prunes leave no output"; fi

# A checkpoint input: the same pack as pruning what moepack convert makes of it with the
# same encoding options (default scheme and q4_k; merge and router refit, which run the
# converted pack as the original), and its scratch pack removed.
# same_pack NAME A B: tier files byte-identical, manifests equal but for the provenance's
# command and source (which name the input).
same_pack() {
    _diff=""
    for _f in "$2"/*; do
        _b=$(basename "$_f")
        [ "$_b" = manifest.json ] || [ "$_b" = manifest.xxh3 ] || cmp -s "$_f" "$3/$_b" || _diff="$_diff $_b"
    done
    [ "$(ls "$2" | wc -l)" -eq "$(ls "$3" | wc -l)" ] || _diff="$_diff (file count)"
    if [ -z "$_diff" ]; then pass "$1: tier and config files byte-identical"; else fail "$1: files byte-identical" "$_diff"; fi
    if "$PY" - "$2/manifest.json" "$3/manifest.json" <<'PYEOF'; then pass "$1: manifests equal but for command and source"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for m in (a, b):
    del m["provenance"]["command"], m["provenance"]["source"]
sys.exit(a != b)
PYEOF
    else fail "$1: manifests equal but for command and source"; fi
}
mkdir -p "$TMP/ck"
"$MOEPACK" convert "$TMP/mixtral" -o "$TMP/ck/conv.mpk" --quiet
"$MOEPACK" prune "$TMP/ck/conv.mpk" -o "$TMP/ck/from-pack.mpk" --tokens "$TMP/ids.txt" --ctx 64 --keep 0.5 --merge \
    --quiet 2>"$TMP/err" || fail "prune the converted pack" "$(head -c 300 "$TMP/err")"
expect_exit "prune CKPT --merge (refit by default)" 0 "$MOEPACK" prune "$TMP/mixtral" -o "$TMP/ck/from-ckpt.mpk" \
    --tokens "$TMP/ids.txt" --ctx 64 --keep 0.5 --merge --json
same_pack "prune CKPT = prune (convert CKPT), default scheme" "$TMP/ck/from-ckpt.mpk" "$TMP/ck/from-pack.mpk"
expect_contains "--json: stdout is prune's JSON alone (convert's summary went to stderr)" "$TMP/err" "converted"
if "$PY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/out"; then pass "--json output parses"
else fail "--json output parses" "$(head -c 200 "$TMP/out")"; fi
"$MOEPACK" convert "$TMP/mixtral" -o "$TMP/ck/conv-q4k.mpk" --scheme q4_k --group 64 --quiet
"$MOEPACK" prune "$TMP/ck/conv-q4k.mpk" -o "$TMP/ck/from-pack-q4k.mpk" --tokens "$TMP/ids.txt" --ctx 64 \
    --keep-per-layer 6 --method ean --quiet 2>"$TMP/err" || fail "prune the q4_k pack" "$(head -c 300 "$TMP/err")"
expect_exit "prune CKPT --scheme q4_k --group 64" 0 "$MOEPACK" prune "$TMP/mixtral" -o "$TMP/ck/from-ckpt-q4k.mpk" \
    --tokens "$TMP/ids.txt" --ctx 64 --keep-per-layer 6 --method ean --scheme q4_k --group 64 --quiet
same_pack "prune CKPT --scheme q4_k = prune (convert --scheme q4_k)" "$TMP/ck/from-ckpt-q4k.mpk" "$TMP/ck/from-pack-q4k.mpk"
expect_contains "the provenance records the scheme given" "$TMP/ck/from-ckpt-q4k.mpk/manifest.json" "--scheme q4_k --group 64"
if cmp -s "$TMP/ck/from-ckpt.mpk/tier-1.bin" "$TMP/ck/from-ckpt-q4k.mpk/tier-1.bin"; then
    fail "--scheme changes the experts' bytes"; else pass "--scheme changes the experts' bytes"; fi
left=$(ls "$TMP/ck" | grep -v '^\(conv\|conv-q4k\|from-pack\|from-ckpt\|from-pack-q4k\|from-ckpt-q4k\)\.mpk$')
if [ -z "$left" ]; then pass "no scratch pack left beside the output"; else fail "no scratch pack left" "$left"; fi

if ! have_shared || [ ! -d "$MOBY" ]; then
    skip "moby-mixtral" "no $SHARED/models"
    exit 0
fi

# Saliencies of the bf16 pack (the checkpoint's own bf16 values) on 2 chunks of calib.txt
# against the float64 oracle. The engine computes in f32: over 4 layers of width 256 the
# relative error measured is ~1e-7, so 1e-4 leaves margin for other BLAS/ISA orders while
# a missing renormalisation (x2), bias or wrong norm is far outside it. Counts are exact
# (no routing near-tie flips on these chunks; a flip would show as a count off by one).
"$MOEPACK" convert "$MOBY" -o "$TMP/moby-bf16.mpk" --scheme bf16 --quiet 2>"$TMP/err" ||
    fail "moby bf16 convert" "$(head -c 300 "$TMP/err")"
if [ -z "$have_numpy" ]; then
    skip "saliencies against the float64 oracle" "no numpy for $PY (apt-get install python3-numpy)"
else
    "$MOEPACK" tokenize "$TMP/moby-bf16.mpk" --text "$CALIB" --ids >"$TMP/calib.ids"
    "$PY" "$ROOT/tests/ref/prune_saliency.py" "$MOBY" --ids "$TMP/calib.ids" --ctx 256 --chunks 2 --bos 1 \
        --out "$TMP/oracle.json" 2>"$TMP/err" || fail "the saliency oracle ran" "$(tail -3 "$TMP/err")"
    for m in freq reap ean; do
        "$MOEPACK" prune "$TMP/moby-bf16.mpk" -o "$TMP/o-$m.mpk" --calib "$CALIB" --keep 0.5 --method $m \
            --calib-tokens 512 --json --quiet >"$TMP/o-$m.json" 2>"$TMP/err" || fail "prune --method $m" "$(head -c 300 "$TMP/err")"
        "$PY" - "$TMP/oracle.json" "$TMP/o-$m.json" $m <<'PYEOF'
import json, sys
oracle, mine, m = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
worst, same_drop = 0.0, True
for lo, lm in zip(oracle["layers"], mine["layers"]):
    ref, got = lo[m], lm["saliency"]
    for a, b in zip(ref, got):
        worst = max(worst, abs(a - b) / max(abs(a), 1e-12)) if m != "freq" else max(worst, abs(a - b))
    order = sorted(range(len(ref)), key=lambda e: (ref[e], -e))  # lowest first, ties drop the higher id
    same_drop &= sorted(order[:len(lm["dropped"])]) == lm["dropped"]
    same_drop &= lo["freq"] == lm["selections"]
ok = worst <= (0 if m == "freq" else 1e-4)
print(("PASS" if ok else "FAIL") + f": {m} saliencies match the float64 oracle (worst {'difference' if m == 'freq' else 'relative error'} {worst:.3g})")
print(("PASS" if same_drop else "FAIL") + f": {m}: the dropped experts are the oracle's least salient, the counts its counts")
PYEOF
    done
fi

# SIGINT while pruning the moby checkpoint, during the router refit (both the converted
# scratch pack and the refit's unrefit pack exist): everything beside the output is removed.
mkdir -p "$TMP/int"
"$MOEPACK" prune "$MOBY" -o "$TMP/int/p.mpk" --calib "$CALIB" --keep 0.5 --calib-tokens 8192 --quiet 2>/dev/null &
pid=$!
i=0
while [ $i -lt 1800 ] && ! ls "$TMP/int" | grep -q 'unrefit-[0-9]*$'; do sleep 0.1; i=$((i + 1)); done
if ls "$TMP/int" | grep -q 'ckpt-[0-9]*$'; then pass "the refit runs beside the converted scratch pack"
else fail "the converted scratch pack is there during the refit" "$(ls "$TMP/int")"; fi
sleep 0.5
kill -INT $pid
wait $pid
rc=$?
if [ $i -lt 1800 ] && [ $rc -ne 0 ]; then pass "SIGINT stops prune of a checkpoint (exit $rc)"
else fail "SIGINT stops prune of a checkpoint" "exit $rc, scratch seen after $i polls"; fi
if [ -z "$(ls -A "$TMP/int")" ]; then pass "SIGINT leaves nothing behind"; else fail "SIGINT leaves nothing" "$(ls "$TMP/int")"; fi

# The w4a16 pack pruned to 75 %: checks, runs, verifies with a finite KLD against the
# original checkpoint's reference; --keep 1 gives the same logits as the original pack.
"$MOEPACK" convert "$MOBY" -o "$TMP/moby.mpk" --scheme w4a16 --quiet 2>/dev/null
expect_exit "moby w4a16 prune --keep 0.75 --method reap" 0 "$MOEPACK" prune "$TMP/moby.mpk" -o "$TMP/moby-p.mpk" \
    --calib "$CALIB" --keep 0.75 --calib-tokens 4096 --quiet
checked "moby w4a16" "$TMP/moby.mpk" "$TMP/moby-p.mpk"
expect_exit "the pruned moby checks" 0 "$MOEPACK" check "$TMP/moby-p.mpk"
expect_exit "the pruned moby runs" 0 "$MOEPACK" run "$TMP/moby-p.mpk" --prompt-ids "1 100 200 300" --max-tokens 8
head -c 20000 "$SHARED/corpus/eval.txt" >"$TMP/eval-head.txt"
"$MOEPACK" reference "$MOBY" --text "$TMP/eval-head.txt" -o "$TMP/moby.ref" --quiet 2>/dev/null
expect_exit "the pruned moby verifies against the checkpoint's reference" 0 "$MOEPACK" verify "$TMP/moby-p.mpk" \
    --reference "$TMP/moby.ref" --json --quiet
if grep -Eq '"kld_mean": [0-9.]+(e-?[0-9]+)?,' "$TMP/out"; then pass "its KLD is finite ($(grep kld_mean "$TMP/out" | tr -d ' ,'))"
else fail "its KLD is finite" "$(grep kld_mean "$TMP/out")"; fi
expect_exit "the pruned moby exports to GGUF" 0 "$MOEPACK" export "$TMP/moby-p.mpk" --to gguf -o "$TMP/moby-p.gguf"
expect_exit "prune --keep 1" 0 "$MOEPACK" prune "$TMP/moby.mpk" -o "$TMP/moby-all.mpk" --calib "$CALIB" --keep 1 \
    --calib-tokens 512 --quiet
"$MOEPACK" reference "$TMP/moby.mpk" --text "$TMP/eval-head.txt" -o "$TMP/a.ref" --quiet 2>/dev/null
"$MOEPACK" reference "$TMP/moby-all.mpk" --text "$TMP/eval-head.txt" -o "$TMP/b.ref" --quiet 2>/dev/null
a=$(grep -a '"xxh3"' "$TMP/a.ref" | tail -1) b=$(grep -a '"xxh3"' "$TMP/b.ref" | tail -1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "--keep 1: the same logits as the original pack ($a)"
else fail "--keep 1: the same logits as the original pack" "$a vs $b"; fi
