#!/bin/sh
# moepack compare: three packs of moby-mixtral (w4a16, fp8, bf16) against a short
# reference run. The table keeps the order given; each pack's figures are exactly
# what verify prints for it; bits per weight is what the manifest gives; the plot, the
# JSON and the HTML report carry one point per pack; wrong inputs stop before any run
# with one line naming the pack and leave no report.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

expect_exit "compare --help" 0 "$MOEPACK" compare --help
expect_contains "compare --help shows the usage" "$TMP/out" "usage: moepack compare PACK... --reference"
expect_exit "compare without packs" 2 "$MOEPACK" compare --reference "$TMP/r.ref"
expect_contains "no packs: says so" "$TMP/err" "missing the packs"
expect_exit "compare without --reference" 2 "$MOEPACK" compare "$TMP/a.mpk"
expect_contains "no reference: says so" "$TMP/err" "missing --reference"
expect_exit "compare with an unknown option" 2 "$MOEPACK" compare "$TMP/a.mpk" --reference "$TMP/r.ref" --max-kld 1
expect_contains "the unknown option is named" "$TMP/err" "--max-kld"

if ! have_shared; then
    skip "compare packs of moby-mixtral" "../shared absent"
    exit 0
fi
M=$SHARED/models/moby-mixtral Q=$SHARED/models/tiny-qwen3moe C=$SHARED/corpus

for s in w4a16 fp8 bf16; do
    "$MOEPACK" convert "$M" -o "$TMP/$s.mpk" --scheme "$s" --quiet || fail "convert moby-mixtral to $s"
done
"$MOEPACK" convert "$Q" -o "$TMP/qwen.mpk" --scheme w4a16 --quiet || fail "convert tiny-qwen3moe"
"$MOEPACK" reference "$M" --text "$C/eval.txt" --chunks 4 -o "$TMP/r.ref" --quiet || fail "reference run"
# convert may write build.json: fix what each pack has so the expectations hold
printf '{"seconds": 12.3, "threads": 2, "command": "moepack convert"}\n' >"$TMP/w4a16.mpk/build.json"
rm -f "$TMP/fp8.mpk/build.json" "$TMP/bf16.mpk/build.json"

# The table: one row per pack, in the order given, then the plot.
expect_exit "compare three packs" 0 "$MOEPACK" compare "$TMP/w4a16.mpk" "$TMP/fp8.mpk" "$TMP/bf16.mpk" --reference "$TMP/r.ref"
cp "$TMP/out" "$TMP/table.txt"
rows=$(sed -n '/^ *# *pack/,/^$/p' "$TMP/table.txt" | awk 'NR > 1 && NF { printf "%s %s;", $1, $2 }')
[ "$rows" = "1 w4a16.mpk;2 fp8.mpk;3 bf16.mpk;" ] && pass "one row per pack, in order" || fail "one row per pack, in order" "$rows"
expect_contains "progress names each pack on stderr" "$TMP/err" "compare: 3/3 bf16.mpk"
grep -q '^ *1  w4a16.mpk .* 12.3 s$' "$TMP/table.txt" && pass "build.json seconds shown" || fail "build.json seconds shown" "$(grep w4a16 "$TMP/table.txt")"
grep -q '^ *2  fp8.mpk .* -$' "$TMP/table.txt" && pass "no build.json: -" || fail "no build.json: -" "$(grep fp8 "$TMP/table.txt")"
expect_exit "the same packs in another order" 0 "$MOEPACK" compare "$TMP/bf16.mpk" "$TMP/w4a16.mpk" --reference "$TMP/r.ref" --quiet --json
"$PY" -c 'import json, sys; n = [r["name"] for r in json.load(open(sys.argv[1]))]; sys.exit(n != ["bf16.mpk", "w4a16.mpk"])' "$TMP/out" \
    && pass "rows follow the order given" || fail "rows follow the order given" "$(head -c 300 "$TMP/out")"
expect_exit "compare --quiet" 0 "$MOEPACK" compare "$TMP/fp8.mpk" --reference "$TMP/r.ref" --quiet
[ -s "$TMP/out" ] || [ -s "$TMP/err" ] && fail "--quiet prints nothing" "$(head -c 200 "$TMP/out" "$TMP/err")" || pass "--quiet prints nothing"

# The plot: each pack marked by its row number; w4a16 left of and above fp8, fp8 above bf16.
if out=$("$PY" - "$TMP/table.txt" <<'EOF' 2>&1
import sys
lines = open(sys.argv[1]).read().split("\n")
top = lines.index("mean KLD (log scale)") + 1
grid = lines[top:top + 16]
marks = {}
for row, line in enumerate(grid):
    for col, ch in enumerate(line[10:]):
        if ch.isdigit():
            marks[ch] = (row, col)
ok = sorted(marks) == ["1", "2", "3"] and "bits per weight" in lines[top + 18]
ok = ok and marks["1"][0] < marks["2"][0] < marks["3"][0] and marks["1"][1] < marks["2"][1] < marks["3"][1]
print(marks)
sys.exit(0 if ok else 1)
EOF
); then pass "the plot marks each pack where it belongs $out"; else fail "the plot" "$out"; fi

# JSON: each pack's figures equal verify's to the last digit; fp8 loses less than w4a16;
# bits per weight = 8 x tier bytes / values of every tensor in the manifest.
expect_exit "compare --json" 0 "$MOEPACK" compare "$TMP/w4a16.mpk" "$TMP/fp8.mpk" "$TMP/bf16.mpk" --reference "$TMP/r.ref" --json
cp "$TMP/out" "$TMP/cmp.json"
for s in w4a16 fp8 bf16; do
    "$MOEPACK" verify "$TMP/$s.mpk" --reference "$TMP/r.ref" --json >"$TMP/v-$s.json" 2>/dev/null || fail "verify $s"
done
if out=$("$PY" - "$TMP" <<'EOF' 2>&1
import json, sys
tmp = sys.argv[1]
rows = json.load(open(tmp + "/cmp.json"))
bad = []
for s, r in zip(["w4a16", "fp8", "bf16"], rows):
    v = json.load(open("%s/v-%s.json" % (tmp, s)))
    bad += ["%s %s: %r vs verify %r" % (s, k, r[k], v[k]) for k in ("ppl", "kld_mean", "kld_p99", "same_top1") if r[k] != v[k]]
    m = json.load(open("%s/%s.mpk/manifest.json" % (tmp, s)))
    size = sum(t["bytes"] for t in m["tiers"])
    values = 0
    for t in m["tensors"]:
        n = 1
        for d in t["shape"]:
            n *= d
        values += n
    if r["bytes"] != size or r["weights"] != values or abs(r["bits_per_weight"] - 8 * size / values) > 1e-12:
        bad.append("%s: %d bytes, %d values, %.6f bits; the manifest gives %d, %d" % (s, r["bytes"], r["weights"], r["bits_per_weight"], size, values))
print("; ".join(bad) or "bits/weight %s" % ", ".join("%.4f" % r["bits_per_weight"] for r in rows))
sys.exit(1 if bad or len(rows) != 3 else 0)
EOF
); then pass "figures equal verify's, sizes equal the manifest's: $out"; else fail "figures equal verify's" "$out"; fi
"$PY" - "$TMP/cmp.json" <<'EOF'
import json, sys
w4, fp8, bf16 = json.load(open(sys.argv[1]))
def check(name, ok, why=""):
    print(("PASS: " if ok else "FAIL: ") + name + ("" if ok else " (" + why + ")"))
# bf16 keeps every tensor (norms included) in 16 bits: 28,860,992 tier bytes (headers
# and 4 KiB expert alignment included) over 14,428,416 values = 16.0023 bits/weight
check("bf16 pack: 16.0 bits per weight", abs(bf16["bits_per_weight"] - 16.0) < 0.1, str(bf16["bits_per_weight"]))
check("bf16 pack: 16.0023 bits per weight as its manifest gives", abs(bf16["bits_per_weight"] - 16.0023) < 5e-5, str(bf16["bits_per_weight"]))
check("fp8 has a lower mean KLD than w4a16", fp8["kld_mean"] < w4["kld_mean"], "%g vs %g" % (fp8["kld_mean"], w4["kld_mean"]))
check("fewer bits: w4a16 < fp8 < bf16", w4["bits_per_weight"] < fp8["bits_per_weight"] < bf16["bits_per_weight"])
check("build.json seconds in JSON, null when absent", w4["build_seconds"] == 12.3 and fp8["build_seconds"] is None,
      "%r %r" % (w4["build_seconds"], fp8["build_seconds"]))
EOF

# Against the checkpoint itself (run live): the same figures as verify's too.
expect_exit "compare against the checkpoint" 0 "$MOEPACK" compare "$TMP/w4a16.mpk" "$TMP/bf16.mpk" --reference "$M" --text "$C/eval.txt" --chunks 2 --json --quiet
cp "$TMP/out" "$TMP/ck.json"
"$MOEPACK" verify "$TMP/w4a16.mpk" --reference "$M" --text "$C/eval.txt" --chunks 2 --json >"$TMP/v-ck.json" 2>/dev/null
"$PY" -c '
import json, sys
c, v = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(not (c[0]["kld_mean"] == v["kld_mean"] and c[0]["ppl"] == v["ppl"] and c[1]["kld_mean"] == 0))' "$TMP/ck.json" "$TMP/v-ck.json" \
    && pass "checkpoint reference: w4a16 as verify measures it, bf16 KLD 0" || fail "checkpoint reference" "$(head -c 300 "$TMP/ck.json")"
expect_exit "compare against the checkpoint, table" 0 "$MOEPACK" compare "$TMP/bf16.mpk" --reference "$M" --text "$C/eval.txt" --chunks 2
expect_contains "a KLD of 0 is named, not plotted" "$TMP/out" "not on a log scale"

# The HTML report: the table and a scatter plot with one labelled point per pack.
expect_exit "compare --report" 0 "$MOEPACK" compare "$TMP/w4a16.mpk" "$TMP/fp8.mpk" "$TMP/bf16.mpk" --reference "$TMP/r.ref" --report "$TMP/cmp.html" --quiet
ls "$TMP" | grep -q 'cmp.html.tmp-' && fail "no temporary left after the report" || pass "no temporary left after the report"
"$PY" - "$TMP/cmp.html" <<'EOF'
import re, sys
import xml.etree.ElementTree as ET
def check(name, ok, why=""):
    print(("PASS: " if ok else "FAIL: ") + name + ("" if ok else " (" + why + ")"))
text = open(sys.argv[1], encoding="utf-8").read()
svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
check("the report has one <svg>", len(svgs) == 1, "%d" % len(svgs))
root = ET.fromstring(text)
marks = [e for e in root.iter() if e.get("class") == "mark"]
tips = [e.find("title").text for e in marks if e.find("title") is not None]
check("one point per pack, labelled by its name", len(marks) == 3 and all(
    any(t.startswith(n + ":") for t in tips) for n in ("w4a16.mpk", "fp8.mpk", "bf16.mpk")), repr(tips))
cells = [td.text for td in root.iter("td")]
check("the table lists the packs", all(n in cells for n in ("w4a16.mpk", "fp8.mpk", "bf16.mpk")) and "12.3 s" in cells, repr(cells[:12]))
lower = text.lower()
check("the report is self-contained", not any(w in lower for w in ("http://", "https://", "<script", "<link")))
EOF

# Wrong inputs: exit 2, one line naming the pack, no report, before anything runs.
expect_exit "a missing pack" 2 "$MOEPACK" compare "$TMP/w4a16.mpk" "$TMP/none.mpk" --reference "$TMP/r.ref" --report "$TMP/bad.html"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && expect_contains "the missing pack is named (one line)" "$TMP/err" "$TMP/none.mpk" \
    || fail "the missing pack: one line" "$(cat "$TMP/err")"
expect_exit "a pack of another model" 2 "$MOEPACK" compare "$TMP/w4a16.mpk" "$TMP/qwen.mpk" --reference "$TMP/r.ref" --report "$TMP/bad.html"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && expect_contains "the other model's pack is named (one line)" "$TMP/err" "another model than $TMP/qwen.mpk" \
    || fail "another model: one line" "$(cat "$TMP/err")"
expect_exit "a pack of another model against the checkpoint" 2 "$MOEPACK" compare "$TMP/qwen.mpk" --reference "$M" --text "$C/eval.txt"
expect_contains "the checkpoint mismatch names the pack" "$TMP/err" "$TMP/qwen.mpk"
expect_exit "a checkpoint given as a pack" 2 "$MOEPACK" compare "$M" --reference "$TMP/r.ref"
expect_contains "a checkpoint is not a pack" "$TMP/err" "not a pack"
expect_exit "a checkpoint reference without text" 2 "$MOEPACK" compare "$TMP/fp8.mpk" --reference "$M"
cp -r "$TMP/fp8.mpk" "$TMP/late.mpk"
printf '{"seconds": "soon"}\n' >"$TMP/late.mpk/build.json"
expect_exit "a malformed build.json" 2 "$MOEPACK" compare "$TMP/late.mpk" --reference "$TMP/r.ref"
expect_contains "the malformed build.json is named" "$TMP/err" "late.mpk/build.json"
ls "$TMP" | grep -q 'bad.html' && fail "a failed compare leaves no report" || pass "a failed compare leaves no report"
