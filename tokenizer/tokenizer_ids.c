/* Token-id files (`--tokens FILE`): decimal ids separated by whitespace, as written by
 * tools that dump HF encodings. Checked strictly: a stray sign, letter or an id past
 * int32 is an error naming the file, the token's position and its byte offset. */
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "tokenizer.h"
#include "tokenizer_bpe.h"

#define MAX_IDS_FILE_BYTES (1024ull << 20)

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The id spelled by s[0..len), or -1 when it is not a decimal number in int32 range. */
static int64_t parse_id(const char *s, size_t len)
{
    int64_t v = 0;
    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= INT32_MAX ? v : -1;
}

static int parse_all(const char *path, const char *text, size_t len, mp_id_list *out, mp_error *err)
{
    size_t i = 0;
    while (i < len) {
        if (is_space(text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && !is_space(text[i]))
            i++;
        int64_t id = parse_id(text + start, i - start);
        if (id < 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: token %zu (byte %zu): \"%.*s\" is not a decimal id in 0..%d", path,
                           out->n + 1, start, (int)(i - start > 40 ? 40 : i - start), text + start, INT32_MAX);
        if (mp_id_list_push(out, (int32_t)id) != 0)
            return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    }
    if (out->n == 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no token ids, expected decimal ids separated by whitespace", path);
    return MP_OK;
}

int mp_tokens_read_file(const char *path, int32_t **ids, size_t *n, mp_error *err)
{
    *ids = NULL;
    *n = 0;
    char *text;
    size_t len;
    int rc = mp_read_small_file(path, MAX_IDS_FILE_BYTES, &text, &len, err);
    if (rc != MP_OK)
        return rc;
    mp_id_list list = {0};
    rc = parse_all(path, text, len, &list, err);
    free(text);
    if (rc != MP_OK) {
        free(list.v);
        return rc;
    }
    *ids = list.v;
    *n = list.n;
    return MP_OK;
}
