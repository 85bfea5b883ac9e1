/* Error reporting: library functions return an exit code and fill an mp_error.
 * Only main() prints and exits, so every stage stays testable. */
#ifndef MP_ERROR_H
#define MP_ERROR_H

enum {
    MP_OK = 0,
    MP_EXIT_VERIFY = 1, /* verify thresholds not met */
    MP_EXIT_INPUT = 2,  /* bad input or usage */
    MP_EXIT_IO = 3      /* I/O failure, corrupt record */
};

typedef struct {
    int code;
    char msg[1024]; /* one line: names the file, the tensor or field, what was expected */
} mp_error;

/* Records the first failure (later calls keep the first message) and returns code. */
int mp_fail(mp_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like mp_fail with code MP_EXIT_IO, appending strerror(errno). */
int mp_fail_errno(mp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void mp_error_clear(mp_error *err);

#endif
