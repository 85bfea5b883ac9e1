#!/bin/sh
# moepack tokenize on the bundled model (usage, ids, pieces, JSON, a chat template),
# tokenizer_config.json read tolerantly, and `--tokens` runs without a readable
# tokenizer. Its ids against HuggingFace's are in test_tokenizer_hf.sh.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODEL=$ROOT/tests/data/tiny-qwen3moe
HOSTILE=$ROOT/tests/data/hostile.txt

expect_exit "no model is a usage error" 2 "$MOEPACK" tokenize --text "$HOSTILE"
expect_contains "and says what is missing" "$TMP/err" "missing CKPT|PACK"
expect_exit "--text and --messages together are refused" 2 "$MOEPACK" tokenize "$MODEL" --text a --messages b
expect_exit "--rendered needs --messages" 2 "$MOEPACK" tokenize "$MODEL" --text "$HOSTILE" --rendered
expect_exit "a missing text file is named" 2 "$MOEPACK" tokenize "$MODEL" --text "$TMP/nope.txt"
expect_contains "with its path" "$TMP/err" "$TMP/nope.txt"
expect_exit "--help" 0 "$MOEPACK" tokenize --help
expect_contains "--help lists --messages" "$TMP/out" "--messages FILE.json"

# The same ids as the library (Qwen adds no special tokens), as pieces and as JSON.
expect_exit "tokenize --text" 0 "$MOEPACK" tokenize "$MODEL" --text "$HOSTILE"
"$BUILD/tok_encode" "$MODEL" "$HOSTILE" >"$TMP/lib.ids" 2>/dev/null
if cmp -s "$TMP/out" "$TMP/lib.ids"; then pass "ids as the tokenizer gives them"; else fail "ids as the tokenizer gives them"; fi
"$MOEPACK" tokenize "$MODEL" --text "$HOSTILE" --pieces >"$TMP/pieces"
"$MOEPACK" tokenize "$MODEL" --text "$HOSTILE" --json >"$TMP/json"
if python3 - "$TMP/json" "$TMP/lib.ids" "$TMP/pieces" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
ids = [int(x) for x in open(sys.argv[2]).read().split()]
pieces = open(sys.argv[3], encoding="utf-8").read().split("\n")[:-1]
assert j["ids"] == ids and j["count"] == len(ids), "ids"
assert j["pieces"] == pieces and len(pieces) == len(ids), "pieces"
EOF
then pass "--json and --pieces agree with the ids"; else fail "--json and --pieces agree with the ids"; fi

# tokenizer_config.json as real checkpoints write it: an integer past 64 bits and a key
# given twice do not stop the tokenizer.
cp -r "$MODEL" "$TMP/m"
sed -i 's/"model_max_length": 4096/"model_max_length": 1000000000000000019884624838656, "errors": "strict"/' \
    "$TMP/m/tokenizer_config.json"
grep -q 1000000000000000019884624838656 "$TMP/m/tokenizer_config.json" || fail "the huge integer is in place"
expect_exit "a 1e30 model_max_length is read" 0 "$MOEPACK" tokenize "$TMP/m" --text "$HOSTILE"
if cmp -s "$TMP/out" "$TMP/lib.ids"; then pass "and the ids stay the same"; else fail "and the ids stay the same"; fi

# A chat template beside the tokenizer.
cat >"$TMP/m/chat_template.jinja" <<'EOF'
{%- for m in messages -%}
<|im_start|>{{ m.role }}
{{ m.content | trim }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif -%}
EOF
printf '[{"role": "user", "content": "  Hi!  "}]' >"$TMP/msgs.json"
expect_exit "--messages renders chat_template.jinja" 0 "$MOEPACK" tokenize "$TMP/m" --messages "$TMP/msgs.json" \
    --add-generation-prompt --rendered
printf '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n' >"$TMP/want"
if cmp -s "$TMP/out" "$TMP/want"; then pass "the rendering"; else fail "the rendering" "$(cat "$TMP/out")"; fi
expect_exit "--messages gives the rendering's ids" 0 "$MOEPACK" tokenize "$TMP/m" --messages "$TMP/msgs.json" \
    --add-generation-prompt
"$BUILD/tok_encode" "$TMP/m" "$TMP/want" >"$TMP/want.ids" 2>/dev/null
if cmp -s "$TMP/out" "$TMP/want.ids"; then pass "the rendering's ids"; else fail "the rendering's ids"; fi
expect_exit "a model without a template is named" 2 "$MOEPACK" tokenize "$MODEL" --messages "$TMP/msgs.json"
expect_contains "in one line" "$TMP/err" "chat_template"
printf '{"role": "user"}' >"$TMP/bad.json"
expect_exit "messages that are not a list are refused" 2 "$MOEPACK" tokenize "$TMP/m" --messages "$TMP/bad.json"

# --tokens needs no tokenizer: absent, or present but unreadable (with a warning). The
# runs use one directory, so that the references, which record it, can be compared.
"$BUILD/tok_encode" "$MODEL" "$HOSTILE" >"$TMP/ids.txt" 2>/dev/null
cat "$TMP/ids.txt" "$TMP/ids.txt" "$TMP/ids.txt" >"$TMP/ids3.txt"
cp -r "$MODEL" "$TMP/r"
expect_exit "reference --tokens with the tokenizer" 0 "$MOEPACK" reference "$TMP/r" --tokens "$TMP/ids3.txt" \
    -o "$TMP/with.ref" --quiet
rm "$TMP/r/tokenizer.json"
expect_exit "reference --tokens without tokenizer.json" 0 "$MOEPACK" reference "$TMP/r" --tokens "$TMP/ids3.txt" \
    -o "$TMP/without.ref" --quiet
if cmp -s "$TMP/with.ref" "$TMP/without.ref"; then pass "gives the same reference (Qwen adds no BOS)"; else
    fail "gives the same reference (Qwen adds no BOS)"; fi
printf '{"model": {"type": "WordPiece", "vocab": {}}}' >"$TMP/r/tokenizer.json"
expect_exit "reference --tokens with an unreadable tokenizer.json" 0 "$MOEPACK" reference "$TMP/r" \
    --tokens "$TMP/ids3.txt" -o "$TMP/unreadable.ref" --quiet
expect_contains "warns, naming the field" "$TMP/err" "model.type: \"WordPiece\""
if cmp -s "$TMP/with.ref" "$TMP/unreadable.ref"; then pass "and gives the same reference"; else
    fail "and gives the same reference"; fi
expect_exit "reference --text with that tokenizer fails" 2 "$MOEPACK" reference "$TMP/r" --text "$HOSTILE" \
    -o "$TMP/x.ref" --quiet
expect_contains "naming the file and the field" "$TMP/err" "tokenizer.json: model.type"
