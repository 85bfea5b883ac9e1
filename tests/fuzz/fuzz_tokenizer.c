/* tokenizer/tokenizer_load*.c: a split input (see fuzz_util.h) of tokenizer.json and
 * tokenizer_config.json, loaded, then a short text encoded and decoded with it and
 * the ids pushed through the streaming decoder. */
#include <stdlib.h>
#include <string.h>

#include "../../tokenizer/tokenizer.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Spaces, digits, punctuation, a newline, accents, CJK, an emoji, a NUL byte and
 * special-token spellings: what pre-tokenizers and normalizers split on. */
static const char text[] = "Call me Ishmael. Some years ago--never mind how long 123,456!\n"
                           "  caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 <s></s><|im_end|>\0x\ty'll";

static void decode(const mp_tokenizer *t, const int32_t *ids, size_t n)
{
    mp_error err = {0};
    char *out = NULL;
    size_t len;
    if (mp_tokenizer_decode(t, ids, n, 0, &out, &len, &err) == MP_OK)
        free(out);
    mp_detok *d;
    if (mp_detok_new(t, 1, &d, &err) != MP_OK)
        return;
    const char *piece;
    size_t piece_len;
    for (size_t i = 0; i < n; i++)
        if (mp_detok_push(d, ids[i], &piece, &piece_len, &err) != MP_OK)
            break;
    mp_detok_finish(d, &piece, &piece_len, &err);
    mp_detok_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    if (fuzz_split_into(dir, data, size) == 0)
        return 0;
    mp_tokenizer *t;
    mp_error err = {0};
    if (fuzz_check(mp_tokenizer_load(dir, &t, &err), &err) != MP_OK)
        return 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (fuzz_check(mp_tokenizer_encode(t, text, sizeof text - 1, &ids, &n, &err), &err) == MP_OK) {
        for (size_t i = 0; i < n; i++)
            mp_tokenizer_piece(t, ids[i]);
        decode(t, ids, n);
        free(ids);
    }
    mp_tokenizer_id(t, "<s>");
    mp_tokenizer_piece(t, (int32_t)mp_tokenizer_vocab_size(t));
    mp_tokenizer_free(t);
    return 0;
}
