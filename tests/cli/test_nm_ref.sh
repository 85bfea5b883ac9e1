#!/bin/sh
# 2:4 pruning (quant/nm_sparse.c) against an independent float64 NumPy oracle:
# build/nm_run makes a synthetic problem and runs Wanda and SparseGPT on it (SparseGPT on
# 1 and 2 threads, which must give the same bytes); tests/ref/nm_ref.py, written from the
# Wanda and SparseGPT papers and reference code, redoes both and checks masks, weights,
# joint w4 codes and that SparseGPT's output error is below Wanda's.
# Needs Debian's python3 with numpy (python3-numpy); without it: SKIP lines.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PY=${PYTHON:-/usr/bin/python3}
ORACLE=$ROOT/tests/ref/nm_ref.py
RUN=$BUILD/nm_run

why=""
if [ ! -x "$PY" ]; then
    why="no $PY (Debian python3)"
elif ! "$PY" -c 'import numpy' 2>/dev/null; then
    why="no numpy for $PY (apt-get install python3-numpy)"
fi

against() {
    name=$1; shift
    if [ -n "$why" ]; then skip "2:4 $name: oracle" "$why"; return; fi
    if [ ! -x "$RUN" ]; then fail "2:4 $name: nm_run exists" "$RUN is missing; build it first"; return; fi
    dir=$TMP/$(echo "$name" | tr -c 'A-Za-z0-9_\n-' '_')
    mkdir -p "$dir"
    if ! "$RUN" "$dir" "$@" >"$TMP/out" 2>"$TMP/err"; then
        fail "2:4 $name: nm_run $*" "$(head -c 300 "$TMP/err")"
        return
    fi
    "$PY" "$ORACLE" "$dir" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if ! grep -q -E '^(ok|FAIL) ' "$TMP/out"; then
        fail "2:4 $name: oracle ran" "exit $rc: $(head -c 400 "$TMP/err")"
        return
    fi
    sed -n -e "s/^ok   \(.*\)/PASS: 2:4 $name: \1/p" -e "s/^FAIL \(.*\)/FAIL: 2:4 $name: \1/p" "$TMP/out"
    sed -n "s/^info \(.*\)/  2:4 $name: \1/p" "$TMP/out"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$TMP/out"; then fail "2:4 $name: oracle exit status" "exit $rc"; fi
    rm -rf "$dir"
}

against "sparsegpt" --rows 96 --cols 256 --seed 1
against "sparsegpt block 32, 130 rows" --rows 130 --cols 384 --block 32 --seed 2
against "sparsegpt joint w4g32" --rows 96 --cols 256 --joint 32 --seed 3
against "sparsegpt joint w4g128 sym" --rows 130 --cols 256 --joint 128 --sym --seed 4
