/* JSON files read strictly: duplicate keys rejected, errors naming file and place. */
#ifndef MP_JSON_H
#define MP_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

/* Loads a JSON file of at most max_bytes; *root is NULL on failure. */
int mp_json_load_file(const char *path, uint64_t max_bytes, json_t **root, mp_error *err);

#endif
