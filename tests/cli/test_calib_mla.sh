#!/bin/sh
# Calibration of DeepSeek-V3's MLA attention (quant/calib_mla.c) on ../shared's
# moby-dsv3: gptq and awq packs are byte-identical at 1 and 2 threads and pass check;
# the AWQ pack's folds (input_norm into q_a and kv_a, q_a_norm into q_b, kv_a_norm into
# kv_b, kv_b's v rows into o) keep each pair's function, and layer 0's q_a_norm scale is
# an AWQ candidate of q_b's own inputs, both per the float64 oracle
# tests/ref/mla_calib_ref.py; under-calibrated experts are reported.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
MOBY=$SHARED/models/moby-dsv3
if [ ! -d "$MOBY" ]; then
    skip "MLA calibration on moby-dsv3" "no $MOBY"
    exit 0
fi
head -c 60000 "$SHARED/corpus/calib.txt" >"$TMP/calib.txt"
CAL="--calib $TMP/calib.txt --calib-ctx 128 --calib-tokens 1024"

for method in gptq awq; do
    for t in 1 2; do
        "$MOEPACK" convert "$MOBY" -o "$TMP/$method-$t.mpk" --method $method $CAL --threads $t --quiet \
            >"$TMP/out" 2>"$TMP/err" || fail "$method at $t threads converts" "$(head -c 300 "$TMP/err")"
    done
    expect_exit "$method pack passes check" 0 "$MOEPACK" check "$TMP/$method-1.mpk"
    if diff -r -x build.json "$TMP/$method-1.mpk" "$TMP/$method-2.mpk" >/dev/null; then
        pass "$method: identical at 1 and 2 threads"
    else
        fail "$method: identical at 1 and 2 threads"
    fi
done

if [ ! -x "$PY" ] || ! "$PY" -c 'import numpy' 2>/dev/null; then
    skip "awq folds against the oracle" "no numpy for $PY (apt-get install python3-numpy)"
else
    "$MOEPACK" tokenize "$MOBY" --text "$TMP/calib.txt" --json >"$TMP/ids.json"
    "$PY" "$ROOT/tests/ref/mla_calib_ref.py" "$MOBY" "$TMP/awq-1.mpk" "$TMP/ids.json" 128 8 >"$TMP/out" 2>"$TMP/err"
    rc=$?
    checks=$(grep -c -E '^(ok|FAIL) ' "$TMP/out")
    if [ "$checks" -ne 10 ]; then
        fail "the MLA oracle ran its 10 checks" "exit $rc, $checks checks: $(head -c 400 "$TMP/err")"
    fi
    sed -n -e "s/^ok   \(.*\)/PASS: awq: \1/p" -e "s/^FAIL \(.*\)/FAIL: awq: \1/p" "$TMP/out"
    sed -n "s/^info \(.*\)/  awq: \1/p" "$TMP/out"
fi

expect_exit "a high --calib-min-tokens still converts" 0 "$MOEPACK" convert "$MOBY" -o "$TMP/fb.mpk" --method gptq \
    $CAL --calib-min-tokens 100000
expect_contains "the summary lists the routed experts that fell back" "$TMP/out" "36 experts saw too few tokens"
