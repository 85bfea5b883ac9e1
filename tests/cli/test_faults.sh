#!/bin/sh
# Every command that writes a file, failing while it writes: a file-size limit (EFBIG),
# a full tmpfs (ENOSPC), an I/O error (EIO, from build/fault_shim.so), SIGINT/SIGTERM
# and SIGKILL. Expected: exit 3 with one message naming the file, nothing under the
# final name, no temporary left ("*.tmp-PID"); after SIGKILL only the temporary may stay.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}" "${BUILD:?run through make test}"
TINY=tests/data/tiny-qwen3moe
IN=$TMP/in O=$TMP/o FS=$TMP/fs
mkdir -p "$IN" "$O" "$FS"
trap 'umount "$FS" 2>/dev/null; rm -rf "$TMP"' EXIT

# The inputs: a w4a16 and a bf16 pack, a text, a reference of the tiny model.
head -c 6000 "$SHARED/corpus/eval.txt" >"$IN/text.txt" 2>/dev/null || head -c 6000 tests/data/hostile.txt >"$IN/text.txt"
"$MOEPACK" convert "$TINY" -o "$IN/w4.mpk" --quiet >/dev/null 2>&1
"$MOEPACK" convert "$TINY" -o "$IN/bf16.mpk" --scheme bf16 --quiet >/dev/null 2>&1
"$MOEPACK" convert "$TINY" -o "$IN/sym.mpk" --sym --quiet >/dev/null 2>&1 # compressed-tensors takes symmetric w4
"$MOEPACK" reference "$TINY" --text "$IN/text.txt" -o "$IN/tiny.ref" --quiet >/dev/null 2>&1
[ -f "$IN/tiny.ref" ] && [ -d "$IN/w4.mpk" ] || fail "fault test inputs" "convert or reference failed"

# run_case DIR NAME: the command of case NAME, writing into DIR; with RUN=exec the
# (sub)shell becomes moepack, so that $! is its pid.
run_case() {
    _d=$1
    case "$2" in
    convert) $RUN "$MOEPACK" convert "$TINY" -o "$_d/out.mpk" --quiet ;;
    quant) $RUN "$MOEPACK" quant "$IN/bf16.mpk" -o "$_d/out.mpk" --scheme q4_k --quiet ;;
    reference) $RUN "$MOEPACK" reference "$TINY" --text "$IN/text.txt" -o "$_d/out.ref" --quiet ;;
    profile) $RUN "$MOEPACK" profile "$TINY" --text "$IN/text.txt" -o "$_d/out.stats" --quiet ;;
    trace) $RUN "$MOEPACK" profile "$TINY" --text "$IN/text.txt" -o "$IN/trace.stats" --routing-trace "$_d/out.trace" --quiet ;;
    prune) $RUN "$MOEPACK" prune "$IN/w4.mpk" -o "$_d/out.mpk" --calib "$IN/text.txt" --keep 0.5 --quiet ;;
    distill) $RUN "$MOEPACK" distill --teacher "$TINY" --student "$IN/w4.mpk" -o "$_d/out.mpk" --calib "$IN/text.txt" --quiet ;;
    gguf) $RUN "$MOEPACK" export "$IN/w4.mpk" --to gguf -o "$_d/out.gguf" --quiet ;;
    gguf-split) $RUN "$MOEPACK" export "$IN/w4.mpk" --to gguf -o "$_d/out.gguf" --split-max-size 400K --quiet ;;
    ct) $RUN "$MOEPACK" export "$IN/sym.mpk" --to compressed-tensors -o "$_d/out" --quiet ;;
    verify) $RUN "$MOEPACK" verify "$IN/w4.mpk" --reference "$IN/tiny.ref" --report "$_d/out.html" --quiet ;;
    compare) $RUN "$MOEPACK" compare "$IN/w4.mpk" --reference "$IN/tiny.ref" --report "$_d/out.html" --quiet ;;
    esac
}
CASES="convert quant reference profile trace prune distill gguf gguf-split ct verify compare"

# check_failed WHAT NAME DIR RC: exit 3, one error line naming the output, DIR empty.
check_failed() {
    _what="$1 $2"
    if [ "$4" -eq 3 ]; then pass "$_what: exit 3"; else fail "$_what: exit 3" "exit $4: $(head -c 300 "$TMP/err")"; fi
    _lines=$(grep -c '^moepack ' "$TMP/err")
    if [ "$_lines" -eq 1 ] && grep '^moepack ' "$TMP/err" | grep -q "$3/out"; then pass "$_what: one message naming the file"
    else fail "$_what: one message naming the file" "$(head -c 300 "$TMP/err")"; fi
    if [ -z "$(ls -A "$3")" ]; then pass "$_what: nothing left"; else fail "$_what: nothing left" "$(ls -A "$3" | head -5 | tr '\n' ' ')"; fi
    rm -rf "${3:?}"/* "$3"/.[!.]* 2>/dev/null
}

# A file-size limit: SIGXFSZ ignored, the write fails with EFBIG. 4 KiB is below every
# output (the routing trace is left out: the statistics file before it fails first).
for c in $(echo "$CASES" | sed 's/ trace//'); do
    (ulimit -c 0; ulimit -f 8; run_case "$O" "$c") >/dev/null 2>"$TMP/err"
    check_failed "EFBIG" "$c" "$O" $?
done

# A full file system: a one-page tmpfs, where mount works (root, not in a user namespace).
if mount -t tmpfs -o size=4k tmpfs "$FS" 2>/dev/null; then
    for c in $CASES; do
        run_case "$FS" "$c" >/dev/null 2>"$TMP/err"
        check_failed "ENOSPC" "$c" "$FS" $?
    done
    umount "$FS"
else
    skip "ENOSPC on a full tmpfs" "cannot mount a tmpfs here (uid $(id -u))"
fi

# EIO from the preloaded shim: after 4 KiB, on the first write, at close; at fsync for
# the single-file writers (mp_outfile syncs before the rename; packs and exports do not).
# The SAN build preloads the ASan runtime first.
SHIM=$BUILD/fault_shim.so
PRELOAD=$SHIM
[ "${SAN:-0}" = 1 ] && PRELOAD="$(${CC:-cc} -print-file-name=libasan.so) $SHIM"
if [ ! -f "$SHIM" ]; then
    skip "EIO" "$SHIM not built (make $SHIM)"
elif ! LD_PRELOAD="$PRELOAD" "$MOEPACK" --version >/dev/null 2>&1; then
    skip "EIO" "the shim cannot be preloaded into $MOEPACK"
else
    for fault in MP_FAULT_AFTER=4096 MP_FAULT_CALL=1 MP_FAULT_CLOSE=1 MP_FAULT_FSYNC=1; do
        cases=$CASES
        # what syncs: the single-file outputs, and a pack's build.json (convert, quant)
        [ "$fault" = MP_FAULT_FSYNC=1 ] && cases="convert quant reference profile trace verify compare"
        for c in $cases; do
            (export LD_PRELOAD="$PRELOAD" MP_FAULT_PATH="$O/" "$fault"; run_case "$O" "$c") >/dev/null 2>"$TMP/err"
            check_failed "EIO ($fault)" "$c" "$O" $?
        done
    done
fi

# Signals while writing: every write to the output sleeps 0.2 s (the shim), so the
# command is caught with its temporary half written. SIGINT and SIGTERM remove it;
# after SIGKILL nothing is under the final name (the temporary may stay: documented).
if [ -f "$SHIM" ] && LD_PRELOAD="$PRELOAD" "$MOEPACK" --version >/dev/null 2>&1; then
    for c in $CASES; do
        for sig in INT TERM KILL; do
            (export LD_PRELOAD="$PRELOAD" MP_FAULT_PATH="$O/" MP_FAULT_SLOW_US=200000; RUN=exec
                run_case "$O" "$c") >/dev/null 2>&1 &
            pid=$!
            i=0
            while [ $i -lt 300 ] && [ -z "$(ls -A "$O")" ]; do sleep 0.05; i=$((i + 1)); done
            sleep 0.1
            kill -"$sig" $pid 2>/dev/null
            { wait $pid; } 2>/dev/null
            rc=$?
            if [ $i -lt 300 ] && [ $rc -gt 128 ]; then pass "SIG$sig $c: stopped while writing (exit $rc)"
            else fail "SIG$sig $c: stopped while writing" "exit $rc after $i polls"; fi
            [ "$sig" = KILL ] && rm -rf "$O"/*.tmp-* "$O"/*.unrefit-* 2>/dev/null
            if [ -z "$(ls -A "$O")" ]; then pass "SIG$sig $c: nothing left"
            else fail "SIG$sig $c: nothing left" "$(ls -A "$O" | head -5 | tr '\n' ' ')"; fi
            rm -rf "${O:?}"/*
        done
    done
else
    skip "signals while writing" "the shim cannot be preloaded into $MOEPACK"
fi
