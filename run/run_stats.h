/* What a run cost: tokens/s, the expert cache's hits and reads, memory. */
#ifndef MP_RUN_STATS_H
#define MP_RUN_STATS_H

#include <jansson.h>
#include <stdio.h>

#include "generate.h"

/* The process's peak resident set (VmHWM), in bytes; 0 when unknown. */
uint64_t mp_peak_rss(void);
void mp_run_stats_print(FILE *f, const mp_runtime *r, const mp_gen_stats *st);
json_t *mp_run_stats_json(const mp_runtime *r, const mp_gen_stats *st);

#endif
