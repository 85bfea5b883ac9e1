/* moepack compare: several packs of one model measured against one reference, as
 * verify measures each (verify_run.c), tabulated with their size and bits per weight
 * so the loss of quantization methods reads side by side. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/version.h"
#include "../model/pack_open.h"
#include "../report/html_report.h"
#include "verify_commands.h"
#include "verify_run.h"

static const char *compare_help =
    "usage: moepack compare PACK... --reference REF|CKPT [--text FILE] [options]\n\n"
    "Measures every pack against the reference exactly as moepack verify does (PPL, KL\n"
    "divergence per scored token, same top-1) and prints one table, a row per pack in the\n"
    "order given: size of its tier files, bits per weight over all its tensors, PPL, mean\n"
    "and p99 KLD, same top-1 and the time convert took (from PACK/build.json), then a plot\n"
    "of mean KLD (log scale) against bits per weight with each pack marked by its row.\n"
    "The packs must all be of the reference's model; the first that is not stops the run.\n\n"
    "  --reference R     a reference file (moepack reference), or the checkpoint directory\n"
    "  --text FILE       the text (required with a checkpoint; with a file it must match)\n"
    "  --tokens FILE     token ids instead of text\n"
    "  --ctx N           context (checkpoint references; default 256)\n"
    "  --chunks N        only the first N chunks\n"
    "  --act MODE        the packs' activations: f32 (default), bf16 or fp8\n"
    "  --allow-nonfinite run a checkpoint reference's NaN or infinite weights as they are\n"
    "                    (default: exit 2 naming the tensor and its first bad flat index)\n"
    "  --report FILE     write a self-contained HTML page: the table and the plot\n"
    "  --json            an array of one object per pack on stdout instead of the table\n"
    "  --threads N, --quiet (no progress, no table)\n\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

/* ---- options ---- */

typedef struct {
    mp_run_options run; /* run.model is set to each pack in turn */
    const char **packs;
    int n_packs;
} compare_options;

/* One option at argv[*i] besides the common ones: 1 consumed, 0 not ours, -1 error.
 * compare judges nothing: verify's thresholds are not among them. */
static int parse_option(mp_run_options *o, int argc, char **argv, int *i, mp_error *err)
{
    int got = mp_run_options_parse_input(o, argc, argv, i, err);
    if (got != 0) return got;
    if ((got = mp_cli_value("--reference", argc, argv, i, &o->reference, err)) != 0) return got;
    return mp_cli_value("--report", argc, argv, i, &o->report, err);
}

static int parse_options(compare_options *c, int argc, char **argv, mp_error *err)
{
    mp_run_options *o = &c->run;
    memset(c, 0, sizeof *c);
    mp_run_options_init(o);
    c->packs = malloc((size_t)argc * sizeof *c->packs);
    if (!c->packs)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        if (got == 0)
            got = parse_option(o, argc, argv, &i, err);
        if (got < 0)
            return err->code ? err->code : MP_EXIT_INPUT;
        if (got == 0 && argv[i][0] == '-')
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack compare --help", argv[i]);
        if (got == 0)
            c->packs[c->n_packs++] = argv[i];
    }
    if (o->common.help)
        return MP_OK;
    mp_threads_apply(o->common.threads);
    if (c->n_packs == 0)
        return mp_fail(err, MP_EXIT_INPUT, "missing the packs to compare; see moepack compare --help");
    if (!o->reference)
        return mp_fail(err, MP_EXIT_INPUT, "missing --reference REF|CKPT; see moepack compare --help");
    if (o->text && o->tokens)
        return mp_fail(err, MP_EXIT_INPUT, "give --text or --tokens, not both");
    return MP_OK;
}

/* ---- one row per pack ---- */

typedef struct {
    const char *path; /* as given */
    const char *name; /* the table's and the plot's: the base name, or the path where two collide */
    char *base;
    uint64_t bytes, weights;
    double bits, build_seconds; /* NAN: no build.json, or no "seconds" in it */
    mp_logit_summary s;
} pack_row;

/* "seconds" of PACK/build.json, which convert writes; absent file or field: NAN. A file
 * that is there but unreadable is an error rather than a silent "-". */
static int read_build_seconds(const char *pack, double *seconds, mp_error *err)
{
    *seconds = NAN;
    char *path = mp_path_join(pack, "build.json");
    struct stat st;
    json_t *root = NULL;
    int rc = !path ? mp_fail(err, MP_EXIT_IO, "out of memory") : MP_OK;
    if (!rc && stat(path, &st) == 0)
        rc = mp_json_load_file(path, 1 << 20, &root, err);
    json_t *v = json_object_get(root, "seconds");
    if (!rc && root && (!json_is_object(root) || (v && (!json_is_number(v) || json_number_value(v) < 0))))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected an object whose \"seconds\" is a non-negative number", path);
    if (!rc && v)
        *seconds = json_number_value(v);
    json_decref(root);
    free(path);
    return rc;
}

/* Size and weights from the manifest: tier file bytes (headers and alignment padding
 * included, as a deployment stores them) over the values of every tensor. */
static int read_pack_facts(pack_row *row, mp_error *err)
{
    struct stat st;
    if (stat(row->path, &st) != 0 || !S_ISDIR(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "%s: no such pack directory", row->path);
    if (!mp_is_pack(row->path))
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a pack (no manifest.json); compare takes packs from moepack convert",
                       row->path);
    mp_pack p;
    int rc = mp_model_pack_open(&p, row->path, false, err);
    if (rc)
        return rc;
    for (int t = 0; t < p.n_tiers; t++)
        row->bytes += p.tiers[t].bytes;
    for (int i = 0; i < p.n_tensors; i++)
        row->weights += (uint64_t)(p.tensors[i].rows * p.tensors[i].cols);
    mp_pack_close(&p);
    row->bits = row->weights ? 8.0 * (double)row->bytes / (double)row->weights : NAN;
    return read_build_seconds(row->path, &row->build_seconds, err);
}

/* Base names read best; the full paths only where two packs share one. */
static int name_rows(pack_row *rows, int n, mp_error *err)
{
    for (int i = 0; i < n; i++) {
        char *copy = mp_strdup(rows[i].path);
        rows[i].base = copy ? mp_strdup(basename(copy)) : NULL;
        free(copy);
        if (!rows[i].base)
            return mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        rows[i].name = rows[i].base;
        for (int j = 0; j < n; j++)
            if (j != i && strcmp(rows[i].base, rows[j].base) == 0)
                rows[i].name = rows[i].path;
    }
    return MP_OK;
}

/* What all rows share, for the headings; seconds: all the runs together. */
typedef struct {
    bool reference_is_file;
    int ctx, top_k;
    int64_t chunks, scored;
    double ppl_ref, seconds;
} run_facts;

static int measure_all(const compare_options *c, pack_row *rows, run_facts *f, mp_error *err)
{
    mp_run_options o = c->run;
    bool talk = !o.common.quiet;
    for (int i = 0; i < c->n_packs; i++) {
        o.model = rows[i].path;
        mp_verify_result r;
        int rc = mp_verify_measure(&o, rows[i].name, &r, err);
        if (!rc) {
            rows[i].s = r.summary;
            *f = (run_facts){r.reference_is_file, r.ctx, r.top_k, r.chunks, r.logits.n, r.summary.ppl_ref,
                             f->seconds + r.seconds};
            if (talk)
                fprintf(stderr, "compare: %d/%d %s: KLD mean %.6f, %.1f s\n", i + 1, c->n_packs, rows[i].name,
                        r.summary.kld_mean, r.seconds);
        }
        mp_verify_result_free(&r);
        if (rc)
            return rc;
    }
    return MP_OK;
}

/* ---- the table: cells formatted once, for the terminal and the report ---- */

/* Column 1, the name, is not copied into a cell: it may be a path of any length. */
enum { N_COLS = 9, CELL = 32 };
static const char *const header[N_COLS] = {"#",       "pack",    "size",       "bits/weight", "PPL",
                                           "KLD mean", "KLD p99", "same top-1", "time to make"};

static void format_size(uint64_t bytes, char *buf)
{
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1000 && u < 4)
        v /= 1000, u++;
    snprintf(buf, CELL, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
}

static void format_row(const pack_row *r, int index, char cells[N_COLS][CELL])
{
    snprintf(cells[0], CELL, "%d", index + 1);
    cells[1][0] = '\0';
    format_size(r->bytes, cells[2]);
    snprintf(cells[3], CELL, "%.3f", r->bits);
    snprintf(cells[4], CELL, "%.4f", r->s.ppl_test);
    snprintf(cells[5], CELL, "%.6f", r->s.kld_mean);
    snprintf(cells[6], CELL, "%.6f", r->s.kld_p99);
    snprintf(cells[7], CELL, "%.3f%%", r->s.same_top1);
    if (isnan(r->build_seconds))
        snprintf(cells[8], CELL, "-");
    else
        snprintf(cells[8], CELL, "%.1f s", r->build_seconds);
}

static const char *cell(const pack_row *rows, char (*cells)[N_COLS][CELL], int i, int j)
{
    return j == 1 ? rows[i].name : cells[i][j];
}

/* The pack's name left-aligned, numbers right-aligned. */
static int print_table(const pack_row *rows, int n, mp_error *err)
{
    char (*cells)[N_COLS][CELL] = malloc((size_t)n * sizeof *cells);
    int width[N_COLS];
    if (!cells)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int j = 0; j < N_COLS; j++)
        width[j] = (int)strlen(header[j]);
    for (int i = 0; i < n; i++) {
        format_row(&rows[i], i, cells[i]);
        for (int j = 0; j < N_COLS; j++)
            if ((int)strlen(cell(rows, cells, i, j)) > width[j])
                width[j] = (int)strlen(cell(rows, cells, i, j));
    }
    for (int i = -1; i < n; i++) {
        for (int j = 0; j < N_COLS; j++)
            printf(j == 1 ? "  %-*s" : "  %*s", width[j], i < 0 ? header[j] : cell(rows, cells, i, j));
        printf("\n");
    }
    free(cells);
    return MP_OK;
}

/* ---- the plot in the terminal: bits per weight (x) against mean KLD (y, log) ---- */

enum { PLOT_W = 60, PLOT_H = 16, MARGIN = 10 };

static bool plottable(const pack_row *r)
{
    return isfinite(r->bits) && isfinite(r->s.kld_mean) && r->s.kld_mean > 0;
}

/* Fits both axes to the plottable rows; false when there are none. */
static bool fit_axes(const pack_row *rows, int n, mp_plot_axis *x, mp_plot_axis *y)
{
    double x_lo = HUGE_VAL, x_hi = -HUGE_VAL, y_lo = HUGE_VAL, y_hi = -HUGE_VAL;
    for (int i = 0; i < n; i++)
        if (plottable(&rows[i])) {
            x_lo = fmin(x_lo, rows[i].bits), x_hi = fmax(x_hi, rows[i].bits);
            y_lo = fmin(y_lo, rows[i].s.kld_mean), y_hi = fmax(y_hi, rows[i].s.kld_mean);
        }
    if (x_lo > x_hi)
        return false;
    mp_plot_axis_fit(x, x_lo, x_hi, false, 9, false);
    mp_plot_axis_fit(y, y_lo, y_hi, true, 6, false);
    x->px_lo = 0, x->px_hi = PLOT_W - 1;
    y->px_lo = PLOT_H - 1, y->px_hi = 0; /* row 0 is the top */
    return true;
}

/* Marks each pack by its row number; where marks would overlap, a '*' and a note. */
static void place_marks(const pack_row *rows, int n, const mp_plot_axis *x, const mp_plot_axis *y,
                        char grid[PLOT_H][PLOT_W + 1], char *note, size_t cap)
{
    for (int i = 0; i < n; i++) {
        if (!plottable(&rows[i])) {
            snprintf(note + strlen(note), cap - strlen(note), "  pack %d: KLD %g, not on a log scale.", i + 1,
                     rows[i].s.kld_mean);
            continue;
        }
        char mark[16];
        int len = snprintf(mark, sizeof mark, "%d", i + 1);
        int row = (int)lround(mp_plot_axis_map(y, rows[i].s.kld_mean));
        int col = (int)lround(mp_plot_axis_map(x, rows[i].bits));
        col = col + len > PLOT_W ? PLOT_W - len : col;
        bool taken = false;
        for (int k = 0; k < len; k++)
            taken |= grid[row][col + k] != ' ';
        if (taken)
            snprintf(note + strlen(note), cap - strlen(note), "  * pack %d overlaps another.", i + 1);
        if (taken)
            grid[row][col] = '*';
        else
            memcpy(&grid[row][col], mark, (size_t)len);
    }
}

static void print_x_axis(const mp_plot_axis *x)
{
    char line[MARGIN + PLOT_W + 16];
    memset(line, ' ', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    int end = 0;
    for (int t = 0; t < x->ticks.n; t++) {
        char label[32];
        mp_plot_format_tick(x->ticks.v[t], x->ticks.step, label, sizeof label);
        int len = (int)strlen(label), at = MARGIN + (int)lround(mp_plot_axis_map(x, x->ticks.v[t])) - len / 2;
        if (x->ticks.v[t] < x->lo || x->ticks.v[t] > x->hi || at < end || at + len >= (int)sizeof line)
            continue; /* off the axis, or it would run into the previous label */
        memcpy(line + at, label, (size_t)len);
        end = at + len + 1;
    }
    while (end > 0 && line[end - 1] == ' ')
        end--;
    line[end] = '\0';
    printf("%*s+%.*s\n%s\n%*s%s\n", MARGIN - 1, "", PLOT_W,
           "------------------------------------------------------------------------", line,
           MARGIN + PLOT_W / 2 - 8, "", "bits per weight");
}

static void print_plot(const pack_row *rows, int n)
{
    mp_plot_axis x = {0}, y = {0};
    if (!fit_axes(rows, n, &x, &y)) {
        printf("\n(no plot: a mean KLD of 0 is not on a log scale)\n");
        return;
    }
    char grid[PLOT_H][PLOT_W + 1], labels[PLOT_H][MARGIN] = {{0}}, note[512] = "";
    for (int r = 0; r < PLOT_H; r++)
        memset(grid[r], ' ', PLOT_W), grid[r][PLOT_W] = '\0';
    for (int t = 0; t < y.ticks.n; t++) {
        int r = (int)lround(mp_plot_axis_map(&y, y.ticks.v[t]));
        if (r >= 0 && r < PLOT_H)
            mp_plot_format_tick(y.ticks.v[t], y.ticks.step, labels[r], MARGIN - 1);
    }
    place_marks(rows, n, &x, &y, grid, note, sizeof note);
    printf("\nmean KLD (log scale)\n");
    for (int r = 0; r < PLOT_H; r++) {
        int end = PLOT_W;
        while (end > 0 && grid[r][end - 1] == ' ')
            end--;
        printf("%*s %c%.*s\n", MARGIN - 2, labels[r], labels[r][0] ? '+' : '|', end, grid[r]);
    }
    print_x_axis(&x);
    if (note[0])
        printf("%s\n", note + 2);
}

static int print_text(const compare_options *c, const pack_row *rows, const run_facts *f, mp_error *err)
{
    char ppl[32] = "-";
    if (isfinite(f->ppl_ref))
        snprintf(ppl, sizeof ppl, "%.4f", f->ppl_ref);
    printf("compare %d pack%s against %s (%s): %lld chunks of %d, %lld scored tokens, reference PPL %s, %.1f s%s\n\n",
           c->n_packs, c->n_packs == 1 ? "" : "s", c->run.reference, f->reference_is_file ? "reference run" : "checkpoint",
           (long long)f->chunks, f->ctx, (long long)f->scored, ppl, f->seconds, f->top_k ? " (KLD: top-K + tail)" : "");
    int rc = print_table(rows, c->n_packs, err);
    if (!rc)
        print_plot(rows, c->n_packs);
    return rc;
}

/* ---- JSON and the HTML report ---- */

static void print_json(const pack_row *rows, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        const pack_row *r = &rows[i];
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:o}", "pack", r->path, "name", r->name,
                         "bytes", (json_int_t)r->bytes, "weights", (json_int_t)r->weights, "bits_per_weight", r->bits,
                         "ppl", r->s.ppl_test, "kld_mean", r->s.kld_mean, "kld_p99", r->s.kld_p99, "same_top1",
                         r->s.same_top1, "build_seconds",
                         isnan(r->build_seconds) ? json_null() : json_real(r->build_seconds)));
    }
    json_dumpf(a, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(a);
}

/* The page's table leaves out the row number (the plot labels points by name) and,
 * when no pack has a build.json, the empty time column: the pack's name comes first
 * because the report aligns number columns right and text columns left. */
static void report_body(mp_report *rep, const pack_row *rows, int n, char (*cells)[N_COLS][CELL],
                        const char **flat, double *x, double *y, const char **names)
{
    bool any_time = false;
    for (int i = 0; i < n; i++)
        any_time |= !isnan(rows[i].build_seconds);
    int cols = any_time ? N_COLS - 1 : N_COLS - 2;
    for (int i = 0; i < n; i++) {
        x[i] = rows[i].bits, y[i] = rows[i].s.kld_mean, names[i] = rows[i].name;
        for (int j = 0; j < cols; j++)
            flat[i * cols + j] = cell(rows, cells, i, j + 1);
    }
    /* one unnamed group: every pack the same mark, told apart by its label */
    mp_plot_series s = {NULL, x, y, names, n};
    mp_scatter_chart chart = {"Mean KLD against bits per weight", "bits per weight", "mean KLD", &s, 1, false, true};
    mp_report_heading(rep, 2, "Loss against size");
    mp_report_scatter_chart(rep, &chart, "Mean KL divergence from the reference per scored token (log scale) "
                                         "against the pack's bits per weight; lower left is better.");
    mp_report_heading(rep, 2, "Packs");
    mp_report_table t = {any_time ? "Size: the tier files. Bits per weight: 8 x size / values of all tensors. "
                                    "Time to make: from the pack's build.json."
                                  : "Size: the tier files. Bits per weight: 8 x size / values of all tensors. "
                                    "(No pack has a build.json with the time it took to make.)",
                         header + 1, cols, flat, n};
    mp_report_table_write(rep, &t);
}

static int write_report(const compare_options *c, const pack_row *rows, const run_facts *f, mp_error *err)
{
    int n = c->n_packs;
    char title[256], sub[1024];
    snprintf(title, sizeof title, "moepack compare: %d pack%s", n, n == 1 ? "" : "s");
    char ppl[32] = "unknown";
    if (isfinite(f->ppl_ref))
        snprintf(ppl, sizeof ppl, "%.4f", f->ppl_ref);
    snprintf(sub, sizeof sub, "reference: %s (%s, PPL %s); text: %s; ctx %d, %lld chunks, %lld scored tokens; "
             "activations %s; moepack %s", c->run.reference,
             f->reference_is_file ? "reference run" : "checkpoint, run live", ppl,
             c->run.text ? c->run.text : "from the reference", f->ctx, (long long)f->chunks, (long long)f->scored,
             c->run.act_name, MP_VERSION);
    char (*cells)[N_COLS][CELL] = malloc((size_t)n * sizeof *cells);
    const char **flat = malloc((size_t)n * N_COLS * sizeof *flat), **names = malloc((size_t)n * sizeof *names);
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    mp_report rep;
    int rc = !cells || !flat || !names || !x || !y ? mp_fail(err, MP_EXIT_IO, "out of memory")
                                                   : mp_report_begin(&rep, c->run.report, title, sub, err);
    if (!rc) {
        for (int i = 0; i < n; i++)
            format_row(&rows[i], i, cells[i]);
        report_body(&rep, rows, n, cells, flat, x, y, names);
        rc = mp_report_end(&rep, err);
    }
    free(cells);
    free(flat);
    free(names);
    free(x);
    free(y);
    return rc;
}

/* A report that cannot be written should stop the run before the packs are measured. */
static int check_report_dir(const char *path, mp_error *err)
{
    char *copy = mp_strdup(path);
    if (!copy)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = access(dirname(copy), W_OK) != 0 ? mp_fail_errno(err, "--report %s: cannot write there", path) : MP_OK;
    free(copy);
    return rc;
}

/* Everything that needs no run, for every pack, before the first is measured. */
static int check_inputs(const compare_options *c, pack_row *rows, mp_error *err)
{
    mp_run_options o = c->run;
    int rc = c->run.report ? check_report_dir(c->run.report, err) : MP_OK;
    for (int i = 0; !rc && i < c->n_packs; i++) {
        rows[i].path = c->packs[i];
        rows[i].build_seconds = NAN;
        rc = read_pack_facts(&rows[i], err);
        o.model = rows[i].path;
        if (!rc)
            rc = mp_verify_check_model(&o, err);
    }
    return rc ? rc : name_rows(rows, c->n_packs, err);
}

int mp_cmd_compare(int argc, char **argv, mp_error *err)
{
    compare_options c;
    int rc = parse_options(&c, argc, argv, err);
    if (!rc && c.run.common.help)
        fputs(compare_help, stdout);
    if (rc || c.run.common.help) {
        free(c.packs);
        return rc;
    }
    pack_row *rows = calloc((size_t)c.n_packs, sizeof *rows);
    run_facts facts = {0};
    rc = !rows ? mp_fail(err, MP_EXIT_IO, "out of memory") : check_inputs(&c, rows, err);
    if (!rc)
        rc = measure_all(&c, rows, &facts, err);
    if (!rc && c.run.common.json)
        print_json(rows, c.n_packs);
    else if (!rc && !c.run.common.quiet)
        rc = print_text(&c, rows, &facts, err);
    if (!rc && c.run.report)
        rc = write_report(&c, rows, &facts, err);
    for (int i = 0; rows && i < c.n_packs; i++)
        free(rows[i].base);
    free(rows);
    free(c.packs);
    return rc;
}
