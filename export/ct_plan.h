/* compressed-tensors export: the plan, made from the manifest alone before anything is
 * written. Each pack tensor gets its role in vLLM's model and its quantization scheme
 * (ct_plan_items); the rules refuse what vLLM cannot load (ct_check, ct_rules.c); then
 * every output tensor is listed with its name, dtype, shape and shard (ct_plan_outputs).
 *
 * Output tensors, per pack tensor (M = the module, its source without ".weight"):
 *   f32 / bf16 / f16   source                     as stored
 *   fp8_e4m3           M.weight F8_E4M3 [N, K]     the codes
 *                      M.weight_scale F32          [1] | [N, 1] | [ceil(N/128), ceil(K/128)]
 *   w4                 M.weight_packed I32 [N, K/8] 8 codes per word, code j at bits 4j
 *                      M.weight_scale F16 [N, K/g]  the pack's f16 scales
 *                      M.weight_zero_point I32 [ceil(N/8), K/g]  asymmetric only
 *                      M.weight_shape I64 [2]       N, K */
#ifndef MP_CT_PLAN_H
#define MP_CT_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../formats/pack.h"
#include "ct_names.h"

#define CT_MAX_SCHEMES 16
#define CT_UNQUANTIZED (-1) /* f32, bf16, f16: written as they are */
#define CT_GRID (-2)        /* a llama.cpp grid: no compressed-tensors equivalent */

typedef enum {
    CT_SEC_PLAIN,     /* an unquantized tensor's bytes */
    CT_SEC_FP8_DATA,
    CT_SEC_FP8_SCALE,
    CT_SEC_W4_PACKED,
    CT_SEC_W4_SCALE,
    CT_SEC_W4_ZERO,   /* zero points repacked 8 rows per word */
    CT_SEC_W4_SHAPE
} ct_section;

typedef struct {
    char *name;
    mp_dtype dtype;
    int ndim;
    int64_t shape[2];
    uint64_t bytes;
    int tensor; /* the pack tensor it comes from */
    ct_section section;
    int shard;  /* 0-based */
} ct_out;

typedef struct {
    ct_name_info info;
    int scheme;   /* index into schemes, CT_UNQUANTIZED or CT_GRID */
    char *module; /* the module of a linear weight, else NULL */
} ct_item;

typedef struct {
    mp_encoding enc; /* w4 (group, sym) or fp8 (scale granularity) */
    int first;       /* the first pack tensor using it */
    bool experts;    /* routed experts use it */
} ct_scheme;

typedef struct {
    const mp_pack *pack;
    ct_item *items; /* one per pack tensor */
    int n_schemes;
    ct_scheme schemes[CT_MAX_SCHEMES];
    ct_out *out;
    int n_out;
    int n_shards;
    uint64_t total_bytes; /* all output tensors' bytes (the index's total_size) */
} ct_plan;

int ct_plan_items(ct_plan *plan, const mp_pack *pack, mp_error *err);
/* Exit 2 with the reason, naming the tensor, for a pack vLLM could not load. */
int ct_check(const ct_plan *plan, mp_error *err);
/* Prints one line per limit of a loadable pack (kernels that may not run, MTP). */
void ct_notes(const ct_plan *plan, FILE *out);
/* Lists the output tensors in record order and cuts them into shards of at most
 * shard_size bytes of file each (a tensor larger than that gets a shard of its own). */
int ct_plan_outputs(ct_plan *plan, uint64_t shard_size, mp_error *err);
void ct_plan_free(ct_plan *plan);

/* "layers.0.attn.q (model.layers.0.self_attn.q_proj.weight)" for messages. */
void ct_label(const ct_plan *plan, int tensor, char *buf, size_t cap);
/* "shard i of n" file name: model.safetensors when n is 1. */
void ct_shard_name(int shard, int n_shards, char *buf, size_t cap);

#endif
