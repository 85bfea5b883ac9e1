#!/bin/sh
# Hostile stats files: each is a real one (moepack profile on the tiny Qwen3-MoE)
# with counts or widths edited and the layout and checksums recomputed, so only the
# reader's checks stand between it and convert --stats / --bits. Each must be
# refused with exit 2 and one line naming the file and the field.
. "$(dirname "$0")/lib.sh"
TINY=tests/data/tiny-qwen3moe
PY=/usr/bin/python3
if ! "$PY" -c 'import xxhash' 2>/dev/null; then
    skip "hostile stats files" "python3 without xxhash"
    exit 0
fi

# mutate IN OUT EDIT...: EDIT is PATH=JSON on the header (linears.N.cols resizes
# that array, zero-filled) or count:LAYER_ROW:EXPERT=V on the routing counts. The
# offsets, lengths and checksums are recomputed (docs/stats.md).
cat >"$TMP/mutate.py" <<'EOF'
import json, struct, sys, xxhash
src, dst, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
b = open(src, 'rb').read()
H, D = struct.unpack('<QQ', b[16:32])
S = (64 + H + 63) // 64 * 64
h = json.loads(b[64:64 + H])
data = b[S:S + D]
E = h['routing']['experts']
table = 8 * len(h['routing']['layers']) * E
counts = bytearray(data[:table])
arrays = [data[l['offset']:l['offset'] + 4 * l['cols']] for l in h['linears']]
for e in edits:
    path, value = e.split('=')
    if path.startswith('count:'):
        _, row, x = path.split(':')
        struct.pack_into('<Q', counts, 8 * (int(row) * E + int(x)), int(value))
        continue
    obj, keys = h, path.split('.')
    for k in keys[:-1]:
        obj = obj[int(k)] if isinstance(obj, list) else obj[k]
    obj[keys[-1]] = json.loads(value)
at, body = 2 * table, b''
for l, a in zip(h['linears'], arrays):
    a = (a + bytes(4 * l['cols']))[:4 * l['cols']]
    a += bytes(-len(a) % 8)
    l['offset'] = at
    at += len(a)
    body += a
data = bytes(counts) + data[table:2 * table] + body
text = json.dumps(h, indent=1).encode()
head = text + bytes((64 + len(text) + 63) // 64 * 64 - 64 - len(text))
prefix = bytearray(64)
prefix[0:8] = b'MPSTATS1'
struct.pack_into('<IIQQQQ', prefix, 8, 1, 0, len(text), len(data), xxhash.xxh3_64_intdigest(head),
                 xxhash.xxh3_64_intdigest(data))
struct.pack_into('<Q', prefix, 56, xxhash.xxh3_64_intdigest(bytes(prefix[:56])))
open(dst, 'wb').write(bytes(prefix) + head + data)
EOF

"$MOEPACK" profile "$TINY" --text README.md --ctx 64 --chunks 3 -o "$TMP/good.stats" --quiet
"$PY" "$TMP/mutate.py" "$TMP/good.stats" "$TMP/same.stats"
expect_exit "a rewritten but unchanged stats file is accepted" 0 "$MOEPACK" convert "$TINY" -o "$TMP/t.mpk" --stats "$TMP/same.stats" --quiet
rm -rf "$TMP/t.mpk"
expect_exit "and by --bits" 0 "$MOEPACK" convert "$TINY" -o "$TMP/t.mpk" --stats "$TMP/same.stats" --bits 5 --quiet
rm -rf "$TMP/t.mpk"

# refused NAME FIELD EDIT...: convert --stats and convert --bits both exit 2 naming
# the file and FIELD, and leave no pack.
refused() {
    _name=$1 _field=$2; shift 2
    "$PY" "$TMP/mutate.py" "$TMP/good.stats" "$TMP/bad.stats" "$@" || { fail "$_name" "mutate.py failed"; return; }
    for _how in "--tiers 2" "--bits 5"; do
        # shellcheck disable=SC2086
        expect_exit "$_name ($_how): exit 2" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --stats "$TMP/bad.stats" $_how --quiet
        expect_contains "$_name ($_how): names the file" "$TMP/err" "$TMP/bad.stats"
        expect_contains "$_name ($_how): names $_field" "$TMP/err" "$_field"
        [ "$(wc -l <"$TMP/err")" -eq 1 ] && pass "$_name ($_how): one line" || fail "$_name ($_how): one line" "$(cat "$TMP/err")"
        if [ -e "$TMP/x.mpk" ]; then
            fail "$_name ($_how): no pack left"
            rm -rf "$TMP/x.mpk"
        fi
    done
}

# The counts against each other.
refused "tokens off by one" "header field tokens" "tokens=193"
refused "text.n_chunks off" "header field tokens" "text.n_chunks=4"
refused "text.ctx off" "header field tokens" "text.ctx=32"
refused "a dense linear's rows" "header field linears[0].rows" "linears.0.rows=191"
refused "an expert's rows" "header field linears[5].rows" "linears.5.rows=1"
refused "a routing count zeroed" "routing counts: layer 0" "count:0:0=0"
refused "model.top_k against the counts" "model.top_k" "model.top_k=1"
refused "model.experts against routing.experts" "header field model.experts" "model.experts=16"
refused "a routing layer past model.layers" "routing.layers" "model.layers=1"
refused "an expert outside the routing" "header field linears[5].name" 'linears.5.name="layers.0.experts.9.gate"'
# The file against the model it is applied to.
refused "another hidden size" "model.hidden" "model.hidden=256"
refused "a linear's width" "header field linears[0].cols" "linears.0.cols=130"
refused "an expert's width" "header field linears[7].cols" "linears.7.cols=128"
