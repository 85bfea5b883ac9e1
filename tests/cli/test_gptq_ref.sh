#!/bin/sh
# GPTQ (quant/gptq.c) against an independent float64 NumPy oracle: build/gptq_run makes a
# synthetic problem (weights, and the Hessian of correlated calibration inputs), quantizes
# it and writes everything as .npy; tests/ref/gptq_ref.py, written from the GPTQ paper and
# the w4 rules of quant/w4.h, redoes GPTQ column by column and checks: the returned
# dequant is the codes decoded, the returned loss is the loss of the returned weights, at
# least 99.5 % of the codes equal the oracle's (f32 vs f64 flips a few near-ties, and a
# flip changes the rest of that row a little) and the loss is within 1 %.
# Needs Debian's python3 with numpy (python3-numpy); without it: SKIP lines.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PY=${PYTHON:-/usr/bin/python3}
ORACLE=$ROOT/tests/ref/gptq_ref.py
RUN=$BUILD/gptq_run

why=""
if [ ! -x "$PY" ]; then
    why="no $PY (Debian python3)"
elif ! "$PY" -c 'import numpy' 2>/dev/null; then
    why="no numpy for $PY (apt-get install python3-numpy)"
fi

# against NAME GPTQ_RUN-ARGS...: one problem, every oracle check as a PASS/FAIL line.
against() {
    name=$1; shift
    if [ -n "$why" ]; then skip "gptq $name: oracle" "$why"; return; fi
    if [ ! -x "$RUN" ]; then fail "gptq $name: gptq_run exists" "$RUN is missing; build it first"; return; fi
    dir=$TMP/$(echo "$name" | tr -c 'A-Za-z0-9_\n-' '_')
    mkdir -p "$dir"
    if ! "$RUN" "$dir" "$@" >"$TMP/out" 2>"$TMP/err"; then
        fail "gptq $name: gptq_run $*" "$(head -c 300 "$TMP/err")"
        return
    fi
    "$PY" "$ORACLE" "$dir" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    checks=$(grep -c -E '^(ok|FAIL) ' "$TMP/out")
    if [ "$checks" -ne 4 ]; then
        fail "gptq $name: oracle ran its 4 checks" "exit $rc, $checks checks: $(head -c 400 "$TMP/err")"
        return
    fi
    sed -n -e "s/^ok   \(.*\)/PASS: gptq $name: \1/p" -e "s/^FAIL \(.*\)/FAIL: gptq $name: \1/p" "$TMP/out"
    sed -n "s/^info \(.*\)/  gptq $name: \1/p" "$TMP/out"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$TMP/out"; then fail "gptq $name: oracle exit status" "exit $rc"; fi
    rm -rf "$dir"
}

against "asym g128 dead columns" --rows 192 --cols 512 --group 128 --dead --seed 1
against "sym g32" --rows 192 --cols 512 --group 32 --sym --seed 2
against "asym g64 act_order uneven diag" --rows 192 --cols 512 --group 64 --act-order --spread 3 --seed 3
against "sym g32 act_order block 32" --rows 130 --cols 384 --group 32 --sym --act-order --block 32 --seed 4
