#!/bin/sh
# Fuzzer findings on config.json and checkpoint values, each made from a real model:
# absurd counts must fail at once (cost bounded by the checkpoint, not by the claim),
# out-of-range floats and inconsistent fields must be refused identically by every
# command at load, and NaN/infinite weights are an error naming the tensor and the
# first bad flat index unless --allow-nonfinite.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}"

# The trained moby-mixtral, or a synthetic Mixtral when the shared models are absent.
BASE=$SHARED/models/moby-mixtral
if ! have_shared; then
    BASE=$TMP/synth-mixtral
    "$SYNTH" --family mixtral -o "$BASE" >/dev/null || fail "synth mixtral"
fi
TOKENS=$TMP/tokens.txt
seq 1 40 | tr '\n' ' ' >"$TOKENS" # ids every vocabulary here has; no tokenizer needed
RUN_OPTS="--tokens $TOKENS --ctx 16 --chunks 1 --quiet"

# edited NAME SRC PYTHON: copies SRC to $TMP/NAME and applies PYTHON to its config
# (the dict c); prints the directory.
edited() {
    _dir=$TMP/$1
    rm -rf "$_dir" && mkdir -p "$_dir" && cp "$2"/* "$_dir"/
    python3 - "$_dir/config.json" "$3" <<'EOF'
import json, sys
path, code = sys.argv[1], sys.argv[2]
c = json.load(open(path))
exec(code)
json.dump(c, open(path, "w"), indent=1)
EOF
    echo "$_dir"
}

# refused_by_all NAME DIR TEXT...: inspect, convert and reference all exit 2 within
# 10 s, naming config.json and each TEXT.
refused_by_all() {
    _name=$1 _dir=$2; shift 2
    for _cmd in inspect convert reference; do
        rm -rf "$TMP/out.mpk" "$TMP/ref"
        case $_cmd in
            inspect) expect_exit "$_name: inspect exits 2" 2 timeout 10 "$MOEPACK" inspect "$_dir" ;;
            convert) expect_exit "$_name: convert exits 2" 2 timeout 10 "$MOEPACK" convert "$_dir" -o "$TMP/out.mpk" --quiet ;;
            reference) expect_exit "$_name: reference exits 2" 2 timeout 10 "$MOEPACK" reference "$_dir" $RUN_OPTS -o "$TMP/ref" ;;
        esac
        expect_contains "$_name: $_cmd names config.json" "$TMP/err" "config.json"
        for _t in "$@"; do
            expect_contains "$_name: $_cmd says $_t" "$TMP/err" "$_t"
        done
        [ ! -e "$TMP/out.mpk" ] && [ ! -e "$TMP/ref" ] && pass "$_name: $_cmd leaves no output" ||
            fail "$_name: $_cmd leaves no output"
    done
}

# ---- counts: bounded absolutely, then by the checkpoint's tensors ----
EXPERTS=num_local_experts
d=$(edited layers2000006 "$BASE" 'c["num_hidden_layers"] = 2000006')
refused_by_all "num_hidden_layers 2000006" "$d" '"num_hidden_layers"' "[1, 1024]"
# well under a second and small memory (it took minutes and gigabytes)
/usr/bin/time -f "%e %M" -o "$TMP/time" timeout 10 "$MOEPACK" inspect "$d" >/dev/null 2>&1
read -r secs kb <<EOF
$(tail -1 "$TMP/time")
EOF
awk -v s="$secs" -v k="$kb" 'BEGIN { exit !(s < 1 && k < 200000) }' &&
    pass "num_hidden_layers 2000006 fails in ${secs}s, ${kb} KB" || fail "num_hidden_layers 2000006 is quick" "${secs}s ${kb} KB"

d=$(edited layers900 "$BASE" 'c["num_hidden_layers"] = 900')
refused_by_all "num_hidden_layers 900 on a small checkpoint" "$d" "num_hidden_layers 900" "the checkpoint holds"
d=$(edited experts4000 "$BASE" "c[\"$EXPERTS\"] = 4000")
refused_by_all "$EXPERTS 4000 on a small checkpoint" "$d" "with 4000 experts need at least"
d=$(edited experts_huge "$BASE" "c[\"$EXPERTS\"] = 1 << 40")
refused_by_all "$EXPERTS 2^40" "$d" "\"$EXPERTS\"" "expected an integer in"
d=$(edited vocab_huge "$BASE" 'c["vocab_size"] = 1 << 31')
refused_by_all "vocab_size 2^31" "$d" '"vocab_size"'
d=$(edited heads_huge "$BASE" 'c["num_attention_heads"] = 100000; c["num_key_value_heads"] = 100000')
refused_by_all "num_attention_heads 100000" "$d" '"num_attention_heads"'

# ---- floats: the same range check at load for every command ----
d=$(edited theta_neg "$BASE" 'c["rope_theta"] = -10000.0')
refused_by_all "rope_theta < 0" "$d" '"rope_theta"' "expected a number in"
d=$(edited eps_zero "$BASE" 'c["rms_norm_eps"] = 0')
refused_by_all "rms_norm_eps 0" "$d" '"rms_norm_eps"'
d=$(edited eps_big "$BASE" 'c["rms_norm_eps"] = 0.5')
refused_by_all "rms_norm_eps 0.5" "$d" '"rms_norm_eps"'
d=$(edited yarn_zero "$BASE" 'c["rope_scaling"] = {"type": "yarn", "factor": 0.0}')
refused_by_all "rope_scaling.factor 0" "$d" '"factor"'
d=$(edited rotary_zero "$BASE" 'c["partial_rotary_factor"] = 0')
refused_by_all "partial_rotary_factor 0" "$d" '"partial_rotary_factor"'

# ---- fields against each other ----
d=$(edited kv3 "$BASE" 'c["num_key_value_heads"] = 3')
refused_by_all "num_key_value_heads 3 of 8 heads" "$d" '"num_key_value_heads" 3: expected a divisor'
d=$(edited topk9 "$BASE" "c[\"num_experts_per_tok\"] = c[\"$EXPERTS\"] + 1")
refused_by_all "num_experts_per_tok > experts" "$d" "num_experts_per_tok"
d=$(edited headdim_odd "$BASE" 'c["head_dim"] = 31')
refused_by_all "odd head_dim" "$d" "rotated dimensions"

if have_shared; then
    DS=$SHARED/models/moby-dsv3
    d=$(edited topk_group "$DS" 'c["topk_group"] = 5')
    refused_by_all "topk_group 5 > n_group 4" "$d" '"topk_group" 5'
    d=$(edited n_group5 "$DS" 'c["n_group"] = 5; c["topk_group"] = 2')
    refused_by_all "n_group 5 does not divide 12 experts" "$d" '"n_group" 5'
    d=$(edited first_k "$DS" 'c["first_k_dense_replace"] = 9')
    refused_by_all "first_k_dense_replace 9 of 4 layers" "$d" '"first_k_dense_replace" 9'
    d=$(edited scale_neg "$DS" 'c["routed_scaling_factor"] = -2.5')
    refused_by_all "routed_scaling_factor < 0" "$d" '"routed_scaling_factor"'
    d=$(edited mtp_huge "$DS" 'c["num_nextn_predict_layers"] = 100000')
    refused_by_all "num_nextn_predict_layers 100000" "$d" '"num_nextn_predict_layers"'
    d=$(edited lora_huge "$DS" 'c["kv_lora_rank"] = 1 << 30')
    refused_by_all "kv_lora_rank 2^30" "$d" '"kv_lora_rank"'
    d=$(edited rope_odd "$DS" 'c["qk_rope_head_dim"] = 15')
    refused_by_all "odd qk_rope_head_dim" "$d" '"qk_rope_head_dim" 15'
    # the real families' configs still load
    for m in moby-mixtral moby-dsv3 tiny-qwen3moe; do
        expect_exit "$m loads" 0 "$MOEPACK" inspect "$SHARED/models/$m"
    done
fi

# ---- non-finite weights ----
# poke DIR TENSOR INDEX VALUE: stores VALUE (nan, inf) at flat INDEX of TENSOR in
# place, in the tensor's own dtype (the file's size and header are unchanged).
poke() {
    python3 - "$@" <<'EOF'
import glob, json, os, struct, sys
d, name, index, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
for path in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        if name not in header:
            continue
        t = header[name]
        bits = {"F32": struct.pack("<f", value), "F16": struct.pack("<e", value),
                "BF16": struct.pack("<f", value)[2:], "F8_E4M3": bytes([0x7f]),
                "U8": bytes([0xff])}[t["dtype"]]  # U8: an MXFP4 e8m0 scale, 0xff = NaN
        f.seek(8 + n + t["data_offsets"][0] + index * len(bits))
        f.write(bits)
        sys.exit(0)
sys.exit("no tensor " + name)
EOF
}

nan_case() { # NAME SRC TENSOR INDEX VALUE
    d=$TMP/$1
    rm -rf "$d" && mkdir -p "$d" && cp "$2"/* "$d"/
    poke "$d" "$3" "$4" "$5" || { fail "$1: poke"; return; }
    for scheme in w4a16 bf16; do # bf16 copies bf16 tensors as stored, without decoding
        rm -rf "$TMP/nan.mpk"
        expect_exit "$1: convert --scheme $scheme exits 2" 2 "$MOEPACK" convert "$d" -o "$TMP/nan.mpk" --scheme $scheme --quiet
        expect_contains "$1: convert --scheme $scheme names the tensor" "$TMP/err" "\"$3\""
        expect_contains "$1: convert --scheme $scheme names the index" "$TMP/err" "flat index $4;"
        [ ! -e "$TMP/nan.mpk" ] && pass "$1: no pack left" || fail "$1: no pack left"
    done
    expect_exit "$1: convert --allow-nonfinite" 0 "$MOEPACK" convert "$d" -o "$TMP/nan.mpk" --quiet --force --allow-nonfinite
    rm -rf "$TMP/nan.mpk" "$TMP/ref"
    expect_exit "$1: reference exits 2" 2 "$MOEPACK" reference "$d" $RUN_OPTS -o "$TMP/ref"
    expect_contains "$1: reference names the tensor and index" "$TMP/err" "\"$3\": non-finite value (NaN or infinity) at flat index $4;"
    expect_exit "$1: profile exits 2" 2 "$MOEPACK" profile "$d" $RUN_OPTS -o "$TMP/stats.json"
    expect_contains "$1: profile names the tensor" "$TMP/err" "\"$3\": non-finite value"
    rm -rf "$TMP/ref" "$TMP/stats.json"
    # carried into the run, a NaN gives NaN logits: refused as such, not as "out of memory"
    expect_exit "$1: reference --allow-nonfinite reads the weights" 2 "$MOEPACK" reference "$d" $RUN_OPTS -o "$TMP/ref" --allow-nonfinite
    expect_contains "$1: reference --allow-nonfinite says the logits are not finite" "$TMP/err" "log-likelihood is not finite"
    [ ! -e "$TMP/ref" ] && pass "$1: no reference left" || fail "$1: no reference left"
}

nan_case nan_expert "$BASE" model.layers.1.block_sparse_moe.experts.3.w2.weight 1234 nan
nan_case inf_attention "$BASE" model.layers.0.self_attn.q_proj.weight 77 inf

# f32 and FP8 (codes and block scales) checkpoints from the synth tool
"$SYNTH" --family mixtral --dtype f32 -o "$TMP/f32" >/dev/null 2>&1 &&
    nan_case nan_f32 "$TMP/f32" model.layers.0.block_sparse_moe.experts.1.w1.weight 5 nan
if "$SYNTH" --family deepseek_v3 --fp8 -o "$TMP/fp8" >/dev/null 2>&1; then
    d=$TMP/fp8_code
    rm -rf "$d" && mkdir -p "$d" && cp "$TMP/fp8"/* "$d"/
    poke "$d" model.layers.1.mlp.experts.2.up_proj.weight 9 nan || fail "fp8: poke"
    rm -rf "$TMP/x.mpk"
    expect_exit "fp8 NaN code: convert --scheme fp8 (copied as stored) exits 2" 2 "$MOEPACK" convert "$d" -o "$TMP/x.mpk" --scheme fp8 --quiet
    expect_contains "fp8 NaN code: names tensor and index" "$TMP/err" '"model.layers.1.mlp.experts.2.up_proj.weight": non-finite value (NaN or infinity) at flat index 9;'
    rm -rf "$TMP/x.mpk"
    expect_exit "fp8 NaN code: convert --scheme w4a16 exits 2" 2 "$MOEPACK" convert "$d" -o "$TMP/x.mpk" --quiet
    expect_contains "fp8 NaN code: w4a16 names tensor and index" "$TMP/err" "flat index 9;"
    d=$TMP/fp8_scale
    rm -rf "$d" && mkdir -p "$d" && cp "$TMP/fp8"/* "$d"/
    poke "$d" model.layers.1.mlp.experts.2.up_proj.weight_scale_inv 0 inf || fail "fp8 scale: poke"
    rm -rf "$TMP/x.mpk"
    expect_exit "fp8 inf scale: convert exits 2" 2 "$MOEPACK" convert "$d" -o "$TMP/x.mpk" --quiet
    expect_contains "fp8 inf scale: names the scale tensor" "$TMP/err" '"model.layers.1.mlp.experts.2.up_proj.weight_scale_inv": non-finite value (NaN or infinity) at flat index 0;'
else
    fail "synth deepseek_v3 --fp8"
fi

# MXFP4 experts: the e2m1 codes are all finite, an e8m0 scale of 0xff is NaN
if "$SYNTH" --family gpt_oss --mxfp4 -o "$TMP/mxfp4" >/dev/null 2>&1; then
    d=$TMP/mxfp4_scale
    rm -rf "$d" && mkdir -p "$d" && cp "$TMP/mxfp4"/* "$d"/
    poke "$d" model.layers.1.mlp.experts.down_proj_scales 3 nan || fail "mxfp4: poke"
    rm -rf "$TMP/x.mpk"
    expect_exit "mxfp4 NaN scale: convert exits 2" 2 "$MOEPACK" convert "$d" -o "$TMP/x.mpk" --quiet
    expect_contains "mxfp4 NaN scale: names the scales tensor and index" "$TMP/err" '"model.layers.1.mlp.experts.down_proj_scales": non-finite value (NaN or infinity) at flat index 3;'
    expect_exit "mxfp4 NaN scale: --allow-nonfinite converts" 0 "$MOEPACK" convert "$d" -o "$TMP/x.mpk" --quiet --allow-nonfinite
else
    fail "synth gpt_oss --mxfp4"
fi

# every command that reads a checkpoint's weights documents the option
for cmd in convert reference verify profile compare prune distill; do
    expect_exit "$cmd --help" 0 "$MOEPACK" $cmd --help
    expect_contains "$cmd --help documents --allow-nonfinite" "$TMP/out" "--allow-nonfinite"
done

# token ids beyond config.json's vocab_size: named at the file that holds them (the
# tokenizer, or the ids file), not in the engine without a file
VOCAB=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$BASE/config.json")
echo "1 2 $VOCAB 3" >"$TMP/big_ids.txt"
seq 1 40 | tr '\n' ' ' >>"$TMP/big_ids.txt"
expect_exit "an id = vocab_size in --tokens: reference exits 2" 2 \
    "$MOEPACK" reference "$BASE" --tokens "$TMP/big_ids.txt" --ctx 16 -o "$TMP/big.ref" --quiet
expect_contains "names the ids file and the id" "$TMP/err" "$TMP/big_ids.txt: id $VOCAB (token 2) is outside the model's vocab_size $VOCAB"
if [ -f "$BASE/tokenizer.json" ]; then
    d=$TMP/tok_beyond
    rm -rf "$d" && mkdir -p "$d" && cp "$BASE"/* "$d"/
    python3 - "$d/tokenizer.json" "$VOCAB" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))
t.setdefault("added_tokens", []).append({"id": int(sys.argv[2]), "content": "QQQZ", "single_word": False,
    "lstrip": False, "rstrip": False, "normalized": False, "special": False})
json.dump(t, open(sys.argv[1], "w"))
PYEOF
    python3 -c 'print("hello QQQZ world " * 40)' >"$TMP/qqqz.txt"
    expect_exit "a tokenizer id = vocab_size: reference exits 2" 2 \
        "$MOEPACK" reference "$d" --text "$TMP/qqqz.txt" --ctx 16 -o "$TMP/big.ref" --quiet
    expect_contains "names tokenizer.json, the id and the text" "$TMP/err" "$d/tokenizer.json: token $VOCAB (token "
    expect_contains "names config.json's vocab_size" "$TMP/err" "of $TMP/qqqz.txt) is outside config.json's vocab_size $VOCAB"
fi
