#!/bin/sh
# moepack run against independent facts:
# - greedy generation with exact f32 activations equals greedy generation by the f32
#   engine (tests/tools/engine_greedy.c: the whole sequence re-run through
#   mp_engine_forward each step, no KV cache, weights decoded to f32) for 64 tokens, on
#   every family's synthetic checkpoint and on the trained moby models;
# - perplexity through the runtime's default kernels within 0.1% of `moepack reference`;
# - under --budget the output is the same and the peak RSS stays under the budget plus
#   the stated overhead;
# - a chat turn continued from the KV cache gives the reply a fresh run of the whole
#   rendered conversation gives;
# - a missing, truncated or corrupt expert tier is named when first needed (exit 3).
. "$(dirname "$0")/lib.sh"
: "${BUILD:?run through make test}" "${SYNTH:?run through make test}"
GREEDY=$BUILD/engine_greedy
PROMPT="5 17 42 99 7"
# Under the sanitizers (several times slower) the moby models run fewer tokens: that
# build is there to find memory errors; the plain build checks all 64.
case $BUILD in
*-san) MOBY_TOKENS=16 ;;
*) MOBY_TOKENS=64 ;;
esac
CHUNKS=16 # fewer would let the int8 activations' noise alone reach 0.1% (4 chunks: 0.13%)

# ids_of FILE: the ids of the first reply of a `run --json` output.
ids_of() {
    python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["replies"][0]["ids"])))' "$1"
}

# greedy_same NAME PACK PROMPT EOS [N]: run's N (64) greedy ids are the engine's (up to
# and including an EOS that ends the run early).
greedy_same() {
    name=$1 pack=$2 prompt=$3 eos=$4 n=${5:-64}
    "$GREEDY" "$pack" "$n" $prompt >"$TMP/engine.ids" 2>"$TMP/err" || { fail "$name: engine_greedy" "$(head -c 300 "$TMP/err")"; return; }
    "$MOEPACK" run "$pack" --prompt-ids "$prompt" --temp 0 --act f32 --max-tokens "$n" --json >"$TMP/run.json" 2>"$TMP/err" ||
        { fail "$name: run" "$(head -c 300 "$TMP/err")"; return; }
    python3 - "$TMP/engine.ids" "$(ids_of "$TMP/run.json")" "$eos" "$n" <<'EOF' >"$TMP/cmp" && pass "$name: greedy $n tokens = engine" || fail "$name: greedy $n tokens = engine" "$(cat "$TMP/cmp")"
import sys
engine = open(sys.argv[1]).read().split()
run = sys.argv[2].split()
eos, n = sys.argv[3], int(sys.argv[4])
ok = run == engine[:len(run)] and (len(run) == n or run[-1] == eos)
print(f"engine {' '.join(engine[:24])}... run {' '.join(run[:24])}... ({len(run)} ids)")
sys.exit(0 if ok else 1)
EOF
}

for fam in mixtral qwen2_moe qwen3_moe olmoe deepseek_v2 deepseek_v3 kimi_k2 glm4_moe gpt_oss; do
    "$SYNTH" --family "$fam" -o "$TMP/$fam" >/dev/null 2>"$TMP/err" &&
        "$MOEPACK" convert "$TMP/$fam" -o "$TMP/$fam.mpk" --scheme w4a16 --quiet 2>"$TMP/err" ||
        { fail "$fam: synth and convert" "$(head -c 300 "$TMP/err")"; continue; }
    greedy_same "$fam w4a16" "$TMP/$fam.mpk" "$PROMPT" 255
done
# the grids and fp8 through the same path
"$MOEPACK" convert "$TMP/mixtral" -o "$TMP/q4k.mpk" --scheme q4_k --quiet 2>/dev/null &&
    greedy_same "mixtral q4_k" "$TMP/q4k.mpk" "$PROMPT" 255
"$MOEPACK" convert "$TMP/deepseek_v3" -o "$TMP/fp8.mpk" --scheme fp8 --quiet 2>/dev/null &&
    greedy_same "deepseek_v3 fp8" "$TMP/fp8.mpk" "$PROMPT" 255
"$MOEPACK" convert "$TMP/qwen2_moe" -o "$TMP/zstd.mpk" --scheme w4a16 --cold-codec zstd --quiet 2>/dev/null &&
    greedy_same "qwen2_moe zstd experts" "$TMP/zstd.mpk" "$PROMPT" 255

# no tokenizer: text prompts are refused with the way out named
expect_exit "no tokenizer.json: --prompt refused" 2 "$MOEPACK" run "$TMP/mixtral.mpk" --prompt hello
expect_contains "no tokenizer.json: says --prompt-ids" "$TMP/err" "--prompt-ids"
expect_exit "--help" 0 "$MOEPACK" run --help
expect_exit "two prompt sources" 2 "$MOEPACK" run "$TMP/mixtral.mpk" --prompt a --prompt-ids 1
expect_exit "bad --top-p" 2 "$MOEPACK" run "$TMP/mixtral.mpk" --prompt-ids 1 --top-p 2

# sampling: the same seed gives the same ids, whatever the thread count
for threads in 1 2; do
    "$MOEPACK" run "$TMP/mixtral.mpk" --prompt-ids "$PROMPT" --temp 1 --seed 7 --max-tokens 32 --threads $threads \
        --json >"$TMP/seed7-$threads.json" 2>/dev/null
done
"$MOEPACK" run "$TMP/mixtral.mpk" --prompt-ids "$PROMPT" --temp 1 --seed 8 --max-tokens 32 --json >"$TMP/seed8.json" 2>/dev/null
[ "$(ids_of "$TMP/seed7-1.json")" = "$(ids_of "$TMP/seed7-2.json")" ] && pass "seeded sampling: same ids at 1 and 2 threads" ||
    fail "seeded sampling: same ids at 1 and 2 threads"
[ "$(ids_of "$TMP/seed7-1.json")" != "$(ids_of "$TMP/seed8.json")" ] && pass "seeded sampling: another seed, other ids" ||
    fail "seeded sampling: another seed, other ids"

# --budget: half the expert bytes, the same greedy ids, RSS bounded
budget_check() {
    name=$1 pack=$2 prompt=$3
    "$MOEPACK" run "$pack" --prompt-ids "$prompt" --temp 0 --max-tokens 48 --json >"$TMP/full.json" 2>"$TMP/err" ||
        { fail "$name: unlimited run" "$(head -c 300 "$TMP/err")"; return; }
    budget=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stats"]; print(s["tier0_bytes"] + s["expert_bytes"] // 2)' "$TMP/full.json")
    "$MOEPACK" run "$pack" --prompt-ids "$prompt" --temp 0 --max-tokens 48 --budget "$budget" --json >"$TMP/half.json" 2>"$TMP/err" ||
        { fail "$name: --budget $budget" "$(head -c 300 "$TMP/err")"; return; }
    [ "$(ids_of "$TMP/full.json")" = "$(ids_of "$TMP/half.json")" ] && pass "$name: --budget 50%: same ids" ||
        fail "$name: --budget 50%: same ids"
    python3 - "$TMP/full.json" "$TMP/half.json" <<'EOF' >"$TMP/cmp" && pass "$name: --budget 50%: experts read again, held bytes within the budget" || fail "$name: --budget 50%" "$(cat "$TMP/cmp")"
import json, sys
full, half = (json.load(open(f))["stats"] for f in sys.argv[1:3])
print(f"reads unlimited {full['disk_reads']} vs budget {half['disk_reads']}; cache capacity {half['cache_capacity']}, "
      f"peak held {half.get('cache_peak_bytes')}, expert bytes {half['expert_bytes']}")
# the stated fixed overhead (docs/run.md): the KV cache and 32 MiB of program,
# libraries, tokenizer and activations
budget = half["tier0_bytes"] + half["cache_capacity"]
print(f"peak RSS {half['peak_rss']} <= budget {budget} + KV {half['kv_bytes']} + 32 MiB")
ok = half["disk_reads"] > full["disk_reads"] and half["cache_capacity"] <= half["expert_bytes"] // 2 + 1
ok = ok and half.get("cache_peak_bytes", 0) <= half["cache_capacity"]
ok = ok and half["peak_rss"] <= budget + half["kv_bytes"] + 32 * 2**20
sys.exit(0 if ok else 1)
EOF
}
budget_check "mixtral synthetic" "$TMP/mixtral.mpk" "$PROMPT"

# a cold tier file missing, cut short or corrupt: named when first needed, exit 3
cold_tier_faults() {
    pack=$1
    tier=$(ls "$pack"/tier-*.bin | sort | tail -1)
    [ "$tier" != "$pack/tier-0.bin" ] || { skip "cold tier faults" "the pack has no expert tier"; return; }
    cp -r "$pack" "$TMP/missing.mpk" && rm "$TMP/missing.mpk/$(basename "$tier")"
    expect_exit "missing cold tier: exit 3" 3 "$MOEPACK" run "$TMP/missing.mpk" --prompt-ids "$PROMPT" --max-tokens 8
    expect_contains "missing cold tier: names the record" "$TMP/err" "expert"
    cp -r "$pack" "$TMP/short.mpk" && truncate -s 8192 "$TMP/short.mpk/$(basename "$tier")"
    expect_exit "truncated cold tier: exit 3" 3 "$MOEPACK" run "$TMP/short.mpk" --prompt-ids "$PROMPT" --max-tokens 8
    expect_contains "truncated cold tier: names the record" "$TMP/err" "record"
    cp -r "$pack" "$TMP/flip.mpk"
    size=$(stat -c %s "$tier")
    python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^1]))' \
        "$TMP/flip.mpk/$(basename "$tier")" $((size - 100))
    expect_exit "corrupt cold tier: exit 3" 3 "$MOEPACK" run "$TMP/flip.mpk" --prompt-ids "$PROMPT" --max-tokens 64
    expect_contains "corrupt cold tier: checksum of the record" "$TMP/err" "checksum"
}
cold_tier_faults "$TMP/mixtral.mpk"

if ! have_shared; then
    skip "moby models" "../shared is absent"
    exit 0
fi
M=$SHARED/models
"$MOEPACK" convert "$M/moby-mixtral" -o "$TMP/moby.mpk" --scheme w4a16 --quiet
"$MOEPACK" convert "$M/moby-dsv3" -o "$TMP/dsv3.mpk" --scheme w4a16 --quiet
printf 'Call me Ishmael. Some years ago' >"$TMP/prompt.txt"
ids=$("$MOEPACK" tokenize "$M/moby-mixtral" --text "$TMP/prompt.txt")
greedy_same "moby-mixtral w4a16" "$TMP/moby.mpk" "$ids" 2 $MOBY_TOKENS
ids=$("$MOEPACK" tokenize "$M/moby-dsv3" --text "$TMP/prompt.txt")
greedy_same "moby-dsv3 w4a16" "$TMP/dsv3.mpk" "$ids" 2 $MOBY_TOKENS

# perplexity: the runtime's default kernels against the f32 engine's reference
ppl_close() {
    name=$1 pack=$2 chunks=$3
    "$MOEPACK" reference "$pack" --text "$SHARED/corpus/eval.txt" --ctx 256 --chunks "$chunks" -o "$TMP/p.ref" >"$TMP/ref.out" 2>&1
    "$MOEPACK" run "$pack" --perplexity "$SHARED/corpus/eval.txt" --ctx 256 --chunks "$chunks" --quiet >"$TMP/run.out" 2>&1
    python3 - "$TMP/ref.out" "$TMP/run.out" <<'EOF' >"$TMP/cmp" && pass "$name: runtime PPL within 0.1% of reference ($(cat "$TMP/cmp"))" || fail "$name: runtime PPL within 0.1% of reference" "$(cat "$TMP/cmp")"
import re, sys
ref = float(re.search(r"PPL ([0-9.]+)", open(sys.argv[1]).read()).group(1))
run = float(re.search(r"perplexity ([0-9.]+)", open(sys.argv[2]).read()).group(1))
print(f"reference {ref}, runtime {run}, {abs(run / ref - 1) * 100:.3f}%")
sys.exit(0 if abs(run / ref - 1) <= 0.001 else 1)
EOF
}
ppl_close "moby-mixtral w4a16" "$TMP/moby.mpk" $CHUNKS
"$MOEPACK" convert "$M/moby-mixtral" -o "$TMP/moby-q4_0.mpk" --scheme q4_0 --quiet
ppl_close "moby-mixtral q4_0" "$TMP/moby-q4_0.mpk" $CHUNKS
ppl_close "moby-dsv3 w4a16" "$TMP/dsv3.mpk" $CHUNKS
budget_check "moby-mixtral" "$TMP/moby.mpk" "$ids"

# text: streamed text equals the decoded ids, and a chat turn continued from the KV
# cache equals a fresh run of the whole rendered conversation
"$MOEPACK" run "$TMP/moby.mpk" --prompt "Call me Ishmael." --temp 0 --max-tokens 24 >"$TMP/text.out" 2>"$TMP/err" &&
    [ -s "$TMP/text.out" ] && pass "moby-mixtral: --prompt streams text" || fail "moby-mixtral: --prompt streams text" "$(head -c 300 "$TMP/err")"

# chat: the second turn of `-i --chat` runs only the tokens after what the KV cache
# holds, and replies as a fresh run of the whole rendered conversation does
"$MOEPACK" convert tests/data/tiny-qwen3moe -o "$TMP/chat.mpk" --scheme w4a16 --quiet
python3 - "$TMP/chat.mpk/tokenizer_config.json" <<'EOF2'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["chat_template"] = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
                        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
cfg["eos_token"] = "<|im_end|>"
json.dump(cfg, open(sys.argv[1], "w"))
EOF2
printf 'Call me Ishmael.\nWhat of the whale?\n' |
    "$MOEPACK" run "$TMP/chat.mpk" -i --chat --temp 0 --act f32 --max-tokens 12 --json >"$TMP/chat.json" 2>"$TMP/err" ||
    fail "chat: -i --chat" "$(head -c 300 "$TMP/err")"
python3 - "$TMP/chat.json" "$TMP/messages.json" <<'EOF2'
import json, sys
replies = json.load(open(sys.argv[1]))["replies"]
json.dump([{"role": "user", "content": "Call me Ishmael."}, {"role": "assistant", "content": replies[0]["text"]},
           {"role": "user", "content": "What of the whale?"}], open(sys.argv[2], "w"))
EOF2
full=$("$MOEPACK" tokenize "$TMP/chat.mpk" --messages "$TMP/messages.json" --add-generation-prompt)
"$MOEPACK" run "$TMP/chat.mpk" --prompt-ids "$full" --temp 0 --act f32 --max-tokens 12 --json >"$TMP/fresh.json" 2>"$TMP/err"
python3 - "$TMP/chat.json" "$TMP/fresh.json" "$(echo $full | wc -w)" <<'EOF2' >"$TMP/cmp" && pass "chat: turn 2 from the KV cache = a fresh run ($(cat "$TMP/cmp"))" || fail "chat: turn 2 from the KV cache = a fresh run" "$(cat "$TMP/cmp")"
import json, sys
turn2 = json.load(open(sys.argv[1]))["replies"][1]
fresh = json.load(open(sys.argv[2]))["replies"][0]
total = int(sys.argv[3])
print(f"turn 2 ran {turn2['prompt_tokens']} of {total} prompt tokens; ids {turn2['ids'][:8]} vs {fresh['ids'][:8]}")
sys.exit(0 if turn2["ids"] == fresh["ids"] and 0 < turn2["prompt_tokens"] < total else 1)
EOF2
