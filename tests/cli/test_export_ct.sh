#!/bin/sh
# moepack export --to compressed-tensors. Every family's synthetic checkpoint is converted
# (w4a16 g128 sym, fp8, and for some mixed, asymmetric attention, smaller groups) and
# exported; then
#   - tests/ref/ct_layout.py (written from compressed-tensors' definitions) checks the
#     files, every tensor's name, dtype and shape, the index, shard sizes, config.json's
#     quantization_config (groups, targets, ignore) and the copied side files;
#   - tests/ref/ct_read.py, an independent compressed-tensors reader, dequantizes every
#     weight, and each must equal bit for bit the pack's own decoding (build/pack_dump);
#   - what vLLM cannot load is refused with exit 2, naming the tensor, leaving nothing.
# Needs Debian's python3 with numpy; without it, or without ct_read.py, the value
# comparisons print SKIP lines.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$(dirname "$SYNTH")}
PY=${PYTHON:-/usr/bin/python3}
LAYOUT=$ROOT/tests/ref/ct_layout.py
CT_READ=${CT_READ:-$ROOT/tests/ref/ct_read.py}
DUMP=$BUILD/pack_dump

why=""
if [ ! -x "$PY" ]; then
    why="no $PY (Debian python3)"
elif ! "$PY" -c 'import numpy' 2>/dev/null; then
    why="no numpy for $PY (apt-get install python3-numpy)"
fi
why_values=$why
if [ -z "$why_values" ] && [ ! -f "$CT_READ" ]; then
    why_values="tests/ref/ct_read.py is not in this tree yet"
fi
if [ -z "$why_values" ] && [ ! -x "$DUMP" ]; then
    fail "pack_dump exists" "$DUMP is missing; build it first"
    why_values="no pack_dump"
fi

# Shapes at which every linear takes group 128 and every fp8 block rule of vLLM holds.
shape_args() {
    case $1 in
        mixtral | olmoe) echo "--hidden 256 --head-dim 64 --inter 128" ;;
        deepseek_v2 | deepseek_v3 | kimi_k2)
            echo "--hidden 256 --moe-inter 128 --inter 128 --q-lora-rank 128 --kv-lora-rank 128 --qk-rope-dim 64 --qk-nope-dim 64 --v-head-dim 64" ;;
        *) echo "--hidden 256 --head-dim 64 --moe-inter 128 --inter 128" ;;
    esac
}

# same_values LABEL PACK CT: every weight ct_read.py dequantizes equals pack_dump's decoding.
# --exact: the value the checkpoint denotes, (q - zp) * scale as one f32 product; vLLM
# then rounds it to the model dtype in its kernels (docs/export-compressed-tensors.md).
same_values() {
    if [ -n "$why_values" ]; then skip "$1: dequantized values = the pack's" "$why_values"; return; fi
    a=$TMP/values-pack b=$TMP/values-ct
    rm -rf "$a" "$b" && mkdir -p "$a" "$b"
    if ! "$DUMP" "$2" "$a" >/dev/null 2>"$TMP/err"; then fail "$1: pack_dump" "$(head -c 300 "$TMP/err")"; return; fi
    if ! "$PY" "$CT_READ" "$3" "$b" --exact >"$TMP/ctread" 2>"$TMP/err"; then
        fail "$1: ct_read.py reads the checkpoint" "$(head -c 300 "$TMP/err")"
        return
    fi
    # canonical name -> HF name (the pack's source); every ".weight" must be there
    "$PY" -c 'import json,sys
for t in json.load(open(sys.argv[1]))["tensors"]: print(t["name"], t["source"])' "$2/manifest.json" >"$TMP/names"
    n=0 nbad=0 bad=""
    while read -r name source; do
        if [ ! -f "$b/$source.f32" ]; then
            case $source in *.weight) nbad=$((nbad + 1)); bad="$bad $source(missing)" ;; esac
            continue
        fi
        n=$((n + 1))
        if ! cmp -s "$a/$name.f32" "$b/$source.f32"; then
            nbad=$((nbad + 1))
            [ $nbad -le 4 ] && bad="$bad $name($(cmp "$a/$name.f32" "$b/$source.f32" 2>&1 | sed 's/.*differ: //'))"
        fi
    done <"$TMP/names"
    if [ $nbad -eq 0 ] && [ $n -gt 0 ]; then
        pass "$1: $n dequantized tensors = the pack's decoding, bit for bit"
    else
        fail "$1: dequantized tensors = the pack's decoding, bit for bit" "$nbad of $n differ:$bad"
    fi
}

# exported LABEL CKPT FORMAT [--shard-size N] -- CONVERT-ARGS...: converts, exports, checks.
exported() {
    label=$1 ckpt=$2 format=$3; shift 3
    size=""
    if [ "$1" = "--shard-size" ]; then size=$2; shift 2; fi
    [ "$1" = "--" ] && shift
    pack=$TMP/x.mpk out=$TMP/x.ct
    rm -rf "$pack" "$out"
    if ! "$MOEPACK" convert "$ckpt" -o "$pack" --quiet "$@" >/dev/null 2>"$TMP/err"; then
        fail "$label: convert $*" "$(head -c 300 "$TMP/err")"
        return
    fi
    expect_exit "$label: export" 0 "$MOEPACK" export "$pack" --to compressed-tensors -o "$out" --quiet \
        ${size:+--shard-size "$size"}
    [ -d "$out" ] || return
    if [ -n "$why" ]; then skip "$label: layout" "$why"; return; fi
    "$PY" "$LAYOUT" "$out" "$pack" "$label" "$format" $size
    same_values "$label" "$pack" "$out"
}

FAMILIES="mixtral qwen2_moe qwen3_moe olmoe deepseek_v2 deepseek_v3 kimi_k2 glm4_moe"
for f in $FAMILIES; do
    ck=$TMP/ck-$f
    # shellcheck disable=SC2046
    if ! "$SYNTH" --family "$f" $(shape_args "$f") -o "$ck" >/dev/null 2>"$TMP/err"; then
        fail "synth $f" "$(head -c 300 "$TMP/err")"
        continue
    fi
    exported "$f w4a16 g128 sym" "$ck" pack-quantized -- --scheme w4a16 --group 128 --sym
    exported "$f fp8" "$ck" float-quantized -- --scheme fp8
done

ck=$TMP/ck-deepseek_v3
exported "deepseek_v3 mixed sym" "$ck" mixed-precision -- --scheme mixed --sym
exported "deepseek_v3 w4 g32 experts, asymmetric g64 attention" "$ck" pack-quantized -- --scheme w4a16 \
    --group 32 --sym --encode 'attn\.(q_a|q_b|kv_a|kv_b|o)$=w4g64'
exported "deepseek_v3 fp8-channel and fp8-tensor" "$ck" float-quantized -- --scheme fp8 \
    --encode 'experts=fp8-channel' --encode 'attn\.o$=fp8-tensor'
exported "deepseek_v3 bf16 (no quantization_config)" "$ck" none -- --scheme bf16
if "$SYNTH" --family deepseek_v3 --fp8 $(shape_args deepseek_v3) -o "$TMP/ck-ds3-fp8" >/dev/null 2>"$TMP/err"; then
    # the source's own quantization_config (quant_method fp8) must give way to ours
    exported "deepseek_v3 FP8 checkpoint, fp8 pack" "$TMP/ck-ds3-fp8" float-quantized -- --scheme fp8
else
    fail "synth deepseek_v3 --fp8" "$(head -c 300 "$TMP/err")"
fi
ck=$TMP/ck-mixtral
exported "mixtral mixed sym" "$ck" mixed-precision -- --scheme mixed --sym
exported "mixtral w4 g64 sym, 40000-byte shards" "$ck" pack-quantized --shard-size 40000 -- --scheme w4a16 --group 64 --sym
exported "mixtral w4 g128 sym, zstd experts" "$ck" pack-quantized -- --scheme w4a16 --sym --cold-codec zstd
ck=$TMP/ck-qwen3_moe
exported "qwen3_moe asymmetric attention" "$ck" pack-quantized -- --scheme w4a16 --sym \
    --encode 'attn\.(q|k|v|o)$=w4g128'
exported "qwen3_moe fp8, 70000-byte shards" "$ck" float-quantized --shard-size 70000 -- --scheme fp8

# ---- what vLLM cannot load: exit 2, the tensor named, nothing written ----

# refused LABEL CKPT TEXT -- CONVERT-ARGS...: the export exits 2 naming TEXT, leaves nothing.
refused() {
    label=$1 ckpt=$2 text=$3; shift 3
    [ "$1" = "--" ] && shift
    pack=$TMP/r.mpk out=$TMP/r-out/x.ct
    rm -rf "$pack" "$TMP/r-out" && mkdir -p "$TMP/r-out"
    if ! "$MOEPACK" convert "$ckpt" -o "$pack" --quiet "$@" >/dev/null 2>"$TMP/err"; then
        fail "$label: convert $*" "$(head -c 300 "$TMP/err")"
        return
    fi
    expect_exit "$label: refused with exit 2" 2 "$MOEPACK" export "$pack" --to compressed-tensors -o "$out"
    expect_contains "$label: the message names $text" "$TMP/err" "$text"
    if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass "$label: one line"; else fail "$label: one line" "$(cat "$TMP/err")"; fi
    left=$(ls -A "$TMP/r-out")
    if [ -z "$left" ]; then pass "$label: nothing left behind"; else fail "$label: nothing left behind" "$left"; fi
}

ck=$TMP/ck-qwen3_moe
refused "grid encoding" "$ck" "layers.0.attn.o (model.layers.0.self_attn.o_proj.weight): q8_0" -- \
    --scheme w4a16 --sym --encode 'attn\.o$=q8_0'
expect_contains "grid encoding: the message points to GGUF" "$TMP/err" "--to gguf"
refused "mixed expert groups" "$ck" "layers.1.experts.3.down (model.layers.1.mlp.experts.3.down_proj.weight): w4g64-sym" -- \
    --scheme w4a16 --sym --encode 'layers\.1\.experts\.3\.down=w4g64-sym'
refused "w4 and fp8 experts in one layer" "$ck" "layers.0.experts.5.up" -- \
    --scheme w4a16 --sym --encode 'layers\.0\.experts\.5\.up=fp8'
refused "asymmetric int4 experts (no vLLM MoE kernel)" "$ck" "layers.0.experts.0.gate (model.layers.0.mlp.experts.0.gate_proj.weight): w4g128 is asymmetric" -- \
    --scheme w4a16
refused "unquantized experts (would be in ignore)" "$ck" "layers.0.experts.0.gate" -- \
    --scheme w4a16 --sym --keep 'experts'
expect_contains "unquantized experts: says why" "$TMP/err" "ignore"
refused "q, k, v in two schemes (one qkv_proj in vLLM)" "$ck" "layers.0.attn.k" -- \
    --scheme w4a16 --sym --encode 'attn\.k$=w4g64-sym'
expect_contains "q, k, v in two schemes: names qkv_proj" "$TMP/err" "qkv_proj"
refused "quantized router" "$ck" "layers.0.router (model.layers.0.mlp.gate.weight)" -- \
    --scheme w4a16 --sym --encode 'router$=w4g128-sym'
refused "quantized norm" "$ck" "layers.0.attn.q_norm" -- --scheme w4a16 --sym --encode 'q_norm=fp8-channel'
if "$SYNTH" --family qwen3_moe -o "$TMP/ck-narrow" >/dev/null 2>"$TMP/err"; then
    refused "fp8 blocks across an expert width of 32" "$TMP/ck-narrow" "layers.0.experts.0.gate" -- --scheme fp8
    expect_contains "fp8 expert width: says why" "$TMP/err" "128-row block"
else
    fail "synth qwen3_moe (narrow)" "$(head -c 300 "$TMP/err")"
fi
if "$SYNTH" --family gpt_oss --hidden 256 --head-dim 64 --inter 128 -o "$TMP/ck-gpt_oss" >/dev/null 2>"$TMP/err"; then
    refused "GPT-OSS (vLLM loads its experts stacked only)" "$TMP/ck-gpt_oss" "GPT-OSS" -- --scheme w4a16 --sym
else
    fail "synth gpt_oss" "$(head -c 300 "$TMP/err")"
fi

# A record that fails its checksum halfway through the export: exit 3, nothing left.
pack=$TMP/c.mpk
mkdir -p "$TMP/c-out"
if "$MOEPACK" convert "$TMP/ck-mixtral" -o "$pack" --scheme w4a16 --sym --quiet >/dev/null 2>"$TMP/err"; then
    size=$(wc -c <"$pack/tier-1.bin")
    printf '\377' | dd of="$pack/tier-1.bin" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
    expect_exit "corrupt record: exit 3" 3 "$MOEPACK" export "$pack" --to compressed-tensors -o "$TMP/c-out/x.ct"
    expect_contains "corrupt record: the message names the record" "$TMP/err" "tier-1.bin"
    left=$(ls -A "$TMP/c-out")
    if [ -z "$left" ]; then pass "corrupt record: nothing left behind"; else fail "corrupt record: nothing left behind" "$left"; fi
else
    fail "convert for the corrupt-record check" "$(head -c 300 "$TMP/err")"
fi

# ---- the output path ----
pack=$TMP/o.mpk out=$TMP/o.ct
"$MOEPACK" convert "$TMP/ck-mixtral" -o "$pack" --scheme w4a16 --sym --quiet >/dev/null 2>&1
mkdir -p "$out" && echo keep >"$out/marker"
expect_exit "existing output without --force: exit 2" 2 "$MOEPACK" export "$pack" --to compressed-tensors -o "$out"
expect_contains "existing output: says to use --force" "$TMP/err" "--force"
if [ "$(cat "$out/marker" 2>/dev/null)" = keep ]; then pass "existing output left untouched"; else fail "existing output left untouched"; fi
expect_exit "existing output with --force: replaced" 0 "$MOEPACK" export "$pack" --to compressed-tensors -o "$out" --force
if [ ! -e "$out/marker" ] && [ -f "$out/model.safetensors" ]; then pass "--force replaced the directory"; else fail "--force replaced the directory" "$(ls "$out")"; fi
left=$(ls -d "$TMP"/o.ct.* 2>/dev/null)
if [ -z "$left" ]; then pass "no temporary or moved-aside directory left"; else fail "no temporary or moved-aside directory left" "$left"; fi
expect_exit "--json summary" 0 "$MOEPACK" export "$pack" --to compressed-tensors -o "$TMP/j.ct" --json
if [ -z "$why" ] && "$PY" -c 'import json,sys
j=json.load(open(sys.argv[1]))
assert j["format"] == "pack-quantized" and j["groups"][0]["encoding"] == "w4g128-sym" and j["groups"][0]["experts"]
assert j["shards"] == 1 and j["tensors"] > 0' "$TMP/out" 2>"$TMP/err"; then
    pass "--json: format, groups, shards"
elif [ -n "$why" ]; then skip "--json: format, groups, shards" "$why"
else fail "--json: format, groups, shards" "$(head -c 300 "$TMP/err") $(head -c 300 "$TMP/out")"
fi
expect_exit "--split-max-size is GGUF's" 2 "$MOEPACK" export "$pack" --to compressed-tensors -o "$TMP/s.ct" --split-max-size 1M
expect_exit "a missing pack: exit 2" 2 "$MOEPACK" export "$TMP/none.mpk" --to compressed-tensors -o "$TMP/n.ct"
