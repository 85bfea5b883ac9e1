/* tok_encode [--count] TOKENIZER TEXTFILE: the ids of the file's text (no special
 * tokens), whitespace-separated on one line, or with --count just how many; the
 * encoding time goes to stderr. For tests and for timing the tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/fileio.h"
#include "../../tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int count = argc == 4 && strcmp(argv[1], "--count") == 0;
    if (argc != 3 + count) {
        fprintf(stderr, "usage: tok_encode [--count] TOKENIZER TEXTFILE\n");
        return 2;
    }
    mp_error err = {0};
    mp_tokenizer *t = NULL;
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    int rc = mp_tokenizer_load(argv[1 + count], &t, &err);
    if (rc == MP_OK)
        rc = mp_read_small_file(argv[2 + count], 1ull << 32, &text, &len, &err);
    double start = now();
    if (rc == MP_OK)
        rc = mp_tokenizer_encode(t, text, len, &ids, &n, &err);
    if (rc == MP_OK) {
        fprintf(stderr, "encode: %zu bytes -> %zu ids in %.3f s\n", len, n, now() - start);
        if (count)
            printf("%zu\n", n);
        for (size_t i = 0; !count && i < n; i++)
            printf(i + 1 < n ? "%d " : "%d\n", ids[i]);
    } else {
        fprintf(stderr, "tok_encode: %s\n", err.msg);
    }
    free(ids);
    free(text);
    mp_tokenizer_free(t);
    return rc;
}
