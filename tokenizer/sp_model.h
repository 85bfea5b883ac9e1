/* SentencePiece's tokenizer.model (a ModelProto in protocol buffers, sentencepiece_model.proto):
 * its pieces with their scores and types, read without the sentencepiece library. Used
 * by the GGUF export, which writes them as llama.cpp's "llama" vocabulary, as the
 * converter does from SentencePieceProcessor. */
#ifndef MP_SP_MODEL_H
#define MP_SP_MODEL_H

#include "../core/error.h"

/* SentencePiece.Type; GGUF's token types use the same numbers. */
enum {
    MP_SP_NORMAL = 1,
    MP_SP_UNKNOWN = 2,
    MP_SP_CONTROL = 3,
    MP_SP_USER_DEFINED = 4,
    MP_SP_UNUSED = 5,
    MP_SP_BYTE = 6
};

typedef struct {
    char *piece; /* UTF-8, NUL-terminated */
    float score;
    int type;
} mp_sp_piece;

typedef struct {
    mp_sp_piece *pieces;
    int n;
} mp_sp_model;

/* Reads the pieces (field 1 of ModelProto) of path; other fields are skipped.
 * A malformed file is exit 2 naming the byte offset. */
int mp_sp_model_load(const char *path, mp_sp_model *m, mp_error *err);
void mp_sp_model_free(mp_sp_model *m);

#endif
