/* The class of a tensor of the canonical model: what it is for, which decides its
 * default encoding, the tier it goes to and the row of the summaries it is counted in. */
#ifndef MP_TENSOR_CLASS_H
#define MP_TENSOR_CLASS_H

typedef enum {
    MP_CLASS_EMBED,
    MP_CLASS_HEAD,
    MP_CLASS_NORM,    /* norms, biases, sinks, correction biases: small vectors */
    MP_CLASS_ROUTER,  /* routers and the shared-expert gate */
    MP_CLASS_ATTN,
    MP_CLASS_DENSE,   /* dense MLPs and other plain linears (MTP eh_proj) */
    MP_CLASS_SHARED,
    MP_CLASS_EXPERT,
    MP_CLASS_COUNT
} mp_tensor_class;

const char *mp_class_name(mp_tensor_class c);
/* The class of a tensor from its canonical name (docs/FORMAT.md "Tensor names"), as
 * convert's plan gives it: a pack records names, not classes. -1 for a name that is
 * not canonical. */
int mp_class_of_name(const char *name, mp_tensor_class *cls);

#endif
