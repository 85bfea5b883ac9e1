#!/bin/sh
# moepack export --to gguf: every family's synthetic checkpoint, in several encodings,
# parsed back by @huggingface/gguf (tests/ref/gguf_meta.mjs) and checked against its
# pack by tests/ref/gguf_export_check.py (keys llama.cpp reads, tensor names, shapes,
# types, offsets, stacked experts, copied bytes); the real checkpoints of ../shared;
# refusals (mixed expert encodings, existing output, no pack, no tokenizer) leaving
# nothing behind; --split-max-size as gguf-split lays it out.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REF=$ROOT/tests/ref
PY=${PYTHON:-/usr/bin/python3} # Debian's, with python3-numpy

if ! NODE_MODULES=$(npm_oracle '@huggingface/gguf@0.4.6'); then
    skip "export --to gguf" "node/npm or @huggingface/gguf unavailable"
    exit 0
fi
"$PY" -c "import numpy" 2>/dev/null || { skip "export --to gguf" "python3-numpy missing"; exit 0; }

meta() { node "$REF/gguf_meta.mjs" "$NODE_MODULES" "$@"; }

# family synth-options tokenizer-kind convert-options...
# Widths that are whole k-quant blocks (256); MLA's kv_lora_rank a whole q8_0 block.
shape() {
    case $1 in
    mixtral | olmoe | gpt_oss) echo "--hidden 256 --inter 256 --vocab 320" ;;
    deepseek_* | kimi_k2) echo "--hidden 256 --inter 256 --moe-inter 256 --vocab 320 --kv-lora-rank 32" ;;
    *) echo "--hidden 256 --inter 256 --moe-inter 256 --vocab 320" ;;
    esac
}
LIN='\.(q|k|v|o|q_a|q_b|kv_a|kv_b|gate|up|down)$'
run_family() {
    fam=$1 kind=$2 label=$3; shift 3
    d=$TMP/$label
    mkdir -p "$d"
    if ! "$SYNTH" --family "$fam" -o "$d/ckpt" $(shape "$fam") >/dev/null 2>"$d/err" ||
        ! "$PY" "$REF/gguf_tokenizer.py" "$kind" 320 "$d/ckpt" ||
        ! "$MOEPACK" convert "$d/ckpt" -o "$d/p.mpk" --quiet "$@" >/dev/null 2>"$d/err"; then
        fail "$label: synth and convert" "$(head -c 300 "$d/err")"
        return
    fi
    expect_exit "$label: export --to gguf" 0 "$MOEPACK" export "$d/p.mpk" --to gguf -o "$d/out.gguf" --json --quiet
    cp "$TMP/out" "$d/summary.json"
    if ! meta "$d/out.gguf" >"$d/meta.json" 2>"$d/err"; then
        fail "$label: @huggingface/gguf parses the file" "$(head -c 300 "$d/err")"
        return
    fi
    pass "$label: @huggingface/gguf parses the file"
    "$PY" "$REF/gguf_export_check.py" "$d/meta.json" "$d/summary.json" "$d/p.mpk" "$fam:$label" "$TOK_EXPECT"
}

# What each generated tokenizer gives (tests/ref/gguf_tokenizer.py).
SPM='{"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default", "tokenizer.ggml.tokens#": 320,
      "tokenizer.ggml.scores#": 320, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
      "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.add_bos_token": true}'
bpe() { # pre merges
    echo "{\"tokenizer.ggml.model\": \"gpt2\", \"tokenizer.ggml.pre\": \"$1\", \"tokenizer.ggml.tokens#\": 320,
      \"tokenizer.ggml.merges#\": 62, \"tokenizer.ggml.scores#\": 0, \"tokenizer.ggml.bos_token_id\": 318,
      \"tokenizer.ggml.eos_token_id\": 319, \"tokenizer.ggml.padding_token_id\": 319,
      \"tokenizer.ggml.add_bos_token\": false}"
}

TOK_EXPECT=$SPM
run_family mixtral spm_bpe mixtral-q4k-w4sym --scheme bf16 --encode 'experts\.=q4_k' --encode 'attn\.[qk]$=w4g32-sym'
TOK_EXPECT=$(bpe qwen2)
run_family qwen2_moe qwen2 qwen2_moe-q4_0-q4_1 --scheme bf16 --encode 'experts\.=q4_0' --encode "$LIN=q4_1"
run_family qwen3_moe qwen2 qwen3_moe-q8_0 --scheme bf16 --encode "$LIN=q8_0" --encode 'embed|lm_head=q6_k'
TOK_EXPECT=$(bpe olmo)
run_family olmoe gpt2 olmoe-iq4 --scheme bf16 --encode 'experts\.=iq4_xs' --encode "$LIN=iq4_nl"
TOK_EXPECT=$(echo "$SPM" | sed 's/"tokenizer.ggml.scores#": 320/"tokenizer.ggml.scores#": 320/')
run_family deepseek_v2 unigram deepseek_v2-mixed --scheme mixed --group 32
TOK_EXPECT=$(bpe deepseek-v3)
run_family deepseek_v3 dsv3 deepseek_v3-q8_0 --scheme bf16 --encode "$LIN=q8_0"
run_family kimi_k2 dsv3 kimi_k2-w4sym --scheme w4a16 --group 32 --sym
TOK_EXPECT=$(bpe glm4)
run_family glm4_moe llama3 glm4_moe-w4asym --scheme w4a16 --group 64
TOK_EXPECT=$(bpe gpt-4o)
run_family gpt_oss gpt4o gpt_oss-bf16 --scheme bf16

# The files of the checks above must be able to fail: a GGUF whose expert order is
# swapped (pack tensors renamed) is caught.
d=$TMP/qwen3_moe-q8_0
if [ -f "$d/meta.json" ]; then
    sed 's/"layers.1.experts.0.down"/"layers.1.experts.X.down"/; s/"layers.1.experts.1.down"/"layers.1.experts.0.down"/; s/"layers.1.experts.X.down"/"layers.1.experts.1.down"/' \
        "$d/summary.json" >"$d/swapped.json"
    if "$PY" "$REF/gguf_export_check.py" "$d/meta.json" "$d/swapped.json" "$d/p.mpk" qwen3_moe:swapped >"$d/neg" 2>&1; then
        fail "the checker notices experts in the wrong order"
    else
        pass "the checker notices experts in the wrong order"
    fi
fi

# ---- refusals, with nothing left behind ----
d=$TMP/mixtral-q4k-w4sym
"$SYNTH" --family mixtral -o "$TMP/mix" $(shape mixtral) >/dev/null && "$PY" "$REF/gguf_tokenizer.py" spm_bpe 320 "$TMP/mix"
"$MOEPACK" convert "$TMP/mix" -o "$TMP/mixed.mpk" --scheme bf16 --encode 'layers\.1\.experts\.3\.up=q8_0' --quiet >/dev/null
expect_exit "mixed expert encodings are refused" 2 "$MOEPACK" export "$TMP/mixed.mpk" --to gguf -o "$TMP/mixed.gguf"
expect_contains "naming the tensor" "$TMP/err" "blk.1.ffn_up_exps"
expect_contains "the layer and projection" "$TMP/err" "layer 1, projection up"
expect_contains "and the encodings found" "$TMP/err" "q8_0 (expert 3)"
if [ -e "$TMP/mixed.gguf" ] || ls -d "$TMP"/mixed.gguf.tmp-* >/dev/null 2>&1; then
    fail "no partial output after a refusal"; else pass "no partial output after a refusal"; fi

if [ -f "$d/out.gguf" ]; then
    cksum <"$d/out.gguf" >"$TMP/before"
    expect_exit "an existing output is refused without --force" 2 "$MOEPACK" export "$d/p.mpk" --to gguf -o "$d/out.gguf"
    expect_contains "saying --force" "$TMP/err" "--force"
    cksum <"$d/out.gguf" | cmp -s - "$TMP/before" && pass "and left as it was" || fail "and left as it was"
    expect_exit "--force replaces it" 0 "$MOEPACK" export "$d/p.mpk" --to gguf -o "$d/out.gguf" --force --quiet
fi
mkdir -p "$TMP/notapack"
expect_exit "a directory that is not a pack is refused" 2 "$MOEPACK" export "$TMP/notapack" --to gguf -o "$TMP/x.gguf"
expect_contains "saying so" "$TMP/err" "not a pack"
cp -r "$d/p.mpk" "$TMP/notok.mpk" && rm "$TMP/notok.mpk/tokenizer.json"
expect_exit "a pack without tokenizer.json is refused" 2 "$MOEPACK" export "$TMP/notok.mpk" --to gguf -o "$TMP/x.gguf"
expect_contains "naming what is missing" "$TMP/err" "no tokenizer.json"
mkdir -p "$TMP/ro" && chmod 555 "$TMP/ro"
if [ "$(id -u)" != 0 ]; then
    expect_exit "an unwritable output directory is an I/O error" 3 "$MOEPACK" export "$d/p.mpk" --to gguf -o "$TMP/ro/x.gguf"
fi
if [ -e "$TMP/x.gguf" ] || ls -d "$TMP"/x.gguf.tmp-* >/dev/null 2>&1; then
    fail "no partial output after the refusals"; else pass "no partial output after the refusals"; fi

# ---- --split-max-size: gguf-split's layout ----
if [ -f "$d/out.gguf" ]; then
    expect_exit "--split-max-size 2M" 0 "$MOEPACK" export "$d/p.mpk" --to gguf -o "$TMP/split.gguf" --split-max-size 2M --json --quiet
    cp "$TMP/out" "$TMP/split.json"
    set -- "$TMP"/split-000*-of-*.gguf
    if [ "$#" -ge 2 ] && meta "$@" >"$TMP/split_meta.json" && meta "$d/out.gguf" >"$TMP/whole_meta.json"; then
        pass "$# files named OUT-0000i-of-0000N.gguf"
        "$PY" - "$TMP/split_meta.json" "$TMP/whole_meta.json" "$#" <<'PY'
import json, sys
parts, whole, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))[0], int(sys.argv[3])
def check(name, ok, detail=""):
    print(("PASS: " if ok else "FAIL: ") + "split: " + name + ("" if ok else f" ({detail})"))
names = [t["name"] for p in parts for t in p["tensors"]]
check("the files together hold every tensor once, in order", names == [t["name"] for t in whole["tensors"]])
check("split.no, split.count, split.tensors.count in every file",
      all(p["metadata"].get("split.no") == i and p["metadata"].get("split.count") == n
          and p["metadata"].get("split.tensors.count") == len(names) and p["types"]["split.no"] == 2
          and p["types"]["split.tensors.count"] == 5 for i, p in enumerate(parts)))
first = parts[0]["metadata"]
check("the first file has all the metadata", all(k in first and first[k] == v for k, v in whole["metadata"].items()
      if k not in ("kv_count", "tensor_count")))
check("the others only the split keys", all("tokenizer.ggml.tokens" not in p["metadata"] and
      "general.architecture" not in p["metadata"] for p in parts[1:]))
check("each file at most 2 MiB unless it holds a single tensor",
      all(p["bytes"] <= 2 << 20 or len(p["tensors"]) == 1 for p in parts), [p["bytes"] for p in parts])
PY
        "$PY" "$REF/gguf_export_check.py" "$TMP/split_meta.json" "$TMP/split.json" "$d/p.mpk" "mixtral:split"
    else
        fail "--split-max-size writes several files" "$*"
    fi
fi

# ---- the real checkpoints ----
if ! have_shared; then
    skip "export of ../shared/models" "../shared is absent"
    exit 0
fi
for m in moby-mixtral tiny-qwen3moe; do
    "$MOEPACK" convert "$SHARED/models/$m" -o "$TMP/$m.mpk" --scheme bf16 --quiet >/dev/null ||
        { fail "$m: convert"; continue; }
    expect_exit "$m: export --to gguf" 0 "$MOEPACK" export "$TMP/$m.mpk" --to gguf -o "$TMP/$m.gguf" --json --quiet
    cp "$TMP/out" "$TMP/$m.json"
    meta "$TMP/$m.gguf" >"$TMP/$m.meta" || { fail "$m: parsed"; continue; }
done
"$PY" "$REF/gguf_export_check.py" "$TMP/moby-mixtral.meta" "$TMP/moby-mixtral.json" "$TMP/moby-mixtral.mpk" \
    "mixtral:moby-mixtral" '{"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
    "tokenizer.ggml.tokens#": 2048, "tokenizer.ggml.scores#": 2048, "tokenizer.ggml.bos_token_id": 1,
    "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.add_bos_token": true,
    "tokenizer.ggml.add_eos_token": false}'
"$PY" "$REF/gguf_export_check.py" "$TMP/tiny-qwen3moe.meta" "$TMP/tiny-qwen3moe.json" "$TMP/tiny-qwen3moe.mpk" \
    "qwen3_moe:tiny-qwen3moe" '{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2",
    "tokenizer.ggml.tokens#": 1024, "tokenizer.ggml.merges#": 765, "tokenizer.ggml.scores#": 0,
    "tokenizer.ggml.eos_token_id": 1021, "tokenizer.ggml.add_bos_token": false}'
# tokenizer.model's pieces and scores are SentencePiece's own (spot checks on moby-mixtral's).
"$PY" - "$TMP/moby-mixtral.meta" <<'PY'
import json, sys
md = json.load(open(sys.argv[1]))[0]["metadata"]
toks, types, scores = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"], md["tokenizer.ggml.scores"]
ok = toks[3] == "<0x00>" and types[3] == 6 and toks[259].startswith("\u2581") and scores[300] < scores[260] < 0
print(("PASS: " if ok else "FAIL: ") + "moby-mixtral: SentencePiece pieces, byte types and scores"
      + ("" if ok else f" ({toks[3]!r} {types[3]} {toks[259]!r} {scores[260]} {scores[300]})"))
PY
