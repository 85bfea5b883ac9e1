#!/bin/sh
# The HTML report building blocks (report/html_report, report/svg_plot) through
# build/report_demo: the page and every <svg> in it are well-formed XML, nothing is
# loaded from outside the file, marks carry tooltips, and, when chromium is installed,
# a headless browser renders it to a screenshot that is not blank. The report and the
# screenshot are kept as $BUILD/report_demo.html and $BUILD/report_demo.png to look at.
. "$(dirname "$0")/lib.sh"
: "${BUILD:?run through make test}"
PY=/usr/bin/python3

expect_exit "report_demo writes a report" 0 "$BUILD/report_demo" "$TMP/report.html"
ls "$TMP" | grep -q 'report.html.tmp-' && fail "no temporary left after the report" || pass "no temporary left after the report"
expect_exit "a report in a missing directory fails" 3 "$BUILD/report_demo" "$TMP/missing/report.html"
expect_contains "the failure names the file" "$TMP/err" "$TMP/missing/report.html"
[ -e "$TMP/missing" ] && fail "a failed report creates nothing" || pass "a failed report creates nothing"

"$PY" - "$TMP/report.html" <<'EOF'
import re, sys
import xml.etree.ElementTree as ET

def check(name, ok, why=""):
    print(("PASS: " if ok else "FAIL: ") + name + ("" if ok else " (" + why + ")"))

text = open(sys.argv[1], encoding="utf-8").read()
try:
    root = ET.fromstring(text)
    check("the page is well-formed XML", True)
except ET.ParseError as e:
    root = None
    check("the page is well-formed XML", False, str(e))

svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
bad = []
for s in svgs:
    try:
        svg = ET.fromstring(s)
        if not all(svg.get(a) for a in ("width", "height", "viewBox")):
            bad.append("size missing: " + s[:80])
    except ET.ParseError as e:
        bad.append(str(e) + ": " + s[:80])
check("each <svg> parses on its own (%d plots)" % len(svgs), len(svgs) >= 10 and not bad, "; ".join(bad[:3]) or "too few plots")

lower = text.lower()
external = [w for w in ("http://", "https://", "src=", "href=", "url(", "@import", "<link", "<script", "<iframe") if w in lower]
check("no external resources or scripts", not external, ", ".join(external))

attrs = re.findall(r'="([^"]*)"', text)
check("no NaN or infinity in any attribute", not [a for a in attrs if "nan" in a or "inf" in a.replace("infinite", "")])

if root is not None:
    h1 = root.find("./body/header/h1")
    check("the title round-trips through escaping", h1 is not None and h1.text == 'Demo report: tiny <pack> & "reference"',
          repr(h1.text if h1 is not None else None))
    marks = [e for e in root.iter() if e.get("class") == "mark" and e.find("title") is not None]
    untitled = [e for e in root.iter() if e.get("class") == "mark" and e.find("title") is None]
    # legend swatches are the only marks without a tooltip: at most one per legend entry
    check("marks carry <title> tooltips", len(marks) > 150 and len(untitled) < 20, "%d with, %d without" % (len(marks), len(untitled)))
    cells = [r for r in root.iter("rect") if r.find("title") is not None and "layer" in (r.find("title").text or "")]
    check("the 61 x 256 heat map has a tooltip per drawn cell", len(cells) >= 61 * 256 - 2 + 4 * 256 - 1, str(len(cells)))
    labels = {s.get("aria-label") for s in root.iter("svg")}
    want = {"Hidden-state relative error", "Expert weight relative error", "Routing frequency (8 experts)",
            "Routing frequency (256 experts, top-8)", "Size vs quality"}
    check("every plot kind is in the report", want <= labels, str(want - labels))
    notes = " ".join(t.text or "" for t in root.iter("text") if t.get("class") == "note")
    check("skipped values are noted", "1 point not shown" in notes and "2 cells blank" in notes, notes[:200])
    nums = [td for td in root.iter("td") if td.get("class") == "num"]
    check("numeric table columns are right-aligned", len(nums) >= 16, str(len(nums)))
EOF

cp "$TMP/report.html" "$BUILD/report_demo.html"

# A real browser: renders the page, headless, to a PNG; the PNG must show content.
if ! command -v chromium >/dev/null 2>&1; then
    skip "chromium renders the report" "chromium not installed; apt-get install chromium"
    exit 0
fi
mkdir -p "$TMP/home"
rm -f "$BUILD/report_demo.png"
HOME="$TMP/home" timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$TMP/home/profile" \
    --screenshot="$TMP/shot.png" --window-size=1200,2400 "file://$TMP/report.html" >"$TMP/chromium.log" 2>&1
[ -s "$TMP/shot.png" ] && pass "chromium writes a screenshot" || fail "chromium writes a screenshot" "$(tail -c 300 "$TMP/chromium.log")"
[ -s "$TMP/shot.png" ] || exit 0
cp "$TMP/shot.png" "$BUILD/report_demo.png"

"$PY" - "$TMP/shot.png" <<'EOF'
import struct, sys, zlib

def check(name, ok, why=""):
    print(("PASS: " if ok else "FAIL: ") + name + ("" if ok else " (" + why + ")"))

data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    check("the screenshot is a PNG", False, "bad signature")
    sys.exit(0)
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
width, height, depth, ctype = ihdr[:4]
check("the screenshot is 1200 x 2400, 8-bit RGB(A)", (width, height, depth) == (1200, 2400, 8) and ctype in (2, 6),
      str(ihdr))
bpp = 4 if ctype == 6 else 3
raw = zlib.decompress(idat)
stride = width * bpp + 1
rows = [raw[r * stride:(r + 1) * stride] for r in range(height)]
check("the screenshot is not blank (distinct rows)", len(set(rows)) > 200, "%d distinct of %d" % (len(set(rows)), height))

def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c

# Undo the PNG filters of the top of the page (title, verdicts, tables, the first plot)
# and count its colours: a blank or error page has a handful, a report hundreds.
colours, prev = set(), bytearray(width * bpp)
for r in range(min(height, 1000)):
    f, line = rows[r][0], bytearray(rows[r][1:])
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        c = prev[i - bpp] if i >= bpp else 0
        b = prev[i]
        line[i] = (line[i] + (0, a, b, (a + b) // 2, paeth(a, b, c))[f]) & 255
    colours.update(bytes(line[i:i + 3]) for i in range(0, len(line), bpp * 3))
    prev = line
check("the screenshot shows content (distinct colours)", len(colours) > 64, "%d colours" % len(colours))
EOF
