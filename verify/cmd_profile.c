/* moepack profile: runs a model over a calibration text and records the
 * statistics of docs/stats.md: per MoE layer and expert the routing count and
 * gate-weight mass, per linear the mean square of every input channel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/fileio.h"
#include "../core/progress.h"
#include "../core/version.h"
#include "../engine/model_run.h"
#include "../formats/stats.h"
#include "routing_locality.h"
#include "run_options.h"
#include "verify_commands.h"

static const char *profile_help =
    "usage: moepack profile CKPT|PACK (--text FILE | --tokens FILE) -o STATS [options]\n\n"
    "Runs the model over a calibration text (tokenized once, BOS first when the tokenizer adds\n"
    "one, cut into chunks of --ctx tokens with BOS as first token, like llama-imatrix) and\n"
    "records, over every position of every chunk (docs/stats.md):\n"
    "  - per MoE layer and routed expert: the routing count and the gate-weight mass;\n"
    "  - per linear: the rows seen and the mean of x^2 of each input channel (llama.cpp's\n"
    "    importance matrix); for a routed expert over the tokens routed to it only.\n"
    "`moepack convert --stats STATS --tiers N` orders experts into tiers by routing count;\n"
    "the calibrated quantizers weight their error by the channel statistics.\n\n"
    "  --text FILE     text to run (tokenized with the model's tokenizer.json)\n"
    "  --tokens FILE   whitespace-separated token ids instead of text\n"
    "  -o STATS        output file (written to a temporary name, renamed when complete)\n"
    "  --ctx N         context length (default 256)\n"
    "  --chunks N      run only the first N chunks\n"
    "  --act MODE      activations: f32 (default), bf16 or fp8 (deployment numerics)\n"
    "  --allow-nonfinite  run a checkpoint's NaN or infinite weights as they are (default:\n"
    "                  exit 2 naming the tensor and its first bad flat index)\n"
    "  --routing-trace FILE  also write the routing decisions: a line \"token layer experts...\"\n"
    "                  per token and MoE layer, in the order a runtime meets them\n"
    "  --threads N, --quiet, --json\n\n"
    "The summary gives per layer the smallest and largest share of the routing assignments\n"
    "an expert received and lists the experts never routed to. The file is byte-identical\n"
    "at any thread count. Then the routing locality an expert-caching runtime meets: per MoE\n"
    "layer how often the next 1, 4, 16 tokens choose an expert again (against independent\n"
    "choices of the same frequencies), how much of a layer's routing its router predicts from\n"
    "the previous layer's output (top_k and 2 top_k), and the hit rates of LRU, LFU, pinned\n"
    "hottest half + LRU, static hottest and Belady's optimum for caches of 25, 50, 75 and 100%%\n"
    "of the routed experts (docs/profile.md).\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

/* One linear's running sums. */
typedef struct {
    char *name;
    int64_t cols;
    uint64_t rows;
    double *sum_sq; /* [cols] */
} linear_acc;

/* What the hooks accumulate. Hooks return nothing, so the first failure inside
 * one is kept in problem and reported after the batch. */
typedef struct {
    linear_acc *lin; /* in the order the engine first reported them */
    int n_lin, cap_lin;
    uint32_t *slots; /* name -> lin index + 1 (0 = empty), open addressing */
    uint32_t n_slots;
    int n_layers, n_experts;
    uint64_t *counts; /* [n_layers * n_experts] */
    double *mass;
    bool *routed;     /* per layer: the routing hook reported it (an MoE layer) */
    mp_locality loc;  /* routing locality, fed by the same hooks */
    char problem[256];
} profiler;

/* ---- accumulation ---- */

static uint32_t slot_of(const profiler *p, const char *name)
{
    uint32_t h = (uint32_t)XXH3_64bits(name, strlen(name)) & (p->n_slots - 1);
    while (p->slots[h] && strcmp(p->lin[p->slots[h] - 1].name, name) != 0)
        h = (h + 1) & (p->n_slots - 1);
    return h;
}

static int grow_slots(profiler *p)
{
    uint32_t n = p->n_slots ? 2 * p->n_slots : 1024;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    free(p->slots);
    p->slots = slots;
    p->n_slots = n;
    for (int i = 0; i < p->n_lin; i++)
        p->slots[slot_of(p, p->lin[i].name)] = (uint32_t)i + 1;
    return 0;
}

/* The accumulator of linear name, created at its first report; NULL when out of memory. */
static linear_acc *linear_for(profiler *p, const char *name, int64_t cols)
{
    if (2 * ((uint32_t)p->n_lin + 1) > p->n_slots && grow_slots(p) != 0)
        return NULL;
    uint32_t s = slot_of(p, name);
    if (p->slots[s])
        return &p->lin[p->slots[s] - 1];
    if (p->n_lin == p->cap_lin) {
        int cap = p->cap_lin ? 2 * p->cap_lin : 256;
        linear_acc *grown = realloc(p->lin, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        p->lin = grown;
        p->cap_lin = cap;
    }
    linear_acc *l = &p->lin[p->n_lin];
    *l = (linear_acc){mp_strdup(name), cols, 0, calloc((size_t)cols, sizeof(double))};
    if (!l->name || !l->sum_sq) {
        free(l->name);
        free(l->sum_sq);
        return NULL;
    }
    p->slots[s] = (uint32_t)++p->n_lin;
    return l;
}

/* sum[c] += x[r, c]^2 over the rows. Threads split the channels; each channel
 * adds its rows in row order, so the sums are the same at any thread count. */
static void add_squares(double *sum, const float *x, int64_t n, int64_t cols)
{
    enum { BLOCK = 64 };
    int64_t blocks = (cols + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) if (n * cols >= (1 << 16))
    for (int64_t b = 0; b < blocks; b++) {
        int64_t c0 = b * BLOCK, c1 = c0 + BLOCK < cols ? c0 + BLOCK : cols;
        for (int64_t r = 0; r < n; r++) {
            const float *row = x + r * cols;
            for (int64_t c = c0; c < c1; c++)
                sum[c] += (double)row[c] * (double)row[c];
        }
    }
}

static void on_linear_input(void *user, const char *name, const float *x, int64_t n, int64_t cols)
{
    profiler *p = user;
    if (p->problem[0])
        return;
    linear_acc *l = linear_for(p, name, cols);
    if (!l)
        snprintf(p->problem, sizeof p->problem, "out of memory for the statistics of %s", name);
    else if (l->cols != cols)
        snprintf(p->problem, sizeof p->problem, "%s: input width %lld, earlier %lld", name, (long long)cols,
                 (long long)l->cols);
    if (p->problem[0])
        return;
    add_squares(l->sum_sq, x, n, cols);
    l->rows += (uint64_t)n;
}

static void on_routing(void *user, int layer, const int *experts, const float *weights, int64_t n, int top_k)
{
    profiler *p = user;
    if (p->problem[0])
        return;
    if (layer < 0 || layer >= p->n_layers) {
        snprintf(p->problem, sizeof p->problem, "routing reported for layer %d of %d", layer, p->n_layers);
        return;
    }
    p->routed[layer] = true;
    uint64_t *counts = p->counts + (int64_t)layer * p->n_experts;
    double *mass = p->mass + (int64_t)layer * p->n_experts;
    for (int64_t i = 0; i < n * top_k; i++) {
        int x = experts[i];
        if (x < 0 || x >= p->n_experts) {
            snprintf(p->problem, sizeof p->problem, "layer %d: expert %d routed, the model has %d", layer, x,
                     p->n_experts);
            return;
        }
        counts[x]++;
        mass[x] += weights[i];
    }
    mp_locality_routing(&p->loc, layer, experts, n, top_k);
}

static void on_layer_output(void *user, int layer, const float *hidden, int64_t n, int64_t d)
{
    profiler *p = user;
    if (!p->problem[0])
        mp_locality_layer_output(&p->loc, layer, hidden, n, d);
}

static int profiler_init(profiler *p, const mp_config *cfg, mp_error *err)
{
    memset(p, 0, sizeof *p);
    p->n_layers = cfg->n_layers;
    p->n_experts = cfg->routing.n_experts > 0 ? cfg->routing.n_experts : 1;
    size_t n = (size_t)p->n_layers * (size_t)p->n_experts;
    p->counts = calloc(n + 1, sizeof *p->counts);
    p->mass = calloc(n + 1, sizeof *p->mass);
    p->routed = calloc((size_t)p->n_layers + 1, sizeof *p->routed);
    if (!p->counts || !p->mass || !p->routed || grow_slots(p) != 0)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    return MP_OK;
}

static void profiler_free(profiler *p)
{
    for (int i = 0; i < p->n_lin; i++) {
        free(p->lin[i].name);
        free(p->lin[i].sum_sq);
    }
    free(p->lin);
    free(p->slots);
    free(p->counts);
    free(p->mass);
    free(p->routed);
    mp_locality_free(&p->loc);
    memset(p, 0, sizeof *p);
}

/* ---- the run ---- */

/* Chunks per pass: about 2048 tokens, fewer when the logits of all positions
 * (lm_head sees every position here) would pass 256 MiB. */
static int batch_chunks(const mp_chunks *c, int vocab)
{
    int n = mp_batch_chunks(c->ctx);
    int64_t per_chunk = (int64_t)c->ctx * vocab * (int64_t)sizeof(float);
    while (n > 1 && n * per_chunk > (256ll << 20))
        n--;
    return n;
}

static int run_all(mp_model_run *run, const mp_chunks *c, profiler *p, bool quiet, mp_error *err)
{
    /* Every position of every chunk runs through to the logits, like llama-imatrix. */
    mp_chunks all = *c;
    all.first = 0;
    all.last = c->ctx;
    int per = batch_chunks(c, run->vocab);
    int32_t *tokens = malloc((size_t)per * (size_t)c->ctx * sizeof *tokens);
    float *logits = malloc((size_t)per * (size_t)c->ctx * (size_t)run->vocab * sizeof *logits);
    int rc = tokens && logits ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    mp_engine_hooks hooks = {p, on_linear_input, on_routing, on_layer_output};
    mp_progress progress;
    mp_progress_start(&progress, "profile", (uint64_t)c->n_chunks, false, quiet);
    for (int64_t c0 = 0; !rc && c0 < c->n_chunks; c0 += per) {
        int n = c->n_chunks - c0 < per ? (int)(c->n_chunks - c0) : per;
        mp_locality_begin_batch(&p->loc, c0 * c->ctx);
        rc = mp_model_run_batch(run, &all, c0, n, tokens, logits, &hooks, err);
        if (!rc && p->problem[0])
            rc = mp_fail(err, MP_EXIT_IO, "%s", p->problem);
        if (!rc && p->loc.problem[0])
            rc = mp_fail(err, MP_EXIT_IO, "%s", p->loc.problem);
        mp_progress_add(&progress, (uint64_t)n);
    }
    mp_progress_finish(&progress);
    free(tokens);
    free(logits);
    return rc;
}

/* ---- the file ---- */

static json_t *provenance(const mp_run_options *o, const mp_model_run *run, const mp_chunks *c)
{
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)c->text_xxh3);
    return json_pack("{s:s, s:o, s:s, s:s, s:s, s:{s:s, s:s, s:I, s:s, s:i, s:i, s:I, s:I}}", "tool",
                     "moepack " MP_VERSION, "model", mp_model_identity(mp_wsrc_config(&run->src)), "source", o->model,
                     "source_kind", run->src.is_pack ? "pack" : "checkpoint", "act", o->act_name, "text", "kind",
                     o->text ? "text" : "tokens", "path", o->text ? o->text : o->tokens, "bytes",
                     (json_int_t)c->text_bytes, "xxh3", hash, "ctx", c->ctx, "bos", c->bos, "n_tokens",
                     (json_int_t)c->n_tokens, "n_chunks", (json_int_t)c->n_chunks);
}

/* Means from the sums, one linear at a time so the f64 sums and the f32 means
 * are never both whole in memory. */
static int finish_means(profiler *p, mp_stats_linear *out, mp_error *err)
{
    for (int i = 0; i < p->n_lin; i++) {
        linear_acc *l = &p->lin[i];
        float *mean = malloc((size_t)l->cols * sizeof *mean);
        if (!mean)
            return mp_fail(err, MP_EXIT_IO, "out of memory");
        for (int64_t c = 0; c < l->cols; c++)
            mean[c] = l->rows ? (float)(l->sum_sq[c] / (double)l->rows) : 0.0f;
        free(l->sum_sq);
        l->sum_sq = NULL;
        out[i] = (mp_stats_linear){l->name, l->cols, l->rows, mean};
    }
    return MP_OK;
}

/* Counts and mass of the MoE layers only, in layer order. */
static int routed_layers(const profiler *p, int *layers, uint64_t *counts, double *mass)
{
    int n = 0;
    for (int li = 0; li < p->n_layers; li++) {
        if (!p->routed[li])
            continue;
        layers[n] = li;
        memcpy(counts + (size_t)n * p->n_experts, p->counts + (size_t)li * p->n_experts,
               (size_t)p->n_experts * sizeof *counts);
        memcpy(mass + (size_t)n * p->n_experts, p->mass + (size_t)li * p->n_experts,
               (size_t)p->n_experts * sizeof *mass);
        n++;
    }
    return n;
}

static int write_stats(const mp_run_options *o, const mp_model_run *run, const mp_chunks *c, profiler *p,
                       mp_error *err)
{
    size_t table = (size_t)p->n_layers * (size_t)p->n_experts;
    mp_stats_linear *lin = calloc((size_t)p->n_lin + 1, sizeof *lin);
    int *layers = malloc(((size_t)p->n_layers + 1) * sizeof *layers);
    uint64_t *counts = malloc((table + 1) * sizeof *counts);
    double *mass = malloc((table + 1) * sizeof *mass);
    int rc = lin && layers && counts && mass ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc) rc = finish_means(p, lin, err);
    if (!rc) {
        mp_stats_data d = {(uint64_t)(c->n_chunks * c->ctx), 0, layers, p->n_experts, counts, mass, p->n_lin, lin};
        d.n_layers = routed_layers(p, layers, counts, mass);
        rc = mp_stats_write(o->output, provenance(o, run, c), &d, err);
    }
    for (int i = 0; lin && i < p->n_lin; i++)
        free((float *)lin[i].mean_sq);
    free(lin);
    free(layers);
    free(counts);
    free(mass);
    return rc;
}

/* ---- summary ---- */

typedef struct {
    double min_share, max_share;
    int never; /* experts never routed to */
} layer_summary;

static layer_summary summarize_layer(const profiler *p, int li)
{
    const uint64_t *counts = p->counts + (size_t)li * p->n_experts;
    uint64_t total = 0;
    for (int x = 0; x < p->n_experts; x++)
        total += counts[x];
    layer_summary s = {1, 0, 0};
    for (int x = 0; x < p->n_experts; x++) {
        double share = total ? (double)counts[x] / (double)total : 0;
        s.min_share = share < s.min_share ? share : s.min_share;
        s.max_share = share > s.max_share ? share : s.max_share;
        s.never += counts[x] == 0;
    }
    return s;
}

static json_t *summary_json(const mp_run_options *o, const mp_chunks *c, const profiler *p, double secs)
{
    json_t *layers = json_array();
    int never = 0;
    for (int li = 0; li < p->n_layers; li++) {
        if (!p->routed[li])
            continue;
        layer_summary s = summarize_layer(p, li);
        json_t *unused = json_array();
        for (int x = 0; x < p->n_experts; x++)
            if (p->counts[(size_t)li * p->n_experts + x] == 0)
                json_array_append_new(unused, json_integer(x));
        never += s.never;
        json_array_append_new(layers, json_pack("{s:i, s:f, s:f, s:o}", "layer", li, "min_share", s.min_share,
                                                "max_share", s.max_share, "never_routed", unused));
    }
    json_int_t tokens = (json_int_t)(c->n_chunks * c->ctx);
    return json_pack("{s:s, s:I, s:I, s:i, s:i, s:i, s:o, s:i, s:o, s:f, s:f}", "stats", o->output, "tokens", tokens,
                     "chunks", (json_int_t)c->n_chunks, "ctx", c->ctx, "experts", p->n_experts, "linears", p->n_lin,
                     "layers", layers, "never_routed", never, "routing_locality", mp_locality_json(&p->loc),
                     "seconds", secs, "tokens_per_s", secs > 0 ? (double)tokens / secs : 0.0);
}

static int never_in_layer(const profiler *p, int li)
{
    return p->routed[li] ? summarize_layer(p, li).never : 0;
}

/* "never routed  layer 2: experts 3 5; layer 7: expert 1 (3 experts ...)" */
static void print_never_routed(const profiler *p)
{
    int total = 0;
    printf("never routed ");
    for (int li = 0; li < p->n_layers; li++) {
        int n = never_in_layer(p, li);
        if (n == 0)
            continue;
        printf("%slayer %d: expert%s", total ? "; " : "", li, n > 1 ? "s" : "");
        for (int x = 0; x < p->n_experts; x++)
            if (p->counts[(size_t)li * p->n_experts + x] == 0)
                printf(" %d", x);
        total += n;
    }
    if (total)
        printf(" (%d expert%s: their calibration has no data; profile a longer text)\n", total, total > 1 ? "s" : "");
    else
        printf("none\n");
}

static void print_summary(const mp_run_options *o, const mp_chunks *c, const profiler *p, double secs)
{
    int64_t tokens = c->n_chunks * c->ctx;
    printf("%s: %lld tokens (%lld chunks of %d), %d linears, %.2f s, %.0f tokens/s\n", o->output, (long long)tokens,
           (long long)c->n_chunks, c->ctx, p->n_lin, secs, secs > 0 ? (double)tokens / secs : 0.0);
    printf("\nlayer  min share  max share  (share of the routing assignments; uniform %.4f)\n",
           1.0 / p->n_experts);
    for (int li = 0; li < p->n_layers; li++) {
        if (!p->routed[li])
            continue;
        layer_summary s = summarize_layer(p, li);
        printf("%5d  %9.4f  %9.4f\n", li, s.min_share, s.max_share);
    }
    printf("\n");
    print_never_routed(p);
    mp_locality_print(&p->loc);
}

/* Takes "--routing-trace FILE" out of argv (the shared run options do not know it);
 * argc is updated. */
static int take_trace_option(int *argc, char **argv, const char **trace, mp_error *err)
{
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--routing-trace") != 0) {
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc)
            return mp_fail(err, MP_EXIT_INPUT, "--routing-trace: expected a file name");
        *trace = argv[++i];
    }
    *argc = out;
    argv[out] = NULL;
    return MP_OK;
}

int mp_cmd_profile(int argc, char **argv, mp_error *err)
{
    mp_run_options o;
    const char *trace = NULL;
    int rc = take_trace_option(&argc, argv, &trace, err);
    if (!rc)
        rc = mp_run_options_parse(&o, argc, argv, MP_RUN_NEEDS_OUTPUT, profile_help, err);
    if (rc || o.common.help)
        return rc;
    mp_model_run run;
    mp_chunks c;
    profiler p = {0};
    double t0 = mp_now();
    rc = mp_model_run_open(&run, o.model, o.act, o.allow_nonfinite, err);
    if (rc)
        return rc;
    rc = mp_chunks_load(&c, o.model, o.text, o.tokens, o.ctx, o.max_chunks, err);
    if (!rc) rc = profiler_init(&p, mp_wsrc_config(&run.src), err);
    if (!rc) rc = mp_locality_init(&p.loc, run.engine, &run.src, c.ctx, c.n_chunks * c.ctx, err);
    if (!rc) rc = run_all(&run, &c, &p, o.common.quiet || o.common.json, err);
    if (!rc) rc = mp_locality_finish(&p.loc, err);
    if (!rc) rc = write_stats(&o, &run, &c, &p, err);
    if (!rc && trace) rc = mp_locality_write_trace(&p.loc, trace, err);
    double secs = mp_now() - t0;
    if (!rc && o.common.json) {
        json_t *summary = summary_json(&o, &c, &p, secs);
        json_dumpf(summary, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(summary);
    } else if (!rc && !o.common.quiet) {
        print_summary(&o, &c, &p, secs);
    }
    profiler_free(&p);
    mp_chunks_free(&c);
    mp_model_run_close(&run);
    return rc;
}
