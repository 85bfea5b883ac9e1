/* moepack convert CKPT -o OUT.mpk: one streaming pass from a HuggingFace
 * checkpoint to a pack, quantizing on the way. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/cli.h"
#include "../core/fileio.h"
#include "../core/progress.h"
#include "../model/checkpoint.h"
#include "../model/model_json.h"
#include "../quant/calib.h"
#include "convert_bits.h"
#include "convert_calib.h"
#include "convert_commands.h"
#include "convert_part.h"
#include "pack_summary.h"
#include "quant_options.h"
#include "tiers.h"

static const char *convert_help =
    "usage: moepack convert CKPT -o OUT.mpk [options]\n\n"
    "Converts a HuggingFace checkpoint (bf16/f16/f32, FP8 block-scaled with weight_scale_inv,\n"
    "or GPT-OSS MXFP4) into a pack in one streaming pass: no intermediate copy on disk,\n"
    "memory bounded by a few tensors.\n\n"
    "  -o, --output OUT.mpk   the pack directory to write (written under a temporary name,\n"
    "                         renamed when complete)\n"
    "  --scheme S             bf16 | fp8 | w4a16 | mixed (default w4a16), or a llama.cpp grid:\n"
    "                         q8_0 q6_k q5_k q4_k q4_1 q4_0 iq4_nl iq4_xs. Linears (attention,\n"
    "                         dense and shared MLPs, routed experts) get: bf16; fp8 e4m3 with\n"
    "                         128x128 block scales; 4-bit weights; fp8 for attention, dense\n"
    "                         and shared, 4-bit for routed experts; or the grid (a 256-block\n"
    "                         grid falls back to a 32-block one when 256 does not divide the\n"
    "                         columns). Embeddings, lm_head, routers stay bf16; norms and\n"
    "                         biases keep their precision.\n"
    "  --group G              w4 group size 32 | 64 | 128 (default 128; a tensor whose input\n"
    "                         width G does not divide gets the largest group that does)\n"
    "  --sym                  symmetric w4 (no zero points; default asymmetric)\n"
    "  --nm 2:4               2:4 sparse fp8/w4 linears (attention, dense, experts); needs --calib\n"
    "  --nm-method M          sparsegpt (default; joint with the w4 grid) or wanda\n"
    "  --method M             method for w4 and the grids (default rtn):\n"
    "                         rtn   round to nearest\n"
    "                         mse   search each group's range for the least squared error;\n"
    "                               with --calib, weighted by the input's mean square (imatrix)\n"
    "                         hqq   half-quadratic: least lp-norm error (p 0.7), calibration-free\n"
    "                         awq   activation-aware scales folded into the preceding norm or\n"
    "                               linear, plus clipping search (needs --calib)\n"
    "                         gptq  Hessian-based error compensation (needs --calib)\n"
    "  --calib FILE           calibration text (tokenized with the checkpoint's tokenizer); the\n"
    "                         model is run layer by layer, each layer on the output of the already\n"
    "                         quantized layers before it\n"
    "  --calib-tokens N       at most N calibration tokens (default 131072)\n"
    "  --calib-ctx N          tokens per calibration sequence (default 512)\n"
    "  --calib-all-experts    statistics of every expert from every token (routing unchanged);\n"
    "                         default: from the tokens routed to it\n"
    "  --calib-min-tokens N   experts that saw fewer tokens fall back to calibration-free mse and\n"
    "                         are listed (default 0.5% of the calibration tokens)\n"
    "  --act-order            gptq: columns in order of decreasing activation energy (groups stay\n"
    "                         contiguous: static group grids)\n"
    "  --gptq-target T        gptq's target for each linear: original (default; the original\n"
    "                         model's output at the same tokens, from the quantized model's\n"
    "                         inputs, so later layers make up for earlier errors) or layer (its\n"
    "                         own output on the quantized model's inputs, as gptq.py)\n"
    "  --bits B               mixed precision: each linear (attention, dense, shared, expert) not\n"
    "                         set by --keep/--encode gets w4 g128, g64, g32, fp8 or bf16 so that\n"
    "                         their average is at most B bits per weight and the error, weighted\n"
    "                         by input importance and routing frequency, is least (needs --stats).\n"
    "                         Bytes are the pack's: parts padded to 64 bytes, expert records to\n"
    "                         4 KiB\n"
    "  --bits-encodings LIST  the encodings --bits chooses from (comma-separated; default\n"
    "                         w4g128,w4g64,w4g32,fp8-block,bf16), e.g. llama.cpp's grids\n"
    "                         iq4_xs,q4_k,q5_k,q6_k,q8_0\n"
    "  --bits-stacked         --bits gives all experts of a layer's gate, up or down one\n"
    "                         encoding, as GGUF stores them (one stacked tensor, one type), and\n"
    "                         counts bytes as GGUF does (tensors padded to 32 bytes)\n"
    "  --keep REGEX           tensors matching REGEX stay unquantized (repeatable)\n"
    "  --encode REGEX=ENC     tensors matching REGEX get ENC: f32 bf16 f16 fp8 fp8-tensor\n"
    "                         fp8-channel fp8-block w4g32 w4g64 w4g128 (w4 with -sym) q8_0\n"
    "                         q4_0 q4_1 q4_k q5_k q6_k iq4_nl iq4_xs\n"
    "                         (repeatable; the first matching --keep/--encode wins; REGEX is\n"
    "                         an Oniguruma regex, matched in the canonical name, e.g.\n"
    "                         layers.3.experts.7.down, and in the checkpoint name)\n"
    "  --cold-codec C         none | zstd: compress the routed-expert tiers (default none)\n"
    "  --stats STATS          routing statistics from moepack profile of the same model: order\n"
    "                         the routed experts into tiers by routing count, hottest first,\n"
    "                         and record the frequencies in the manifest\n"
    "  --tiers N              with --stats: N tiers in all (2..16, default 2): tier 0 the dense\n"
    "                         part, the routed experts split into N-1 tiers of equal counts\n"
    "  --hot-budget SIZE      with --stats: tier 1 = the hottest experts whose records fit SIZE\n"
    "                         bytes (e.g. 512K, 4M, 1G), tier 2 = the rest\n"
    "  --zstd-level N         zstd level 1..19 (default 3)\n"
    "  --allow-nonfinite      carry NaN or infinite weights of the checkpoint into the pack\n"
    "                         (default: exit 2 naming the tensor and its first bad flat index)\n"
    "  --force                replace OUT.mpk if it exists\n"
    "  --threads N            worker threads (default: all cores)\n"
    "  --json                 the summary as JSON on stdout\n"
    "  --quiet                no progress bar\n\n"
    "The output is byte-identical for the same inputs and options at any thread count.\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

typedef struct {
    mp_common_opts common;
    const char *ckpt;
    mp_quant_opts q;   /* what convert shares with quant */
    const char *stats; /* --stats: experts into tiers by routing count */
    mp_bits_request bits; /* --bits: mixed precision at this average (bits.bits 0: off) */
    mp_tier_rule tiering;
} convert_opts;

typedef struct {
    mp_pack_tally tally;
    mp_stage stage;           /* --calib: tensors calibration encoded */
    bool calibrated;
    mp_calib_report calib;
    json_t *routing_stats; /* --stats: for the manifest (handed to the writer) */
    json_t *bit_plan;      /* --bits: the plan's summary */
    mp_tier_summary tiers[MP_TIERS_MAX];
} convert_stats;

/* ---- arguments ---- */

static int parse_option(convert_opts *o, int argc, char **argv, int *i, mp_error *err)
{
    const char *v;
    int got = mp_quant_opts_parse(&o->q, argc, argv, i, err);
    if (got != 0)
        return got < 0 ? err->code : MP_OK;
    if ((got = mp_cli_value("--bits", argc, argv, i, &v, err)) != 0) {
        char *end;
        o->bits.bits = got < 0 ? 0 : strtod(v, &end);
        if (got < 0)
            return err->code;
        return *end == 0 && o->bits.bits >= 4.0 && o->bits.bits <= 16.0
                   ? MP_OK : mp_fail(err, MP_EXIT_INPUT, "--bits \"%s\": expected a number of bits per weight in 4..16", v);
    }
    if ((got = mp_cli_value("--bits-encodings", argc, argv, i, &v, err)) != 0)
        return got < 0 || mp_bits_encodings_check(v, err) != 0 ? err->code : (o->bits.encodings = v, MP_OK);
    if (strcmp(argv[*i], "--bits-stacked") == 0)
        return o->bits.stacked = true, MP_OK;
    if (strcmp(argv[*i], "--allow-nonfinite") == 0) /* the checkpoint's reads, calibration's included */
        return o->q.calib.allow_nonfinite = true, MP_OK;
    if ((got = mp_cli_value("--stats", argc, argv, i, &v, err)) != 0)
        return got < 0 ? err->code : (o->stats = v, MP_OK);
    if ((got = mp_cli_value("--tiers", argc, argv, i, &v, err)) != 0)
        return got < 0 ? err->code : mp_cli_int("--tiers", v, 2, MP_TIERS_MAX, &o->tiering.n_tiers, err);
    if ((got = mp_cli_value("--hot-budget", argc, argv, i, &v, err)) != 0)
        return got < 0 ? err->code
               : mp_parse_size(v, &o->tiering.hot_budget) == 0
                   ? MP_OK
                   : mp_fail(err, MP_EXIT_INPUT, "--hot-budget \"%s\": expected a size such as 524288, 512K, 4M or 1G", v);
    if (argv[*i][0] == '-')
        return mp_fail(err, MP_EXIT_INPUT, "unknown option \"%s\"; see moepack convert --help", argv[*i]);
    if (o->ckpt)
        return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack convert --help", argv[*i]);
    o->ckpt = argv[*i];
    return MP_OK;
}

static int parse_args(convert_opts *o, int argc, char **argv, mp_error *err)
{
    memset(o, 0, sizeof *o);
    mp_quant_opts_init(&o->q);
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        if (got < 0)
            return err->code;
        if (got == 0 && parse_option(o, argc, argv, &i, err) != MP_OK)
            return err->code;
    }
    if (o->common.help)
        return MP_OK;
    if (!o->ckpt || !o->q.out)
        return mp_fail(err, MP_EXIT_INPUT, "missing %s; see moepack convert --help", o->ckpt ? "-o OUT.mpk" : "CKPT");
    if (!o->stats && (o->tiering.n_tiers || o->tiering.hot_budget))
        return mp_fail(err, MP_EXIT_INPUT, "--tiers and --hot-budget order experts by routing count: they need "
                       "--stats STATS (from moepack profile)");
    if (o->tiering.hot_budget && o->tiering.n_tiers && o->tiering.n_tiers != 3)
        return mp_fail(err, MP_EXIT_INPUT, "--hot-budget makes 3 tiers (dense, hot, cold), not --tiers %d",
                       o->tiering.n_tiers);
    if (mp_quant_opts_check(&o->q, err) != MP_OK)
        return err->code;
    if ((o->bits.encodings || o->bits.stacked) && o->bits.bits == 0)
        return mp_fail(err, MP_EXIT_INPUT, "--bits-encodings and --bits-stacked shape the plan of --bits B: give --bits");
    if (o->bits.bits > 0 && !o->stats)
        return mp_fail(err, MP_EXIT_INPUT, "--bits weighs each tensor's error by its input statistics and routing "
                       "frequency: it needs --stats STATS (from moepack profile CKPT --text FILE -o STATS)");
    if (o->stats && !o->tiering.n_tiers)
        o->tiering.n_tiers = o->tiering.hot_budget ? 3 : 2;
    return mp_quant_opts_check_output(&o->q, err);
}

/* ---- provenance: what made the pack, without what does not change its bytes ---- */

static json_t *source_files_json(const mp_st_set *st)
{
    json_t *files = json_array();
    for (int f = 0; f < st->n_files; f++) {
        const mp_st_file *file = &st->files[f];
        const char *base = strrchr(file->path, '/');
        uint8_t *header = malloc(file->data_start);
        mp_error ignored = {0};
        char hex[17] = "";
        if (header && mp_pread_full(file->fd, header, file->data_start, 0, file->path, &ignored) == MP_OK)
            snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(header, file->data_start));
        free(header);
        json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "name", base ? base + 1 : file->path, "bytes",
                                               (json_int_t)file->file_size, "header_xxh3", hex));
    }
    return files;
}

static json_t *provenance_json(const convert_opts *o, const mp_checkpoint *ck, const convert_stats *stats)
{
    char command[8192], shared[4096], tiers[1200] = "";
    if (o->stats && o->tiering.hot_budget)
        snprintf(tiers, sizeof tiers, " --stats %s --hot-budget %llu", o->stats,
                 (unsigned long long)o->tiering.hot_budget);
    else if (o->stats)
        snprintf(tiers, sizeof tiers, " --stats %s --tiers %d", o->stats, o->tiering.n_tiers);
    if (o->bits.bits > 0) {
        size_t used = strlen(tiers);
        snprintf(tiers + used, sizeof tiers - used, " --bits %g%s%s%s", o->bits.bits,
                 o->bits.encodings ? " --bits-encodings " : "", o->bits.encodings ? o->bits.encodings : "",
                 o->bits.stacked ? " --bits-stacked" : "");
    }
    mp_quant_opts_command(&o->q, stats->calibrated, shared, sizeof shared);
    snprintf(command, sizeof command, "moepack convert %s%s%s", o->ckpt, shared, tiers);
    json_t *p = mp_quant_provenance(&o->q, command, o->ckpt, "source_files", source_files_json(&ck->st),
                                    stats->calibrated ? &stats->calib : NULL);
    if (stats->bit_plan)
        json_object_set(p, "bit_plan", stats->bit_plan);
    return p;
}

/* ---- the pass ---- */

static int convert_record(const convert_opts *o, const mp_model *m, const mp_plan *plan, int r, mp_pack_writer *w,
                          mp_progress *progress, convert_stats *stats, mp_error *err)
{
    const mp_plan_record *rec = &plan->records[r];
    mp_w4_options w4 = mp_quant_opts_w4(&o->q);
    int rc = mp_pack_record_begin(w, rec->tier, rec->layer, rec->expert, err);
    for (int k = 0; k < rec->n_parts && rc == MP_OK; k++) {
        const mp_plan_part *part = &plan->parts[rec->first_part + k];
        const mp_staged *staged = stats->calibrated ? mp_stage_find(&stats->stage, part->name) : NULL;
        mp_encoding enc;
        bool fell_back = false;
        if (staged) {
            enc = staged->enc;
            rc = mp_convert_staged_part(part, &stats->stage, staged, w, err);
            mp_progress_add(progress, mp_convert_part_source_bytes(m, part));
        } else {
            rc = mp_policy_choose(&o->q.policy, part->name, part->source, part->cls, mp_plan_source_dtype(m, part),
                                  part->rows, part->cols, &enc, &fell_back, err);
            if (rc == MP_OK)
                rc = mp_convert_part(m, part, &enc, &w4, w, progress, err);
        }
        mp_tally_tensor(&stats->tally, part->cls, part->rows, part->cols, &enc, fell_back);
    }
    if (rc == MP_OK)
        rc = mp_pack_record_end(w, err);
    stats->tally.records++;
    return rc;
}

static int run_conversion(const convert_opts *o, const mp_checkpoint *ck, const mp_plan *plan, convert_stats *stats,
                          mp_error *err)
{
    const mp_model *m = &ck->model;
    bool has_experts = false, tier_zstd[MP_TIERS_MAX] = {false};
    for (int t = 1; t < MP_TIERS_MAX; t++)
        tier_zstd[t] = o->q.zstd;
    for (int r = 0; r < plan->n_records; r++)
        has_experts |= plan->records[r].tier > 0;
    for (int p = 0; p < plan->n_parts; p++)
        stats->tally.source_bytes += mp_convert_part_source_bytes(m, &plan->parts[p]);
    int n_tiers = o->stats ? o->tiering.n_tiers : has_experts ? 2 : 1;
    mp_pack_writer *w = mp_pack_writer_new(o->q.out, n_tiers, tier_zstd, o->q.zstd_level, err);
    if (!w)
        return err->code;
    double start = mp_now();
    int rc = MP_OK;
    if (o->q.calib.calib_path) {
        mp_calib_options calib = o->q.calib;
        char *stage_path = mp_path_join(mp_pack_writer_temp_dir(w), "calib.stage");
        calib.method = o->q.method;
        calib.quiet = o->common.quiet;
        rc = stage_path ? mp_convert_calibrate(o->ckpt, m, plan, &o->q.policy, &calib, stage_path, &stats->stage,
                                               &stats->calib, err)
                        : mp_fail(err, MP_EXIT_IO, "out of memory");
        stats->calibrated = true;
        free(stage_path);
    }
    mp_progress progress;
    mp_progress_start(&progress, "convert", stats->tally.source_bytes, true, o->common.quiet);
    for (int r = 0; r < plan->n_records && rc == MP_OK; r++)
        rc = convert_record(o, m, plan, r, w, &progress, stats, err);
    mp_progress_finish(&progress);
    if (stats->calibrated)
        mp_stage_close(&stats->stage);
    stats->tally.seconds = mp_now() - start;
    if (rc == MP_OK)
        rc = mp_write_build_info(mp_pack_writer_temp_dir(w), stats->tally.seconds,
                                 stats->calibrated ? stats->calib.seconds : 0.0, err);
    if (rc == MP_OK) {
        stats->tally.pack_bytes = mp_pack_writer_bytes(w);
        rc = mp_pack_writer_finish(w, mp_model_config_json(m), provenance_json(o, ck, stats), stats->routing_stats,
                                   ck->dir, o->q.force, err);
        stats->routing_stats = NULL; /* taken over */
    } else {
        mp_pack_writer_abort(w);
    }
    return rc;
}

/* ---- tiers ---- */

/* --stats: ranks the routed experts by routing count and rebuilds the plan with
 * their tiers; the record sizes a --hot-budget needs come from the first plan. */
static int plan_tiers(const convert_opts *o, const mp_model *m, mp_plan *plan, convert_stats *stats, mp_error *err)
{
    mp_stats s;
    int rc = mp_stats_open(&s, o->stats, true, err);
    if (rc != MP_OK)
        return rc;
    size_t n = (size_t)(m->cfg.n_layers + m->cfg.n_mtp) * (size_t)m->cfg.routing.n_experts + 1;
    uint64_t *bytes = calloc(n, sizeof *bytes);
    int *tier = calloc(n, sizeof *tier);
    rc = bytes && tier ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK)
        rc = mp_tiers_check_model(&s, m, plan, o->ckpt, err);
    if (rc == MP_OK)
        rc = mp_tiers_expert_bytes(&o->q.policy, m, plan, bytes, err);
    if (rc == MP_OK) {
        stats->routing_stats = mp_tiers_assign(&s, o->stats, m, &o->tiering, bytes, tier, stats->tiers);
        if (!stats->routing_stats)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    if (rc == MP_OK) {
        mp_plan_free(plan);
        rc = mp_plan_build(plan, m, tier, err);
    }
    free(bytes);
    free(tier);
    mp_stats_close(&s);
    return rc;
}

/* ---- summary ---- */

static void print_tiers(const convert_opts *o, const convert_stats *s)
{
    printf("tiers       %d: routed experts by routing count in %s (%s)\n", o->tiering.n_tiers, o->stats,
           o->tiering.hot_budget ? "hot budget" : "equal counts");
    for (int t = 1; t < o->tiering.n_tiers; t++)
        printf("  tier %-4d %5d experts %12llu bytes %6.1f%% of the routing\n", t, s->tiers[t].experts,
               (unsigned long long)s->tiers[t].bytes, 100 * s->tiers[t].routing_share);
}

static json_t *tiers_json(const convert_opts *o, const convert_stats *s)
{
    json_t *list = json_array();
    for (int t = 1; t < o->tiering.n_tiers; t++)
        json_array_append_new(list, json_pack("{s:i, s:i, s:I, s:f}", "tier", t, "experts", s->tiers[t].experts,
                                              "bytes", (json_int_t)s->tiers[t].bytes, "routing_share",
                                              s->tiers[t].routing_share));
    return list;
}

static void print_summary(const convert_opts *o, const convert_stats *s)
{
    const mp_quant_opts *q = &o->q;
    printf("converted   %s -> %s (scheme %s, method %s, group %d%s%s)\n", o->ckpt, q->out,
           mp_scheme_name(q->policy.scheme), mp_method_name(q->method), q->policy.group,
           q->policy.sym ? ", sym" : "", q->zstd ? ", zstd experts" : "");
    printf("tensors     %d in %d records\n", s->tally.tensors, s->tally.records);
    if (o->stats)
        print_tiers(o, s);
    if (s->bit_plan)
        mp_bit_plan_print(s->bit_plan);
    if (s->calibrated)
        mp_calib_print(&q->calib, &s->calib);
    mp_tally_print_classes(&s->tally);
    char fallback[160];
    mp_policy_fallback_text(&q->policy, fallback, sizeof fallback);
    mp_tally_print_totals(&s->tally, fallback);
}

static void print_json(const convert_opts *o, const convert_stats *s)
{
    json_t *root = mp_tally_json(&s->tally, o->ckpt, o->q.out, mp_scheme_name(o->q.policy.scheme));
    if (o->stats)
        json_object_set_new(root, "tiers", tiers_json(o, s));
    if (s->bit_plan)
        json_object_set(root, "bit_plan", s->bit_plan);
    if (s->calibrated)
        json_object_set_new(root, "calibration", mp_calib_summary_json(&o->q.calib, &s->calib));
    mp_summary_print_json(root);
}

int mp_cmd_convert(int argc, char **argv, mp_error *err)
{
    convert_opts o;
    int rc = parse_args(&o, argc, argv, err);
    if (rc != MP_OK || o.common.help) {
        fputs(convert_help, rc == MP_OK ? stdout : stderr);
        mp_quant_opts_free(&o.q);
        return rc;
    }
    mp_checkpoint ck;
    rc = mp_checkpoint_open(&ck, o.ckpt, err);
    ck.model.allow_nonfinite = o.q.calib.allow_nonfinite;
    if (rc == MP_OK && ck.model.n_problems > 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: %d tensor problem%s (see moepack inspect), first: %s", o.ckpt,
                     ck.model.n_problems, ck.model.n_problems == 1 ? "" : "s", ck.model.problems[0]);
    mp_plan plan = {0};
    convert_stats stats = {0};
    if (rc == MP_OK)
        rc = mp_plan_build(&plan, &ck.model, NULL, err);
    if (rc == MP_OK && o.bits.bits > 0)
        rc = mp_convert_plan_bits(&ck.model, &plan, &o.q.policy, &o.bits, o.stats, &stats.bit_plan, err);
    if (rc == MP_OK && o.stats)
        rc = plan_tiers(&o, &ck.model, &plan, &stats, err);
    if (rc == MP_OK)
        rc = run_conversion(&o, &ck, &plan, &stats, err);
    if (rc == MP_OK && o.common.json)
        print_json(&o, &stats);
    else if (rc == MP_OK && !o.common.quiet)
        print_summary(&o, &stats);
    json_decref(stats.routing_stats);
    json_decref(stats.bit_plan);
    mp_calib_report_free(&stats.calib);
    mp_plan_free(&plan);
    if (ck.dir)
        mp_checkpoint_close(&ck);
    mp_quant_opts_free(&o.q);
    return rc;
}
