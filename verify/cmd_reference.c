/* moepack reference: runs a model over a text by llama.cpp's perplexity protocol
 * and records tokens, top-K log-probs and log-sum-exp per scored position. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/cli.h"
#include "../core/progress.h"
#include "../engine/model_run.h"
#include "../formats/reference.h"
#include "metrics.h"
#include "run_options.h"
#include "verify_commands.h"

static const char *reference_help =
    "usage: moepack reference CKPT|PACK (--text FILE | --tokens FILE) -o REF [options]\n\n"
    "Runs the model over the text exactly as llama.cpp's perplexity tool does (tokenize once,\n"
    "BOS first when the tokenizer adds one, chunks of --ctx tokens with BOS as first token,\n"
    "the second half of each chunk scored) and writes a reference file (docs/reference.md):\n"
    "every chunk's tokens and, per scored position, the log-sum-exp of the logits and the\n"
    "log-probabilities of the whole vocabulary in 16 bits (as llama.cpp's --kl-divergence-base),\n"
    "or only the top K exactly, zstd-compressed. `moepack verify --reference REF` compares\n"
    "packs against it without the original model.\n\n"
    "  --text FILE     text to run (tokenized with the model's tokenizer.json)\n"
    "  --tokens FILE   whitespace-separated token ids instead of text\n"
    "  -o REF          output file (written to a temporary name, renamed when complete)\n"
    "  --ctx N         context length (default 256)\n"
    "  --top-k K       keep only the K largest log-probs per position (smaller file; the KLD\n"
    "                  against it is a lower bound). Default 0: the whole vocabulary\n"
    "  --chunks N      run only the first N chunks\n"
    "  --act MODE      activations: f32 (default), bf16 or fp8 (deployment numerics)\n"
    "  --allow-nonfinite  run a checkpoint's NaN or infinite weights as they are (default:\n"
    "                  exit 2 naming the tensor and its first bad flat index)\n"
    "  --threads N, --quiet, --json\n\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

typedef struct {
    mp_ref_writer writer;
    mp_ref_chunk chunk;
    double nll;
    int64_t scored;
} recorder;

/* Scores one chunk's positions and appends them to the file. */
static int record_chunk(recorder *rec, const mp_chunks *c, const int32_t *tokens, const float *logits, int vocab,
                        int k, mp_error *err)
{
    int n = mp_chunks_scored(c);
    memcpy(rec->chunk.tokens, tokens, (size_t)c->ctx * sizeof *tokens);
    #pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) {
        const float *row = logits + (int64_t)j * vocab;
        double lse = mp_logsumexp(row, vocab);
        rec->chunk.lse[j] = (float)lse;
        if (k == 0) {
            mp_ref_quantize_row(row, vocab, lse, &rec->chunk.max_lp[j], rec->chunk.q + (int64_t)j * vocab);
            continue;
        }
        mp_top_k(row, vocab, k, rec->chunk.ids + (int64_t)j * k, rec->chunk.logprobs + (int64_t)j * k);
        for (int i = 0; i < k; i++)
            rec->chunk.logprobs[(int64_t)j * k + i] = (float)(rec->chunk.logprobs[(int64_t)j * k + i] - lse);
    }
    for (int j = 0; j < n; j++) {
        const float *row = logits + (int64_t)j * vocab;
        rec->nll += (double)rec->chunk.lse[j] - row[tokens[c->first + j + 1]];
        rec->scored++;
    }
    return mp_ref_writer_chunk(&rec->writer, &rec->chunk, err);
}

static int run_all(mp_model_run *run, const mp_chunks *c, recorder *rec, int k, bool quiet, mp_error *err)
{
    int per = mp_batch_chunks(c->ctx), n_scored = mp_chunks_scored(c);
    int32_t *tokens = malloc((size_t)per * (size_t)c->ctx * sizeof *tokens);
    float *logits = malloc((size_t)per * (size_t)n_scored * (size_t)run->vocab * sizeof *logits);
    int rc = tokens && logits ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    mp_progress progress;
    mp_progress_start(&progress, "reference", (uint64_t)c->n_chunks, false, quiet);
    for (int64_t c0 = 0; !rc && c0 < c->n_chunks; c0 += per) {
        int n = c->n_chunks - c0 < per ? (int)(c->n_chunks - c0) : per;
        rc = mp_model_run_batch(run, c, c0, n, tokens, logits, NULL, err);
        for (int i = 0; !rc && i < n; i++)
            rc = record_chunk(rec, c, tokens + (int64_t)i * c->ctx, logits + (int64_t)i * n_scored * run->vocab,
                              run->vocab, k, err);
        mp_progress_add(&progress, (uint64_t)n);
    }
    mp_progress_finish(&progress);
    free(tokens);
    free(logits);
    return rc;
}

static json_t *footer(const mp_run_options *o, const mp_model_run *run, const mp_chunks *c, const recorder *rec)
{
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)c->text_xxh3);
    double mean = rec->nll / (double)rec->scored;
    return json_pack("{s:s, s:i, s:o, s:s, s:s, s:s, s:{s:s, s:s, s:I, s:s}, s:i, s:i, s:I, s:I, s:i, s:i, s:i, "
                     "s:I, s:f, s:f}",
                     "format", "moepack-reference", "version", 1, "model", mp_model_identity(mp_wsrc_config(&run->src)),
                     "source", o->model, "source_kind", run->src.is_pack ? "pack" : "checkpoint", "act", o->act_name,
                     "text", "kind", o->text ? "text" : "tokens", "path", o->text ? o->text : o->tokens, "bytes",
                     (json_int_t)c->text_bytes, "xxh3", hash, "ctx", c->ctx, "bos", c->bos, "n_tokens",
                     (json_int_t)c->n_tokens, "n_chunks", (json_int_t)c->n_chunks, "first_scored", c->first,
                     "scored_per_chunk", mp_chunks_scored(c), "top_k", o->top_k, "n_scored", (json_int_t)rec->scored,
                     "nll_mean", mean, "ppl", exp(mean));
}

int mp_cmd_reference(int argc, char **argv, mp_error *err)
{
    mp_run_options o;
    int rc = mp_run_options_parse(&o, argc, argv, MP_RUN_NEEDS_OUTPUT, reference_help, err);
    if (rc || o.common.help)
        return rc;
    mp_model_run run;
    mp_chunks c;
    recorder rec = {0};
    double t0 = mp_now();
    rc = mp_model_run_open(&run, o.model, o.act, o.allow_nonfinite, err);
    if (rc)
        return rc;
    rc = mp_chunks_load(&c, o.model, o.text, o.tokens, o.ctx, o.max_chunks, err);
    if (!rc && o.top_k >= run.vocab)
        o.top_k = 0;
    if (!rc && mp_ref_chunk_alloc(&rec.chunk, c.ctx, mp_chunks_scored(&c), o.top_k, run.vocab) != 0)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc) rc = mp_ref_writer_open(&rec.writer, o.output, c.ctx, mp_chunks_scored(&c), o.top_k, run.vocab, err);
    double t_run = mp_now();
    if (!rc) rc = run_all(&run, &c, &rec, o.top_k, o.common.quiet || o.common.json, err);
    t_run = mp_now() - t_run;
    if (!rc && !isfinite(rec.nll)) /* the footer's JSON cannot hold it: say why rather than fail writing */
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: the model's log-likelihood is not finite (NaN or infinite logits, "
                     "e.g. from non-finite weights): no reference written", o.model);
    if (!rc)
        rc = mp_ref_writer_finish(&rec.writer, footer(&o, &run, &c, &rec), err);
    else
        mp_ref_writer_abort(&rec.writer);
    if (!rc) {
        double ppl = exp(rec.nll / (double)rec.scored), secs = mp_now() - t0;
        double tps = (double)(c.n_chunks * c.ctx) / t_run; /* the runs alone: no loading, no tokenizing */
        if (o.common.json)
            printf("{\"reference\": \"%s\", \"ppl\": %.6f, \"chunks\": %lld, \"scored\": %lld, \"tokens_per_s\": %.1f, "
                   "\"seconds\": %.3f}\n",
                   o.output, ppl, (long long)c.n_chunks, (long long)rec.scored, tps, secs);
        else if (!o.common.quiet)
            printf("%s: PPL %.4f over %lld scored tokens (%lld chunks of %d), %.1f s, %.0f tokens/s\n", o.output, ppl,
                   (long long)rec.scored, (long long)c.n_chunks, c.ctx, secs, tps);
    }
    mp_ref_chunk_free(&rec.chunk);
    mp_chunks_free(&c);
    mp_model_run_close(&run);
    return rc;
}
