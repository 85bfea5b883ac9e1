#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void flatten_to_one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

int mp_fail(mp_error *err, int code, const char *fmt, ...)
{
    if (!err || err->code != MP_OK)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    flatten_to_one_line(err->msg);
    err->code = code;
    return code;
}

int mp_fail_errno(mp_error *err, const char *fmt, ...)
{
    int saved = errno;
    if (!err || err->code != MP_OK)
        return MP_EXIT_IO;
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mp_fail(err, MP_EXIT_IO, "%s: %s", what, strerror(saved));
}

void mp_error_clear(mp_error *err)
{
    err->code = MP_OK;
    err->msg[0] = '\0';
}
