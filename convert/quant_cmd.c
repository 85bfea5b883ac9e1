/* moepack quant PACK -o OUT.mpk: re-quantizes an existing pack (typically a bf16
 * one) into a new pack with the same tiers, records, names and side files. Each
 * tensor gets the encoding convert's policy would give it; it is then copied from
 * the calibration stage, copied as stored (same encoding), or decoded to f32 and
 * encoded again, one record in memory at a time. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/cli.h"
#include "../core/fileio.h"
#include "../core/progress.h"
#include "../model/pack_open.h"
#include "convert_calib.h"
#include "convert_commands.h"
#include "pack_summary.h"
#include "quant_options.h"
#include "quant_part.h"
#include "tiers.h"

static const char *quant_help =
    "usage: moepack quant PACK -o OUT.mpk [options]\n\n"
    "Re-quantizes a pack (typically a bf16 pack from moepack convert --scheme bf16) into a new\n"
    "pack: the same tiers, records, tensor names and side files; each tensor gets the encoding\n"
    "moepack convert would give it. A tensor whose encoding stays is copied as stored; the\n"
    "others are decoded and encoded again (w4/fp8 inputs re-encoded are counted in a warning).\n"
    "Memory: one record at a time (with --calib, the calibration's).\n\n"
    "  -o, --output OUT.mpk   the pack directory to write (written under a temporary name,\n"
    "                         renamed when complete)\n"
    "  --scheme S             bf16 | fp8 | w4a16 | mixed | a grid (default w4a16), as for convert\n"
    "  --group G              w4 group size 32 | 64 | 128 (default 128)\n"
    "  --sym                  symmetric w4 (no zero points; default asymmetric)\n"
    "  --nm 2:4               2:4 sparse fp8/w4 linears (attention, dense, experts); needs --calib\n"
    "  --nm-method M          sparsegpt (default; joint with the w4 grid) or wanda\n"
    "  --method M             rtn | mse | hqq | awq | gptq (default rtn; awq and gptq need --calib)\n"
    "  --calib FILE           calibration text (tokenized with the pack's tokenizer); the model\n"
    "                         runs layer by layer from the pack's weights\n"
    "  --calib-tokens N       at most N calibration tokens (default 131072)\n"
    "  --calib-ctx N          tokens per calibration sequence (default 512)\n"
    "  --calib-all-experts    statistics of every expert from every token (routing unchanged)\n"
    "  --calib-min-tokens N   experts that saw fewer tokens fall back to calibration-free mse\n"
    "                         (default 0.5% of the calibration tokens)\n"
    "  --act-order            gptq: columns in order of decreasing activation energy\n"
    "  --gptq-target T        original (default: the input model's output at the same tokens)\n"
    "                         or layer (each linear's own output on the quantized inputs)\n"
    "  --keep REGEX           tensors matching REGEX stay unquantized (repeatable)\n"
    "  --encode REGEX=ENC     tensors matching REGEX get ENC: f32 bf16 f16 fp8 fp8-tensor\n"
    "                         fp8-channel fp8-block w4g32 w4g64 w4g128 (w4 with -sym) q8_0\n"
    "                         q4_0 q4_1 q4_k q5_k q6_k iq4_nl iq4_xs\n"
    "                         (repeatable; the first matching --keep/--encode wins)\n"
    "  --cold-codec C         none | zstd for the routed-expert tiers (default: as in PACK)\n"
    "  --zstd-level N         zstd level 1..19 (default 3)\n"
    "  --force                replace OUT.mpk if it exists\n"
    "  --threads N            worker threads (default: all cores)\n"
    "  --json                 the summary as JSON on stdout\n"
    "  --quiet                no progress bar\n\n"
    "The output is byte-identical for the same inputs and options at any thread count.\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

typedef struct {
    mp_common_opts common;
    const char *in;
    mp_quant_opts q;
} quant_opts;

typedef struct {
    mp_pack_tally tally;
    int copied, reencoded, staged;
    int lossy; /* stored as w4 or fp8 and quantized again */
    mp_stage stage;
    bool calibrated;
    mp_calib_report calib;
} quant_stats;

/* ---- arguments and input ---- */

static int parse_args(quant_opts *o, int argc, char **argv, mp_error *err)
{
    memset(o, 0, sizeof *o);
    mp_quant_opts_init(&o->q);
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        if (got == 0)
            got = mp_quant_opts_parse(&o->q, argc, argv, &i, err);
        if (got < 0)
            return err->code;
        if (got > 0)
            continue;
        if (argv[i][0] == '-')
            return mp_fail(err, MP_EXIT_INPUT, "unknown option \"%s\"; see moepack quant --help", argv[i]);
        if (o->in)
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack quant --help", argv[i]);
        o->in = argv[i];
    }
    if (o->common.help)
        return MP_OK;
    if (!o->in || !o->q.out)
        return mp_fail(err, MP_EXIT_INPUT, "missing %s; see moepack quant --help", o->in ? "-o OUT.mpk" : "PACK");
    if (mp_quant_opts_check(&o->q, err) != MP_OK)
        return err->code;
    return mp_quant_opts_check_output(&o->q, err);
}

/* A checkpoint given by mistake gets a pointer to convert, not a parse error. */
static int open_input(const quant_opts *o, mp_pack *p, mp_error *err)
{
    struct stat st;
    char *config = mp_path_join(o->in, "config.json");
    bool checkpoint = config && stat(config, &st) == 0;
    free(config);
    if (stat(o->in, &st) != 0 || !S_ISDIR(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "%s: no such pack (expected a directory with manifest.json)", o->in);
    if (!mp_is_pack(o->in) && checkpoint)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: a checkpoint, not a pack (no manifest.json): moepack convert makes a pack of it", o->in);
    if (!mp_is_pack(o->in))
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a pack (no manifest.json)", o->in);
    int rc = mp_model_pack_open(p, o->in, false, err);
    /* convert makes at most MP_TIERS_MAX tiers, and quant keeps the tiers it is given */
    if (rc == MP_OK && p->n_tiers > MP_TIERS_MAX) {
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: %d tiers, at most %d are supported", o->in, p->n_tiers, MP_TIERS_MAX);
        mp_pack_close(p);
    }
    return rc;
}

/* ---- encodings ---- */

/* What the policy calls the source dtype: the stored precision, which norms keep. */
static mp_dtype stored_dtype(const mp_encoding *e)
{
    switch (e->kind) {
    case MP_ENC_F32:
        return MP_DT_F32;
    case MP_ENC_F16:
        return MP_DT_F16;
    case MP_ENC_BF16:
        return MP_DT_BF16;
    case MP_ENC_FP8:
        return MP_DT_F8_E4M3;
    default:
        return MP_DT_U8;
    }
}

static int choose_encoding(const mp_policy *policy, const mp_pack *p, const mp_pack_tensor *t, mp_tensor_class *cls,
                           mp_encoding *enc, bool *fell_back, mp_error *err)
{
    if (mp_class_of_name(t->name, cls) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' is not a canonical name (docs/FORMAT.md): its class is unknown",
                       p->dir, t->name);
    return mp_policy_choose(policy, t->name, t->source, *cls, stored_dtype(&t->enc), t->rows, t->cols, enc, fell_back,
                            err);
}

typedef struct {
    const mp_pack *pack;
    const mp_policy *policy;
} pack_lookup;

/* The calibration's question: how the output pack will store a tensor. */
static int pack_encoding(void *user, const char *name, int64_t rows, int64_t cols, mp_encoding *enc, mp_error *err)
{
    const pack_lookup *l = user;
    int i = mp_pack_find(l->pack, name);
    if (i < 0)
        return mp_fail(err, MP_EXIT_INPUT, "calibration: tensor %s is not in %s", name, l->pack->dir);
    const mp_pack_tensor *t = &l->pack->tensors[i];
    if (t->rows * t->cols != rows * cols)
        return mp_fail(err, MP_EXIT_INPUT, "calibration: tensor %s has %lld values, the pack %lld", name,
                       (long long)(rows * cols), (long long)(t->rows * t->cols));
    mp_tensor_class cls;
    bool fell_back;
    return choose_encoding(l->policy, l->pack, t, &cls, enc, &fell_back, err);
}

/* ---- the pass ---- */

static int quant_tensor(const quant_opts *o, const mp_pack *p, int i, const uint8_t *raw, mp_pack_writer *w,
                        quant_stats *s, mp_error *err)
{
    const mp_pack_tensor *t = &p->tensors[i];
    const mp_staged *staged = s->calibrated ? mp_stage_find(&s->stage, t->name) : NULL;
    mp_tensor_class cls;
    mp_encoding enc;
    bool fell_back = false, lossy = t->enc.kind == MP_ENC_FP8 || t->enc.kind >= MP_ENC_W4;
    int rc = choose_encoding(&o->q.policy, p, t, &cls, &enc, &fell_back, err);
    if (rc != MP_OK)
        return rc;
    if (staged) {
        int64_t shape[2] = {t->rows, t->cols};
        enc = staged->enc;
        rc = mp_write_staged(t->name, t->source, t->ndim, t->ndim == 2 ? shape : shape + 1, &s->stage, staged, w, err);
        s->staged++;
        s->lossy += lossy;
    } else {
        mp_w4_options w4 = mp_quant_opts_w4(&o->q);
        bool same = mp_encoding_same(&enc, &t->enc);
        rc = mp_quant_part(t, raw, &enc, &w4, w, err);
        s->copied += same;
        s->reencoded += !same;
        s->lossy += lossy && !same;
    }
    mp_tally_tensor(&s->tally, cls, t->rows, t->cols, &enc, fell_back);
    return rc;
}

static int quant_record(const quant_opts *o, const mp_pack *p, int r, uint8_t *raw, mp_pack_writer *w,
                        quant_stats *s, mp_error *err)
{
    const mp_pack_record *rec = &p->records[r];
    int rc = mp_pack_read_record(p, r, raw, err);
    if (rc == MP_OK)
        rc = mp_pack_record_begin(w, rec->tier, rec->layer, rec->expert, err);
    for (int k = 0; k < rec->n_parts && rc == MP_OK; k++)
        rc = quant_tensor(o, p, rec->parts[k].tensor, raw + rec->parts[k].offset, w, s, err);
    if (rc == MP_OK)
        rc = mp_pack_record_end(w, err);
    s->tally.records++;
    return rc;
}

static int calibrate(const quant_opts *o, const mp_pack *p, mp_pack_writer *w, quant_stats *s, mp_error *err)
{
    mp_calib_options calib = o->q.calib;
    pack_lookup lookup = {p, &o->q.policy};
    char *stage_path = mp_path_join(mp_pack_writer_temp_dir(w), "calib.stage");
    calib.quiet = o->common.quiet;
    if (!stage_path)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = mp_calibrate_staged(o->in, &calib, pack_encoding, &lookup, stage_path, &s->stage, &s->calib, err);
    s->calibrated = true;
    free(stage_path);
    return rc;
}

/* The records one after the other, in the input's order; the largest raw record
 * is the only buffer besides the encoder's band. */
static int quant_records(const quant_opts *o, const mp_pack *p, mp_pack_writer *w, quant_stats *s, mp_error *err)
{
    uint64_t raw_max = 0, raw_total = 0;
    for (int r = 0; r < p->n_records; r++) {
        raw_max = p->records[r].raw_length > raw_max ? p->records[r].raw_length : raw_max;
        raw_total += p->records[r].raw_length;
    }
    uint8_t *raw = malloc(raw_max + 1);
    if (!raw)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory for a %llu-byte record", p->dir, (unsigned long long)raw_max);
    mp_progress progress;
    mp_progress_start(&progress, "quant", raw_total, true, o->common.quiet);
    int rc = MP_OK;
    for (int r = 0; r < p->n_records && rc == MP_OK; r++) {
        rc = quant_record(o, p, r, raw, w, s, err);
        mp_progress_add(&progress, p->records[r].raw_length);
    }
    mp_progress_finish(&progress);
    free(raw);
    return rc;
}

/* ---- provenance: the input's under "input", and what this run changed ---- */

static json_t *provenance_json(const quant_opts *o, const mp_pack *p, const quant_stats *s)
{
    char command[8192], shared[4096];
    mp_quant_opts_command(&o->q, s->calibrated, shared, sizeof shared);
    snprintf(command, sizeof command, "moepack quant %s%s", o->in, shared);
    json_t *input = json_deep_copy(json_object_get(p->manifest, "provenance"));
    return mp_quant_provenance(&o->q, command, o->in, "input", input ? input : json_object(),
                               s->calibrated ? &s->calib : NULL);
}

static int finish_pack(const quant_opts *o, const mp_pack *p, mp_pack_writer *w, quant_stats *s, mp_error *err)
{
    json_t *routing = json_object_get(p->manifest, "routing_stats");
    int rc = mp_write_build_info(mp_pack_writer_temp_dir(w), s->tally.seconds, s->calibrated ? s->calib.seconds : 0.0,
                                 err);
    if (rc != MP_OK) {
        mp_pack_writer_abort(w);
        return rc;
    }
    s->tally.pack_bytes = mp_pack_writer_bytes(w);
    return mp_pack_writer_finish(w, json_deep_copy(json_object_get(p->manifest, "model")), provenance_json(o, p, s),
                                 json_is_object(routing) ? json_deep_copy(routing) : NULL, p->dir, o->q.force, err);
}

static int run_quant(const quant_opts *o, const mp_pack *p, quant_stats *s, mp_error *err)
{
    bool tier_zstd[MP_TIERS_MAX] = {p->tiers[0].zstd};
    for (int t = 1; t < p->n_tiers; t++)
        tier_zstd[t] = o->q.zstd;
    for (int t = 0; t < p->n_tiers; t++) /* like the bytes written: the tier files */
        s->tally.source_bytes += p->tiers[t].bytes;
    mp_pack_writer *w = mp_pack_writer_new(o->q.out, p->n_tiers, tier_zstd, o->q.zstd_level, err);
    if (!w)
        return err->code;
    double start = mp_now();
    int rc = o->q.calib.calib_path ? calibrate(o, p, w, s, err) : MP_OK;
    if (rc == MP_OK)
        rc = quant_records(o, p, w, s, err);
    if (s->calibrated)
        mp_stage_close(&s->stage);
    s->tally.seconds = mp_now() - start;
    if (rc == MP_OK)
        rc = finish_pack(o, p, w, s, err);
    else
        mp_pack_writer_abort(w);
    return rc;
}

/* ---- summary ---- */

static void warn_lossy(const quant_opts *o, const quant_stats *s)
{
    if (s->lossy)
        fprintf(stderr, "moepack quant: warning: %d tensor%s stored as w4 or fp8 in %s %s decoded and quantized again: "
                "their new error adds to the old\n", s->lossy, s->lossy == 1 ? "" : "s", o->in,
                s->lossy == 1 ? "was" : "were");
}

static void print_summary(const quant_opts *o, const quant_stats *s)
{
    const mp_quant_opts *q = &o->q;
    printf("quantized   %s -> %s (scheme %s, method %s, group %d%s%s)\n", o->in, q->out,
           mp_scheme_name(q->policy.scheme), mp_method_name(q->method), q->policy.group, q->policy.sym ? ", sym" : "",
           q->zstd ? ", zstd experts" : "");
    printf("tensors     %d in %d records: %d copied as stored, %d encoded again, %d from calibration\n",
           s->tally.tensors, s->tally.records, s->copied, s->reencoded, s->staged);
    if (s->calibrated)
        mp_calib_print(&q->calib, &s->calib);
    mp_tally_print_classes(&s->tally);
    char fallback[160];
    mp_policy_fallback_text(&q->policy, fallback, sizeof fallback);
    mp_tally_print_totals(&s->tally, fallback);
}

static void print_json(const quant_opts *o, const quant_stats *s)
{
    json_t *root = mp_tally_json(&s->tally, o->in, o->q.out, mp_scheme_name(o->q.policy.scheme));
    json_object_set_new(root, "copied", json_integer(s->copied));
    json_object_set_new(root, "encoded_again", json_integer(s->reencoded));
    json_object_set_new(root, "from_calibration", json_integer(s->staged));
    json_object_set_new(root, "lossy_requantized", json_integer(s->lossy));
    if (s->calibrated)
        json_object_set_new(root, "calibration", mp_calib_summary_json(&o->q.calib, &s->calib));
    mp_summary_print_json(root);
}

static int quant_pack(quant_opts *o, mp_error *err)
{
    mp_pack p;
    int rc = open_input(o, &p, err);
    if (rc != MP_OK)
        return rc;
    if (!o->q.zstd_given) /* the expert tiers keep their codec */
        o->q.zstd = p.n_tiers > 1 && p.tiers[1].zstd;
    quant_stats stats = {.stage = {.fd = -1}};
    rc = run_quant(o, &p, &stats, err);
    if (rc == MP_OK)
        warn_lossy(o, &stats);
    if (rc == MP_OK && o->common.json)
        print_json(o, &stats);
    else if (rc == MP_OK && !o->common.quiet)
        print_summary(o, &stats);
    mp_calib_report_free(&stats.calib);
    mp_pack_close(&p);
    return rc;
}

int mp_cmd_quant(int argc, char **argv, mp_error *err)
{
    quant_opts o;
    int rc = parse_args(&o, argc, argv, err);
    if (rc == MP_OK && o.common.help)
        fputs(quant_help, stdout);
    else if (rc == MP_OK)
        rc = quant_pack(&o, err);
    mp_quant_opts_free(&o.q);
    return rc;
}
