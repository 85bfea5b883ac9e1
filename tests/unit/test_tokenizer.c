/* The tokenizer against HF tokenizers: the reference ids of ../shared (made by HF
 * tokenizers 0.22) for both models, exactly; pre-tokenizer splits worked out by hand
 * from the regexes and HF's own test expectations (pre_tokenizers/byte_level.rs,
 * metaspace.rs); BPE rank order, ties, byte fallback, unk fusing and added tokens on
 * a small tokenizer.json written here; load errors; UTF-8; token-id files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/fileio.h"
#include "../../tokenizer/tokenizer.h"
#include "../../tokenizer/tokenizer_normalize.h"
#include "../../tokenizer/tokenizer_pretok.h"
#include "../../tokenizer/utf8.h"

static char dir[64];
static const char *shared; /* ../shared, or NULL when absent */

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mp-test-tokenizer-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char path[128];
    const char *names[] = {"tokenizer.json", "tokenizer_config.json", "ids.txt"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    return rmdir(dir);
}

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* ---- reference ids of the shared models ---- */

static void read_text(const char *path, char **text, size_t *len)
{
    mp_error err = {0};
    if (mp_read_small_file(path, 1u << 30, text, len, &err) != MP_OK)
        fail_msg("%s", err.msg);
}

static void check_model(const char *model, size_t eval_count, int32_t bos, size_t vocab)
{
    char path[512], text_path[512], ids_path[512];
    snprintf(path, sizeof path, "%s/models/%s", shared, model);
    snprintf(text_path, sizeof text_path, "%s/corpus/calib.txt", shared);
    snprintf(ids_path, sizeof ids_path, "%s/models/token-ids/%s.calib.ids", shared, model);
    mp_error err = {0};
    mp_tokenizer *t;
    if (mp_tokenizer_load(path, &t, &err) != MP_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(mp_tokenizer_bos(t), bos);
    assert_int_equal(mp_tokenizer_vocab_size(t), vocab);

    int32_t *want, *got;
    size_t n_want, n_got, len;
    char *text;
    if (mp_tokens_read_file(ids_path, &want, &n_want, &err) != MP_OK)
        fail_msg("%s", err.msg);
    read_text(text_path, &text, &len);
    assert_int_equal(mp_tokenizer_encode(t, text, len, &got, &n_got, &err), MP_OK);
    for (size_t i = 0; i < n_want && i < n_got; i++)
        if (got[i] != want[i])
            fail_msg("%s calib.txt: token %zu is %d (%s), HF gives %d (%s)", model, i, got[i],
                     mp_tokenizer_piece(t, got[i]), want[i], mp_tokenizer_piece(t, want[i]));
    assert_int_equal(n_got, n_want);
    free(got);
    free(text);

    snprintf(text_path, sizeof text_path, "%s/corpus/eval.txt", shared);
    read_text(text_path, &text, &len);
    assert_int_equal(mp_tokenizer_encode(t, text, len, &got, &n_got, &err), MP_OK);
    assert_int_equal(n_got, eval_count);
    free(got);
    free(text);
    free(want);
    mp_tokenizer_free(t);
}

static void test_moby_mixtral_reference(void **state)
{
    (void)state;
    if (!shared)
        skip();
    check_model("moby-mixtral", 209176, 1, 2048);
}

static void test_tiny_qwen3moe_reference(void **state)
{
    (void)state;
    if (!shared)
        skip();
    check_model("tiny-qwen3moe", 245602, -1, 1024);
}

/* encode with a loaded tokenizer and compare with ids */
static void expect_ids(const mp_tokenizer *t, const char *text, const int32_t *want, size_t n_want)
{
    int32_t *got;
    size_t n;
    mp_error err = {0};
    if (mp_tokenizer_encode(t, text, strlen(text), &got, &n, &err) != MP_OK)
        fail_msg("\"%s\": %s", text, err.msg);
    assert_non_null(got);
    for (size_t i = 0; i < n && i < n_want; i++)
        if (got[i] != want[i])
            fail_msg("\"%s\": id %zu is %d, expected %d", text, i, got[i], want[i]);
    assert_int_equal(n, n_want);
    free(got);
}

static void test_shared_special_tokens(void **state)
{
    (void)state;
    if (!shared)
        skip();
    char path[512];
    mp_error err = {0};
    mp_tokenizer *t;
    snprintf(path, sizeof path, "%s/models/tiny-qwen3moe/tokenizer.json", shared);
    assert_int_equal(mp_tokenizer_load(path, &t, &err), MP_OK);
    const int32_t qwen[] = {1021, 1022, 1021};
    expect_ids(t, "<|endoftext|><|im_start|><|endoftext|>", qwen, 3);
    assert_string_equal(mp_tokenizer_piece(t, 1023), "<|im_end|>");
    mp_tokenizer_free(t);

    snprintf(path, sizeof path, "%s/models/moby-mixtral", shared);
    assert_int_equal(mp_tokenizer_load(path, &t, &err), MP_OK);
    const int32_t moby[] = {1, 2};
    expect_ids(t, "<s></s>", moby, 2);
    assert_string_equal(mp_tokenizer_piece(t, 3), "<0x00>");
    assert_null(mp_tokenizer_piece(t, 2048));
    assert_null(mp_tokenizer_piece(t, -1));
    mp_tokenizer_free(t);
}

/* ---- pre-tokenizer splits ---- */

/* Runs the steps and compares the words, joined with "|", with want. */
static void expect_words(const mp_pretok_step *steps, size_t n_steps, const char *text, int at_start,
                         const char *want)
{
    mp_pretok_work work = {0};
    const mp_words *words;
    assert_int_equal(mp_pretokenize(steps, n_steps, text, strlen(text), at_start, &work, &words), 0);
    char got[1024] = "";
    size_t n = 0;
    for (size_t i = 0; i < words->n; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%.*s", i ? "|" : "", (int)words->w[i].len,
                              words->text + words->w[i].off);
    mp_pretok_work_free(&work);
    if (strcmp(got, want) != 0)
        fail_msg("split of \"%s\": got \"%s\", expected \"%s\"", text, got, want);
}

/* The split patterns as tokenizer.json files hold them. */
#define QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static void expect_split_as(const char *regex, const char *literal, mp_split_behavior behavior, bool invert,
                            const char *text, const char *want)
{
    mp_pretok_step st;
    mp_error err = {0};
    if (mp_pretok_split_init(&st, regex, literal, behavior, invert, "test", &err) != MP_OK)
        fail_msg("%s", err.msg);
    expect_words(&st, 1, text, 1, want);
    mp_pretok_step_free(&st);
}

static void expect_split(const char *regex, const char *text, const char *want)
{
    expect_split_as(regex, NULL, MP_SPLIT_ISOLATED, false, text, want);
}

static void test_split_qwen2(void **state)
{
    (void)state;
    expect_split(QWEN2, "I'll go", "I|'ll| go");
    expect_split(QWEN2, "DON'T it's", "DON|'T| it|'s");   /* (?i:...) */
    expect_split(QWEN2, "year 1851.", "year| |1|8|5|1|.");  /* digits one by one */
    expect_split(QWEN2, "a\n\nb", "a|\n\n|b");
    expect_split(QWEN2, "a  \n\n  b", "a|  \n\n| | b");
    expect_split(QWEN2, "hi   there", "hi|  | there");    /* \s+(?!\S) */
    expect_split(QWEN2, "hi   ", "hi|   ");               /* trailing run kept whole */
    expect_split(QWEN2, "Hello, world!!\n\nNext", "Hello|,| world|!!\n\n|Next");
    expect_split(QWEN2, "(word) \"quote\"", "(word|)| \"|quote|\"");
    expect_split(QWEN2, "sea\xe2\x80\x94the", "sea|\xe2\x80\x94the");   /* em dash leads a word */
    expect_split(QWEN2, "x\xc2\xa0y\tz", "x|\xc2\xa0y|\tz");            /* NBSP and tab are \s */
    expect_split(QWEN2, "na\xc3\xafve caf\xc3\xa9", "na\xc3\xafve| caf\xc3\xa9");
    expect_split(QWEN2, "IT'Sx '\xc5\xbfx", "IT|'S|x| '|\xc5\xbfx");
    expect_split(QWEN2, "'\xc5\xbfx", "'\xc5\xbf|x");   /* ſ case-folds to s */
    expect_split(LLAMA3, "12345 x", "123|45| x");
}

static void test_split_gpt2(void **state)
{
    (void)state;
    expect_split(GPT2, "I'll go", "I|'ll| go");
    expect_split(GPT2, "DON'T", "DON|'|T");          /* case-sensitive */
    expect_split(GPT2, "year 1851.", "year| 1851|.");
    expect_split(GPT2, "a\n\nb", "a|\n|\n|b");
    expect_split(GPT2, "hi   there  ", "hi|  | there|  ");
    expect_split(GPT2, "(word)", "(|word|)");
}

static void test_byte_level(void **state)
{
    (void)state;
    /* the expectations of HF's byte_level.rs tests */
    mp_pretok_step st;
    mp_error err = {0};
    assert_int_equal(mp_pretok_byte_level_init(&st, false, true, &err), MP_OK);
    expect_words(&st, 1, "Hello my friend, how is your day going?", 1,
                 "Hello|\xc4\xa0my|\xc4\xa0""friend|,|\xc4\xa0how|\xc4\xa0is|\xc4\xa0your|\xc4\xa0""day|\xc4\xa0going|?");
    expect_words(&st, 1, "Hello there\nHello there", 1, "Hello|\xc4\xa0there|\xc4\x8a|Hello|\xc4\xa0there");
    expect_words(&st, 1, "Hello there       dear", 1,
                 "Hello|\xc4\xa0there|\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0|\xc4\xa0""dear");
    expect_words(&st, 1, "i\xe2\xad\xa2j", 1, "i|\xc3\xa2\xc5\x83\xc2\xa2|j");
    st.add_prefix_space = true;
    expect_words(&st, 1, "Hello my", 1, "\xc4\xa0Hello|\xc4\xa0my");
    expect_words(&st, 1, " Hello my", 1, "\xc4\xa0Hello|\xc4\xa0my");
    st.add_prefix_space = false;
    st.use_regex = false;
    expect_words(&st, 1, "Hello my friend", 1, "Hello\xc4\xa0my\xc4\xa0""friend");
    mp_pretok_step_free(&st);
}

/* HF's own expectations: pre_tokenizers/split.rs (every behavior), digits.rs,
 * punctuation.rs, whitespace.rs. */
static void test_split_behaviors(void **state)
{
    (void)state;
    const char *words = "\\w+|[^\\w\\s]+", *text = "How are you doing?";
    expect_split_as(words, NULL, MP_SPLIT_REMOVED, true, text, "How|are|you|doing|?");
    expect_split_as(words, NULL, MP_SPLIT_ISOLATED, true, text, "How| |are| |you| |doing|?");
    expect_split_as(words, NULL, MP_SPLIT_MERGED_WITH_PREVIOUS, true, text, "How |are |you |doing|?");
    expect_split_as(words, NULL, MP_SPLIT_MERGED_WITH_NEXT, true, text, "How| are| you| doing|?");
    expect_split_as(words, NULL, MP_SPLIT_CONTIGUOUS, true, text, "How| |are| |you| |doing?");
    expect_split_as(NULL, " ", MP_SPLIT_REMOVED, false, "Hey, man!", "Hey,|man!");
    expect_split_as("\\s+", NULL, MP_SPLIT_REMOVED, false, "Hey,  man!", "Hey,|man!");
    expect_split_as(NULL, "Hello", MP_SPLIT_REMOVED, true, "Hello Hello Hello", "Hello|Hello|Hello");
    /* Gemma-3: a String pattern, merged with the previous piece */
    expect_split_as(NULL, "\xe2\x96\x81", MP_SPLIT_MERGED_WITH_PREVIOUS, false,
                    "a\xe2\x96\x81\xe2\x96\x81" "b\xe2\x96\x81", "a\xe2\x96\x81|\xe2\x96\x81|b\xe2\x96\x81");
}

static void expect_char_split(int cls, bool ascii_punct, mp_split_behavior behavior, const char *text,
                              const char *want)
{
    mp_uclasses u;
    assert_int_equal(mp_uclasses_init(&u), 0);
    mp_pretok_step st = {.kind = MP_PRETOK_CHARS, .test = {&u, cls, ascii_punct, 0}, .behavior = behavior};
    expect_words(&st, 1, text, 1, want);
}

static void test_char_splits(void **state)
{
    (void)state;
    expect_char_split(MP_UCLASS_NUMERIC, false, MP_SPLIT_ISOLATED, "Hey 123 friend!", "Hey |1|2|3| friend!");
    expect_char_split(MP_UCLASS_NUMERIC, false, MP_SPLIT_CONTIGUOUS, "Hey 123 friend!", "Hey |123| friend!");
    expect_char_split(MP_UCLASS_PUNCT, true, MP_SPLIT_ISOLATED, "Hey friend!     How are you?!?",
                      "Hey friend|!|     How are you|?|!|?");
    expect_char_split(MP_UCLASS_WHITE_SPACE, false, MP_SPLIT_REMOVED, "Hey man!", "Hey|man!");
    mp_pretok_step st;
    mp_error err = {0};
    assert_int_equal(mp_pretok_whitespace_init(&st, &err), MP_OK);
    expect_words(&st, 1, "Hey man!", 1, "Hey|man|!");
    expect_words(&st, 1, "How are you doing?", 1, "How|are|you|doing|?");
    expect_words(&st, 1, "\n", 1, "");
    mp_pretok_step_free(&st);
}

static void test_metaspace(void **state)
{
    (void)state;
    mp_pretok_step st = {.kind = MP_PRETOK_METASPACE, .replacement = "\xe2\x96\x81", .split = true};
    /* HF metaspace.rs: "Hey   friend!" -> "▁Hey", "▁", "▁", "▁friend!" */
    expect_words(&st, 1, "Hey   friend!", 1,
                 "\xe2\x96\x81Hey|\xe2\x96\x81|\xe2\x96\x81|\xe2\x96\x81""friend!");
    expect_words(&st, 1, "Hey", 0, "\xe2\x96\x81Hey");            /* always */
    st.prepend = MP_PREPEND_FIRST;
    st.split = false;
    expect_words(&st, 1, "Hey friend", 1, "\xe2\x96\x81Hey\xe2\x96\x81""friend");
    expect_words(&st, 1, "Hey friend", 0, "Hey\xe2\x96\x81""friend");   /* not the first piece */
    expect_words(&st, 1, " Hey", 1, "\xe2\x96\x81Hey");           /* already starts with one */
    st.prepend = MP_PREPEND_NEVER;
    expect_words(&st, 1, "Hey", 1, "Hey");
    expect_words(&st, 1, "", 1, "");
}

/* ---- BPE semantics on a small SentencePiece-style tokenizer.json ---- */

/* ids: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, then the pieces below. */
enum { UNK = 0, BOS = 1, EOS = 2, META = 259, H = 260, I = 261, META_H = 262, META_HI = 263, A = 264, AA = 265, HI = 266 };

static void write_tokenizer_with(const char *pre_tokenizer, const char *model_options, const char *normalizer,
                                 const char *more_added)
{
    char *json = malloc(1 << 16);
    assert_non_null(json);
    int n = sprintf(json,
                    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":["
                    "{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                    "\"normalized\":false,\"special\":true},"
                    "{\"id\":1,\"content\":\"<s>\",\"normalized\":false,\"special\":true},"
                    "{\"id\":2,\"content\":\"</s>\",\"normalized\":false,\"special\":true}%s],"
                    "\"normalizer\":%s,\"pre_tokenizer\":%s,"
                    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\","
                    "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":"
                    "{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},\"decoder\":null,"
                    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",%s\"vocab\":{"
                    "\"<unk>\":0,\"<s>\":1,\"</s>\":2,",
                    more_added, normalizer, pre_tokenizer, model_options);
    for (int b = 0; b < 256; b++)
        n += sprintf(json + n, "\"<0x%02X>\":%d,", b, 3 + b);
    sprintf(json + n, "\"\xe2\x96\x81\":259,\"h\":260,\"i\":261,\"\xe2\x96\x81h\":262,\"\xe2\x96\x81hi\":263,"
                      "\"a\":264,\"aa\":265,\"hi\":266},"
                      "\"merges\":[\"\xe2\x96\x81 h\",[\"\xe2\x96\x81h\",\"i\"],\"a a\",\"h i\"]}}");
    write_file("tokenizer.json", json);
    free(json);
}

static void write_small_tokenizer(const char *pre_tokenizer, const char *model_options, const char *normalizer)
{
    write_tokenizer_with(pre_tokenizer, model_options, normalizer, "");
}

#define METASPACE_FIRST "{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":false}"

static mp_tokenizer *load_small(void)
{
    mp_error err = {0};
    mp_tokenizer *t;
    if (mp_tokenizer_load(dir, &t, &err) != MP_OK)
        fail_msg("%s", err.msg);
    return t;
}

static void test_bpe_semantics(void **state)
{
    (void)state;
    write_small_tokenizer(METASPACE_FIRST, "\"fuse_unk\":true,\"byte_fallback\":true,", "null");
    mp_tokenizer *t = load_small();
    assert_int_equal(mp_tokenizer_bos(t), BOS);
    assert_int_equal(mp_tokenizer_vocab_size(t), 267);
    const int32_t hi[] = {META_HI};   /* "▁ h" (rank 0) before "h i" (rank 3) */
    expect_ids(t, "hi", hi, 1);
    const int32_t hihi[] = {META_HI, META_HI};
    expect_ids(t, "hi hi", hihi, 2);
    const int32_t aaa[] = {META, AA, A}; /* equal ranks: leftmost first */
    expect_ids(t, "aaa", aaa, 3);
    const int32_t e_acute[] = {META, 3 + 0xC3, 3 + 0xA9}; /* byte fallback of é */
    expect_ids(t, "\xc3\xa9", e_acute, 3);
    /* literal special tokens; the text after <s> does not begin the input, so no ▁ */
    const int32_t special[] = {BOS, HI, EOS, META_HI};
    expect_ids(t, "<s>hi</s> hi", special, 4);
    expect_ids(t, "", NULL, 0);
    mp_tokenizer_free(t);
}

static void test_unk(void **state)
{
    (void)state;
    write_small_tokenizer(METASPACE_FIRST, "\"fuse_unk\":true,\"byte_fallback\":false,", "null");
    mp_tokenizer *t = load_small();
    const int32_t fused[] = {META_HI, UNK};
    expect_ids(t, "hi\xc3\xa9\xc3\xa8", fused, 2);
    mp_tokenizer_free(t);
    write_small_tokenizer(METASPACE_FIRST, "\"fuse_unk\":false,", "null");
    t = load_small();
    const int32_t apart[] = {META_HI, UNK, UNK};
    expect_ids(t, "hi\xc3\xa9\xc3\xa8", apart, 3);
    mp_tokenizer_free(t);
}

static void test_normalizers(void **state)
{
    (void)state;
    /* the older Llama form: Prepend + Replace normalizers, no pre-tokenizer */
    write_small_tokenizer("null", "",
                          "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"},"
                          "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]}");
    mp_tokenizer *t = load_small();
    const int32_t ids[] = {BOS, META_HI, META_HI};   /* Prepend acts on every piece */
    expect_ids(t, "<s>hi hi", ids, 3);
    mp_tokenizer_free(t);
}

/* Added tokens: leftmost, then longest; normalized ones are searched in their
 * normalized form in the normalized text; ids as HF assigns them (a string the model
 * has keeps its id, the others are numbered on from the model's size), whatever the
 * file says. Every expectation here is what HF tokenizers 0.23 gives on this file. */
static void test_added_tokens(void **state)
{
    (void)state;
    write_tokenizer_with("null", "",
                         "{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"}",
                         ",{\"id\":267,\"content\":\"<s><s>\",\"normalized\":false,\"special\":false},"
                         "{\"id\":268,\"content\":\"\xe2\x96\x81hi\",\"normalized\":true,\"special\":false},"
                         "{\"id\":269,\"content\":\"aa\",\"normalized\":true,\"special\":false}");
    mp_tokenizer *t = load_small();
    assert_int_equal(mp_tokenizer_vocab_size(t), 268);
    const int32_t longest[] = {267, BOS};
    expect_ids(t, "<s><s><s>", longest, 2);
    const int32_t twice[] = {META_HI, 267, META_HI, A};   /* "▁hi" is searched as "▁▁hi" */
    expect_ids(t, "hi<s><s>hia", twice, 4);
    const int32_t found[] = {AA, BOS, AA, A};   /* "aa" is searched as "▁aa", and is id 265 */
    expect_ids(t, "aa<s>aaa", found, 4);
    mp_tokenizer_free(t);
}

static void test_config_bos(void **state)
{
    (void)state;
    write_small_tokenizer(METASPACE_FIRST, "", "null");
    write_file("tokenizer_config.json", "{\"add_bos_token\":false}");
    mp_tokenizer *t = load_small();
    assert_int_equal(mp_tokenizer_bos(t), -1);
    mp_tokenizer_free(t);
    write_file("tokenizer_config.json", "{\"add_bos_token\":true,\"bos_token\":{\"content\":\"</s>\"}}");
    t = load_small();
    assert_int_equal(mp_tokenizer_bos(t), EOS);
    mp_tokenizer_free(t);
    write_file("tokenizer_config.json", "{\"add_bos_token\":true,\"bos_token\":\"<nope>\"}");
    mp_error err = {0};
    assert_int_equal(mp_tokenizer_load(dir, &t, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "bos_token"));
}

/* ---- refusals ---- */

static void expect_load_error(const char *pre_tokenizer, const char *model_options, const char *normalizer,
                              const char *want)
{
    write_small_tokenizer(pre_tokenizer, model_options, normalizer);
    mp_error err = {0};
    mp_tokenizer *t = NULL;
    assert_int_equal(mp_tokenizer_load(dir, &t, &err), MP_EXIT_INPUT);
    assert_null(t);
    if (!strstr(err.msg, want))
        fail_msg("error \"%s\" does not mention \"%s\"", err.msg, want);
    assert_non_null(strstr(err.msg, "tokenizer.json"));
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error("{\"type\":\"UnicodeScripts\"}", "", "null", "pre_tokenizer.type: \"UnicodeScripts\"");
    expect_load_error("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\\\\d+\"},"
                      "\"behavior\":\"Isolated\",\"invert\":false}]}",
                      "", "null", "pre_tokenizer.pretokenizers[0].pattern: the regex (\\d+ does not compile");
    expect_load_error("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Sideways\",\"invert\":false}",
                      "", "null", "pre_tokenizer.behavior: \"Sideways\"");
    expect_load_error("{\"type\":\"Split\",\"pattern\":{\"String\":\"\"},\"behavior\":\"Isolated\"}", "", "null",
                      "pre_tokenizer.pattern: expected {\"String\": a non-empty string}");
    expect_load_error(METASPACE_FIRST, "", "{\"type\":\"Precompiled\"}", "normalizer.type: \"Precompiled\"");
    expect_load_error(METASPACE_FIRST, "\"dropout\":0.1,", "null", "model.dropout");
    write_file("tokenizer.json", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}");
    mp_error err = {0};
    mp_tokenizer *t;
    assert_int_equal(mp_tokenizer_load(dir, &t, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "model.type: \"WordPiece\""));
    write_file("tokenizer.json", "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}");
    err = (mp_error){0};
    assert_int_equal(mp_tokenizer_load(dir, &t, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "model.vocab: expected a non-empty array"));
    err = (mp_error){0};
    assert_int_equal(mp_tokenizer_load("/nonexistent/tokenizer.json", &t, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "/nonexistent/tokenizer.json"));
}

static void test_bad_merge_and_added(void **state)
{
    (void)state;
    char json[512];
    snprintf(json, sizeof json,
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}");
    write_file("tokenizer.json", json);
    mp_error err = {0};
    mp_tokenizer *t;
    assert_int_equal(mp_tokenizer_load(dir, &t, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "model.merges[0]: \"ab\" is not in model.vocab"));
    snprintf(json, sizeof json,
             "{\"added_tokens\":[{\"id\":2,\"content\":\"\",\"lstrip\":true}],"
             "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]}}");
    write_file("tokenizer.json", json);
    err = (mp_error){0};
    assert_int_equal(mp_tokenizer_load(dir, &t, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "added_tokens[0].content: expected a non-empty string"));
}

/* ---- input text and id files ---- */

static void test_invalid_utf8(void **state)
{
    (void)state;
    write_small_tokenizer(METASPACE_FIRST, "\"byte_fallback\":true,", "null");
    mp_tokenizer *t = load_small();
    const struct {
        const char *text;
        size_t offset;
    } cases[] = {
        {"ab\xc3(", 2},             /* missing continuation */
        {"\xc0\x80", 0},            /* overlong NUL */
        {"a\xed\xa0\x80", 1},       /* surrogate */
        {"xy\xf4\x90\x80\x80", 2},  /* above U+10FFFF */
        {"hi \xe2\x96", 3},         /* cut at the end */
        {"\x80", 0},                /* stray continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp_error err = {0};
        int32_t *ids = (int32_t *)1;
        size_t n = 7;
        assert_int_equal(mp_tokenizer_encode(t, cases[i].text, strlen(cases[i].text), &ids, &n, &err), MP_EXIT_INPUT);
        assert_null(ids);
        assert_int_equal(n, 0);
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu", cases[i].offset);
        if (!strstr(err.msg, want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, want);
    }
    /* a NUL byte is an ordinary character (byte fallback <0x00>) */
    int32_t *ids;
    size_t n;
    mp_error err = {0};
    assert_int_equal(mp_tokenizer_encode(t, "\0", 1, &ids, &n, &err), MP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 3);
    free(ids);
    mp_tokenizer_free(t);
}

static void test_ids_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/ids.txt", dir);
    int32_t *ids;
    size_t n;
    mp_error err = {0};
    write_file("ids.txt", "1 2\n3\t\t4\r\n2147483647\n");
    assert_int_equal(mp_tokens_read_file(path, &ids, &n, &err), MP_OK);
    assert_int_equal(n, 5);
    assert_int_equal(ids[3], 4);
    assert_int_equal(ids[4], INT32_MAX);
    free(ids);
    const struct {
        const char *text, *want;
    } bad[] = {
        {"1 2 x3 4", "token 3 (byte 4): \"x3\""},
        {"5 -1", "token 2 (byte 2): \"-1\""},
        {"2147483648", "token 1 (byte 0)"},
        {"7,8", "token 1 (byte 0): \"7,8\""},
        {" \n ", "no token ids"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file("ids.txt", bad[i].text);
        err = (mp_error){0};
        assert_int_equal(mp_tokens_read_file(path, &ids, &n, &err), MP_EXIT_INPUT);
        assert_null(ids);
        if (!strstr(err.msg, bad[i].want) || !strstr(err.msg, path))
            fail_msg("\"%s\" lacks \"%s\" or the path", err.msg, bad[i].want);
    }
    err = (mp_error){0};
    assert_int_equal(mp_tokens_read_file("/nonexistent/ids", &ids, &n, &err), MP_EXIT_INPUT);
}

/* ---- Unicode: classes from Oniguruma's tables, normalization from utf8proc ---- */

static void expect_normalized(mp_norm_kind kind, const char *in, const char *want)
{
    mp_uclasses u;
    assert_int_equal(mp_uclasses_init(&u), 0);
    mp_norm_step st = {.kind = kind, .classes = &u, .left = true, .right = true};
    char *out;
    size_t n;
    assert_int_equal(mp_normalize(&st, 1, in, strlen(in), &out, &n), 0);
    if (n != strlen(want) || memcmp(out, want, n) != 0)
        fail_msg("normalizer %d of \"%s\": got \"%s\", expected \"%s\"", (int)kind, in, out, want);
    free(out);
}

static void test_unicode(void **state)
{
    (void)state;
    mp_uclasses u;
    assert_int_equal(mp_uclasses_init(&u), 0);
    assert_true(mp_uclass_has(&u, MP_UCLASS_ALPHABETIC, 'a'));
    assert_true(mp_uclass_has(&u, MP_UCLASS_ALPHABETIC, 0x4E00));   /* CJK */
    assert_true(mp_uclass_has(&u, MP_UCLASS_NUMERIC, 0x2164));      /* Roman numeral five, Nl */
    assert_true(mp_uclass_has(&u, MP_UCLASS_WHITE_SPACE, 0x3000));  /* ideographic space */
    assert_true(mp_uclass_has(&u, MP_UCLASS_WHITE_SPACE, 0x85));
    assert_false(mp_uclass_has(&u, MP_UCLASS_WHITE_SPACE, 0x200B)); /* zero width space is not \\s */
    assert_true(mp_uclass_has(&u, MP_UCLASS_PUNCT, 0x2014));        /* em dash */
    assert_false(mp_uclass_has(&u, MP_UCLASS_PUNCT, '$'));          /* Sc, though ASCII punctuation */
    assert_true(mp_uclass_is_word(&u, 0x200D));                     /* Join_Control is \\w for Rust */
    assert_true(mp_uclass_is_word(&u, 0x24B6));                     /* circled A: So, but Alphabetic */
    expect_normalized(MP_NORM_NFC, "e\xcc\x81", "\xc3\xa9");                          /* e + acute -> é */
    expect_normalized(MP_NORM_NFC, "\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81"); /* Hangul L V T -> 각 */
    expect_normalized(MP_NORM_NFC, "a\xcc\x81\xcc\x96", "\xc3\xa1\xcc\x96");      /* acute (230), grave below (220) */
    expect_normalized(MP_NORM_NFC, "\xe2\x84\xab", "\xc3\x85");                      /* Angstrom sign -> Å */
    expect_normalized(MP_NORM_NFD, "\xc3\xa9", "e\xcc\x81");
    expect_normalized(MP_NORM_NFKC, "\xef\xac\x81", "fi");                           /* ligature fi */
    expect_normalized(MP_NORM_NFKD, "\xc2\xb2", "2");                                 /* superscript two */
    expect_normalized(MP_NORM_LOWERCASE, "\xc4\xb0I\xce\xa3", "i\xcc\x87i\xcf\x83");   /* İ has two characters */
    expect_normalized(MP_NORM_STRIP, "\xe3\x80\x80 a b\t\n", "a b");
    expect_normalized(MP_NORM_STRIP_ACCENTS, "e\xcc\x81" "a", "ea");
}

int main(void)
{
    shared = getenv("SHARED") ? getenv("SHARED") : "../shared";
    struct stat st;
    char models[512];
    snprintf(models, sizeof models, "%s/models", shared);
    if (stat(models, &st) != 0) {
        printf("SKIP: tokenizer reference ids (../shared absent)\n");
        shared = NULL;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moby_mixtral_reference),
        cmocka_unit_test(test_tiny_qwen3moe_reference),
        cmocka_unit_test(test_shared_special_tokens),
        cmocka_unit_test(test_split_qwen2),
        cmocka_unit_test(test_split_gpt2),
        cmocka_unit_test(test_byte_level),
        cmocka_unit_test(test_metaspace),
        cmocka_unit_test(test_split_behaviors),
        cmocka_unit_test(test_char_splits),
        cmocka_unit_test_setup_teardown(test_bpe_semantics, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_unk, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_normalizers, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_added_tokens, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_bos, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_load_errors, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_bad_merge_and_added, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_ids_file, make_dir, remove_dir),
        cmocka_unit_test(test_unicode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
