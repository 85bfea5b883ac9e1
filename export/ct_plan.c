/* The export plan: each pack tensor's role and scheme, then the output tensors and
 * their shards. Nothing here reads tensor data. */
#include "ct_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"

#define DEFAULT_SHARD_BYTES 5000000000ull /* huggingface_hub's default max_shard_size, "5GB" */

void ct_label(const ct_plan *plan, int tensor, char *buf, size_t cap)
{
    const mp_pack_tensor *t = &plan->pack->tensors[tensor];
    snprintf(buf, cap, "%s (%s)", t->name, t->source);
}

void ct_shard_name(int shard, int n_shards, char *buf, size_t cap)
{
    if (n_shards == 1)
        snprintf(buf, cap, "model.safetensors");
    else
        snprintf(buf, cap, "model-%05d-of-%05d.safetensors", shard + 1, n_shards);
}

/* ---- roles and schemes ---- */

static bool same_scheme(const mp_encoding *a, const mp_encoding *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == MP_ENC_W4)
        return a->group == b->group && a->sym == b->sym;
    return a->fp8_scale == b->fp8_scale;
}

static int scheme_of(ct_plan *plan, int tensor, mp_error *err)
{
    const mp_encoding *e = &plan->pack->tensors[tensor].enc;
    if (e->kind == MP_ENC_F32 || e->kind == MP_ENC_BF16 || e->kind == MP_ENC_F16)
        return CT_UNQUANTIZED;
    if (e->kind != MP_ENC_W4 && e->kind != MP_ENC_FP8)
        return CT_GRID;
    for (int s = 0; s < plan->n_schemes; s++)
        if (same_scheme(&plan->schemes[s].enc, e))
            return s;
    if (plan->n_schemes == CT_MAX_SCHEMES)
        return mp_fail(err, MP_EXIT_INPUT, "%s: more than %d quantization schemes", plan->pack->dir,
                       CT_MAX_SCHEMES), -3;
    plan->schemes[plan->n_schemes] = (ct_scheme){.enc = *e, .first = tensor};
    return plan->n_schemes++;
}

int ct_plan_items(ct_plan *plan, const mp_pack *pack, mp_error *err)
{
    memset(plan, 0, sizeof *plan);
    plan->pack = pack;
    plan->items = calloc((size_t)pack->n_tensors + 1, sizeof *plan->items);
    if (!plan->items)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", pack->dir);
    for (int t = 0; t < pack->n_tensors; t++) {
        ct_item *it = &plan->items[t];
        if (ct_classify(pack->tensors[t].name, &it->info) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor \"%s\" has no canonical name (docs/FORMAT.md)", pack->dir,
                           pack->tensors[t].name);
        it->scheme = scheme_of(plan, t, err);
        if (it->scheme < CT_GRID)
            return err->code;
        if (it->scheme >= 0 && it->info.role == CT_EXPERT)
            plan->schemes[it->scheme].experts = true;
        if (it->info.role != CT_OTHER)
            it->module = ct_module_of(pack->tensors[t].source); /* NULL: the rules refuse it if quantized */
    }
    return MP_OK;
}

/* ---- output tensors ---- */

static int add_out(ct_plan *plan, char *name, mp_dtype dt, int ndim, int64_t d0, int64_t d1, int tensor,
                   ct_section section, mp_error *err)
{
    if (!name)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", plan->pack->dir);
    ct_out *o = &plan->out[plan->n_out++];
    *o = (ct_out){.name = name, .dtype = dt, .ndim = ndim, .shape = {d0, d1}, .tensor = tensor, .section = section};
    o->bytes = (uint64_t)(d0 * (ndim == 2 ? d1 : 1)) * (uint64_t)mp_dtype_bits(dt) / 8;
    plan->total_bytes += o->bytes;
    return MP_OK;
}

static char *suffixed(const char *module, const char *suffix)
{
    char *name = NULL;
    return asprintf(&name, "%s.%s", module, suffix) < 0 ? NULL : name;
}

static int plain_outputs(ct_plan *plan, int t, mp_error *err)
{
    const mp_pack_tensor *x = &plan->pack->tensors[t];
    mp_dtype dt = x->enc.kind == MP_ENC_F32 ? MP_DT_F32 : x->enc.kind == MP_ENC_BF16 ? MP_DT_BF16 : MP_DT_F16;
    if (x->ndim == 1)
        return add_out(plan, mp_strdup(x->source), dt, 1, x->cols, 0, t, CT_SEC_PLAIN, err);
    return add_out(plan, mp_strdup(x->source), dt, 2, x->rows, x->cols, t, CT_SEC_PLAIN, err);
}

static int fp8_outputs(ct_plan *plan, int t, mp_error *err)
{
    const mp_pack_tensor *x = &plan->pack->tensors[t];
    const char *m = plan->items[t].module;
    int rc = add_out(plan, suffixed(m, "weight"), MP_DT_F8_E4M3, 2, x->rows, x->cols, t, CT_SEC_FP8_DATA, err);
    if (rc != MP_OK)
        return rc;
    char *scale = suffixed(m, "weight_scale");
    if (x->enc.fp8_scale == MP_FP8_TENSOR) /* compressed-tensors' tensor scale has shape (1,) */
        return add_out(plan, scale, MP_DT_F32, 1, 1, 0, t, CT_SEC_FP8_SCALE, err);
    if (x->enc.fp8_scale == MP_FP8_CHANNEL)
        return add_out(plan, scale, MP_DT_F32, 2, x->rows, 1, t, CT_SEC_FP8_SCALE, err);
    int64_t b = MP_FP8_BLOCK_SIZE;
    return add_out(plan, scale, MP_DT_F32, 2, (x->rows + b - 1) / b, (x->cols + b - 1) / b, t, CT_SEC_FP8_SCALE, err);
}

static int w4_outputs(ct_plan *plan, int t, mp_error *err)
{
    const mp_pack_tensor *x = &plan->pack->tensors[t];
    const char *m = plan->items[t].module;
    int64_t groups = x->cols / x->enc.group;
    int rc = add_out(plan, suffixed(m, "weight_packed"), MP_DT_I32, 2, x->rows, x->cols / 8, t, CT_SEC_W4_PACKED, err);
    if (rc == MP_OK)
        rc = add_out(plan, suffixed(m, "weight_scale"), MP_DT_F16, 2, x->rows, groups, t, CT_SEC_W4_SCALE, err);
    if (rc == MP_OK && !x->enc.sym)
        rc = add_out(plan, suffixed(m, "weight_zero_point"), MP_DT_I32, 2, (x->rows + 7) / 8, groups, t,
                     CT_SEC_W4_ZERO, err);
    if (rc == MP_OK) /* int64, as compressed-tensors' torch.tensor(weight.shape) */
        rc = add_out(plan, suffixed(m, "weight_shape"), MP_DT_I64, 1, 2, 0, t, CT_SEC_W4_SHAPE, err);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const ct_out *const *)a)->name, (*(const ct_out *const *)b)->name);
}

/* Two pack tensors with one source would give one name twice. */
static int check_unique(const ct_plan *plan, mp_error *err)
{
    const ct_out **sorted = malloc((size_t)plan->n_out * sizeof *sorted + 1);
    if (!sorted)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", plan->pack->dir);
    for (int i = 0; i < plan->n_out; i++)
        sorted[i] = &plan->out[i];
    qsort(sorted, (size_t)plan->n_out, sizeof *sorted, by_name);
    int rc = MP_OK;
    for (int i = 1; i < plan->n_out && rc == MP_OK; i++)
        if (strcmp(sorted[i]->name, sorted[i - 1]->name) == 0) {
            char a[512], b[512];
            ct_label(plan, sorted[i - 1]->tensor, a, sizeof a);
            ct_label(plan, sorted[i]->tensor, b, sizeof b);
            rc = mp_fail(err, MP_EXIT_INPUT, "%s and %s both give the output tensor %s", a, b, sorted[i]->name);
        }
    free(sorted);
    return rc;
}

/* Bytes of the JSON-escaped name: quotes and backslashes take two, control bytes six. */
static uint64_t escaped_length(const char *s)
{
    uint64_t n = 0;
    for (; *s; s++)
        n += *s == '"' || *s == '\\' ? 2 : (unsigned char)*s < 0x20 ? 6 : 1;
    return n;
}

static uint64_t digits(uint64_t v)
{
    uint64_t n = 1;
    while (v >= 10)
        v /= 10, n++;
    return n;
}

/* The bytes of o's entry in a shard header as the safetensors writer prints it (compact
 * JSON): "NAME":{"dtype":"D","shape":[a,b],"data_offsets":[begin,end]} and a comma. */
static uint64_t entry_length(const ct_out *o, uint64_t begin)
{
    uint64_t n = escaped_length(o->name) + 3 + strlen("{\"dtype\":\"\",\"shape\":[],\"data_offsets\":[,]}") +
                 strlen(mp_dtype_name(o->dtype)) + digits(begin) + digits(begin + o->bytes) + 1;
    for (int d = 0; d < o->ndim; d++)
        n += digits((uint64_t)o->shape[d]) + (d > 0);
    return n;
}

/* Greedy in order, as huggingface_hub shards, but counting each file's header too so
 * that no file exceeds the limit: the length prefix, the braces, the metadata entry
 * {"format":"pt"}, every tensor's entry, and up to 7 bytes of padding. */
static void assign_shards(ct_plan *plan, uint64_t limit)
{
    const uint64_t empty = 8 + 2 + strlen("\"__metadata__\":{\"format\":\"pt\"}") + 7;
    uint64_t header = empty, data = 0;
    int shard = 0, in_shard = 0;
    for (int i = 0; i < plan->n_out; i++) {
        const ct_out *o = &plan->out[i];
        if (in_shard > 0 && header + entry_length(o, data) + data + o->bytes > limit) {
            shard++;
            header = empty, data = 0;
            in_shard = 0;
        }
        plan->out[i].shard = shard;
        header += entry_length(o, data);
        data += o->bytes;
        in_shard++;
    }
    plan->n_shards = shard + 1;
}

int ct_plan_outputs(ct_plan *plan, uint64_t shard_size, mp_error *err)
{
    const mp_pack *p = plan->pack;
    plan->out = calloc((size_t)p->n_tensors * 4 + 1, sizeof *plan->out);
    if (!plan->out)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    for (int r = 0; r < p->n_records; r++)
        for (int k = 0; k < p->records[r].n_parts; k++) {
            int t = p->records[r].parts[k].tensor, rc;
            int s = plan->items[t].scheme;
            if (s == CT_UNQUANTIZED)
                rc = plain_outputs(plan, t, err);
            else if (plan->schemes[s].enc.kind == MP_ENC_FP8)
                rc = fp8_outputs(plan, t, err);
            else
                rc = w4_outputs(plan, t, err);
            if (rc != MP_OK)
                return rc;
        }
    int rc = check_unique(plan, err);
    if (rc == MP_OK)
        assign_shards(plan, shard_size ? shard_size : DEFAULT_SHARD_BYTES);
    return rc;
}

void ct_plan_free(ct_plan *plan)
{
    for (int t = 0; plan->items && t < plan->pack->n_tensors; t++)
        free(plan->items[t].module);
    for (int i = 0; i < plan->n_out; i++)
        free(plan->out[i].name);
    free(plan->items);
    free(plan->out);
    memset(plan, 0, sizeof *plan);
}
