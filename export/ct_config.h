/* compressed-tensors export: the JSON files of the checkpoint. config.json is the
 * pack's copy with "quantization_config" as llm-compressor writes it: one config group
 * per scheme (W4A16-style int4 groups; FP8_BLOCK / FP8_DYNAMIC-style fp8 with dynamic
 * activations), "ignore" listing every unquantized linear, status "compressed". */
#ifndef MP_CT_CONFIG_H
#define MP_CT_CONFIG_H

#include <jansson.h>

#include "ct_plan.h"

/* The quantization_config object; NULL when nothing is quantized (a plain checkpoint). */
json_t *ct_quantization_config(const ct_plan *plan, mp_error *err);
/* "pack-quantized", "float-quantized", "mixed-precision", or "none". */
const char *ct_format_name(const ct_plan *plan);
/* Writes dir/config.json: the pack's config.json with qc (stolen; NULL removes any). */
int ct_write_config(const ct_plan *plan, json_t *qc, const char *dir, mp_error *err);
/* Writes dir/model.safetensors.index.json (sharded output only). */
int ct_write_index(const ct_plan *plan, const char *dir, mp_error *err);
/* Copies generation_config.json and the tokenizer files the pack carries into dir. */
int ct_copy_side_files(const ct_plan *plan, const char *dir, mp_error *err);

#endif
