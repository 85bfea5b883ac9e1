#!/bin/sh
# make fuzz: for each target NAME given, replay tests/fuzz/regress/NAME (the inputs of
# fixed crashes), then fuzz FUZZ_SECONDS on build-fuzz/corpus/NAME, a copy of the
# seeds in tests/fuzz/corpus/NAME that keeps what earlier runs found. Exits 1 when a
# target crashes, naming the reproducer. The exec count of each run is appended to
# build-fuzz/NAME.execs (one line per run: date, seconds, execs).
: "${FUZZ_BUILD:?run through make fuzz}"
SECONDS_EACH=${FUZZ_SECONDS:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
status=0
for name in "$@"; do
    bin=$FUZZ_BUILD/$name
    short=${name#fuzz_}
    log=$FUZZ_BUILD/$short.log
    if [ -d "$HERE/regress/$short" ] && [ -n "$(ls "$HERE/regress/$short")" ]; then
        if ! "$bin" -runs=1 "$HERE/regress/$short"/* >"$log" 2>&1; then
            echo "FAIL: $short: a regression input crashes again:"
            grep -E '^==[0-9]+==ERROR|SUMMARY|Running: ' "$log" | tail -3
            status=1
            continue
        fi
        echo "PASS: $short: $(ls "$HERE/regress/$short" | wc -l) regression inputs"
    fi
    corpus=$FUZZ_BUILD/corpus/$short
    artifacts=$FUZZ_BUILD/artifacts/$short
    mkdir -p "$corpus" "$artifacts"
    cp "$HERE/corpus/$short"/* "$corpus"/ 2>/dev/null
    dict=
    [ -f "$HERE/$short.dict" ] && dict=-dict=$HERE/$short.dict
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: 2 GB is a leak or
    # an allocation sized by a declared count rather than the input.
    TMPDIR=${TMPDIR:-/tmp} "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" $dict "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p' "$log" | tail -1)
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $SECONDS_EACH ${execs:-0}" >>"$FUZZ_BUILD/$short.execs"
    total=$(awk '{s += $3} END {print s + 0}' "$FUZZ_BUILD/$short.execs")
    if [ "$rc" -ne 0 ]; then
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        echo "FAIL: $short: crash after ${execs:-?} execs, reproducer $repro (log $log)"
        grep -E '^==[0-9]+==ERROR|^SUMMARY' "$log" | head -2
        status=1
    else
        echo "PASS: $short: $execs execs in ${SECONDS_EACH}s ($total over all runs)"
    fi
done
exit $status
