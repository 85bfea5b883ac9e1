#!/bin/sh
# A manifest whose checksum is right but whose content is not a pack of its model is
# malformed (exit 2, naming manifest.json and the field, record or tensor), for check and
# for the commands that use the pack: the fuzzer's findings (a tier codec of any string,
# tensor names the model does not have, records whose layer/expert disagree with their
# tensors' names) and the other fields the reader now checks. And verify lets a pack have
# fewer experts than its reference only when the manifest says prune made it.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
PY=${PYTHON:-/usr/bin/python3}
if ! [ -x "$PY" ]; then
    skip "manifest checks" "no $PY"
    exit 0
fi

"$SYNTH" --family mixtral --layers 2 --hidden 64 --experts 4 -o "$TMP/m" >/dev/null 2>&1
expect_exit "convert the small model" 0 "$MOEPACK" convert "$TMP/m" -o "$TMP/p.mpk" --cold-codec zstd --quiet
echo "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17" >"$TMP/ids.txt"
expect_exit "its reference" 0 "$MOEPACK" reference "$TMP/m" --tokens "$TMP/ids.txt" --ctx 8 -o "$TMP/r.ref" --quiet

# edited SRC PY-STATEMENTS: $TMP/bad.mpk = SRC with the manifest (m, its records r, its
# tensors t by name) edited, and manifest.xxh3 recomputed through the libxxhash moepack
# links, so only the reader's own checks can catch it.
edited() {
    rm -rf "$TMP/bad.mpk"
    cp -r "$1" "$TMP/bad.mpk"
    "$PY" - "$TMP/bad.mpk" "$2" <<'EOF' || fail "edit the manifest" "$2"
import ctypes, ctypes.util, json, sys
path = sys.argv[1] + "/manifest.json"
m = json.load(open(path))
r = m["records"]
t = {x["name"]: x for x in m["tensors"]}
def rec(name): return r[t[name]["record"]]
exec(sys.argv[2])
text = json.dumps(m).encode()
open(path, "wb").write(text)
lib = ctypes.CDLL(ctypes.util.find_library("xxhash"))
lib.XXH3_64bits.restype, lib.XXH3_64bits.argtypes = ctypes.c_uint64, [ctypes.c_char_p, ctypes.c_size_t]
open(sys.argv[1] + "/manifest.xxh3", "w").write("%016x\n" % lib.XXH3_64bits(text, len(text)))
EOF
}

# refused NAME MESSAGE: check, verify and run all refuse bad.mpk with exit 2 and MESSAGE
refused() {
    expect_exit "$1: check" 2 "$MOEPACK" check "$TMP/bad.mpk" --quiet
    expect_contains "$1: check names it" "$TMP/err" "$2"
    expect_contains "$1: check names manifest.json" "$TMP/err" "manifest.json"
    expect_exit "$1: verify" 2 "$MOEPACK" verify "$TMP/bad.mpk" --reference "$TMP/r.ref" --tokens "$TMP/ids.txt" --quiet
    expect_contains "$1: verify names it" "$TMP/err" "$2"
    expect_exit "$1: run" 2 "$MOEPACK" run "$TMP/bad.mpk" --prompt-ids "1 2 3" --max-tokens 2 --temp 0 --quiet
    expect_contains "$1: run names it" "$TMP/err" "$2"
}

edited "$TMP/p.mpk" 'pass'
expect_exit "an edit that changes nothing: check" 0 "$MOEPACK" check "$TMP/bad.mpk" --quiet

edited "$TMP/p.mpk" 'm["tiers"][0]["codec"] = "lz4"'
refused "a tier codec outside none/zstd" 'tiers[0]: codec "lz4" is not none or zstd'

edited "$TMP/p.mpk" 't["layers.0.attn.q"]["name"] = "layers.0.attn.query"'
refused "a tensor name no model has" "tensor 'layers.0.attn.query' is not a canonical tensor name"

edited "$TMP/p.mpk" 't["layers.1.input_norm"]["name"] = "layers.7.input_norm"; rec("layers.1.input_norm")["layer"] = 7'
refused "a layer past the model's" "tensor 'layers.7.input_norm' names a layer past the model's layers"

edited "$TMP/p.mpk" '
x = rec("layers.1.experts.3.gate"); x["expert"] = 5
for p in x["parts"]: m["tensors"][p["tensor"]]["name"] = m["tensors"][p["tensor"]]["name"].replace("experts.3.", "experts.5.")'
refused "an expert past the model's" "tensor 'layers.1.experts.5.gate' names a routed expert past the model's routing.experts"

edited "$TMP/p.mpk" 'rec("layers.0.experts.0.gate")["expert"] = 1'
refused "a record's expert that is not its tensors'" "but its tensor 'layers.0.experts.0.gate' is of layer 0 expert 0"

edited "$TMP/p.mpk" 'rec("layers.1.attn.q")["layer"] = 0'
refused "a tier-0 record's layer that is not its tensor's" "layer 0 expert -1, but its tensor 'layers.1.attn.q' is of layer 1 expert -1"

edited "$TMP/p.mpk" 'x = rec("layers.0.experts.1.gate"); x["raw_length"] += 64'
refused "a raw_length past the last part" "raw_length"

edited "$TMP/p.mpk" 't["embed"]["shape"] = [2**31, 64]'
refused "a dimension past int32" "tensor 'embed': dimensions must be integers"

edited "$TMP/p.mpk" 'm["model"]["layers"] = "2"'
refused "a model without its layer count" "model: expected layers"

# manifest.xxh3 is 16 lowercase hex digits and a newline: an uppercase digit or another
# last byte is a changed byte, not the same checksum.
rm -rf "$TMP/bad.mpk"
cp -r "$TMP/p.mpk" "$TMP/bad.mpk"
tr 'a-f' 'A-F' <"$TMP/p.mpk/manifest.xxh3" >"$TMP/bad.mpk/manifest.xxh3"
if cmp -s "$TMP/p.mpk/manifest.xxh3" "$TMP/bad.mpk/manifest.xxh3"; then
    skip "an uppercase manifest.xxh3" "the checksum has no letter"
else
    expect_exit "an uppercase manifest.xxh3: check" 2 "$MOEPACK" check "$TMP/bad.mpk" --quiet
    expect_contains "it names the file" "$TMP/err" "manifest.xxh3: expected 16 lowercase hex digits"
fi
printf '%s ' "$(head -c 16 "$TMP/p.mpk/manifest.xxh3")" >"$TMP/bad.mpk/manifest.xxh3"
expect_exit "a manifest.xxh3 ending in a space: check" 2 "$MOEPACK" check "$TMP/bad.mpk" --quiet

# ---- verify: fewer experts than the reference only for a pruned pack ----
python3 -c "print(' '.join(str(i % 250) for i in range(300)))" >"$TMP/ids300.txt"
expect_exit "prune to 3 experts" 0 "$MOEPACK" prune "$TMP/p.mpk" -o "$TMP/pr.mpk" --keep 0.75 --tokens "$TMP/ids300.txt" --quiet
expect_exit "the pruned pack verifies against the full model's reference" 0 \
    "$MOEPACK" verify "$TMP/pr.mpk" --reference "$TMP/r.ref" --tokens "$TMP/ids.txt" --quiet
edited "$TMP/pr.mpk" 'del m["provenance"]["prune"]'
expect_exit "without provenance.prune it is another model" 2 \
    "$MOEPACK" verify "$TMP/bad.mpk" --reference "$TMP/r.ref" --tokens "$TMP/ids.txt" --quiet
expect_contains "the message says why" "$TMP/err" "experts 4 vs 3, and the pack's manifest has no provenance.prune"
