# Sourced by the prune tests (after lib.sh, with ROOT and PY set).
# checked NAME IN OUT: the byte-level checks of the pruned pack (tests/ref/check_prune.py),
# its PASS/FAIL lines prefixed with NAME.
checked() {
    "$PY" "$ROOT/tests/ref/check_prune.py" "$2" "$3" >"$TMP/chk" 2>&1
    _rc=$?
    sed "s/^\(PASS\|FAIL\): /\1: $1: /" "$TMP/chk" | grep -E '^(PASS|FAIL): '
    grep -q '^FAIL: ' "$TMP/chk" || [ "$_rc" -eq 0 ] || fail "$1: check_prune ran" "$(tail -3 "$TMP/chk")"
}
