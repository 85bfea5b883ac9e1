#include "pack_summary.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../core/fileio.h"

void mp_tally_tensor(mp_pack_tally *t, mp_tensor_class cls, int64_t rows, int64_t cols, const mp_encoding *enc,
                     bool fell_back)
{
    mp_enc_layout L;
    mp_encoding_layout(enc, rows, cols, &L);
    t->params[cls] += (uint64_t)(rows * cols);
    t->bytes[cls] += L.total;
    t->fallbacks += fell_back;
    t->tensors++;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

static double bits_per_weight(uint64_t bytes, uint64_t params)
{
    return params ? 8.0 * (double)bytes / (double)params : 0;
}

void mp_tally_print_classes(const mp_pack_tally *t)
{
    uint64_t params = 0, bytes = 0;
    printf("\n%-10s %14s %14s %12s\n", "class", "weights", "bytes", "bits/weight");
    for (int c = 0; c < MP_CLASS_COUNT; c++) {
        if (!t->params[c])
            continue;
        printf("%-10s %14llu %14llu %12.3f\n", mp_class_name((mp_tensor_class)c), (unsigned long long)t->params[c],
               (unsigned long long)t->bytes[c], bits_per_weight(t->bytes[c], t->params[c]));
        params += t->params[c];
        bytes += t->bytes[c];
    }
    printf("%-10s %14llu %14llu %12.3f\n\n", "all", (unsigned long long)params, (unsigned long long)bytes,
           bits_per_weight(bytes, params));
}

void mp_tally_print_totals(const mp_pack_tally *t, const char *fallback_text)
{
    printf("bytes       %.2f MB read, %.2f MB written (tier files)\n", (double)t->source_bytes / 1e6,
           (double)t->pack_bytes / 1e6);
    printf("time        %.3f s, %.1f MB/s of input, peak RSS %.1f MB\n", t->seconds,
           t->seconds > 0 ? (double)t->source_bytes / 1e6 / t->seconds : 0, (double)peak_rss_kb() / 1024);
    if (t->fallbacks)
        printf("fallbacks   %d tensors %s\n", t->fallbacks, fallback_text);
}

json_t *mp_tally_json(const mp_pack_tally *t, const char *source, const char *pack, const char *scheme)
{
    json_t *classes = json_object();
    uint64_t params = 0, bytes = 0;
    for (int c = 0; c < MP_CLASS_COUNT; c++) {
        if (!t->params[c])
            continue;
        json_object_set_new(classes, mp_class_name((mp_tensor_class)c),
                            json_pack("{s:I, s:I, s:f}", "weights", (json_int_t)t->params[c], "bytes",
                                      (json_int_t)t->bytes[c], "bits_per_weight", bits_per_weight(t->bytes[c], t->params[c])));
        params += t->params[c];
        bytes += t->bytes[c];
    }
    return json_pack("{s:s, s:s, s:s, s:i, s:i, s:o, s:f, s:I, s:I, s:f, s:f, s:I, s:i}", "source", source, "pack", pack,
                     "scheme", scheme, "tensors", t->tensors, "records", t->records, "classes", classes,
                     "bits_per_weight", bits_per_weight(bytes, params), "bytes_in", (json_int_t)t->source_bytes,
                     "bytes_out", (json_int_t)t->pack_bytes, "seconds", t->seconds, "mb_per_s",
                     t->seconds > 0 ? (double)t->source_bytes / 1e6 / t->seconds : 0.0, "peak_rss_kb",
                     (json_int_t)peak_rss_kb(), "fallbacks", t->fallbacks);
}

void mp_summary_print_json(json_t *root)
{
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(root);
}

/* Not part of the pack's content (the manifest does not list it): the same inputs
 * still give the same tier files and manifest. */
int mp_write_build_info(const char *dir, double seconds, double calibration_seconds, mp_error *err)
{
    char *path = mp_path_join(dir, "build.json");
    json_t *info = json_pack("{s:f, s:f, s:i}", "seconds", seconds, "calibration_seconds", calibration_seconds,
                             "threads", omp_get_max_threads());
    char *text = info ? json_dumps(info, JSON_INDENT(2)) : NULL;
    mp_outfile f;
    int rc = path && text ? mp_outfile_open(&f, path, err) : mp_fail(err, MP_EXIT_IO, "%s: out of memory", dir);
    if (rc == MP_OK && (rc = mp_outfile_write(&f, text, strlen(text), err)) != MP_OK)
        mp_outfile_abort(&f);
    else if (rc == MP_OK)
        rc = mp_outfile_commit(&f, err);
    free(text);
    json_decref(info);
    free(path);
    return rc;
}
