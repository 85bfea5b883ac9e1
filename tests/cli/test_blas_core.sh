#!/bin/sh
# OpenBLAS's kernels (main.c, engine/linalg.h): on a CPU with AVX2 or AVX-512, moepack
# never computes with OpenBLAS's generic Prescott kernels, even when OpenBLAS chose them
# from an unknown CPU model; a user's own OPENBLAS_CORETYPE is kept. OpenBLAS prints its
# choice at load time with OPENBLAS_VERBOSE=2 ("Core: NAME"); the last line is the
# process that runs the command.
. "$(dirname "$0")/lib.sh"
case "$(uname -m)" in
x86_64) ;;
*)
    skip "OpenBLAS kernels" "x86-64 only ($(uname -m))"
    exit 0
    ;;
esac
core=$(OPENBLAS_VERBOSE=2 "$MOEPACK" --version 2>&1 | sed -n 's/.*Core: //p' | tail -1)
if [ -z "$core" ]; then
    skip "OpenBLAS kernels" "this OpenBLAS does not report its core"
    exit 0
fi
if grep -q -w -E 'avx2|avx512f' /proc/cpuinfo; then
    if [ "$core" != Prescott ]; then pass "a CPU with AVX2 computes with OpenBLAS's $core kernels"
    else fail "a CPU with AVX2 computes with better than OpenBLAS's Prescott kernels" "core $core"; fi
else
    skip "OpenBLAS kernels" "no AVX2 here"
fi
kept=$(OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE=Prescott "$MOEPACK" --version 2>&1 | sed -n 's/.*Core: //p' | tr '\n' ' ')
if [ "$kept" = "Prescott " ]; then pass "a user's OPENBLAS_CORETYPE is kept, without a second start"
else fail "a user's OPENBLAS_CORETYPE is kept, without a second start" "cores: $kept"; fi
