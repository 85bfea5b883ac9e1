/* The Unicode character classes HF tokenizers tests characters with (Rust's char
 * methods and regex crate), read from Oniguruma's Unicode tables. */
#ifndef MP_UNICODE_CLASS_H
#define MP_UNICODE_CLASS_H

#include <stdbool.h>
#include <stdint.h>

/* Character classes as Rust's char methods and regex crate define them. */
typedef enum {
    MP_UCLASS_WHITE_SPACE, /* char::is_whitespace, regex \s */
    MP_UCLASS_NUMERIC,     /* char::is_numeric: general category N */
    MP_UCLASS_PUNCT,       /* general category P */
    MP_UCLASS_MARK,        /* general category M */
    MP_UCLASS_ALPHABETIC,
    MP_UCLASS_DIGIT,       /* Nd */
    MP_UCLASS_CONNECTOR,   /* Pc */
    MP_UCLASS_JOIN_CONTROL,
    MP_UCLASS_COUNT
} mp_uclass;

/* Oniguruma's handles of the classes, looked up once. */
typedef struct {
    int ctype[MP_UCLASS_COUNT];
} mp_uclasses;

int mp_uclasses_init(mp_uclasses *u);
bool mp_uclass_has(const mp_uclasses *u, mp_uclass c, uint32_t cp);
/* Rust regex's \w: Alphabetic, M, Nd, Pc or Join_Control. */
bool mp_uclass_is_word(const mp_uclasses *u, uint32_t cp);

#endif
