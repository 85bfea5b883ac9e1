/* The GGUF export's parts (docs/export.md), shared by the export/gguf_*.c files:
 *   gguf_plan.c     which GGUF tensors a pack gives, from which pack tensors, how
 *   gguf_names.c    llama.cpp's tensor name of each canonical pack tensor, per family
 *   gguf_types.c    the GGUF type of each tensor: copied, or re-encoded to what
 *   gguf_arch.c     the architecture's metadata keys, from the model config
 *   gguf_vocab*.c   the tokenizer metadata, from the pack's tokenizer files
 *   gguf_data.c     the tensor bytes, streamed into the writer
 *   gguf_report.c   the per-class summary and the --json document */
#ifndef MP_GGUF_EXPORT_H
#define MP_GGUF_EXPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../formats/gguf_writer.h"
#include "../formats/pack.h"
#include "../model/model.h"
#include "../model/tensor_class.h"

/* How a GGUF tensor's rows come from its pack tensors. */
typedef enum {
    GG_ROWS,      /* the sources' rows in order; several sources are stacked (experts) */
    GG_ROPE,      /* llama's Q/K permutation: within each head, rows (i, i + d/2) interleave */
    GG_MLA_KB,    /* MLA: per head, the first qk_nope rows of kv_b, transposed */
    GG_MLA_VB     /* MLA: per head, the v_head rows of kv_b after them */
} gg_transform;

typedef struct {
    char name[MP_GGUF_MAX_NAME];
    int n_dims;
    int64_t ne[MP_GGUF_MAX_DIMS];
    int block;              /* ordering: -1 before the blocks, n_blocks after them */
    gg_transform transform;
    int heads;              /* GG_ROPE, GG_MLA_*: the source's heads */
    int n_src;
    int *src;               /* pack tensor indices (stacked experts: expert order) */
    mp_encoding target;     /* F32, F16, BF16 or a grid: bytes as ggml's */
    bool copied;            /* every value keeps its exact bits (rows reordered at most) */
    bool lossless;          /* re-encoded, but every value decodes to the same f32 */
    mp_tensor_class cls;
} gg_tensor;

typedef struct {
    const mp_pack *pack;
    const mp_config *cfg;
    mp_family family;
    const char *arch;
    int n_blocks;           /* block_count: layers, plus NextN layers where kept */
    int leading_dense;      /* layers before the first MoE layer */
    int64_t expert_width;   /* rows of a routed expert's gate */
    gg_tensor *t;
    int n, cap;
    int n_dropped;          /* pack tensors not exported (DeepSeek MTP layers) */
    char **warnings;        /* what llama.cpp will do differently from the pack's model */
    int n_warnings;
} gg_plan;

/* gguf_names.c: the family's llama.cpp architecture name. */
const char *gg_arch_name(mp_family f);
/* The GGUF name ("blk.3.attn_q.weight") of a canonical tensor that is neither a routed
 * expert nor MLA's kv_b, and whether its rows are permuted; false when the family does
 * not export it (a NextN layer becomes block layers + J where it is kept). */
bool gg_name_of(const gg_plan *p, const char *canon, char *out, size_t cap, gg_transform *transform);

/* gguf_plan.c */
int gg_plan_build(gg_plan *p, const mp_pack *pack, const mp_config *cfg, mp_error *err);
void gg_plan_free(gg_plan *p);
int gg_plan_warn(gg_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* gguf_types.c: fills target, copied and lossless of t from its sources' encoding;
 * exit 2 when the stacked experts' encodings give different GGUF types. */
int gg_choose_type(gg_plan *p, gg_tensor *t, mp_error *err);
/* The f32 rows of [rows, cols] as target bytes (F32, F16, BF16 or a grid). */
void gg_encode_rows(mp_enc_kind target, int64_t rows, int64_t cols, const float *in, uint8_t *out);
/* Bytes of one row of cols values in target. */
uint64_t gg_row_bytes(mp_enc_kind target, int64_t cols);

/* gguf_arch.c: general.* and ARCH.* keys. config: the pack's config.json. */
int gg_arch_metadata(mp_gguf *g, gg_plan *p, json_t *config, const char *name, mp_error *err);

/* gguf_vocab.c: tokenizer.* keys from the pack's tokenizer files; summary receives
 * what was chosen ({model, pre, tokens, ...}). */
int gg_vocab_metadata(mp_gguf *g, const gg_plan *p, json_t *config, json_t **summary, mp_error *err);

/* gguf_data.c: the writer's fill callback over the plan. */
typedef struct gg_data gg_data;
gg_data *gg_data_new(const gg_plan *p, bool quiet, uint64_t total_bytes);
void gg_data_free(gg_data *d);
int gg_data_fill(void *ctx, int tensor, mp_gguf_sink *sink, mp_error *err);

/* gguf_report.c */
void gg_report_print(const gg_plan *p, const mp_gguf_files *files, const json_t *vocab, const char *pack);
json_t *gg_report_json(const gg_plan *p, const mp_gguf_files *files, json_t *vocab, const char *pack);

#endif
