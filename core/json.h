/* JSON files: our own formats and tokenizer.json read strictly (duplicate keys
 * rejected); the configuration files a checkpoint ships beside its weights read
 * tolerantly. Errors name the file and the place. */
#ifndef MP_JSON_H
#define MP_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

/* Loads a JSON file of at most max_bytes; *root is NULL on failure. */
int mp_json_load_file(const char *path, uint64_t max_bytes, json_t **root, mp_error *err);

/* For tokenizer_config.json and the like, as transformers reads them: integers beyond
 * 64 bits (a model_max_length of 1e30) become reals, a key given twice keeps its last
 * value. */
int mp_json_load_file_tolerant(const char *path, uint64_t max_bytes, json_t **root, mp_error *err);

/* An xxh3 as our files write it (a pack's records and manifest.xxh3, a reference's
 * payload): exactly 16 lowercase hex digits, so that any changed byte is refused. */
int mp_parse_hex64(const char *s, uint64_t *out);

#endif
