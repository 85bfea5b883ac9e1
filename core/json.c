#include "json.h"

#include <stdlib.h>

#include "fileio.h"

int mp_json_load_file(const char *path, uint64_t max_bytes, json_t **root, mp_error *err)
{
    char *text;
    size_t len;
    *root = NULL;
    int rc = mp_read_small_file(path, max_bytes, &text, &len, err);
    if (rc != MP_OK)
        return rc;
    json_error_t jerr;
    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!*root)
        return mp_fail(err, MP_EXIT_INPUT, "%s: JSON: %s (line %d, column %d)", path, jerr.text, jerr.line,
                       jerr.column);
    return MP_OK;
}
