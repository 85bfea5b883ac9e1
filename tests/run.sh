#!/bin/sh
# Runs every test program and script given as arguments and ends with one line
# "N passed, M failed". cmocka programs report their cases in "[  PASSED  ] N test(s)."
# and "[  FAILED  ] N test(s)" lines; CLI scripts print "PASS: name" / "FAIL: name"
# (and "SKIP: name (why)"). A program that crashes or exits non-zero without
# reporting a failure counts as one failure.
passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
    case "$t" in
        *.sh) sh "$t" >"$log" 2>&1 ;;
        *) "$t" >"$log" 2>&1 ;;
    esac
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=$(( ${p:-0} + $(grep -c '^PASS: ' "$log") ))
    f=$(( ${f:-0} + $(grep -c '^FAIL: ' "$log") ))
    s=$(grep -c '^SKIP: ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$t: exited with status $rc" >>"$log"; fi
    if [ "$f" -ne 0 ]; then
        echo "---- $t: $f failed"
        grep -E '^(FAIL|\[  FAILED  \]|\[  ERROR   \])|rror|exited with' "$log" | head -40
    fi
    grep '^SKIP: ' "$log"
    echo "$t: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
if [ "$skipped" -ne 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
