#!/bin/sh
# Regenerates the seed corpora of tests/fuzz/corpus from real inputs: synth's tiny
# checkpoints converted by moepack, the tokenizers of tests/ref/gguf_tokenizer.py and
# ../shared, the chat templates of tests/data and ../shared, a reference file and a
# stats file made by moepack. Split inputs are written as fuzz_util.h describes.
# Usage: MOEPACK=./moepack SYNTH=build/synth SHARED=/work/shared sh tests/fuzz/make_seeds.sh
set -eu
: "${MOEPACK:?}" "${SYNTH:?}" "${SHARED:?}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/tests/fuzz/corpus
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"/safetensors "$OUT"/st_index "$OUT"/config "$OUT"/tokenizer "$OUT"/chat_template \
    "$OUT"/pack "$OUT"/reference "$OUT"/stats "$OUT"/gguf_export

# split OUTFILE DIR NAME...: the named files of DIR as one split input
split() {
    out=$1 dir=$2; shift 2
    : >"$out"
    for f in "$@"; do
        [ -s "$out" ] && printf '\n' >>"$out" # a newline before a marker is not content
        printf '@@@ %s\n' "$f" >>"$out"
        cat "$dir/$f" >>"$out"
    done
}

TINY="--hidden 16 --heads 2 --vocab 64 --experts 2 --top-k 1 --inter 16"
for fam in mixtral qwen3_moe deepseek_v3 gpt_oss; do
    case $fam in
    deepseek_v3) shape="$TINY --moe-inter 16 --layers 2 --dense-layers 1 --groups 1 --topk-groups 1 --kv-lora-rank 16 --q-lora-rank 16 --qk-nope-dim 8 --qk-rope-dim 8 --v-head-dim 8" ;;
    gpt_oss) shape="--hidden 32 --heads 2 --vocab 64 --experts 2 --top-k 1 --inter 32 --layers 1 --kv-heads 1 --head-dim 16 --mxfp4" ;;
    qwen3_moe) shape="$TINY --moe-inter 16 --layers 1 --kv-heads 1 --head-dim 8" ;;
    *) shape="$TINY --layers 1 --kv-heads 1 --head-dim 8" ;;
    esac
    "$SYNTH" --family $fam -o "$TMP/$fam" $shape >/dev/null
    cp "$TMP/$fam/model.safetensors" "$OUT/safetensors/$fam.safetensors"
    split "$OUT/config/synth-$fam" "$TMP/$fam" config.json model.safetensors
done
for m in moby-mixtral moby-dsv3 tiny-qwen3moe; do
    fam=mixtral
    case $m in *dsv3) fam=deepseek_v3 ;; *qwen3*) fam=qwen3_moe ;; esac
    mkdir -p "$TMP/cfg-$m"
    cp "$SHARED/models/$m/config.json" "$TMP/$fam/model.safetensors" "$TMP/cfg-$m/"
    split "$OUT/config/$m" "$TMP/cfg-$m" config.json model.safetensors
done

"$SYNTH" --family qwen3_moe -o "$TMP/sharded" $TINY --moe-inter 16 --layers 2 --kv-heads 1 --head-dim 8 --shards 2 >/dev/null
split "$OUT/st_index/qwen3-2-shards" "$TMP/sharded" model.safetensors.index.json \
    model-00001-of-00002.safetensors model-00002-of-00002.safetensors

for kind in spm_bpe unigram qwen2 gpt2 dsv3; do
    mkdir -p "$TMP/tok-$kind"
    "$PY" "$ROOT/tests/ref/gguf_tokenizer.py" $kind 300 "$TMP/tok-$kind"
    split "$OUT/tokenizer/$kind" "$TMP/tok-$kind" tokenizer.json tokenizer_config.json
done
split "$OUT/tokenizer/tiny-qwen3moe" "$SHARED/models/tiny-qwen3moe" tokenizer.json tokenizer_config.json

cp "$ROOT"/tests/data/chat_templates/*.jinja "$OUT/chat_template/"
for m in moby-mixtral moby-dsv3 tiny-qwen3moe; do
    "$PY" -c 'import json, sys; t = json.load(open(sys.argv[1])).get("chat_template"); t and open(sys.argv[2], "w").write(t)' \
        "$SHARED/models/$m/tokenizer_config.json" "$OUT/chat_template/$m.jinja"
done

# A pack: the checksums fuzz_fill_pack_sums fills in are left out (manifest.xxh3) or
# zero (tier header size and checksum, records' xxh3), so mutations get past them.
zero_tier_sums() {
    "$PY" -c 'import sys
for p in sys.argv[1:]:
    b = bytearray(open(p, "rb").read()); b[16:24] = bytes(8); b[56:64] = bytes(8); open(p, "wb").write(b)' "$@"
}
"$SYNTH" --family mixtral -o "$TMP/packed" $TINY --vocab 320 --layers 1 --kv-heads 1 --head-dim 8 >/dev/null
"$PY" "$ROOT/tests/ref/gguf_tokenizer.py" spm_bpe 320 "$TMP/packed"
"$MOEPACK" convert "$TMP/packed" -o "$TMP/fp8.mpk" --quiet --scheme fp8 >/dev/null
"$MOEPACK" convert "$TMP/packed" -o "$TMP/w4.mpk" --quiet --scheme w4a16 --cold-codec zstd >/dev/null
zero_record_sums() {
    "$PY" -c 'import json, sys
m = json.load(open(sys.argv[1]))
for r in m["records"]: r["xxh3"] = "0" * 16
json.dump(m, open(sys.argv[1], "w"), separators=(",", ":"))' "$1"
}
for p in fp8 w4; do
    zero_tier_sums "$TMP/$p.mpk"/tier-*.bin
    zero_record_sums "$TMP/$p.mpk/manifest.json"
    tiers=$(cd "$TMP/$p.mpk" && ls tier-*.bin)
    split "$OUT/pack/$p" "$TMP/$p.mpk" manifest.json $tiers
    split "$OUT/gguf_export/$p" "$TMP/$p.mpk" manifest.json $tiers config.json tokenizer.json tokenizer_config.json
done

# reference and stats files, as the framing of fuzz_reference.c and fuzz_stats.c
"$PY" -c 'print(" ".join(str(i * 7 % 64) for i in range(64)))' >"$TMP/ids"
"$MOEPACK" reference "$TMP/mixtral" --tokens "$TMP/ids" --ctx 16 --chunks 2 -o "$TMP/full.ref" --quiet >/dev/null
"$MOEPACK" reference "$TMP/mixtral" --tokens "$TMP/ids" --ctx 16 --chunks 2 --top-k 4 -o "$TMP/topk.ref" --quiet >/dev/null
"$MOEPACK" profile "$TMP/mixtral" --tokens "$TMP/ids" --ctx 16 --chunks 2 -o "$TMP/p.stats" --quiet >/dev/null
"$PY" - "$TMP" "$OUT" <<'PYEOF'
import struct, sys
tmp, out = sys.argv[1], sys.argv[2]
def sections(path, parts):
    with open(path, "wb") as f:
        f.write(b"\n".join(b"@@@ " + name.encode() + b"\n" + data for name, data in parts))
for mode in ("full", "topk"):
    b = open(f"{tmp}/{mode}.ref", "rb").read()
    n = struct.unpack("<Q", b[-16:-8])[0]
    footer = b[-16 - n:-16]
    sections(f"{out}/reference/{mode}", [("payload", b[8:-16 - n]), ("footer", footer)])
sections(f"{out}/reference/file-topk", [("file", open(f"{tmp}/topk.ref", "rb").read())])
b = open(f"{tmp}/p.stats", "rb").read()
hlen, dlen = struct.unpack("<QQ", b[16:32])
sections(f"{out}/stats/profile", [("header", b[64:64 + hlen]), ("data", b[len(b) - dlen:])])
sections(f"{out}/stats/file", [("file", b)])
PYEOF
du -sh "$OUT"/*

# Dictionaries: the JSON keys of each target's seeds (as "\"key\":" tokens), plus the
# Jinja syntax for the templates.
"$PY" - "$OUT" "$ROOT/tests/fuzz" <<'PYEOF'
import os, re, sys
out, dest = sys.argv[1], sys.argv[2]
for name in ("config", "tokenizer", "pack", "reference", "stats", "gguf_export", "st_index", "safetensors"):
    keys = set()
    for f in os.listdir(f"{out}/{name}"):
        keys |= set(re.findall(rb'"([A-Za-z_][A-Za-z0-9_.]{1,40})"\s*:', open(f"{out}/{name}/{f}", "rb").read()))
    with open(f"{dest}/{name}.dict", "w") as d:
        d.write(f"# JSON keys of the {name} seeds (tests/fuzz/make_seeds.sh)\n")
        for k in sorted(keys):
            d.write('"\\"%s\\":"\n' % k.decode())
        d.write('"@@@ "\n' if name not in ("safetensors",) else "")
jinja = ["{%", "%}", "{{", "}}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", "if", "elif", "else", "endif", "for", "endfor",
         "in", "not", "and", "or", "is", "set", "endset", "macro", "endmacro", "namespace", "loop.index", "loop.last",
         "messages", "message", "role", "content", "tool_calls", "tools", "add_generation_prompt", "bos_token",
         "eos_token", "|tojson", "|length", "|trim", "|join", "|string", "|items", "|selectattr", "|map", "|default",
         "raise_exception", "strftime_now", "range", "defined", "none", "true", "false", ".split(", ".strip(",
         ".startswith(", "[::-1]", "break", "continue", "~", "**", "//"]
with open(f"{dest}/chat_template.dict", "w") as d:
    d.write("# Jinja syntax and the names chat templates use (tests/fuzz/make_seeds.sh)\n")
    for t in jinja:
        d.write('"%s"\n' % t.replace("\\", "\\\\").replace('"', '\\"'))
PYEOF
