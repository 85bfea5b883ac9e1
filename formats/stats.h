/* Calibration statistics (docs/stats.md): what `moepack profile` measures over a
 * text, read by `convert --stats` (expert tiers) and the calibrated quantizers.
 * Per MoE layer and routed expert: the routing count and the gate-weight mass;
 * per linear: the input rows seen and the mean square of each input channel
 * (llama.cpp's importance matrix). One file: a 64-byte prefix, a JSON header
 * (provenance and an index of the arrays), then the arrays. */
#ifndef MP_STATS_H
#define MP_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/name_index.h"

#define MP_STATS_MAGIC "MPSTATS1"
#define MP_STATS_VERSION 1
#define MP_STATS_PREFIX_BYTES 64

/* One linear's input statistics. */
typedef struct {
    const char *name;     /* canonical: "layers.0.attn.q", "layers.0.experts.3.down", "lm_head" */
    int64_t cols;         /* input channels */
    uint64_t rows;        /* input rows seen; for a routed expert, the tokens routed to it */
    const float *mean_sq; /* [cols]: per channel the mean of x² over the rows (0 when rows = 0) */
} mp_stats_linear;

/* What the writer stores besides the caller's provenance. */
typedef struct {
    uint64_t tokens;        /* token positions profiled */
    int n_layers;           /* MoE layers with routing statistics */
    const int *layers;      /* their indices, increasing */
    int n_experts;          /* routed experts per layer */
    const uint64_t *counts; /* [n_layers * n_experts]: tokens routed to each expert */
    const double *mass;     /* [n_layers * n_experts]: sum of the gate weights it received */
    int n_linears;
    const mp_stats_linear *linears;
} mp_stats_data;

/* Writes path under a temporary name and renames it when complete. header is a
 * JSON object with the provenance (model identity, text, ...) and is taken over;
 * the writer adds format, version, tokens and the indexes of the arrays. */
int mp_stats_write(const char *path, json_t *header, const mp_stats_data *d, mp_error *err);

/* One entry of the linear index; name is owned by the header JSON. */
typedef struct {
    const char *name;
    int64_t cols;
    uint64_t rows, offset; /* offset in the data section */
} mp_stats_entry;

/* An opened stats file: header and routing arrays in memory, each linear's
 * array read on demand, so one lookup does not decode the whole file. */
typedef struct {
    char *path;
    int fd;
    json_t *header;
    uint64_t data_start, data_bytes, data_xxh3;
    uint64_t tokens;
    int n_layers, n_experts;
    int *layers;
    uint64_t *counts; /* [n_layers * n_experts] */
    double *mass;
    int n_linears;
    mp_stats_entry *linears;
    const char **names;
    mp_name_index index;
} mp_stats;

/* Validates prefix, header and index (exit 2 malformed, 3 checksum mismatch),
 * and the counts against each other: tokens = text.n_chunks x text.ctx, every
 * layer's routing counts sum to tokens x model.top_k, a linear's rows are tokens
 * or, for a routed expert, its routing count; with verify_data also streams the
 * data section through its checksum. */
int mp_stats_open(mp_stats *s, const char *path, bool verify_data, mp_error *err);
void mp_stats_close(mp_stats *s);
/* Index of the linear named name, or -1. */
int mp_stats_find(const mp_stats *s, const char *name);
/* Reads linear i's cols mean squares into mean_sq. */
int mp_stats_read_linear(const mp_stats *s, int i, float *mean_sq, mp_error *err);
/* The model statistics are applied to, as mp_stats_check_model compares it. */
typedef struct {
    const char *path; /* the checkpoint, for messages */
    const char *architecture;
    int vocab, hidden, n_layers, n_experts, top_k;
    const bool *moe;          /* [n_layers]: the MoE layers, which need routing counts */
    int n_linears;
    const char *const *names; /* the model's linears, canonical names */
    const int64_t *cols;      /* their input channels */
} mp_stats_model;

/* The one check of a stats file against the model it is applied to: identity,
 * routing counts for every MoE layer, and the width of every linear both have
 * (exit 2, naming the file and the header field). */
int mp_stats_check_model(const mp_stats *s, const mp_stats_model *m, mp_error *err);

/* The row of layer in counts/mass (counts + row * n_experts), or -1 when the
 * file has no routing statistics for it. */
int mp_stats_layer_row(const mp_stats *s, int layer);

#endif
