#!/bin/sh
# The tokenizer's Unicode against Debian python3's unicodedata as the oracle, through
# build/tok_unicode: the class (\p{L}, \p{N}, \s, other) of every code point, and NFC
# of every character with a decomposition, of its NFD, of every Hangul syllable's NFD,
# and of random runs of starters and combining marks (canonical reordering and
# blocking). The tables come from the same module (tools/gen_unicode.py), so this
# checks the table lookups and the NFC algorithm, not Unicode's own definitions.
. "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-$(dirname "$MOEPACK")/build}
PY=${PYTHON:-/usr/bin/python3}
TOOL=$BUILD/tok_unicode

if [ ! -x "$PY" ]; then
    skip "unicode classes and NFC against unicodedata" "no $PY (Debian python3)"
    exit 0
fi
if [ ! -x "$TOOL" ]; then
    fail "tok_unicode exists" "$TOOL is missing; build it first"
    exit 0
fi

"$PY" - "$TOOL" <<'PYEOF'
import random, subprocess, sys, unicodedata

tool = sys.argv[1]

def char_class(cp):
    cat = unicodedata.category(chr(cp))
    if cat[0] in "LN":
        return cat[0]
    if cat in ("Zs", "Zl", "Zp") or 0x09 <= cp <= 0x0D or cp == 0x85:
        return "S"
    return "O"

def report(name, bad):
    if bad:
        print(f"FAIL: {name} ({len(bad)} differ, first: {bad[0]})")
    else:
        print(f"PASS: {name}")

got = subprocess.run([tool, "classes"], capture_output=True, text=True, check=True).stdout.strip()
want = "".join(char_class(cp) for cp in range(0x110000))
report("class of every code point", [f"U+{cp:04X} {got[cp:cp+1]} vs {want[cp]}"
                                     for cp in range(0x110000) if got[cp:cp+1] != want[cp]][:5]
       + ([f"length {len(got)}"] if len(got) != len(want) else []))

def assigned(cp):
    return not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"

decomposing = [cp for cp in range(0x110000) if assigned(cp) and unicodedata.decomposition(chr(cp))
               and not unicodedata.decomposition(chr(cp)).startswith("<")]
marks = [cp for cp in range(0x110000) if assigned(cp) and unicodedata.combining(chr(cp))]
starters = [ord(c) for c in "aeiouAEOUnNcCsSzZ"] + decomposing[:400] + list(range(0x1100, 0x1113)) + \
           list(range(0x1161, 0x1176)) + list(range(0x11A8, 0x11C3)) + [0xAC00, 0xAC01, 0xD7A3]
rng = random.Random(20240601)
cases = [[cp] for cp in decomposing]
cases += [[ord(c) for c in unicodedata.normalize("NFD", chr(cp))] for cp in decomposing]
cases += [[ord(c) for c in unicodedata.normalize("NFD", chr(cp))] for cp in range(0xAC00, 0xD7A4)]
for _ in range(30000):
    case = []
    for _ in range(rng.randint(1, 8)):
        case.append(rng.choice(marks) if rng.random() < 0.45 else rng.choice(starters))
    cases.append(case)
lines = "\n".join(" ".join(f"{cp:X}" for cp in case) for case in cases) + "\n"
out = subprocess.run([tool, "nfc"], input=lines, capture_output=True, text=True, check=True).stdout.splitlines()
bad = []
for case, line in zip(cases, out):
    want = " ".join(f"{ord(c):X}" for c in unicodedata.normalize("NFC", "".join(map(chr, case))))
    if line != want:
        bad.append(f"{' '.join(f'{cp:X}' for cp in case)} -> {line}, expected {want}")
if len(out) != len(cases):
    bad.append(f"{len(out)} lines for {len(cases)} cases")
report(f"NFC of {len(cases)} strings", bad)
PYEOF
