#!/bin/sh
# Synthetic checkpoints of every family from tests/synth: inspect must find every
# tensor the family needs, with the counts the generator was asked for.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"

# family_ok NAME SYNTH-ARGS -- KEY VALUE...
family_ok() {
    name=$1; shift
    args=""
    while [ "$1" != "--" ]; do args="$args $1"; shift; done
    shift
    dir=$TMP/$(echo "$name" | tr ' /' '__')
    # shellcheck disable=SC2086
    if ! "$SYNTH" $args -o "$dir" >/dev/null 2>"$TMP/err"; then
        fail "$name: synth" "$(cat "$TMP/err")"
        return
    fi
    expect_exit "$name: inspect" 0 "$MOEPACK" inspect --json "$dir"
    cp "$TMP/out" "$TMP/json"
    expect_contains "$name: no problems" "$TMP/json" '"problems": []'
    while [ $# -ge 2 ]; do
        expect_contains "$name: $1 = $2" "$TMP/json" "\"$1\": $2"
        shift 2
    done
}

family_ok "mixtral" --family mixtral -- family '"mixtral"' experts 8 top_k 2
family_ok "qwen2_moe dense layer" --family qwen2_moe --dense-layers 1 -- family '"qwen2_moe"' dense_layers 1 shared_experts 1
family_ok "qwen3_moe" --family qwen3_moe -- family '"qwen3_moe"' shared_experts 0
family_ok "olmoe" --family olmoe -- family '"olmoe"' norm_topk false
family_ok "deepseek_v2 no q-lora" --family deepseek_v2 --q-lora-rank 0 -- family '"deepseek_v2"' scoring '"softmax"'
family_ok "deepseek_v3 fp8 3 shards" --family deepseek_v3 --fp8 --shards 3 -- family '"deepseek_v3"' files 3 mtp_layers 1 scoring '"sigmoid"'
family_ok "kimi_k2 fp8" --family kimi_k2 --fp8 -- family '"deepseek_v3"' model_type '"kimi_k2"'
family_ok "glm4_moe" --family glm4_moe -- family '"glm4_moe"' scoring '"sigmoid"'
family_ok "gpt_oss bf16" --family gpt_oss -- family '"gpt_oss"' weights '"unquantized"'
family_ok "gpt_oss mxfp4" --family gpt_oss --mxfp4 -- family '"gpt_oss"' weights '"mxfp4 experts"'
family_ok "deepseek-v3 real counts" --deepseek-v3-full -- \
    tensors 91991 files 163 layers 61 dense_layers 3 moe_layers 58 mtp_layers 1 experts 256 top_k 8 \
    shared_experts 1 n_group 8 topk_group 4 routed_scaling_factor 2.5

# Same options, same bytes.
"$SYNTH" --family deepseek_v3 --fp8 --shards 2 -o "$TMP/a" >/dev/null 2>&1
"$SYNTH" --family deepseek_v3 --fp8 --shards 2 -o "$TMP/b" >/dev/null 2>&1
if diff -r "$TMP/a" "$TMP/b" >/dev/null; then pass "synth is deterministic"; else fail "synth is deterministic"; fi

# Damaged checkpoints: one line on stderr, exit 2, the culprit named.
one_line() { if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass "$1: one-line error"; else fail "$1: one-line error" "$(cat "$TMP/err")"; fi; }
rm "$TMP/a/model-00002-of-00002.safetensors"
expect_exit "missing shard" 2 "$MOEPACK" inspect "$TMP/a"
expect_contains "missing shard is named" "$TMP/err" "model-00002-of-00002.safetensors"
one_line "missing shard"
size=$(wc -c <"$TMP/b/model-00001-of-00002.safetensors")
head -c $((size - 3)) "$TMP/b/model-00001-of-00002.safetensors" >"$TMP/b/t" && mv "$TMP/b/t" "$TMP/b/model-00001-of-00002.safetensors"
expect_exit "truncated shard" 2 "$MOEPACK" inspect "$TMP/b"
expect_contains "truncated shard is named" "$TMP/err" "model-00001-of-00002.safetensors"
one_line "truncated shard"
"$SYNTH" --family mixtral -o "$TMP/c" >/dev/null 2>&1
sed 's/"mixtral"/"llama"/; s/MixtralForCausalLM/LlamaForCausalLM/' "$TMP/c/config.json" >"$TMP/c/x" && mv "$TMP/c/x" "$TMP/c/config.json"
expect_exit "unsupported architecture" 2 "$MOEPACK" inspect "$TMP/c"
expect_contains "unsupported architecture lists the families" "$TMP/err" "GPT-OSS (GptOssForCausalLM)"
one_line "unsupported architecture"

# Shard headers are parsed in parallel: the report must not depend on the thread count.
"$SYNTH" --family deepseek_v3 --fp8 --shards 7 -o "$TMP/d" >/dev/null 2>&1
"$MOEPACK" inspect --json --threads 1 "$TMP/d" >"$TMP/t1" 2>&1
"$MOEPACK" inspect --json --threads 2 "$TMP/d" >"$TMP/t2" 2>&1
if cmp -s "$TMP/t1" "$TMP/t2"; then pass "inspect is the same at 1 and 2 threads"; else fail "inspect is the same at 1 and 2 threads"; fi
expect_exit "--threads 0 is a usage error" 2 "$MOEPACK" inspect --threads 0 "$TMP/d"
