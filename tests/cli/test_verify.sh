#!/bin/sh
# The engine, reference and verify against the facts in ../shared/models/README.md:
# perplexities measured by PyTorch and llama.cpp, KLD of a bf16 pack (~0), and the
# errors wrong inputs must give. The full eval.txt runs are skipped under SAN=1
# (tens of minutes there); calib.txt runs everywhere.
. "$(dirname "$0")/lib.sh"
: "${BUILD:?run through make test}" "${SYNTH:?run through make test}"
TINY=tests/data/tiny-qwen3moe
case "$BUILD" in *-san) SAN=1 ;; *) SAN=0 ;; esac

# ppl_within NAME REF_JSON EXPECTED: |ppl / expected - 1| <= 0.1%
ppl_within() {
    got=$(sed -n 's/.*"ppl": \([0-9.]*\).*/\1/p' "$2" | head -1)
    if awk -v g="$got" -v e="$3" 'BEGIN { d = g / e - 1; exit !(d <= 0.001 && d >= -0.001) }'; then
        pass "$1: PPL $got (expected $3)"
    else
        fail "$1" "PPL '$got', expected $3 within 0.1%"
    fi
}

expect_exit "reference --help" 0 "$MOEPACK" reference --help
expect_contains "reference --help names the protocol" "$TMP/out" "llama.cpp's perplexity tool"
expect_exit "verify --help" 0 "$MOEPACK" verify --help
expect_exit "reference without text" 2 "$MOEPACK" reference "$TINY" -o "$TMP/x.ref"
expect_exit "reference with a missing text file" 2 "$MOEPACK" reference "$TINY" --text "$TMP/none.txt" -o "$TMP/x.ref"
expect_contains "the missing file is named" "$TMP/err" "none.txt"
printf 'Call me Ishmael.' >"$TMP/short.txt"
expect_exit "ctx larger than the text" 2 "$MOEPACK" reference "$TINY" --text "$TMP/short.txt" -o "$TMP/x.ref"
expect_contains "the error says fewer than one context" "$TMP/err" "fewer than one context of 256"
[ -e "$TMP/x.ref" ] && fail "a failed reference leaves no file" || pass "a failed reference leaves no file"
echo "1 2 3 99999 5 6 7 8" >"$TMP/ids.txt"
expect_exit "a token outside the vocabulary" 2 "$MOEPACK" reference "$TINY" --tokens "$TMP/ids.txt" -o "$TMP/x.ref" --ctx 4
expect_contains "the id and its file are named" "$TMP/err" "$TMP/ids.txt: id 99999 (token 3)"

# Families the engine runs beyond the shared models (random synthetic weights: the
# logits are checked against an independent reference in the families issue; here
# they must run and give a finite perplexity), and the ones it does not run yet.
echo "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17" >"$TMP/ids18.txt"
for fam in "mixtral" "qwen2_moe --dense-layers 1" "olmoe"; do
    d="$TMP/syn-$(echo "$fam" | tr ' ' '_')"
    # shellcheck disable=SC2086
    "$SYNTH" --family $fam -o "$d" >/dev/null 2>&1
    expect_exit "engine runs $fam" 0 "$MOEPACK" reference "$d" --tokens "$TMP/ids18.txt" --ctx 8 -o "$TMP/s.ref" --json
    grep -q '"ppl": [0-9]' "$TMP/out" && pass "$fam: finite PPL" || fail "$fam: finite PPL" "$(cat "$TMP/out")"
done
for fam in deepseek_v3 gpt_oss glm4_moe; do
    "$SYNTH" --family $fam -o "$TMP/syn-$fam" >/dev/null 2>&1
    expect_exit "engine runs $fam" 0 "$MOEPACK" reference "$TMP/syn-$fam" --tokens "$TMP/ids18.txt" --ctx 8 -o "$TMP/s.ref" --json
    grep -q '"ppl": [0-9]' "$TMP/out" && pass "$fam: finite PPL" || fail "$fam: finite PPL" "$(cat "$TMP/out")"
done
# A RoPE scaling the engine does not compute is refused, naming it.
"$SYNTH" --family deepseek_v3 -o "$TMP/syn-longrope" >/dev/null 2>&1
sed 's/"rope_scaling": null/"rope_scaling": {"rope_type": "longrope", "factor": 4.0}/' "$TMP/syn-longrope/config.json" >"$TMP/c.json" &&
    mv "$TMP/c.json" "$TMP/syn-longrope/config.json"
expect_exit "engine refuses rope_scaling longrope clearly" 2 "$MOEPACK" reference "$TMP/syn-longrope" --tokens "$TMP/ids18.txt" --ctx 8 -o "$TMP/s.ref"
expect_contains "longrope: says what it runs" "$TMP/err" "the engine does not run rope_scaling type \"longrope\""

if ! have_shared; then
    skip "engine perplexities" "../shared absent"
    exit 0
fi
M=$SHARED/models/moby-mixtral Q=$SHARED/models/tiny-qwen3moe C=$SHARED/corpus

# Perplexities as PyTorch and llama.cpp measured them.
expect_exit "moby-mixtral calib reference" 0 "$MOEPACK" reference "$M" --text "$C/calib.txt" -o "$TMP/moby.ref" --json --quiet
ppl_within "moby-mixtral calib.txt" "$TMP/out" 69.8588
expect_exit "tiny-qwen3moe calib reference (2 threads)" 0 "$MOEPACK" reference "$Q" --text "$C/calib.txt" -o "$TMP/q2.ref" --json --threads 2
ppl_within "tiny-qwen3moe calib.txt" "$TMP/out" 51.9416
expect_exit "tiny-qwen3moe calib reference (1 thread)" 0 "$MOEPACK" reference "$Q" --text "$C/calib.txt" -o "$TMP/q1.ref" --quiet --threads 1
cmp -s "$TMP/q1.ref" "$TMP/q2.ref" && pass "reference files identical at 1 and 2 threads" || fail "reference files identical at 1 and 2 threads"
expect_exit "reference from token ids" 0 "$MOEPACK" reference "$Q" --tokens "$SHARED/models/token-ids/tiny-qwen3moe.calib.ids" -o "$TMP/qi.ref" --json
ppl_within "tiny-qwen3moe calib ids" "$TMP/out" 51.9416
if [ "$SAN" = 0 ]; then
    expect_exit "moby-mixtral eval reference" 0 "$MOEPACK" reference "$M" --text "$C/eval.txt" -o "$TMP/e.ref" --json --top-k 16
    ppl_within "moby-mixtral eval.txt" "$TMP/out" 63.1619
    expect_exit "tiny-qwen3moe eval reference" 0 "$MOEPACK" reference "$Q" --text "$C/eval.txt" -o "$TMP/e.ref" --json --top-k 16
    ppl_within "tiny-qwen3moe eval.txt" "$TMP/out" 40.9956
    rm -f "$TMP/e.ref"
else
    skip "eval.txt perplexities" "SAN=1 build: only calib.txt"
fi

# A bf16 pack holds the checkpoint's numbers: KLD ~ 0 against the file and the checkpoint.
"$MOEPACK" convert "$M" -o "$TMP/bf16.mpk" --scheme bf16 --quiet
"$MOEPACK" convert "$M" -o "$TMP/w4.mpk" --scheme w4a16 --quiet
expect_exit "verify bf16 pack against the reference file" 0 "$MOEPACK" verify "$TMP/bf16.mpk" --reference "$TMP/moby.ref" --max-kld 1e-4 --json
expect_contains "bf16 pack: same PPL" "$TMP/out" '"ppl": 69.85'
expect_exit "verify bf16 pack against the checkpoint" 0 "$MOEPACK" verify "$TMP/bf16.mpk" --reference "$M" --text "$C/calib.txt" --chunks 8 --max-kld 1e-4 --json
expect_contains "bf16 pack: zero weight error" "$TMP/out" '"rel_err": 0.0'
grep -q '"rel_err": [1-9]' "$TMP/out" && fail "bf16 pack: no tensor differs" || pass "bf16 pack: no tensor differs"

expect_exit "verify a part of the reference file" 0 "$MOEPACK" verify "$TMP/bf16.mpk" --reference "$TMP/moby.ref" --chunks 10 --json
p=$(sed -n 's/.*"ppl": \([0-9.]*\).*/\1/p' "$TMP/out"); r=$(sed -n 's/.*"ppl_reference": \([0-9.]*\).*/\1/p' "$TMP/out")
awk -v p="$p" -v r="$r" 'BEGIN { d = p / r - 1; exit !(d < 1e-4 && d > -1e-4) }' \
    && pass "reference PPL of a part read from 16-bit log-probs ($r vs $p)" || fail "reference PPL of a part" "$r vs $p"

# A w4a16 pack: a KLD well above the floor, thresholds decide the exit code.
expect_exit "verify w4 pack, loose threshold" 0 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/moby.ref" --max-kld 0.05 --min-top1 80 --json
kld=$(sed -n 's/.*"kld_mean": \([0-9.e-]*\).*/\1/p' "$TMP/out")
awk -v k="$kld" 'BEGIN { exit !(k > 0.001 && k < 0.02) }' && pass "w4 pack KLD $kld in (0.001, 0.02)" || fail "w4 pack KLD" "$kld"
expect_exit "verify w4 pack, strict --max-kld fails with exit 1" 1 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/moby.ref" --max-kld 1e-5 --quiet
expect_contains "the failure names the threshold" "$TMP/err" "--max-kld"
expect_exit "verify w4 pack, strict --min-top1 fails with exit 1" 1 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/moby.ref" --min-top1 99.99 --quiet
expect_exit "verify against the checkpoint with a report" 0 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$M" --text "$C/calib.txt" --chunks 16 --report "$TMP/report.html" --quiet
expect_contains "the report has the per-expert heat map" "$TMP/report.html" "Relative weight error per expert"
grep -q 'https\?://[a-z]' "$TMP/report.html" && grep -q '<script src=\|<link ' "$TMP/report.html" \
    && fail "the report is self-contained" || pass "the report is self-contained"

# Wrong inputs.
expect_exit "a reference from another model" 2 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/q1.ref"
expect_contains "the mismatch is explained" "$TMP/err" "recorded from another model"
expect_exit "a checkpoint of another model" 2 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$Q" --text "$C/calib.txt"
expect_exit "a checkpoint reference without text" 2 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$M"
expect_exit "a different text than the reference's" 2 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/moby.ref" --text "$C/eval.txt"
expect_contains "the text mismatch is explained" "$TMP/err" "the text differs"
head -c 1000 "$TMP/moby.ref" >"$TMP/cut.ref"
expect_exit "a truncated reference file" 2 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/cut.ref"
cp "$TMP/moby.ref" "$TMP/flip.ref"
printf '\377' | dd of="$TMP/flip.ref" bs=1 seek=5000 conv=notrunc 2>/dev/null
"$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/flip.ref" --quiet 2>"$TMP/err"
rc=$?
[ "$rc" = 2 ] || [ "$rc" = 3 ] && pass "a corrupt reference file is refused (exit $rc)" || fail "a corrupt reference file is refused" "exit $rc"

# The report as a person sees it: headless Chromium renders it to a PNG.
if command -v chromium >/dev/null 2>&1; then
    mkdir -p "$TMP/chromium"
    HOME="$TMP/chromium" timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$TMP/chromium" \
        --screenshot="$TMP/report.png" --window-size=1200,2600 "file://$TMP/report.html" >/dev/null 2>&1
    size=$(wc -c <"$TMP/report.png" 2>/dev/null || echo 0)
    [ "$size" -gt 50000 ] && pass "chromium renders the verify report ($size bytes of PNG)" || fail "chromium renders the verify report" "PNG of $size bytes"
    if [ -n "$KEEP_SCREENSHOT" ]; then cp "$TMP/report.png" "$KEEP_SCREENSHOT"; fi
else
    skip "verify report screenshot" "chromium not installed"
fi

