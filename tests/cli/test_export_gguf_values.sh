#!/bin/sh
# moepack export --to gguf, value by value: the GGUF is read back by tests/ref/gguf_read.py
# (a NumPy GGUF reader and dequantizer written from ggml's published block layouts, not
# from moepack's writer) and every tensor compared with the pack's decoded values,
# laid out as llama.cpp's converter lays them out (tests/ref/gguf_vs_pack.py: experts
# stacked, Mixtral's q/k rows permuted, MLA's kv_b split). Packs on llama.cpp's grids
# must export with every tensor copied, and every one bit-exact; w4 symmetric packs are
# re-encoded to Q4_0 losslessly, also bit-exact. Every family; moby-mixtral (whole and
# split) when ../shared is present.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REF=$ROOT/tests/ref
BUILD=${BUILD:-$(dirname "$SYNTH")}
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c "import numpy" 2>/dev/null || { skip "GGUF values" "python3-numpy missing for $PY"; exit 0; }

# values LABEL PACK [EXPORT-ARGS]: exports, reads back, compares; WANT_COPIED=1 also
# requires that nothing was re-encoded.
values() {
    label=$1 pack=$2; shift 2
    d=$TMP/v-$(echo "$label" | tr -c 'A-Za-z0-9_\n-' '_')
    rm -rf "$d" && mkdir -p "$d/g" "$d/p"
    if ! "$MOEPACK" export "$pack" --to gguf -o "$d/out.gguf" --json --quiet "$@" >"$d/export.json" 2>"$d/err"; then
        fail "$label: export" "$(head -c 300 "$d/err")"
        return
    fi
    first=$(ls "$d"/out*.gguf | head -n 1)
    if ! "$PY" "$REF/gguf_read.py" "$first" --dump "$d/g" >/dev/null 2>"$d/err"; then
        fail "$label: the NumPy reader reads the file" "$(head -c 300 "$d/err")"
        return
    fi
    "$BUILD/pack_dump" "$pack" "$d/p" >/dev/null 2>&1
    if "$PY" "$REF/gguf_vs_pack.py" "$d/export.json" "$d/g" "$d/p" >"$d/cmp" 2>&1; then
        pass "$label: $(tail -n 1 "$d/cmp")"
    else
        fail "$label: copied tensors bit-exact" "$(grep -E 'DIFFERS|Error|error' "$d/cmp" | head -n 3)"
    fi
    if [ "${WANT_COPIED:-}" = 1 ]; then
        n=$(grep -c ' re-encoded ' "$d/cmp")
        [ "$n" = 0 ] && pass "$label: every tensor copied, none re-encoded" || fail "$label: every tensor copied" "$n re-encoded"
    fi
}

# family tokenizer-kind label convert-args...: a 256-wide synthetic checkpoint with a
# generated tokenizer (tests/ref/gguf_tokenizer.py), converted, then values.
family() {
    fam=$1 kind=$2 label=$3; shift 3
    ck=$TMP/ck-$label
    case $fam in
    deepseek_* | kimi_k2) extra="--moe-inter 256 --kv-lora-rank 32" ;;
    mixtral | olmoe | gpt_oss) extra="" ;;
    *) extra="--moe-inter 256" ;;
    esac
    # shellcheck disable=SC2086
    if ! "$SYNTH" --family "$fam" -o "$ck" --hidden 256 --inter 256 --vocab 320 $extra >/dev/null 2>"$TMP/err" ||
        ! "$PY" "$REF/gguf_tokenizer.py" "$kind" 320 "$ck" >/dev/null 2>>"$TMP/err" ||
        ! "$MOEPACK" convert "$ck" -o "$ck.mpk" --quiet "$@" >/dev/null 2>>"$TMP/err"; then
        fail "$label: synth and convert" "$(head -c 300 "$TMP/err")"
        return
    fi
    values "$label" "$ck.mpk"
}

LIN='\.(q|k|v|o|q_a|q_b|kv_a|gate|up|down)$'
WANT_COPIED=1
family mixtral spm_bpe mixtral-grids --scheme q4_k --encode 'embed=q6_k' --encode 'lm_head=q8_0' --encode 'attn\.[qk]$=q5_k'
family qwen2_moe qwen2 qwen2_moe-grids --scheme q4_0 --encode 'shared\.=q4_1' --encode 'embed|lm_head=iq4_nl'
family qwen3_moe qwen2 qwen3_moe-grids --scheme iq4_xs --encode 'attn\.[qkv]$=q6_k'
family olmoe gpt2 olmoe-grids --scheme q5_k --encode 'experts\.[0-9]+\.down=q8_0'
family glm4_moe llama3 glm4_moe-grids --scheme q6_k
family gpt_oss gpt4o gpt_oss-grids --scheme q8_0
WANT_COPIED=0 # MLA's k_b is a transpose: re-encoded (exactly when the pack is not quantized)
family deepseek_v3 dsv3 deepseek_v3-grids --scheme q4_k --encode "kv_b=bf16"
family deepseek_v2 unigram deepseek_v2-grids --scheme q8_0 --encode "kv_b=bf16"
family kimi_k2 dsv3 kimi_k2-w4sym --scheme w4a16 --group 32 --sym --encode "kv_b=bf16"

MOBY=$SHARED/models/moby-mixtral
if have_shared; then
    "$MOEPACK" convert "$MOBY" -o "$TMP/moby.mpk" --scheme q4_k --encode '^(embed|lm_head)$|attn\.[qkvo]$=q8_0' --quiet
    WANT_COPIED=1
    values "moby-mixtral q4_k experts, q8_0 elsewhere" "$TMP/moby.mpk"
    values "moby-mixtral split in 2M files" "$TMP/moby.mpk" --split-max-size 2M
    WANT_COPIED=0
    "$MOEPACK" convert "$MOBY" -o "$TMP/moby-w4.mpk" --scheme w4a16 --group 64 --sym --quiet
    values "moby-mixtral w4 g64 sym, re-encoded to Q4_0" "$TMP/moby-w4.mpk"
else
    skip "moby-mixtral GGUF values" "../shared absent"
fi
