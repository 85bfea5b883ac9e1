/* moepack distill --teacher CKPT|PACK --student PACK --calib FILE -o OUT.mpk: the
 * options, the summary; prune/distill.c does the work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/cli.h"
#include "distill.h"
#include "prune_commands.h"

static const char *distill_help =
    "usage: moepack distill --teacher CKPT|PACK --student PACK (--calib FILE | --tokens FILE) -o OUT.mpk\n"
    "                       [options]\n\n"
    "Fits a quantized (or pruned) pack, the student, to the model it was made from, the teacher,\n"
    "layer by layer on calibration text, on the CPU. Both run side by side, each on its own residual\n"
    "stream, one layer of each in memory at a time. For every linear the student stores in w4, a\n"
    "llama.cpp grid, fp8 or bf16 (attention, routed, shared and dense MLPs), with x_s its input rows\n"
    "in the student and x_t the teacher's at the same tokens (routed experts: the tokens the student\n"
    "routes to the expert, weighted by their gate weights), the stored Q minimises\n"
    "      sum ||W_t x_t - Q x_s||^2 = ||(W* - Q) x_s||^2 + const,  W* = W_t C H^-1,\n"
    "H = sum x_s x_s^T, C = sum x_t x_s^T: W* is formed (ridge towards W_t, 1% of mean diag H) and\n"
    "quantized by GPTQ with H onto the tensor's own encoding (same group size, symmetry, grid), so the\n"
    "pack keeps its size and exports exactly as before. Within a layer: attention first, then the\n"
    "router, refit by ridge least squares to the teacher's logits on the student's own router inputs\n"
    "(as moepack prune's router refit), then each MLP: gate and up, then down on the activations of\n"
    "the fitted gate and up. An expert the student routes fewer than 0.5% of the tokens to keeps its\n"
    "tensors. Norms, embeddings, the head and biases are kept as stored. A student pruned by\n"
    "moepack prune (fewer experts) maps each expert to its teacher expert by provenance.prune; a\n"
    "merged expert is fitted to the teacher's expert of its own id. The output is the student with\n"
    "the fitted tensors replaced, everything else copied byte for byte; the manifest's provenance\n"
    "gains a \"distill\" record with per layer the relative output error before and after.\n\n"
    "  --teacher CKPT|PACK    the reference model: checkpoint directory or pack\n"
    "  --student PACK         the pack to fit (any scheme moepack writes)\n"
    "  -o, --output OUT.mpk   the pack to write (under a temporary name, renamed when complete)\n"
    "  --calib FILE           calibration text, tokenized with the student's tokenizer\n"
    "  --tokens FILE          or its token ids (space-separated), instead of --calib\n"
    "  --calib-tokens N       at most N calibration tokens (default 131072)\n"
    "  --calib-ctx N          tokens per calibration sequence (default 512)\n"
    "  --act-order            GPTQ visits columns by decreasing activation energy\n"
    "  --keep-router          do not refit the routers\n"
    "  --allow-nonfinite      read a checkpoint teacher's NaN or infinite weights as they are\n"
    "                         (default: exit 2 naming the tensor and the first bad index)\n"
    "  --force                replace OUT.mpk if it exists\n"
    "  --threads N            worker threads (default: all cores); the output is the same at any N\n"
    "  --json                 the summary as JSON on stdout\n"
    "  --quiet                no progress bar\n\n"
    "Memory: both residual streams of the calibration tokens, one layer of each model.\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

typedef struct {
    mp_common_opts common;
    mp_distill_options d;
    int calib_tokens;
} distill_opts;

static int parse_value(distill_opts *o, const char *flag, const char *v, mp_error *err)
{
    if (strcmp(flag, "--output") == 0 || strcmp(flag, "-o") == 0)
        o->d.out = v;
    else if (strcmp(flag, "--teacher") == 0)
        o->d.teacher = v;
    else if (strcmp(flag, "--student") == 0)
        o->d.student = v;
    else if (strcmp(flag, "--calib") == 0)
        o->d.calib = v;
    else if (strcmp(flag, "--tokens") == 0)
        o->d.tokens = v;
    else if (strcmp(flag, "--calib-ctx") == 0)
        return mp_cli_int("--calib-ctx", v, 2, 1 << 20, &o->d.ctx, err);
    else if (strcmp(flag, "--calib-tokens") == 0)
        return mp_cli_int("--calib-tokens", v, 1, 1 << 30, &o->calib_tokens, err);
    return MP_OK;
}

static int check_args(const distill_opts *o, mp_error *err)
{
    const mp_distill_options *d = &o->d;
    if (!d->teacher || !d->student || !d->out || !d->calib == !d->tokens)
        return mp_fail(err, MP_EXIT_INPUT, "%s; see moepack distill --help",
                       !d->teacher ? "missing --teacher CKPT|PACK" : !d->student ? "missing --student PACK"
                       : !d->out ? "missing -o OUT.mpk" : "give one of --calib FILE and --tokens FILE");
    struct stat st;
    const char *calib = d->calib ? d->calib : d->tokens;
    if (stat(calib, &st) != 0 || !S_ISREG(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "%s %s: no such file", d->calib ? "--calib" : "--tokens", calib);
    if (stat(d->teacher, &st) != 0 || !S_ISDIR(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "teacher %s: no such checkpoint or pack directory", d->teacher);
    if (stat(d->student, &st) != 0 || !S_ISDIR(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "student %s: no such pack (expected a directory with manifest.json)",
                       d->student);
    if (stat(d->out, &st) == 0 && !d->force)
        return mp_fail(err, MP_EXIT_INPUT, "%s exists; --force replaces it", d->out);
    return MP_OK;
}

static int parse_args(distill_opts *o, int argc, char **argv, mp_error *err)
{
    static const char *const flags[] = {"-o", "--output", "--teacher", "--student", "--calib", "--tokens",
                                        "--calib-ctx", "--calib-tokens"};
    memset(o, 0, sizeof *o);
    o->d.ctx = 512;
    o->calib_tokens = 131072;
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        for (size_t f = 0; got == 0 && f < sizeof flags / sizeof flags[0]; f++) {
            const char *v;
            got = mp_cli_value(flags[f], argc, argv, &i, &v, err);
            if (got > 0 && parse_value(o, flags[f], v, err) != MP_OK)
                return err->code;
        }
        if (got < 0)
            return err->code;
        if (got > 0)
            continue;
        if (strcmp(argv[i], "--force") == 0)
            o->d.force = true;
        else if (strcmp(argv[i], "--act-order") == 0)
            o->d.act_order = true;
        else if (strcmp(argv[i], "--keep-router") == 0)
            o->d.keep_router = true;
        else if (strcmp(argv[i], "--allow-nonfinite") == 0)
            o->d.allow_nonfinite = true;
        else
            return mp_fail(err, MP_EXIT_INPUT, "%s \"%s\"; see moepack distill --help",
                           argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
    }
    o->d.calib_tokens = o->calib_tokens;
    o->d.quiet = o->common.quiet;
    return o->common.help ? MP_OK : check_args(o, err);
}

static void command_line(const mp_distill_options *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "moepack distill --teacher %s --student %s %s %s --calib-tokens %lld --calib-ctx %d%s%s",
             d->teacher, d->student, d->calib ? "--calib" : "--tokens", d->calib ? d->calib : d->tokens,
             (long long)d->calib_tokens, d->ctx, d->act_order ? " --act-order" : "",
             d->keep_router ? " --keep-router" : "");
}

static void print_summary(const mp_distill_options *d, const mp_distill_result *r)
{
    const mp_calib_report *c = &r->calib;
    printf("distilled   %s -> %s (teacher %s)\n", d->student, d->out, d->teacher);
    printf("calibration %lld tokens (%lld sequences of %d) from %s, %.1f s\n", (long long)c->tokens,
           (long long)c->sequences, d->ctx, d->calib ? d->calib : d->tokens, c->seconds);
    if (c->n_fallbacks)
        printf("kept        %d experts saw too few tokens and keep their tensors\n", c->n_fallbacks);
    for (int li = 0; li < c->n_fits; li++) {
        const mp_calib_fit *f = &c->fits[li];
        printf("layer %-4d %3d tensors, output error %.4g -> %.4g", li, f->tensors, f->norm > 0 ? f->before / f->norm : 0,
               f->norm > 0 ? f->after / f->norm : 0);
        if (f->router_before > 0)
            printf(", router %.4g -> %.4g", f->router_before, f->router_after);
        printf("\n");
    }
    printf("bytes       %llu -> %llu\n", (unsigned long long)r->written.bytes_in,
           (unsigned long long)r->written.bytes_out);
}

static void print_json(const mp_distill_options *d, const mp_distill_result *r)
{
    json_t *root = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:I, s:I, s:f, s:o}", "teacher", d->teacher, "student",
                             d->student, "output", d->out, "tokens", (json_int_t)r->calib.tokens, "experts_kept_unfitted",
                             r->calib.n_fallbacks, "gptq_rounded", r->calib.gptq_rounded, "bytes_in",
                             (json_int_t)r->written.bytes_in, "bytes_out", (json_int_t)r->written.bytes_out, "seconds",
                             r->calib.seconds, "layers", mp_distill_layers_json(&r->calib));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(root);
}

int mp_cmd_distill(int argc, char **argv, mp_error *err)
{
    distill_opts o;
    int rc = parse_args(&o, argc, argv, err);
    if (rc == MP_OK && o.common.help) {
        fputs(distill_help, stdout);
        return MP_OK;
    }
    if (rc != MP_OK)
        return rc;
    mp_threads_apply(o.common.threads);
    char command[8192];
    command_line(&o.d, command, sizeof command);
    o.d.command = command;
    mp_distill_result r;
    rc = mp_distill(&o.d, &r, err);
    if (rc == MP_OK && o.common.json)
        print_json(&o.d, &r);
    else if (rc == MP_OK && !o.common.quiet)
        print_summary(&o.d, &r);
    mp_distill_result_free(&r);
    return rc;
}
