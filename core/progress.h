/* A progress bar on stderr, drawn only when stderr is a terminal and not --quiet:
 * what, done/total, bytes/s, ETA. At most ten redraws a second. */
#ifndef MP_PROGRESS_H
#define MP_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *what;
    uint64_t total, done;
    bool bytes;    /* total counts bytes: show rates in MB/s */
    bool enabled;
    double start, last_draw;
} mp_progress;

void mp_progress_start(mp_progress *p, const char *what, uint64_t total, bool bytes, bool quiet);
void mp_progress_add(mp_progress *p, uint64_t n);
/* Clears the bar line. */
void mp_progress_finish(mp_progress *p);
/* Seconds since an arbitrary fixed point (monotonic clock). */
double mp_now(void);

#endif
