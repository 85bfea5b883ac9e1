/* compressed-tensors export: what each canonical pack tensor is in vLLM's model, and
 * its Hugging Face module name. vLLM decides by module which tensors may be quantized
 * (its LinearBase layers and the fused MoE) and fuses some linears into one layer
 * (q, k, v into qkv_proj; gate and up into gate_up_proj; MLA's q_a and kv_a into
 * fused_qkv_a_proj), whose parts must then share one scheme. */
#ifndef MP_CT_NAMES_H
#define MP_CT_NAMES_H

#include <stdbool.h>

typedef enum {
    CT_OTHER,        /* embeddings, norms, biases, sinks, correction biases: never quantized */
    CT_FIXED_LINEAR, /* linears vLLM builds unquantized: routers, the shared-expert gate, lm_head, MTP head */
    CT_LINEAR,       /* linears vLLM quantizes: attention, dense and shared MLPs, MTP eh_proj */
    CT_EXPERT        /* routed-expert projections, loaded into vLLM's fused MoE */
} ct_role;

typedef struct {
    ct_role role;
    char layer[24];    /* "layers.3" or "mtp.0"; "" outside the layers */
    const char *fused; /* the fused vLLM layer the linear is part of ("qkv_proj", ...), or NULL */
    char fused_key[48]; /* layer + scope + fused: one per fused layer instance */
    bool fused_last;   /* the last part of the fused layer (vLLM's fp8 block rule spares it) */
    const char *what;  /* plural noun for messages about fixed linears ("routers") */
} ct_name_info;

/* Classifies a canonical tensor name (docs/FORMAT.md "Tensor names"); -1 when the
 * name is not canonical. */
int ct_classify(const char *name, ct_name_info *info);

/* The module a linear weight belongs to: source without its ".weight" suffix (caller
 * frees); NULL when source does not end in ".weight" or is out of memory. */
char *ct_module_of(const char *source);

#endif
