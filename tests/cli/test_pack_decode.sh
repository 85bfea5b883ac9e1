#!/bin/sh
# Two readers of one pack must agree bit for bit: packs made by `moepack convert` over a
# spread of schemes and encodings are decoded by the C reader (build/pack_dump) and by
# tests/ref/decode_pack.py, an independent decoder written from docs/FORMAT.md alone;
# every tensor's float32 values must be byte-identical. llama.cpp's grids are decoded on
# the Python side by tests/ref/ggml_dequant.py, written from ggml's block layouts. The
# Python side also checks the tier headers, record layout, padding and byte counts
# against the spec. The oracles' own self-test (tests/ref/test_oracles.py: files built
# by hand, values worked out element by element) runs first.
# Needs Debian's python3 with numpy (python3-numpy); python3-zstandard or the zstd tool
# for zstd tiers; python3-xxhash to verify checksums there. Without numpy: SKIP lines.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$(dirname "$SYNTH")}
PY=${PYTHON:-/usr/bin/python3}
DECODE=$ROOT/tests/ref/decode_pack.py
DUMP=$BUILD/pack_dump
TINY=$ROOT/tests/data/tiny-qwen3moe

why=""
if [ ! -x "$PY" ]; then
    why="no $PY (Debian python3)"
elif ! "$PY" -c 'import numpy' 2>/dev/null; then
    why="no numpy for $PY (apt-get install python3-numpy)"
fi
have_zstd=yes
if [ -z "$why" ] && ! "$PY" -c 'import zstandard' 2>/dev/null && ! command -v zstd >/dev/null 2>&1; then
    have_zstd=""
fi
have_tools=yes
if [ ! -x "$DUMP" ]; then
    fail "pack_dump exists" "$DUMP is missing; build it first"
    have_tools=""
fi

if [ -z "$why" ]; then
    if "$PY" "$ROOT/tests/ref/test_oracles.py" >"$TMP/out" 2>&1; then pass "the oracles pass their self-test"
    else fail "the oracles pass their self-test" "$(tail -c 300 "$TMP/out")"; fi
fi

# agree NAME CKPT CONVERT-ARGS...: converts CKPT with the args, then decodes the pack
# with pack_dump and decode_pack.py and compares every tensor file byte for byte.
agree() {
    name=$1 ckpt=$2; shift 2
    if [ -n "$why" ]; then skip "$name: C reader = reference decoder" "$why"; return; fi
    case " $* " in *" zstd "*)
        if [ -z "$have_zstd" ]; then skip "$name: C reader = reference decoder" "no python3-zstandard and no zstd tool"; return; fi
    esac
    [ -n "$have_tools" ] || return
    id=$(echo "$name" | tr -c 'A-Za-z0-9_\n-' '_')
    out=$TMP/$id.mpk a=$TMP/$id.c b=$TMP/$id.py
    if ! "$MOEPACK" convert "$ckpt" -o "$out" --quiet "$@" >"$TMP/out" 2>"$TMP/err"; then
        fail "$name: convert" "$*: $(head -c 300 "$TMP/err")"
        return
    fi
    mkdir -p "$a" "$b"
    "$DUMP" "$out" "$a" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name: pack_dump" "exit $rc: $(head -c 300 "$TMP/err")"
        return
    fi
    if ! "$PY" "$DECODE" "$out" "$b" >"$TMP/pyout" 2>"$TMP/err"; then
        fail "$name: reference decoder accepts the pack" "$(head -c 400 "$TMP/err")"
        return
    fi
    n=$(wc -l <"$TMP/pyout")
    (cd "$a" && ls) >"$TMP/la"
    (cd "$b" && ls) >"$TMP/lb"
    if ! cmp -s "$TMP/la" "$TMP/lb"; then
        fail "$name: same tensors from both readers" \
            "only C: $(comm -23 "$TMP/la" "$TMP/lb" | head -5 | tr '\n' ' ') only Python: $(comm -13 "$TMP/la" "$TMP/lb" | head -5 | tr '\n' ' ')"
        return
    fi
    bad="" nbad=0
    while read -r f; do
        if ! cmp -s "$a/$f" "$b/$f"; then
            nbad=$((nbad + 1))
            [ $nbad -le 4 ] && bad="$bad ${f%.f32}[$(grep -F -- "${f%.f32} " "$TMP/pyout" | head -1 | cut -d' ' -f2,3) $(cmp "$a/$f" "$b/$f" 2>&1 | sed 's/.*differ: //' | head -1)]"
        fi
    done <"$TMP/lb"
    if [ "$nbad" -eq 0 ] && [ "$n" -gt 0 ]; then
        pass "$name: C reader = reference decoder on $n tensors"
    else
        fail "$name: C reader = reference decoder on $n tensors" "$nbad differ:$bad"
    fi
    rm -rf "$out" "$a" "$b"
}

# The bundled Qwen3-MoE: every scheme and encoding.
agree "tiny-qwen3moe bf16" "$TINY" --scheme bf16
agree "tiny-qwen3moe fp8" "$TINY" --scheme fp8
agree "tiny-qwen3moe w4a16 g128 asym rtn" "$TINY" --scheme w4a16 --group 128 --method rtn
agree "tiny-qwen3moe w4a16 g128 sym mse" "$TINY" --scheme w4a16 --group 128 --sym --method mse
agree "tiny-qwen3moe w4a16 g64 asym mse" "$TINY" --scheme w4a16 --group 64 --method mse
agree "tiny-qwen3moe w4a16 g64 sym rtn" "$TINY" --scheme w4a16 --group 64 --sym --method rtn
agree "tiny-qwen3moe w4a16 g32 sym rtn" "$TINY" --scheme w4a16 --group 32 --sym --method rtn
agree "tiny-qwen3moe w4a16 g32 asym mse" "$TINY" --scheme w4a16 --group 32 --method mse
agree "tiny-qwen3moe mixed" "$TINY" --scheme mixed
agree "tiny-qwen3moe all f32" "$TINY" --scheme w4a16 --encode '.*=f32'
agree "tiny-qwen3moe all f16" "$TINY" --scheme bf16 --encode '.*=f16'
agree "tiny-qwen3moe experts fp8-channel" "$TINY" --scheme w4a16 --encode 'experts=fp8-channel'
agree "tiny-qwen3moe attn fp8-tensor" "$TINY" --scheme w4a16 --encode 'attn=fp8-tensor'
agree "tiny-qwen3moe w4a16 zstd" "$TINY" --scheme w4a16 --cold-codec zstd
agree "tiny-qwen3moe w4a16 g32 sym zstd" "$TINY" --scheme w4a16 --group 32 --sym --cold-codec zstd
agree "tiny-qwen3moe bf16 zstd" "$TINY" --scheme bf16 --cold-codec zstd
agree "tiny-qwen3moe f16 zstd" "$TINY" --scheme bf16 --encode '.*=f16' --cold-codec zstd
agree "tiny-qwen3moe fp8 zstd" "$TINY" --scheme fp8 --cold-codec zstd
agree "tiny-qwen3moe fp8-channel experts zstd" "$TINY" --scheme w4a16 --encode 'experts=fp8-channel' --cold-codec zstd
agree "tiny-qwen3moe all f32 zstd" "$TINY" --scheme bf16 --encode '.*=f32' --cold-codec zstd
agree "tiny-qwen3moe mixed zstd" "$TINY" --scheme mixed --cold-codec zstd
# Vectors ([n], taken as one row) in per-row encodings, w4 everywhere.
agree "tiny-qwen3moe norms fp8-channel, experts w4g64-sym" "$TINY" --scheme fp8 \
    --encode 'norm=fp8-channel' --encode 'experts=w4g64-sym'
agree "tiny-qwen3moe all w4g32 zstd" "$TINY" --scheme bf16 --encode '.*=w4g32' --cold-codec zstd

# Synthetic checkpoints: other families, FP8 block-scaled and MXFP4 sources.
# run_synth LABEL SYNTH-ARGS...: writes the checkpoint into $CK.
run_synth() {
    CK=$TMP/ckpt-$1; shift
    [ -z "$why" ] || return 0
    # shellcheck disable=SC2068
    if "$SYNTH" "$@" -o "$CK" >/dev/null 2>"$TMP/err"; then return 0; fi
    fail "synth $*" "$(head -c 300 "$TMP/err")"
    return 1
}

if run_synth mixtral --family mixtral; then
    agree "mixtral w4a16 g32 asym zstd" "$CK" --scheme w4a16 --group 32 --cold-codec zstd
    agree "mixtral w4a16 g128 sym mse" "$CK" --scheme w4a16 --sym --method mse
    agree "mixtral fp8" "$CK" --scheme fp8
    agree "mixtral mixed zstd" "$CK" --scheme mixed --cold-codec zstd
    agree "mixtral f16" "$CK" --scheme bf16 --encode '.*=f16'
fi
# llama.cpp's grids: the 32-value ones on tiny-qwen3moe, every grid (the 256-value
# k-quants and iq4_xs need 256-wide inputs) on a 256-wide mixtral, with every method.
for grid in q8_0 q4_0 q4_1 iq4_nl; do
    agree "tiny-qwen3moe $grid mse" "$TINY" --scheme $grid --method mse
done
agree "tiny-qwen3moe q4_1 experts zstd" "$TINY" --scheme w4a16 --encode 'experts=q4_1' --cold-codec zstd
if run_synth mixtral256 --family mixtral --hidden 256 --inter 512 --layers 1; then
    for grid in q8_0 q4_0 q4_1 q4_k q5_k q6_k iq4_nl iq4_xs; do
        agree "mixtral-256 $grid rtn" "$CK" --scheme $grid --method rtn
    done
    agree "mixtral-256 q4_k hqq zstd" "$CK" --scheme q4_k --method hqq --cold-codec zstd
    agree "mixtral-256 iq4_xs mse, embed q6_k" "$CK" --scheme iq4_xs --method mse --encode 'embed=q6_k'
fi
if run_synth deepseek_v3_fp8 --family deepseek_v3 --fp8; then
    agree "deepseek_v3 fp8-src fp8" "$CK" --scheme fp8
    agree "deepseek_v3 fp8-src fp8 zstd" "$CK" --scheme fp8 --cold-codec zstd
    agree "deepseek_v3 fp8-src w4a16 g64 asym mse" "$CK" --scheme w4a16 --group 64 --method mse
    agree "deepseek_v3 fp8-src bf16 zstd" "$CK" --scheme bf16 --cold-codec zstd
    agree "deepseek_v3 fp8-src mixed" "$CK" --scheme mixed
    agree "deepseek_v3 fp8-src attn fp8-tensor" "$CK" --scheme w4a16 --encode 'attn=fp8-tensor'
fi
if run_synth gpt_oss_mxfp4 --family gpt_oss --mxfp4; then
    agree "gpt_oss mxfp4-src w4a16 g32 sym" "$CK" --scheme w4a16 --group 32 --sym
    agree "gpt_oss mxfp4-src w4a16 zstd" "$CK" --scheme w4a16 --cold-codec zstd
    agree "gpt_oss mxfp4-src bf16 zstd" "$CK" --scheme bf16 --cold-codec zstd
    agree "gpt_oss mxfp4-src fp8" "$CK" --scheme fp8
    agree "gpt_oss mxfp4-src experts fp8-channel zstd" "$CK" --scheme w4a16 --encode 'experts=fp8-channel' --cold-codec zstd
fi
# Awkward shapes: odd element counts (fp8 nibble planes with a half-empty last byte),
# odd counts of w4 zero points, partial 128x128 blocks, groups falling back to 64.
# (The head dim stays even: RoPE rotates pairs, and config.json with an odd rotated
# width is refused.)
if run_synth odd --family mixtral --hidden 65 --inter 33 --heads 5 --kv-heads 1 --head-dim 14 --vocab 101; then
    agree "mixtral 65x33 fp8 zstd" "$CK" --scheme fp8 --cold-codec zstd
    agree "mixtral 65x33 f16 zstd" "$CK" --scheme bf16 --encode '.*=f16' --cold-codec zstd
    agree "mixtral 65x33 experts fp8-channel zstd" "$CK" --scheme w4a16 --encode 'experts=fp8-channel' --cold-codec zstd
fi
if run_synth oddzeros --family mixtral --hidden 96 --inter 33 --heads 3 --kv-heads 1 --head-dim 32 --vocab 99; then
    agree "mixtral 96x33 w4a16 g32 asym zstd" "$CK" --scheme w4a16 --group 32 --cold-codec zstd
    agree "mixtral 96x33 w4a16 g32 asym mse" "$CK" --scheme w4a16 --group 32 --method mse
fi
if run_synth blocks --family mixtral --hidden 192 --inter 320 --heads 3 --kv-heads 1 --head-dim 64 --vocab 300; then
    agree "mixtral 192x320 fp8 zstd" "$CK" --scheme fp8 --cold-codec zstd
    agree "mixtral 192x320 w4a16 g128 sym mse" "$CK" --scheme w4a16 --group 128 --sym --method mse
fi
if run_synth qwen2_moe --family qwen2_moe --dense-layers 1; then
    agree "qwen2_moe w4a16 g64 sym" "$CK" --scheme w4a16 --group 64 --sym
fi
if run_synth glm4_moe --family glm4_moe; then
    agree "glm4_moe mixed zstd" "$CK" --scheme mixed --cold-codec zstd
fi
if run_synth deepseek_v2 --family deepseek_v2 --q-lora-rank 0; then
    agree "deepseek_v2 fp8" "$CK" --scheme fp8
fi
