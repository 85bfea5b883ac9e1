/* Decoding ids back to text, on a small tokenizer.json written here behind each
 * decoder. Expectations are worked out by hand from HF tokenizers' decoders and their
 * own tests (decoders/byte_fallback.rs: <0xE5><0x8F><0xAB> is "叫", <0xE5><0x8F> then
 * "a" is two U+FFFD and "a"; metaspace.rs: "▁Hey" "▁friend!" is "Hey friend!";
 * strip.rs; wordpiece.rs; ctc.rs; bpe.rs) and from Rust's from_utf8_lossy (one
 * U+FFFD per maximal invalid prefix). Streaming: what each push gives, and what it
 * holds back. The real tokenizers are compared with HF itself in
 * tests/cli/test_detok_hf.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tokenizer/tokenizer.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mp-test-detok-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char path[128];
    const char *names[] = {"tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < 2; i++) {
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

/* The vocabulary, by id. */
static const char *const pieces[] = {
    "<unk>", "<s>", "</s>", "\xe2\x96\x81Hey", "\xe2\x96\x81" "friend!", "<0x61>", "<0xE5>", "<0x8F>", "<0xAB>", "a",
    "\xc4\xa0hello", "\xc4\xa0world\xc4\x8a", "##ing", "play", "the</w>", "cat</w>", "\xc3\xa2", "\xc4\xa2", "\xc2\xa6",
    "<pad>", "|", "e", "\xe2\x96\x81", " .", " n", "'t", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "ok",
};
enum { N_PIECES = sizeof pieces / sizeof *pieces };
enum { UNK, BOS, EOS, HEY, FRIEND, B61, BE5, B8F, BAB, A, HELLO, WORLD, ING, PLAY, THE, CAT, A_HAT, G_DOT, BROKEN_BAR,
       PAD, BAR, E, META, SPACE_DOT, SPACE_N, APOS_T, BF0, B9F, B98, B80, OK };

static void write_tokenizer(const char *decoder)
{
    char json[8192];
    int n = snprintf(json, sizeof json,
                     "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
                     "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
                     "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false}],"
                     "\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":%s,"
                     "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"merges\":[],\"vocab\":{",
                     decoder);
    for (int i = 0; i < N_PIECES; i++)
        n += snprintf(json + n, sizeof json - (size_t)n, "%s\"%s\":%d", i ? "," : "", pieces[i], i);
    snprintf(json + n, sizeof json - (size_t)n, "}}}");
    write_file("tokenizer.json", json);
}

static mp_tokenizer *load_with(const char *decoder)
{
    write_tokenizer(decoder);
    mp_error err = {0};
    mp_tokenizer *t;
    if (mp_tokenizer_load(dir, &t, &err) != MP_OK)
        fail_msg("%s", err.msg);
    return t;
}

static void expect_text(const mp_tokenizer *t, const int32_t *ids, size_t n, int skip, const char *want)
{
    mp_error err = {0};
    char *text;
    size_t len;
    if (mp_tokenizer_decode(t, ids, n, skip, &text, &len, &err) != MP_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(len, strlen(want));
    assert_string_equal(text, want);
    free(text);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

#define SP_DECODER                                                                                                    \
    "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xe2\x96\x81\"},"          \
    "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \","      \
    "\"start\":1,\"stop\":0}]}"

static void test_sentencepiece_sequence(void **state)
{
    (void)state;
    mp_tokenizer *t = load_with(SP_DECODER);
    expect_text(t, IDS(BOS, HEY, FRIEND, EOS), 0, "<s> Hey friend!</s>");
    expect_text(t, IDS(BOS, HEY, FRIEND, EOS), 1, "Hey friend!");
    expect_text(t, IDS(HEY, BE5, B8F, BAB), 0, "Hey\xe5\x8f\xab");                 /* 叫 */
    expect_text(t, IDS(BE5, B8F, A), 0, "\xef\xbf\xbd\xef\xbf\xbd" "a");          /* one U+FFFD per byte */
    expect_text(t, IDS(BE5, B8F, BOS, BAB), 1, "\xe5\x8f\xab");                    /* a skipped token does not cut the run */
    expect_text(t, IDS(B61, 9999, -1, B61), 0, "aa");                              /* ids outside: dropped, as HF */
    expect_text(t, IDS(META, HEY), 0, " Hey");                                     /* Strip takes one space only */
    assert_true(mp_tokenizer_is_special(t, BOS));
    assert_false(mp_tokenizer_is_special(t, HEY));
    assert_false(mp_tokenizer_is_special(t, 9999));
    assert_int_equal(mp_tokenizer_id(t, "</s>"), EOS);
    assert_int_equal(mp_tokenizer_id(t, "\xe2\x96\x81Hey"), HEY);
    assert_int_equal(mp_tokenizer_id(t, "nope"), -1);
    mp_tokenizer_free(t);
}

static void test_byte_level(void **state)
{
    (void)state;
    mp_tokenizer *t = load_with("{\"type\":\"ByteLevel\"}");
    expect_text(t, IDS(HELLO, WORLD), 0, " hello world\n");
    expect_text(t, IDS(A_HAT, G_DOT, BROKEN_BAR), 0, "\xe2\x80\xa6");             /* E2 80 A6: … */
    expect_text(t, IDS(A_HAT, G_DOT, A), 0, "\xef\xbf\xbd" "a");                   /* E2 80 cut short: one U+FFFD */
    expect_text(t, IDS(BROKEN_BAR, A), 0, "\xef\xbf\xbd" "a");                     /* a lone continuation byte */
    expect_text(t, IDS(BOS, HELLO), 0, "<s> hello");                               /* all in the alphabet: its bytes */
    expect_text(t, IDS(SPACE_DOT, A), 0, " .a");                                   /* ' ' is not: the token as is */
    mp_tokenizer_free(t);
}

static void test_metaspace(void **state)
{
    (void)state;
    mp_tokenizer *t = load_with("{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"always\"}");
    expect_text(t, IDS(HEY, FRIEND), 0, "Hey friend!");
    expect_text(t, IDS(META, HEY), 0, " Hey"); /* every ▁ of the first token goes */
    mp_tokenizer_free(t);
    t = load_with("{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"never\"}");
    expect_text(t, IDS(HEY, FRIEND), 0, " Hey friend!");
    mp_tokenizer_free(t);
}

static void test_other_decoders(void **state)
{
    (void)state;
    mp_tokenizer *t = load_with("{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true}");
    expect_text(t, IDS(PLAY, ING, SPACE_DOT, A), 0, "playing . a"); /* " " + " ." -> "  ." -> " ." */
    mp_tokenizer_free(t);
    t = load_with("{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}");
    expect_text(t, IDS(THE, CAT), 0, "the cat");
    mp_tokenizer_free(t);
    t = load_with("{\"type\":\"CTC\",\"pad_token\":\"<pad>\",\"word_delimiter_token\":\"|\",\"cleanup\":true}");
    expect_text(t, IDS(A, A, PAD, A, BAR, E, E), 0, "aa e");
    mp_tokenizer_free(t);
    t = load_with("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},"
                  "{\"type\":\"Strip\",\"content\":\"e\",\"start\":3,\"stop\":1}]}");
    expect_text(t, IDS(E, E, A, E, E), 0, "ae");
    mp_tokenizer_free(t);
    t = load_with("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"e+|a\"},\"content\":\"X\"}");
    expect_text(t, IDS(E, E, A, OK), 0, "XXXok");
    mp_tokenizer_free(t);
    t = load_with("null");
    expect_text(t, IDS(A, OK, BOS), 0, "a ok <s>");
    expect_text(t, IDS(A, OK, BOS), 1, "a ok");
    mp_tokenizer_free(t);
}

/* A decoder moepack cannot read: loading and encoding work, decoding names it. */
static void test_decoder_errors(void **state)
{
    (void)state;
    mp_tokenizer *t = load_with("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"Magic\"}]}");
    mp_error err = {0};
    int32_t *ids;
    size_t n;
    assert_int_equal(mp_tokenizer_encode(t, "a", 1, &ids, &n, &err), MP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], A);
    char *text = NULL;
    size_t len;
    assert_int_equal(mp_tokenizer_decode(t, ids, n, 0, &text, &len, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "decoder.decoders[1].type: \"Magic\" is not supported"));
    mp_detok *d = NULL;
    mp_error_clear(&err);
    assert_int_equal(mp_detok_new(t, 0, &d, &err), MP_EXIT_INPUT);
    assert_null(d);
    free(ids);
    mp_tokenizer_free(t);

    t = load_with("{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"add_prefix_space\":false}");
    mp_error_clear(&err);
    assert_int_equal(mp_tokenizer_decode(t, IDS(A), 0, &text, &len, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "decoder.add_prefix_space"));
    mp_tokenizer_free(t);
}

/* Streams ids and checks each push's text, then finish's. */
static void expect_stream(const mp_tokenizer *t, const int32_t *ids, size_t n, const char *const *want,
                          const char *want_finish)
{
    mp_error err = {0};
    mp_detok *d;
    assert_int_equal(mp_detok_new(t, 0, &d, &err), MP_OK);
    const char *out;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mp_detok_push(d, ids[i], &out, &len, &err), MP_OK);
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(out, want[i], len);
    }
    assert_int_equal(mp_detok_finish(d, &out, &len, &err), MP_OK);
    assert_int_equal(len, strlen(want_finish));
    assert_memory_equal(out, want_finish, len);
    mp_detok_free(d);
}

static void test_stream_holds_back(void **state)
{
    (void)state;
    mp_tokenizer *t = load_with(SP_DECODER);
    /* Strip takes the first token's space only; a run of bytes is given once a
     * non-byte token ends it, since one bad byte would turn all of it into U+FFFD. */
    expect_stream(t, IDS(HEY, FRIEND, BE5, B8F, BAB, HEY),
                  (const char *[]){"Hey", " friend!", "", "", "", "\xe5\x8f\xab Hey"}, "");
    expect_stream(t, IDS(B61, BF0, B9F, A), (const char *[]){"", "", "", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "a"}, "");
    mp_tokenizer_free(t);
    t = load_with("{\"type\":\"ByteLevel\"}");
    expect_stream(t, IDS(HELLO, A_HAT, G_DOT, BROKEN_BAR, A_HAT), (const char *[]){" hello", "", "", "\xe2\x80\xa6", ""},
                  "\xef\xbf\xbd");
    mp_tokenizer_free(t);
    t = load_with("{\"type\":\"BPEDecoder\",\"suffix\":\"\xe2\x96\x81\"}"); /* a suffix inside the last token */
    expect_stream(t, IDS(HEY, FRIEND, HEY), (const char *[]){"", "", " Hey"}, " friend!Hey");
    mp_tokenizer_free(t);
}

/* tokenizer_config.json's clean_up_tokenization_spaces: transformers' clean-up, and
 * the stream holds back a tail it could still rewrite. */
static void test_cleanup_spaces(void **state)
{
    (void)state;
    write_file("tokenizer_config.json", "{\"clean_up_tokenization_spaces\": true}");
    mp_tokenizer *t = load_with("{\"type\":\"Fuse\"}");
    expect_text(t, IDS(OK, SPACE_DOT, SPACE_N, APOS_T), 0, "ok.n't");
    expect_stream(t, IDS(OK, SPACE_N, APOS_T, SPACE_DOT), (const char *[]){"ok", "", "n't", "."}, "");
    mp_tokenizer_free(t);
    write_file("tokenizer_config.json", "{\"clean_up_tokenization_spaces\": false}");
    t = load_with("{\"type\":\"Fuse\"}");
    expect_text(t, IDS(OK, SPACE_DOT), 0, "ok .");
    mp_tokenizer_free(t);
}

/* Past the window's length, the window is cut; the text stays whole. */
static void test_stream_long(void **state)
{
    (void)state;
    mp_tokenizer *t = load_with(SP_DECODER);
    int32_t ids[300];
    for (int i = 0; i < 300; i++)
        ids[i] = i % 7 == 3 ? BE5 : i % 7 == 4 ? B8F : i % 7 == 5 ? BAB : i % 2 ? HEY : FRIEND;
    char *whole;
    size_t whole_len;
    mp_error err = {0};
    assert_int_equal(mp_tokenizer_decode(t, ids, 300, 0, &whole, &whole_len, &err), MP_OK);
    mp_detok *d;
    assert_int_equal(mp_detok_new(t, 0, &d, &err), MP_OK);
    char *got = malloc(whole_len + 1);
    size_t got_len = 0;
    for (int i = 0; i <= 300; i++) {
        const char *out;
        size_t len;
        assert_int_equal(i < 300 ? mp_detok_push(d, ids[i], &out, &len, &err) : mp_detok_finish(d, &out, &len, &err),
                         MP_OK);
        assert_true(got_len + len <= whole_len);
        memcpy(got + got_len, out, len);
        got_len += len;
    }
    assert_int_equal(got_len, whole_len);
    assert_memory_equal(got, whole, whole_len);
    free(got);
    free(whole);
    mp_detok_free(d);
    mp_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sentencepiece_sequence, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_byte_level, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_metaspace, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_other_decoders, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_decoder_errors, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_stream_holds_back, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_cleanup_spaces, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_stream_long, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
