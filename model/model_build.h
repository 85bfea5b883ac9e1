/* Internal to convert/: the lookups family adapters use to fill an mp_model.
 * A lookup that fails records a problem line naming the tensor and returns -1. */
#ifndef MP_MODEL_BUILD_H
#define MP_MODEL_BUILD_H

#include "model.h"

enum { LIN_NO_BIAS = 0, LIN_BIAS = 1 };

/* A tensor of exactly this shape; ndim 0 with shape NULL accepts any shape. */
int model_tensor(mp_model *m, bool required, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int model_vector(mp_model *m, int64_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "<prefix>.weight" [rows, cols] (+ "<prefix>.weight_scale_inv" when FP8, + "<prefix>.bias"). */
void model_linear(mp_model *m, mp_linear *lin, int64_t rows, int64_t cols, int bias, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void model_mlp(mp_model *m, mp_mlp *mlp, int64_t inter, const char *gate, const char *up,
               const char *down, const char *prefix);
void model_problem(mp_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
mp_linear model_no_linear(void);
/* "<p>.input_layernorm" and "<p>.post_attention_layernorm". */
void model_layer_norms(mp_model *m, mp_layer *L, const char *p);
/* GQA attention "<p>.self_attn.{q,k,v,o}_proj" with the config's biases and q/k norms. */
void model_gqa(mp_model *m, mp_attention *a, const char *p, bool o_bias);
/* Per-expert 2-D weights "<moe>.experts.E.{gate,up,down}_proj" (Mixtral: w1, w3, w2). */
void model_experts(mp_model *m, mp_layer *L, const char *moe, bool mixtral_names);

/* Family adapters: fill m->layers[i] (and m->mtp[j]). */
void build_llama_moe_layer(mp_model *m, int i);
void build_deepseek_layer(mp_model *m, mp_layer *layer, int i);
void build_deepseek_mtp(mp_model *m, int j);
void build_gpt_oss_layer(mp_model *m, int i);

#endif
