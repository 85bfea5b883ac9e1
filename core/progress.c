#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double mp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void mp_progress_start(mp_progress *p, const char *what, uint64_t total, bool bytes, bool quiet)
{
    p->what = what;
    p->total = total;
    p->done = 0;
    p->bytes = bytes;
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->start = mp_now();
    p->last_draw = 0;
}

static void draw(const mp_progress *p, double now)
{
    const int width = 30;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    char bar[64];
    int filled = (int)(frac * width);
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    if (p->bytes)
        fprintf(stderr, "\r%-12s [%s] %5.1f%% %8.1f MB/s  ETA %4.0fs", p->what, bar, 100 * frac, rate / 1e6, eta);
    else
        fprintf(stderr, "\r%-12s [%s] %llu/%llu  ETA %4.0fs", p->what, bar, (unsigned long long)p->done,
                (unsigned long long)p->total, eta);
    fflush(stderr);
}

void mp_progress_add(mp_progress *p, uint64_t n)
{
    p->done += n;
    if (!p->enabled)
        return;
    double now = mp_now();
    if (now - p->last_draw >= 0.1 || p->done >= p->total) {
        p->last_draw = now;
        draw(p, now);
    }
}

void mp_progress_finish(mp_progress *p)
{
    if (p->enabled)
        fprintf(stderr, "\r%*s\r", 80, "");
    p->enabled = false;
}
