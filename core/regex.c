#include "regex.h"

#include <oniguruma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mp_regex {
    regex_t *re;
};

int mp_regex_initialize(void)
{
    OnigEncoding encodings[1] = {ONIG_ENCODING_UTF8};
    return onig_initialize(encodings, 1) == ONIG_NORMAL ? 0 : -1;
}

int mp_regex_compile(const char *pattern, mp_regex **out, char *why, size_t why_cap)
{
    *out = NULL;
    mp_regex *r = calloc(1, sizeof *r);
    if (!r || mp_regex_initialize() != 0) {
        free(r);
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    OnigErrorInfo info;
    const OnigUChar *p = (const OnigUChar *)pattern;
    int rc = onig_new(&r->re, p, p + strlen(pattern), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT,
                      &info);
    if (rc != ONIG_NORMAL) {
        OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, rc, &info);
        snprintf(why, why_cap, "%s", (const char *)msg);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void mp_regex_free(mp_regex *re)
{
    if (!re)
        return;
    onig_free(re->re);
    free(re);
}

int mp_regex_search(const mp_regex *re, const char *s, size_t len, size_t from, size_t *start, size_t *end)
{
    const OnigUChar *str = (const OnigUChar *)s;
    OnigRegion region;
    onig_region_init(&region);
    int at = onig_search(re->re, str, str + len, str + from, str + len, &region, ONIG_OPTION_NONE);
    int rc = at >= 0 ? 1 : at == ONIG_MISMATCH ? 0 : -1;
    if (rc == 1) {
        *start = (size_t)region.beg[0];
        *end = (size_t)region.end[0];
    }
    onig_region_free(&region, 0);
    return rc;
}
