#!/bin/sh
# Every single-bit flip in a pack is found: 200 flips (fixed seed) across the tier files,
# manifest.json and manifest.xxh3, one per trial on a fresh copy of a small pack (zstd
# expert tier, so both codecs are hit). `check` must report every one (exit 2 or 3).
# `verify` and `run` must fail with exit 3 naming the record when the flip is in a record
# (both read every record of this pack: verify all tensors, run all 8 experts, which the
# clean run's statistics confirm below), and must exit 2 or 3 for a flip in a tier
# header or the manifest; a flip in the zero padding between records is check's alone,
# so there they must succeed. Before record reads were checksummed, verify computed
# with the corrupt weights and exited 0.
# The 200 trials take about 15 s (3 commands each on a 150 KB pack).
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
PY=${PYTHON:-/usr/bin/python3}
if ! [ -x "$PY" ]; then
    skip "bit flips" "no $PY"
    exit 0
fi

"$SYNTH" --family mixtral --layers 2 --hidden 64 --experts 4 -o "$TMP/m" >/dev/null 2>&1
expect_exit "convert the small model" 0 "$MOEPACK" convert "$TMP/m" -o "$TMP/p.mpk" --cold-codec zstd --quiet
echo "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17" >"$TMP/ids.txt"
expect_exit "its reference" 0 "$MOEPACK" reference "$TMP/m" --tokens "$TMP/ids.txt" --ctx 8 -o "$TMP/r.ref" --quiet
PROMPT="1 2 3 4 5"
expect_exit "the intact pack: check" 0 "$MOEPACK" check "$TMP/p.mpk" --quiet
expect_exit "the intact pack: verify" 0 "$MOEPACK" verify "$TMP/p.mpk" --reference "$TMP/r.ref" --tokens "$TMP/ids.txt" --quiet
expect_exit "the intact pack: run" 0 "$MOEPACK" run "$TMP/p.mpk" --prompt-ids "$PROMPT" --max-tokens 4 --temp 0 --stats
expect_contains "the run reads all 8 experts" "$TMP/err" "disk: 8 expert reads"

# The plan: one line per trial, "FILE OFFSET BIT REGION RECORD", REGION one of
# manifest, header, record, padding (RECORD the record's index, else -1).
"$PY" - "$TMP/p.mpk" >"$TMP/plan" <<'EOF' || fail "the flip plan" "python failed"
import json, os, random, sys
pack = sys.argv[1]
m = json.load(open(os.path.join(pack, "manifest.json")))
rng = random.Random(20260517)
files = [("manifest.json", 20), ("manifest.xxh3", 6)]
tiers = [t["file"] for t in m["tiers"]]
sizes = [os.path.getsize(os.path.join(pack, f)) for f in tiers]
headers = [(f, 2) for f in tiers]  # 64 bytes of 150 KB: a few flips there on purpose
left = 200 - sum(n for _, n in files + headers)
for f, s in zip(tiers, sizes):
    files.append((f, round(left * s / sum(sizes))))
files[-1] = (files[-1][0], files[-1][1] + 200 - sum(n for _, n in files + headers))
def region(f, off):
    if not f.startswith("tier-"):
        return "manifest", -1
    if off < 64:
        return "header", -1
    t = int(f[5:-4])
    for i, r in enumerate(m["records"]):
        if r["tier"] == t and r["offset"] <= off < r["offset"] + r["length"]:
            return "record", i
    return "padding", -1
for (f, n), in_header in [(x, False) for x in files] + [(x, True) for x in headers]:
    size = 64 if in_header else os.path.getsize(os.path.join(pack, f))
    for _ in range(n):
        off = rng.randrange(size)
        print(f, off, rng.randrange(8), *region(f, off))
EOF
[ "$(wc -l <"$TMP/plan")" -eq 200 ] && pass "200 flips planned" || fail "200 flips planned" "$(wc -l <"$TMP/plan") lines"
for k in manifest header record padding; do
    printf '%s: %s flips\n' "$k" "$(grep -c " $k " "$TMP/plan")"
done

# bad WHAT DETAIL: one failure line, at most 10 in all (the counts say the rest).
nbad=0
bad() {
    nbad=$((nbad + 1))
    [ $nbad -le 10 ] && fail "$1" "$2"
}
# names_record ERRFILE N: the message names record N
names_record() { grep -Eq "record $2( |\)|:|$)" "$1"; }
# judge WHO RC REGION RECORD TRIAL: verify and run must fail exactly where they read
judge() {
    case $3 in
    record)
        if [ "$2" -ne 3 ] || ! names_record "$TMP/err" "$4"; then
            bad "$1 reports a flip in record $4 ($5)" "exit $2: $(head -c 200 "$TMP/err")"
        fi ;;
    header|manifest)
        [ "$2" -eq 2 ] || [ "$2" -eq 3 ] || bad "$1 reports a flip in the $3 ($5)" "exit $2: $(head -c 200 "$TMP/err")" ;;
    padding)
        [ "$2" -eq 0 ] || bad "$1 ignores a flip in padding it does not read ($5)" "exit $2: $(head -c 200 "$TMP/err")" ;;
    esac
}

checked=0 ran=0
while read -r file off bit region rec; do
    rm -rf "$TMP/f.mpk"
    cp -r "$TMP/p.mpk" "$TMP/f.mpk"
    "$PY" -c "
import sys
f = open(sys.argv[1], 'r+b'); off = int(sys.argv[2]); f.seek(off); b = f.read(1)[0]
f.seek(off); f.write(bytes([b ^ (1 << int(sys.argv[3]))]))" "$TMP/f.mpk/$file" "$off" "$bit"
    trial="$file byte $off bit $bit"
    "$MOEPACK" check "$TMP/f.mpk" --quiet >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -ne 2 ] && [ $rc -ne 3 ]; then
        bad "check reports the flip ($trial, $region)" "exit $rc: $(head -c 200 "$TMP/err")"
    fi
    checked=$((checked + 1))
    "$MOEPACK" verify "$TMP/f.mpk" --reference "$TMP/r.ref" --tokens "$TMP/ids.txt" --quiet >"$TMP/out" 2>"$TMP/err"
    judge verify $? "$region" "$rec" "$trial"
    "$MOEPACK" run "$TMP/f.mpk" --prompt-ids "$PROMPT" --max-tokens 4 --temp 0 --quiet >"$TMP/out" 2>"$TMP/err"
    judge run $? "$region" "$rec" "$trial"
    ran=$((ran + 1))
done <"$TMP/plan"
[ $nbad -eq 0 ] && pass "all $checked flips found by check, $ran by verify and run where they read" ||
    fail "bit flips" "$nbad wrong outcomes (the first 10 above)"
