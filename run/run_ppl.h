/* Perplexity through the runtime, scored exactly as `moepack reference` scores:
 * chunks of ctx tokens with BOS first, positions [ctx/2, ctx-1) predicting the next. */
#ifndef MP_RUN_PPL_H
#define MP_RUN_PPL_H

#include "generate.h"

int mp_run_perplexity(mp_runtime *r, const char *text_path, int ctx, int max_chunks, bool quiet, double *ppl,
                      int64_t *scored, mp_gen_stats *st, mp_error *err);

#endif
