#!/bin/sh
# moepack profile and convert --stats: statistics checked by an independent reader
# (tests/ref/check_stats.py, written from docs/stats.md) against the README's routing
# shares, the routing arithmetic (counts = tokens x top_k, gate mass = tokens) and layer
# 0's attention input recomputed with numpy from the checkpoint; byte-identical at 1 and
# 2 threads; expert tiers in packs that `moepack check` accepts; bad inputs refused.
# Routing locality (reuse, cache hit rates, next-layer prediction) recomputed from the
# --routing-trace by tests/ref/routing_locality.py, the prediction with numpy.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
ORACLE=$ROOT/tests/ref/check_stats.py
LOCALITY=$ROOT/tests/ref/routing_locality.py
TINY=$ROOT/tests/data/tiny-qwen3moe
MOBY=$SHARED/models/moby-mixtral
CALIB=$SHARED/corpus/calib.txt
IDS=$SHARED/models/token-ids

have_numpy=""
"$PY" -c 'import numpy' 2>/dev/null && have_numpy=yes

# oracle NAME ARGS...: runs the independent reader; its PASS/FAIL lines count as checks.
oracle() {
    _name=$1; shift
    if [ -z "$have_numpy" ]; then skip "$_name" "no numpy for $PY (apt-get install python3-numpy)"; return; fi
    "$PY" "$ORACLE" "$@" >"$TMP/oracle" 2>&1
    _rc=$?
    sed "s/^\(PASS\|FAIL\): /\1: $_name: /" "$TMP/oracle" | grep -E '^(PASS|FAIL|SKIP): '
    grep -q '^FAIL: ' "$TMP/oracle" || [ "$_rc" -eq 0 ] || fail "$_name: reader ran" "$(tail -3 "$TMP/oracle")"
}

# locality NAME TRACE JSON [--model DIR --ids FILE]: the routing-locality reader; plain
# python3 for the trace figures, numpy (else SKIP) for the prediction.
locality() {
    _name=$1; shift
    if [ $# -gt 2 ] && [ -z "$have_numpy" ]; then
        skip "$_name: next-layer prediction" "no numpy for $PY"
        set -- "$1" "$2"
    fi
    "$PY" "$LOCALITY" "$@" >"$TMP/locality" 2>&1
    _rc=$?
    sed "s/^\(PASS\|FAIL\|SKIP\): /\1: $_name: /" "$TMP/locality" | grep -E '^(PASS|FAIL|SKIP): '
    grep -q '^FAIL: ' "$TMP/locality" || [ "$_rc" -eq 0 ] || fail "$_name: reader ran" "$(tail -3 "$TMP/locality")"
}

# Usage and bad inputs: exit 2, one line naming what is wrong, no output left behind.
expect_exit "profile --help" 0 "$MOEPACK" profile --help
expect_contains "profile --help documents --text" "$TMP/out" "--text FILE"
expect_exit "profile without -o" 2 "$MOEPACK" profile "$TINY" --text "$ROOT/README.md"
expect_exit "profile without --text" 2 "$MOEPACK" profile "$TINY" -o "$TMP/x.stats"
expect_exit "profile of a missing text" 2 "$MOEPACK" profile "$TINY" --text "$TMP/none.txt" -o "$TMP/x.stats"
expect_contains "the missing text is named" "$TMP/err" "$TMP/none.txt"
expect_exit "profile of a missing model" 2 "$MOEPACK" profile "$TMP/nomodel" --text "$ROOT/README.md" -o "$TMP/x.stats"
expect_exit "--routing-trace without a file" 2 "$MOEPACK" profile "$TINY" --text "$ROOT/README.md" -o "$TMP/x.stats" \
    --routing-trace
expect_exit "--routing-trace into a missing directory" 3 "$MOEPACK" profile "$TINY" --text "$ROOT/README.md" \
    -o "$TMP/y.stats" --ctx 64 --routing-trace "$TMP/nodir/trace"
expect_contains "the trace file is named" "$TMP/err" "$TMP/nodir/trace"
if [ -e "$TMP/x.stats" ] || ls "$TMP" | grep -q 'x.stats.tmp'; then fail "failed profiles leave no output"
else pass "failed profiles leave no output"; fi

# The bundled model on a text of this repository (no ../shared needed).
expect_exit "profile tiny-qwen3moe" 0 "$MOEPACK" profile "$TINY" --text "$ROOT/README.md" -o "$TMP/tiny.stats" --ctx 64
expect_contains "the summary names the never-routed experts" "$TMP/out" "never routed"
oracle "tiny-qwen3moe on README.md" "$TMP/tiny.stats"
expect_exit "profile --json" 0 "$MOEPACK" profile "$TINY" --text "$ROOT/README.md" -o "$TMP/tiny.json.stats" --ctx 64 --json
expect_contains "--json gives the never-routed count" "$TMP/out" '"never_routed":'
expect_contains "--json gives the routing locality" "$TMP/out" '"routing_locality":'
cmp -s "$TMP/tiny.stats" "$TMP/tiny.json.stats" && pass "same stats with and without --json" \
    || fail "same stats with and without --json"

# A synthetic Qwen2-MoE with a dense first layer and shared experts: the dense layer has no
# routing row, the shared expert and its gate have statistics, tiers cover layer 1 only.
if [ -n "${SYNTH:-}" ] && "$SYNTH" --family qwen2_moe --dense-layers 1 -o "$TMP/q2" >/dev/null 2>&1; then
    cp "$TINY/tokenizer.json" "$TINY/tokenizer_config.json" "$TMP/q2/"
    awk 'BEGIN { for (i = 0; i < 700; i++) printf "%d ", (i * 37 + 11) % 200; print "" }' >"$TMP/ids.txt"
    expect_exit "profile qwen2_moe with a dense layer (--tokens)" 0 "$MOEPACK" profile "$TMP/q2" --tokens "$TMP/ids.txt" \
        -o "$TMP/q2.stats" --ctx 64 --json --routing-trace "$TMP/q2.trace"
    cp "$TMP/out" "$TMP/q2.json"
    oracle "qwen2_moe" "$TMP/q2.stats"
    # layer 1's routing predicted from the dense layer 0's output
    locality "qwen2_moe locality" "$TMP/q2.trace" "$TMP/q2.json"
    grep -aq '"layers.1.shared_gate"' "$TMP/q2.stats" && pass "shared-expert gate profiled" || fail "shared-expert gate profiled"
    expect_exit "qwen2_moe: convert --tiers 4" 0 "$MOEPACK" convert "$TMP/q2" -o "$TMP/q2.mpk" --stats "$TMP/q2.stats" --tiers 4 --quiet
    expect_exit "qwen2_moe: check" 0 "$MOEPACK" check "$TMP/q2.mpk"
    oracle "qwen2_moe tiers" "$TMP/q2.stats" --tiers "$TMP/q2.mpk"
else
    fail "synth qwen2_moe" "${SYNTH:-SYNTH unset}"
fi

if ! have_shared; then
    skip "profile of the shared models" "$SHARED absent"
    exit 0
fi

# moby-mixtral on calib.txt: 20,142 tokens + BOS = 78 chunks of 256 = 19,968 positions.
expect_exit "profile moby-mixtral" 0 "$MOEPACK" profile "$MOBY" --text "$CALIB" -o "$TMP/moby.stats"
expect_contains "summary: tokens and chunks" "$TMP/out" "19968 tokens (78 chunks of 256)"
expect_contains "summary: every expert routed" "$TMP/out" "never routed none"
expect_contains "summary: routing locality" "$TMP/out" "layer  reuse@1  indep  reuse@4  indep  reuse@16  indep  next@2  next@4"
expect_contains "summary: cache policies" "$TMP/out" "belady"
oracle "moby-mixtral" "$TMP/moby.stats" --model "$MOBY" --ids "$IDS/moby-mixtral.calib.ids" \
    --share 0:0.094:0.162 --share 3:0.053:0.296
expect_exit "profile moby-mixtral, 20 chunks, 1 thread" 0 "$MOEPACK" profile "$MOBY" --text "$CALIB" \
    -o "$TMP/moby-t1.stats" --chunks 20 --threads 1 --quiet --routing-trace "$TMP/moby-t1.trace"
expect_exit "profile moby-mixtral, 20 chunks, 2 threads" 0 "$MOEPACK" profile "$MOBY" --text "$CALIB" \
    -o "$TMP/moby-t2.stats" --chunks 20 --threads 2 --json --routing-trace "$TMP/moby-t2.trace"
cp "$TMP/out" "$TMP/moby-t2.json"
cmp -s "$TMP/moby-t1.stats" "$TMP/moby-t2.stats" && pass "stats byte-identical at 1 and 2 threads" \
    || fail "stats byte-identical at 1 and 2 threads"
cmp -s "$TMP/moby-t1.trace" "$TMP/moby-t2.trace" && pass "routing trace byte-identical at 1 and 2 threads" \
    || fail "routing trace byte-identical at 1 and 2 threads"
[ "$(wc -l <"$TMP/moby-t1.trace")" -eq $((1 + 20 * 256 * 4)) ] && pass "trace: a line per token and MoE layer" \
    || fail "trace: a line per token and MoE layer" "$(wc -l <"$TMP/moby-t1.trace") lines"
locality "moby-mixtral locality" "$TMP/moby-t2.trace" "$TMP/moby-t2.json" --model "$MOBY" \
    --ids "$IDS/moby-mixtral.calib.ids"

expect_exit "profile tiny-qwen3moe on calib.txt" 0 "$MOEPACK" profile "$TINY" --text "$CALIB" -o "$TMP/qwen.stats" --quiet
oracle "tiny-qwen3moe" "$TMP/qwen.stats" --model "$TINY" --ids "$IDS/tiny-qwen3moe.calib.ids" \
    --share 0:0.101:0.166 --share 1:0.093:0.172

# A bf16 pack holds the checkpoint's exact weights: same statistics, accepted by convert.
"$MOEPACK" convert "$MOBY" -o "$TMP/moby-bf16.mpk" --scheme bf16 --quiet
expect_exit "profile a pack" 0 "$MOEPACK" profile "$TMP/moby-bf16.mpk" --text "$CALIB" -o "$TMP/pack.stats" --chunks 8 --quiet
"$MOEPACK" profile "$MOBY" --text "$CALIB" -o "$TMP/ckpt8.stats" --chunks 8 --quiet
# bytes 40..47 of the prefix: the checksum of the data section (docs/stats.md)
if [ "$(od -An -tx8 -j40 -N8 "$TMP/pack.stats")" = "$(od -An -tx8 -j40 -N8 "$TMP/ckpt8.stats")" ]; then
    pass "pack and checkpoint give the same statistics"
else fail "pack and checkpoint give the same statistics"; fi

# convert --stats: experts in tiers by routing count.
expect_exit "convert --stats --tiers 3" 0 "$MOEPACK" convert "$MOBY" -o "$TMP/t3.mpk" --stats "$TMP/moby.stats" --tiers 3
expect_contains "summary: the tiers" "$TMP/out" "tiers       3: routed experts by routing count"
expect_exit "check the 3-tier pack" 0 "$MOEPACK" check "$TMP/t3.mpk"
oracle "tiers 3" "$TMP/moby.stats" --tiers "$TMP/t3.mpk"
expect_exit "convert --stats --hot-budget 1M (zstd)" 0 "$MOEPACK" convert "$MOBY" -o "$TMP/hb.mpk" --stats "$TMP/moby.stats" \
    --hot-budget 1M --cold-codec zstd --quiet
expect_exit "check the hot-budget pack" 0 "$MOEPACK" check "$TMP/hb.mpk"
oracle "hot budget" "$TMP/moby.stats" --tiers "$TMP/hb.mpk"
expect_exit "convert --stats --tiers 5 --threads 1" 0 "$MOEPACK" convert "$MOBY" -o "$TMP/t5-1.mpk" --stats "$TMP/moby.stats" --tiers 5 --quiet --threads 1
expect_exit "convert --stats --tiers 5 --threads 2" 0 "$MOEPACK" convert "$MOBY" -o "$TMP/t5-2.mpk" --stats "$TMP/moby.stats" --tiers 5 --quiet --threads 2
diff -r -x build.json "$TMP/t5-1.mpk" "$TMP/t5-2.mpk" >/dev/null && pass "tiered pack identical at 1 and 2 threads" \
    || fail "tiered pack identical at 1 and 2 threads"
oracle "tiers 5" "$TMP/moby.stats" --tiers "$TMP/t5-1.mpk"
expect_exit "stats of a pack tier a checkpoint" 0 "$MOEPACK" convert "$MOBY" -o "$TMP/p.mpk" --stats "$TMP/pack.stats" --tiers 2 --quiet

# Refused: wrong model, corrupt stats, options without --stats.
expect_exit "stats of another model" 2 "$MOEPACK" convert "$TINY" -o "$TMP/bad.mpk" --stats "$TMP/moby.stats" --tiers 3
expect_contains "the mismatch is explained" "$TMP/err" "the statistics must come from the same model"
cp "$TMP/moby.stats" "$TMP/corrupt.stats"
size=$(wc -c <"$TMP/corrupt.stats")
printf 'X' | dd of="$TMP/corrupt.stats" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
expect_exit "corrupt stats" 3 "$MOEPACK" convert "$MOBY" -o "$TMP/bad.mpk" --stats "$TMP/corrupt.stats" --tiers 3
expect_contains "the corruption is named" "$TMP/err" "data checksum mismatch"
head -c 1000 "$TMP/moby.stats" >"$TMP/short.stats"
expect_exit "truncated stats" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/bad.mpk" --stats "$TMP/short.stats"
expect_exit "missing stats" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/bad.mpk" --stats "$TMP/none.stats"
expect_exit "--tiers without --stats" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/bad.mpk" --tiers 3
expect_exit "--hot-budget with --tiers 4" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/bad.mpk" --stats "$TMP/moby.stats" --hot-budget 1M --tiers 4
expect_exit "--hot-budget of no size" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/bad.mpk" --stats "$TMP/moby.stats" --hot-budget 4X
expect_exit "--tiers 17" 2 "$MOEPACK" convert "$MOBY" -o "$TMP/bad.mpk" --stats "$TMP/moby.stats" --tiers 17
[ -e "$TMP/bad.mpk" ] && fail "refused converts leave no pack" || pass "refused converts leave no pack"
