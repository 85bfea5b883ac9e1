/* tokenizer.ggml.pre for byte-level BPE vocabularies. The converter hashes the ids HF
 * tokenizers gives for a test text and looks the hash up; without HF here, the name is
 * chosen from what decides those ids: the Split regexes of tokenizer.json's
 * pre_tokenizer (as the tokenizer.json of each known model spells them) and ByteLevel's
 * own regex. Each entry maps to a llama.cpp pre-tokenizer whose regexes
 * (src/llama-vocab.cpp, llm_tokenizer_bpe) are the same. */
#include <stdio.h>
#include <string.h>

#include "gguf_vocab.h"

/* HF tokenizer.json regexes, C-escaped. */
#define RE_QWEN2                                                                                                      \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"
#define RE_LLAMA3                                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"          \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN35                                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_GPT4O                                                                                                      \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|"   \
    "'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|"     \
    "'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_DSV3_1 "\\p{N}{1,3}"
#define RE_DSV3_2 "[一-龥぀-ゟ゠-ヿ]+"
#define RE_DSV3_3                                                                                                     \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "                \
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
#define BYTELEVEL_REGEX "<ByteLevel use_regex>" /* GPT-2's regex, built into ByteLevel */

typedef struct {
    const char *splits[4]; /* the Split regexes in order; ByteLevel's as BYTELEVEL_REGEX */
    const char *pre;
} known_pre;

static const known_pre known[] = {
    {{RE_QWEN2}, "qwen2"},
    {{RE_QWEN35}, "qwen35"},
    {{RE_GPT4O}, "gpt-4o"},
    {{RE_DSV3_1, RE_DSV3_2, RE_DSV3_3}, "deepseek-v3"},
    {{BYTELEVEL_REGEX}, "gpt-2"},
};

/* The regexes the pre-tokenizer applies, in order: Split patterns and ByteLevel's. */
static int collect(json_t *pt, const char **out, int n, int cap)
{
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type || n < 0)
        return -1;
    if (strcmp(type, "Sequence") == 0) {
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(pt, "pretokenizers"), i, item) n = collect(item, out, n, cap);
        return n;
    }
    const char *re = NULL;
    if (strcmp(type, "Split") == 0)
        re = json_string_value(json_object_get(json_object_get(pt, "pattern"), "Regex"));
    else if (strcmp(type, "ByteLevel") == 0) {
        json_t *use = json_object_get(pt, "use_regex");
        if (use && !json_is_true(use))
            return n;
        re = BYTELEVEL_REGEX;
    }
    if (!re || n >= cap)
        return -1; /* a String split, Digits, Metaspace...: no llama.cpp equivalent known */
    out[n] = re;
    return n + 1;
}

static bool same(const known_pre *k, const char **got, int n)
{
    int m = 0;
    while (m < 4 && k->splits[m])
        m++;
    if (m != n)
        return false;
    for (int i = 0; i < n; i++)
        if (strcmp(k->splits[i], got[i]) != 0)
            return false;
    return true;
}

/* Llama-3's regex is shared by llama-bpe (ignore_merges, BOS added), glm4 and dbrx
 * (both without ignore_merges): the name follows the tokenizer's ignore_merges and the
 * family. */
static const char *llama3_name(const gg_vocab *v, mp_family family)
{
    if (family == MP_FAMILY_GLM4_MOE)
        return "glm4";
    json_t *ignore = json_object_get(json_object_get(v->tokenizer, "model"), "ignore_merges");
    return json_is_true(ignore) ? "llama-bpe" : "dbrx";
}

int gg_vocab_pre(const gg_vocab *v, mp_family family, const char **pre, mp_error *err)
{
    const char *got[4];
    json_t *pt = json_object_get(v->tokenizer, "pre_tokenizer");
    int n = json_is_object(pt) ? collect(pt, got, 0, 4) : -1;
    if (n == 1 && strcmp(got[0], RE_LLAMA3) == 0) {
        *pre = llama3_name(v, family);
        return MP_OK;
    }
    for (size_t i = 0; n > 0 && i < sizeof known / sizeof known[0]; i++)
        if (same(&known[i], got, n)) {
            *pre = strcmp(known[i].pre, "gpt-2") == 0 && family == MP_FAMILY_OLMOE ? "olmo" : known[i].pre;
            return MP_OK;
        }
    char shown[120] = "";
    if (n > 0)
        snprintf(shown, sizeof shown, ": %.100s", got[0]);
    return mp_fail(err, MP_EXIT_INPUT,
                   "%s/tokenizer.json: a byte-level BPE pre-tokenizer llama.cpp's converter would not recognise%s "
                   "(known: the Split regexes of Qwen2, Qwen3.5, Llama-3/GLM-4, GPT-4o/GPT-OSS, DeepSeek-V3, and "
                   "ByteLevel's own GPT-2 regex); see docs/export.md",
                   v->dir, shown);
}
