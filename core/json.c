#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "fileio.h"

static int load_file(const char *path, uint64_t max_bytes, size_t flags, json_t **root, mp_error *err)
{
    char *text;
    size_t len;
    *root = NULL;
    int rc = mp_read_small_file(path, max_bytes, &text, &len, err);
    if (rc != MP_OK)
        return rc;
    json_error_t jerr;
    *root = json_loadb(text, len, flags, &jerr);
    free(text);
    if (!*root)
        return mp_fail(err, MP_EXIT_INPUT, "%s: JSON: %s (line %d, column %d)", path, jerr.text, jerr.line,
                       jerr.column);
    return MP_OK;
}

int mp_json_load_file(const char *path, uint64_t max_bytes, json_t **root, mp_error *err)
{
    return load_file(path, max_bytes, JSON_REJECT_DUPLICATES, root, err);
}

int mp_json_load_file_tolerant(const char *path, uint64_t max_bytes, json_t **root, mp_error *err)
{
    return load_file(path, max_bytes, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, root, err);
}

int mp_parse_hex64(const char *s, uint64_t *out)
{
    if (!s || strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16)
        return -1;
    *out = strtoull(s, NULL, 16);
    return 0;
}
