#!/bin/sh
# Runs every benchmark in bench/. Each prints its figures and a ratio against a
# baseline measured in the same run; none passes or fails on time.
: "${MOEPACK:?run through make bench}"
for b in "$(dirname "$0")"/bench_*.sh; do
    echo "== $(basename "$b" .sh)"
    sh "$b" || exit $?
done
