#ifndef MP_INSPECT_PACK_H
#define MP_INSPECT_PACK_H

#include <stdbool.h>

#include "../core/error.h"

/* Prints what a pack holds (text, or JSON on stdout). */
int mp_inspect_pack(const char *path, bool json, mp_error *err);

#endif
