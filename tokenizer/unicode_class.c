#include "unicode_class.h"

#include <oniguruma.h>
#include <string.h>

#include "../core/regex.h"

/* ---- character classes ---- */

static const char *const class_names[MP_UCLASS_COUNT] = {
    "White_Space", "N", "P", "M", "Alphabetic", "Nd", "Pc", "Join_Control",
};

int mp_uclasses_init(mp_uclasses *u)
{
    if (mp_regex_initialize() != 0)
        return -1;
    for (int c = 0; c < MP_UCLASS_COUNT; c++) {
        OnigUChar *name = (OnigUChar *)(uintptr_t)class_names[c];
        u->ctype[c] = ONIGENC_PROPERTY_NAME_TO_CTYPE(ONIG_ENCODING_UTF8, name, name + strlen(class_names[c]));
        if (u->ctype[c] < 0)
            return -1;
    }
    return 0;
}

bool mp_uclass_has(const mp_uclasses *u, mp_uclass c, uint32_t cp)
{
    return ONIGENC_IS_CODE_CTYPE(ONIG_ENCODING_UTF8, cp, (unsigned int)u->ctype[c]) != 0;
}

bool mp_uclass_is_word(const mp_uclasses *u, uint32_t cp)
{
    static const mp_uclass word[] = {MP_UCLASS_ALPHABETIC, MP_UCLASS_MARK, MP_UCLASS_DIGIT, MP_UCLASS_CONNECTOR,
                                     MP_UCLASS_JOIN_CONTROL};
    for (size_t i = 0; i < sizeof word / sizeof *word; i++)
        if (mp_uclass_has(u, word[i], cp))
            return true;
    return false;
}
