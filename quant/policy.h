/* Which encoding each tensor gets: the scheme's defaults by tensor class, then the
 * user's --keep REGEX and --encode REGEX=ENC rules (first matching rule wins), like
 * llama.cpp's --tensor-type. Regexes are Oniguruma's (core/regex.h; POSIX extended
 * patterns mean the same there), searched (not anchored) in the canonical name and in
 * the checkpoint name. */
#ifndef MP_POLICY_H
#define MP_POLICY_H

#include <stdbool.h>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../core/name_index.h"
#include "../core/regex.h"
#include "../formats/encoding.h"
#include "../model/tensor_class.h"

/* The grid schemes (q8_0 ... iq4_xs, in mp_enc_kind order) put every quantized linear on
 * that llama.cpp grid; a tensor whose columns the 256-value block does not divide falls
 * back to a 32-value grid at least as precise (q4_k -> q4_1, q5_k and q6_k -> q8_0,
 * iq4_xs -> iq4_nl), and one that 32 does not divide to bf16. */
typedef enum {
    MP_SCHEME_BF16,
    MP_SCHEME_FP8,
    MP_SCHEME_W4A16,
    MP_SCHEME_MIXED,
    MP_SCHEME_Q8_0,
    MP_SCHEME_Q4_0,
    MP_SCHEME_Q4_1,
    MP_SCHEME_Q4_K,
    MP_SCHEME_Q5_K,
    MP_SCHEME_Q6_K,
    MP_SCHEME_IQ4_NL,
    MP_SCHEME_IQ4_XS
} mp_scheme;

typedef struct {
    mp_regex *re;
    bool keep; /* else enc */
    mp_encoding enc;
    char text[128];
} mp_policy_rule;

typedef struct {
    mp_scheme scheme;
    int group; /* w4 group for quantized linears */
    bool sym;
    bool nm24; /* --nm 2:4: the scheme's fp8 and w4 linears (attention, dense, shared and routed experts) 2:4 sparse */
    int n_rules;
    mp_policy_rule *rules;
    /* convert --bits: the planner's encodings by canonical name; the user's rules
     * still come first */
    int n_planned;
    char **planned_names;
    mp_encoding *planned;
    mp_name_index planned_index;
} mp_policy;

int mp_scheme_parse(const char *text, mp_scheme *s);
const char *mp_scheme_name(mp_scheme s);

void mp_policy_init(mp_policy *p, mp_scheme scheme, int group, bool sym);
/* "--keep REGEX" (keep = true) or "--encode REGEX=ENC". */
int mp_policy_add_rule(mp_policy *p, const char *arg, bool keep, mp_error *err);
void mp_policy_free(mp_policy *p);
/* Whether a --keep/--encode rule decides this tensor. */
bool mp_policy_has_rule(const mp_policy *p, const char *name, const char *source);
/* Takes over names[n] (malloc'd strings in a malloc'd array) and encs[n]. */
int mp_policy_set_planned(mp_policy *p, char **names, mp_encoding *encs, int n, mp_error *err);

/* What a fallback (*fell_back of mp_policy_choose) means under the scheme, for summaries:
 * "took a smaller w4 group or bf16: their input width is not a multiple of 128". */
void mp_policy_fallback_text(const mp_policy *p, char *buf, size_t cap);

/* The encoding for a [rows, cols] tensor stored in the checkpoint as source_dtype.
 * A scheme's w4 falls back to a smaller group (then to bf16) when cols does not
 * divide; *fell_back says so. An explicit --encode that cannot hold the tensor is an
 * error naming it. */
int mp_policy_choose(const mp_policy *p, const char *name, const char *source, mp_tensor_class cls,
                     mp_dtype source_dtype, int64_t rows, int64_t cols, mp_encoding *out, bool *fell_back,
                     mp_error *err);

#endif
