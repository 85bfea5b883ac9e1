#!/bin/sh
# Hostile reference files: each is a real one (moepack reference on the tiny
# Qwen3-MoE) with one footer field or payload value changed and its checksums
# recomputed, so only the reader's validation stands between it and verify.
# Every one must be refused with exit 2 and one line naming the file and field.
. "$(dirname "$0")/lib.sh"
TINY=tests/data/tiny-qwen3moe
PY=/usr/bin/python3
if ! "$PY" -c 'import zstandard, xxhash' 2>/dev/null; then
    skip "hostile reference files" "python3 without zstandard or xxhash"
    exit 0
fi

# mutate IN OUT EDIT...: rewrites a reference file. EDIT is footer.PATH=JSON (set
# a footer field, after the payload fields are recomputed), del:PATH, or
# i32:CHUNK:OFFSET=V / f32:CHUNK:OFFSET=V (a value at a byte offset of a chunk's
# raw record). The payload is recompressed and payload.length, raw_length and
# xxh3 recomputed unless an edit sets them.
cat >"$TMP/mutate.py" <<'EOF'
import json, struct, sys, zstandard, xxhash
src, dst, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
b = open(src, 'rb').read()
flen = struct.unpack('<Q', b[-16:-8])[0]
footer = json.loads(b[-16 - flen:-16])
p = footer['payload']
raw = bytearray(zstandard.ZstdDecompressor().decompressobj().decompress(b[8:8 + p['length']]))
ctx, n, k, vocab = footer['ctx'], footer['scored_per_chunk'], footer['top_k'], footer['model']['vocab']
chunk = 4 * ctx + n * (4 + 8 * k if k else 8 + 2 * vocab)
later = []
for e in edits:
    if e.startswith('i32:') or e.startswith('f32:'):
        kind, c, rest = e.split(':', 2)
        off, v = rest.split('=')
        at = int(c) * chunk + int(off)
        struct.pack_into('<i' if kind == 'i32' else '<f', raw, at, int(v) if kind == 'i32' else float(v))
    else:
        later.append(e)
payload = zstandard.ZstdCompressor(level=3).compress(bytes(raw))
p.update(length=len(payload), raw_length=len(raw), xxh3='%016x' % xxhash.xxh3_64_intdigest(bytes(raw)))
for e in later:
    path, _, value = e.partition('=')
    delete = path.startswith('del:')
    keys = path[4:].split('.') if delete else path.split('.')[1:]
    obj = footer
    for key in keys[:-1]:
        obj = obj[key]
    if delete:
        del obj[keys[-1]]
    else:
        obj[keys[-1]] = json.loads(value)
text = json.dumps(footer, indent=1).encode()
open(dst, 'wb').write(b'MPREF001' + payload + text + struct.pack('<Q', len(text)) + b'MPREFEND')
EOF

"$MOEPACK" reference "$TINY" --text README.md --ctx 64 --chunks 3 -o "$TMP/full.ref" --quiet
"$MOEPACK" reference "$TINY" --text README.md --ctx 64 --chunks 3 --top-k 8 -o "$TMP/topk.ref" --quiet
"$MOEPACK" convert "$TINY" -o "$TMP/w4.mpk" --scheme w4a16 --quiet
# Unchanged but rewritten by the helper: still accepted (the helper is faithful).
"$PY" "$TMP/mutate.py" "$TMP/topk.ref" "$TMP/same.ref"
expect_exit "a rewritten but unchanged reference is accepted" 0 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/same.ref" --quiet
"$PY" "$TMP/mutate.py" "$TMP/full.ref" "$TMP/same.ref"
expect_exit "a rewritten but unchanged full reference is accepted" 0 "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/same.ref" --quiet

# refused NAME REF EXIT FIELD EDIT...: the edited file makes verify exit EXIT and
# the one-line error names the file and FIELD.
refused() {
    _name=$1 _ref=$2 _code=$3 _field=$4; shift 4
    "$PY" "$TMP/mutate.py" "$TMP/$_ref" "$TMP/bad.ref" "$@" || { fail "$_name" "mutate.py failed"; return; }
    expect_exit "$_name: exit $_code" "$_code" "$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/bad.ref" --quiet
    expect_contains "$_name: names the file" "$TMP/err" "$TMP/bad.ref"
    expect_contains "$_name: names $_field" "$TMP/err" "$_field"
    [ "$(wc -l <"$TMP/err")" -eq 1 ] && pass "$_name: one line" || fail "$_name: one line" "$(cat "$TMP/err")"
    grep -q "runtime error\|AddressSanitizer" "$TMP/err" && fail "$_name: sanitizers quiet" "$(head -c 300 "$TMP/err")"
}

# Top-K ids are indexes into the pack's logits (a SEGV at 2^30, a wrong KLD at -1
# or = vocab). Row 0 of chunk 0 starts at 4 * ctx = 256: lse, then the ids.
refused "top-K id 2^30" topk.ref 2 "top-K id" "i32:0:260=1073741824"
refused "top-K id -1" topk.ref 2 "top-K id" "i32:1:260=-1"
refused "top-K id = vocab" topk.ref 2 "top-K id" "i32:2:264=1024"
refused "token id = vocab" topk.ref 2 "token" "i32:0:160=1024"
refused "token id -1" full.ref 2 "token" "i32:1:0=-1"
refused "a NaN log-prob" topk.ref 2 "log-prob" "f32:0:296=nan"
refused "a NaN lse" full.ref 2 "lse" "f32:0:256=nan"

# The footer: every field the reader or verify uses.
refused "stale first_scored" topk.ref 2 "first_scored" "footer.first_scored=7"
refused "stale first_scored (full)" full.ref 2 "first_scored" "footer.first_scored=7"
refused "huge first_scored" topk.ref 2 "first_scored" "footer.first_scored=9223372036854775807"
refused "negative first_scored" topk.ref 2 "first_scored" "footer.first_scored=-40"
refused "first_scored a string" topk.ref 2 "first_scored" 'footer.first_scored="32"'
refused "missing first_scored" topk.ref 2 "first_scored" "del:first_scored"
refused "scored_per_chunk off" topk.ref 2 "scored_per_chunk" "footer.scored_per_chunk=30"
refused "version 2" topk.ref 2 "version" "footer.version=2"
refused "version a string" topk.ref 2 "version" 'footer.version="1"'
refused "another format" topk.ref 2 "format" 'footer.format="gguf"'
refused "bos outside the vocabulary" topk.ref 2 "bos" "footer.bos=99999"
refused "bos below -1" topk.ref 2 "bos" "footer.bos=-7"
refused "bos the chunks do not start with" topk.ref 2 "bos" "footer.bos=5"
refused "unknown act" topk.ref 2 "act" 'footer.act="int3"'
refused "act a number" topk.ref 2 "act" "footer.act=16"
refused "n_scored off" topk.ref 2 "n_scored" "footer.n_scored=92"
refused "n_scored huge" topk.ref 2 "n_scored" "footer.n_scored=9223372036854775807"
refused "n_tokens below the chunks" topk.ref 2 "n_tokens" "footer.n_tokens=100"
refused "n_tokens a float" topk.ref 2 "n_tokens" "footer.n_tokens=1e9"
refused "n_chunks off" topk.ref 2 "n_chunks" "footer.n_chunks=4"
refused "n_chunks huge" topk.ref 2 "n_chunks" "footer.n_chunks=9223372036854775807"
refused "top_k >= vocab" topk.ref 2 "top_k" "footer.top_k=1024"
refused "nll_mean NaN-like" topk.ref 2 "nll_mean" 'footer.nll_mean="nan"'
refused "unknown codec" topk.ref 2 "payload.codec" 'footer.payload.codec="lz4"'
refused "missing codec" topk.ref 2 "codec" "del:payload.codec"
refused "payload.length short" topk.ref 2 "payload.length" "footer.payload.length=100"
refused "payload.length past the end" topk.ref 2 "payload.length" "footer.payload.length=999999"
refused "payload.length negative" topk.ref 2 "payload.length" "footer.payload.length=-8"
refused "payload.raw_length huge" topk.ref 2 "raw_length" "footer.payload.raw_length=9223372036854775807"
refused "payload.xxh3 not hex" topk.ref 2 "payload.xxh3" 'footer.payload.xxh3="zzzzzzzzzzzzzzzz"'
refused "payload checksum" topk.ref 3 "checksum" 'footer.payload.xxh3="0123456789abcdef"'
refused "payload not an object" topk.ref 2 "payload" "footer.payload=[]"
refused "vocab of another model" topk.ref 2 "vocab" "footer.model.vocab=2048"

# Huge top-K and ctx with a tiny payload: refused before anything is allocated.
refused "huge ctx" full.ref 2 "raw_length" "footer.ctx=1048576" "footer.first_scored=524288" \
    "footer.scored_per_chunk=524287" "footer.n_scored=1572861" "footer.n_tokens=4000000"

# The stale first_scored, checked by its consequence: never a silent KLD.
"$PY" "$TMP/mutate.py" "$TMP/full.ref" "$TMP/stale.ref" "footer.first_scored=7"
"$MOEPACK" verify "$TMP/w4.mpk" --reference "$TMP/stale.ref" --json >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && pass "stale first_scored: no KLD reported (exit $rc)" || fail "stale first_scored: no KLD reported" "$(head -c 300 "$TMP/out")"
