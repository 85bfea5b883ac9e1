#!/bin/sh
# moepack inspect on the shared trained checkpoints: the figures must agree with
# ../shared/models/README.md (layers, experts, top-k, parameter count).
. "$(dirname "$0")/lib.sh"

expect_exit "moepack --help" 0 "$MOEPACK" --help
expect_contains "--help lists inspect" "$TMP/out" "inspect"
expect_exit "moepack --version" 0 "$MOEPACK" --version
expect_contains "--version prints the version" "$TMP/out" "moepack 0."
expect_exit "no command is a usage error" 2 "$MOEPACK"
expect_exit "unknown command is a usage error" 2 "$MOEPACK" frobnicate
expect_exit "inspect --help" 0 "$MOEPACK" inspect --help
expect_contains "inspect --help documents --json" "$TMP/out" "--json"
expect_exit "inspect without a path" 2 "$MOEPACK" inspect
expect_exit "inspect of a missing path" 2 "$MOEPACK" inspect "$TMP/nope"
expect_contains "missing path is named" "$TMP/err" "$TMP/nope"

# inspect_json NAME DIR KEY VALUE...: checks "KEY": VALUE pairs in the JSON report.
inspect_json() {
    name=$1 dir=$2; shift 2
    "$MOEPACK" inspect --json "$dir" >"$TMP/json" 2>"$TMP/err" || { fail "$name: inspect --json" "$(cat "$TMP/err")"; return; }
    while [ $# -ge 2 ]; do
        expect_contains "$name: $1 = $2" "$TMP/json" "\"$1\": $2"
        shift 2
    done
}

# The bundled model is a copy of the shared tiny-qwen3moe: always available.
inspect_json "bundled tiny-qwen3moe" tests/data/tiny-qwen3moe \
    family '"qwen3_moe"' layers 2 hidden 128 vocab 1024 experts 8 top_k 2 shared_experts 0 \
    expert_width 256 params_total 1936128 problems '[]'

if have_shared; then
    M=$SHARED/models
    inspect_json "moby-mixtral" "$M/moby-mixtral" \
        family '"mixtral"' layers 4 moe_layers 4 hidden 256 vocab 2048 heads 8 kv_heads 4 experts 8 top_k 2 \
        expert_width 512 params_total 14428416 problems '[]'
    # README: 14.43 M parameters, 1.94 M parameters
    expect_exit "moby-mixtral text report" 0 "$MOEPACK" inspect "$M/moby-mixtral"
    expect_contains "moby-mixtral has 14.43 M parameters" "$TMP/out" "(14.43 M)"
    expect_exit "tiny-qwen3moe text report" 0 "$MOEPACK" inspect "$M/tiny-qwen3moe"
    expect_contains "tiny-qwen3moe has 1.94 M parameters" "$TMP/out" "(1.94 M)"
else
    skip "inspect of ../shared/models" "no ../shared beside the checkout"
fi
