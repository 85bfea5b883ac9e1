/* detok_check TOKENIZER encode TEXTFILE...: writes TEXTFILE.ids, the ids of each text
 *   with the post-processor's special tokens around them (as `moepack tokenize`).
 * detok_check TOKENIZER decode IDSFILE...: writes IDSFILE.ours0 and IDSFILE.ours1,
 *   mp_tokenizer_decode of the ids without and with skip_special (raw bytes), after
 *   checking that streaming them one at a time through mp_detok gives the same text:
 *   every chunk valid UTF-8, the chunks and finish concatenated equal to the whole,
 *   twice over the same decoder (finish must leave it fresh). Exit 1, naming the file
 *   and the first differing byte, when not.
 * One load of the tokenizer for many files. For tests/cli/test_detok_hf.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fileio.h"
#include "../../tokenizer/tokenizer.h"
#include "../../tokenizer/utf8.h"

typedef struct {
    char *buf;
    size_t len, cap;
} buffer;

static int append(buffer *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *grown = realloc(b->buf, cap);
        if (!grown)
            return -1;
        b->buf = grown;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return 0;
}

/* The streamed text of ids into *out; 0, or 1 with a message when a chunk is not
 * UTF-8, 2 when the decoder fails. */
static int stream(mp_detok *d, const int32_t *ids, size_t n, buffer *out, mp_error *err)
{
    for (size_t i = 0; i <= n; i++) {
        const char *chunk;
        size_t len;
        int rc = i < n ? mp_detok_push(d, ids[i], &chunk, &len, err) : mp_detok_finish(d, &chunk, &len, err);
        if (rc != MP_OK)
            return 2;
        if (mp_utf8_check(chunk, len) != len) {
            mp_fail(err, 1, "the chunk after id %zu (%d) is not valid UTF-8", i, i < n ? ids[i] : -1);
            return 1;
        }
        if (append(out, chunk, len) != 0)
            return 2;
    }
    return 0;
}

static int same(const char *what, const buffer *got, const char *want, size_t want_len, mp_error *err)
{
    if (got->len == want_len && memcmp(got->buf, want, want_len) == 0)
        return 1;
    size_t i = 0;
    while (i < got->len && i < want_len && got->buf[i] == want[i])
        i++;
    mp_fail(err, 1, "%s: streamed %zu bytes, decoded %zu; first difference at byte %zu", what, got->len, want_len, i);
    return 0;
}

static int write_file(const char *path, const char *suffix, const char *data, size_t len, mp_error *err)
{
    char name[4096];
    snprintf(name, sizeof name, "%s%s", path, suffix);
    FILE *f = fopen(name, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        return mp_fail(err, MP_EXIT_IO, "%s: cannot write", name);
    return MP_OK;
}

static int encode_file(const mp_tokenizer *t, const char *path, mp_error *err)
{
    char *text, *line = NULL;
    size_t len, n = 0, n_before, n_after, used = 0;
    int32_t *ids = NULL;
    const int32_t *before, *after;
    int rc = mp_read_small_file(path, 1u << 30, &text, &len, err);
    if (rc != MP_OK)
        return rc;
    rc = mp_tokenizer_encode(t, text, len, &ids, &n, err);
    mp_tokenizer_specials(t, &before, &n_before, &after, &n_after);
    if (rc == MP_OK && !(line = malloc((n + n_before + n_after) * 12 + 2)))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    for (size_t i = 0; rc == MP_OK && i < n_before + n + n_after; i++) {
        int32_t id = i < n_before ? before[i] : i < n_before + n ? ids[i - n_before] : after[i - n_before - n];
        used += (size_t)sprintf(line + used, "%s%d", i ? " " : "", id);
    }
    if (rc == MP_OK)
        rc = write_file(path, ".ids", line, used, err);
    free(line);
    free(ids);
    free(text);
    return rc;
}

static int decode_file(const mp_tokenizer *t, const char *path, int skip, mp_error *err)
{
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *text = NULL;
    mp_detok *d = NULL;
    buffer first = {0}, second = {0};
    int rc = mp_tokens_read_file(path, &ids, &n, err);
    if (rc == MP_OK)
        rc = mp_tokenizer_decode(t, ids, n, skip, &text, &len, err);
    if (rc == MP_OK)
        rc = mp_detok_new(t, skip, &d, err);
    if (rc == MP_OK)
        rc = stream(d, ids, n, &first, err);
    if (rc == MP_OK)
        rc = stream(d, ids, n, &second, err);
    if (rc == MP_OK && !(same("stream", &first, text, len, err) && same("stream after finish", &second, text, len, err)))
        rc = 1;
    if (rc == MP_OK)
        rc = write_file(path, skip ? ".ours1" : ".ours0", text, len, err);
    if (rc != MP_OK)
        fprintf(stderr, "detok_check: %s%s: %s\n", path, skip ? " (skip special)" : "", err->msg);
    free(first.buf);
    free(second.buf);
    free(text);
    free(ids);
    mp_detok_free(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[2], "encode") != 0 && strcmp(argv[2], "decode") != 0)) {
        fprintf(stderr, "usage: detok_check TOKENIZER (encode TEXTFILE... | decode IDSFILE...)\n");
        return 2;
    }
    mp_error err = {0};
    mp_tokenizer *t = NULL;
    int rc = mp_tokenizer_load(argv[1], &t, &err), worst = rc;
    if (rc != MP_OK)
        fprintf(stderr, "detok_check: %s\n", err.msg);
    for (int i = 3; rc == MP_OK && i < argc; i++) {
        for (int skip = 0; skip < 2; skip++) {
            mp_error_clear(&err);
            int one = argv[2][0] == 'e' ? (skip ? MP_OK : encode_file(t, argv[i], &err)) : decode_file(t, argv[i], skip, &err);
            if (one != MP_OK && argv[2][0] == 'e')
                fprintf(stderr, "detok_check: %s: %s\n", argv[i], err.msg);
            worst = one != MP_OK ? one : worst;
        }
    }
    mp_tokenizer_free(t);
    return worst;
}
