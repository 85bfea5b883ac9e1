#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/cli.h"
#include "../core/progress.h"
#include "../model/pack_open.h"
#include "verify_commands.h"

static bool all_zero(const uint8_t *p, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* FORMAT.md "2:4 sparse fp8 and w4": each group's two positions strictly increase. */
static int check_nm24_positions(const mp_pack *p, int rec, const uint8_t *raw, mp_error *err)
{
    const mp_pack_record *r = &p->records[rec];
    for (int k = 0; k < r->n_parts; k++) {
        const mp_pack_tensor *t = &p->tensors[r->parts[k].tensor];
        int64_t bad = t->enc.nm24 ? mp_nm24_bad_positions(&t->enc, t->rows, t->cols, raw + r->parts[k].offset) : -1;
        if (bad >= 0)
            return mp_fail(err, MP_EXIT_IO, "%s: %s: 2:4 group %lld (row %lld) has positions not in increasing order",
                           p->dir, t->name, (long long)bad, (long long)(bad / (t->cols / 4)));
    }
    return MP_OK;
}

/* FORMAT.md: every byte of a record outside its parts, and the fp8 padding before
 * the scales, is zero. */
static int check_raw_padding(const mp_pack *p, int rec, const uint8_t *raw, mp_error *err)
{
    const mp_pack_record *r = &p->records[rec];
    uint64_t end = 0;
    bool ok = true;
    for (int k = 0; k < r->n_parts && ok; k++) {
        const mp_pack_part *part = &r->parts[k];
        const mp_pack_tensor *t = &p->tensors[part->tensor];
        mp_enc_layout L;
        mp_encoding_layout(&t->enc, t->rows, t->cols, &L);
        ok = all_zero(raw, end, part->offset) &&
             (t->enc.kind != MP_ENC_FP8 || all_zero(raw, part->offset + L.data_bytes, part->offset + L.scales_offset));
        end = part->offset + part->length;
    }
    if (ok && all_zero(raw, end, r->raw_length))
        return check_nm24_positions(p, rec, raw, err);
    char label[160];
    mp_pack_record_label(p, rec, label, sizeof label);
    return mp_fail(err, MP_EXIT_IO, "%s: %s: padding inside the record is not zero", p->dir, label);
}

static int check_records(const mp_pack *p, mp_progress *progress, mp_error *err)
{
    for (int r = 0; r < p->n_records; r++) {
        uint8_t *raw = malloc(p->records[r].raw_length + 1);
        if (!raw)
            return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
        int rc = mp_pack_read_record(p, r, raw, err);
        if (rc == MP_OK)
            rc = check_raw_padding(p, r, raw, err);
        free(raw);
        if (rc != MP_OK)
            return rc;
        mp_progress_add(progress, p->records[r].length);
    }
    return MP_OK;
}

int mp_pack_check(const char *dir, bool quiet, mp_check_result *result, mp_error *err)
{
    mp_pack p;
    memset(result, 0, sizeof *result);
    int rc = mp_model_pack_open(&p, dir, false, err);
    if (rc != MP_OK)
        return rc;
    for (int t = 0; t < p.n_tiers && rc == MP_OK; t++) {
        rc = mp_pack_check_padding(&p, t, err);
        result->bytes += p.tiers[t].bytes;
    }
    mp_progress progress;
    mp_progress_start(&progress, "check", result->bytes, true, quiet);
    if (rc == MP_OK)
        rc = check_records(&p, &progress, err);
    mp_progress_finish(&progress);
    result->tiers = p.n_tiers;
    result->records = p.n_records;
    result->tensors = p.n_tensors;
    mp_pack_close(&p);
    return rc;
}

static const char *check_help =
    "usage: moepack check PACK [--json]\n\n"
    "Verifies a pack completely: the manifest checksum and structure, each tier file's header,\n"
    "that every byte between records is zero, and every record's XXH3-64 checksum, zstd frame\n"
    "and size. Any flipped byte of a tier file is found.\n\n"
    "  --json     the result as JSON on stdout\n"
    "  --quiet    no progress bar\n\n"
    "exit codes: 0 intact, 2 malformed pack or usage, 3 corrupt bytes (the record is named)\n";

int mp_cmd_check(int argc, char **argv, mp_error *err)
{
    mp_common_opts opts = {0};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&opts, argc, argv, &i, err);
        if (got < 0)
            return err->code;
        if (got == 0 && (argv[i][0] == '-' || path))
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack check --help", argv[i]);
        if (got == 0)
            path = argv[i];
    }
    if (opts.help || !path) {
        fputs(check_help, opts.help ? stdout : stderr);
        return opts.help ? MP_OK : mp_fail(err, MP_EXIT_INPUT, "missing PACK");
    }
    mp_check_result r;
    int rc = mp_pack_check(path, opts.quiet || opts.json, &r, err);
    if (opts.json) {
        json_t *o = json_pack("{s:s, s:b, s:i, s:i, s:i, s:I, s:s}", "pack", path, "ok", rc == MP_OK, "tiers", r.tiers,
                              "records", r.records, "tensors", r.tensors, "bytes", (json_int_t)r.bytes, "error",
                              rc == MP_OK ? "" : err->msg);
        json_dumpf(o, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(o);
    } else if (rc == MP_OK && !opts.quiet) {
        printf("%s: ok, %d tiers, %d records, %d tensors, %llu bytes checked\n", path, r.tiers, r.records, r.tensors,
               (unsigned long long)r.bytes);
    }
    return rc;
}
