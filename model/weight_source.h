/* The one interface through which the engine (and verify) reads weights: a
 * checkpoint directory or a pack, tensors named canonically (docs/FORMAT.md
 * "Tensor names"), delivered as f32 whatever their encoding. */
#ifndef MP_WEIGHT_SOURCE_H
#define MP_WEIGHT_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "../formats/pack.h"
#include "checkpoint.h"
#include "plan.h"

typedef struct {
    bool is_pack;
    char *path;
    mp_config pack_cfg;    /* packs: read from the config.json the pack carries */
    mp_checkpoint ckpt;    /* checkpoints */
    mp_plan plan;          /* checkpoints: canonical name -> stored tensor */
    const char **names;
    mp_name_index index;
    mp_pack pack;
    int cached_record;     /* packs: the last record read, so an expert is read once */
    uint8_t *raw;
    uint64_t raw_cap;
} mp_weight_source;

/* path: a checkpoint directory or a pack directory. */
int mp_wsrc_open(mp_weight_source *s, const char *path, mp_error *err);
void mp_wsrc_close(mp_weight_source *s);
const mp_config *mp_wsrc_config(const mp_weight_source *s);
/* A pack whose manifest says moepack prune made it (provenance.prune): it may hold
 * fewer experts than the model it was made from. */
bool mp_wsrc_pruned(const mp_weight_source *s);
bool mp_wsrc_has(const mp_weight_source *s, const char *name);
/* Shape of a tensor ([1, n] for vectors); -1 when absent. */
int mp_wsrc_shape(const mp_weight_source *s, const char *name, int64_t *rows, int64_t *cols);
/* The whole tensor as f32; its shape must be [rows, cols] (vectors: rows 1). */
int mp_wsrc_read(mp_weight_source *s, const char *name, int64_t rows, int64_t cols, float *out, mp_error *err);
/* The tensors, by index, in storage order. */
int mp_wsrc_count(const mp_weight_source *s);
const char *mp_wsrc_name(const mp_weight_source *s, int i);
/* Number of values of all tensors together (what the engine holds in f32). */
uint64_t mp_wsrc_total_values(const mp_weight_source *s);
/* How the tensor is stored, for reports: "w4g128", "fp8-block", "bf16", ... */
void mp_wsrc_encoding(const mp_weight_source *s, const char *name, char *buf, size_t cap);

#endif
