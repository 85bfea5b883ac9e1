/* pack_dump PACK OUTDIR: decodes every tensor of a pack with moepack's own reader
 * and decoder, writing OUTDIR/<name>.f32 (raw little-endian f32, row-major). The
 * test suite compares these files with an independent decoder (tests/ref). */
#include <stdio.h>
#include <stdlib.h>

#include "../../formats/pack.h"

static int dump_tensor(const mp_pack *p, int t, const uint8_t *raw, const char *outdir)
{
    const mp_pack_tensor *x = &p->tensors[t];
    const mp_pack_part *part = &p->records[x->record].parts[x->part];
    float *values = malloc((size_t)(x->rows * x->cols) * sizeof *values);
    if (!values)
        return 3;
    mp_encoding_decode_rows(&x->enc, x->rows, x->cols, raw + part->offset, 0, x->rows, values);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", outdir, x->name);
    FILE *f = fopen(path, "wb");
    size_t n = (size_t)(x->rows * x->cols);
    int rc = f && fwrite(values, sizeof *values, n, f) == n ? 0 : 3;
    if (rc != 0)
        fprintf(stderr, "pack_dump: %s: cannot write\n", path);
    if (f && fclose(f) != 0)
        rc = 3;
    free(values);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: pack_dump PACK OUTDIR\n");
        return 2;
    }
    mp_pack p;
    mp_error err = {0};
    if (mp_pack_open(&p, argv[1], &err) != MP_OK) {
        fprintf(stderr, "pack_dump: %s\n", err.msg);
        return err.code;
    }
    int rc = 0;
    for (int r = 0; r < p.n_records && rc == 0; r++) {
        uint8_t *raw = malloc(p.records[r].raw_length + 1);
        if (!raw || mp_pack_read_record(&p, r, raw, &err) != MP_OK) {
            fprintf(stderr, "pack_dump: %s\n", raw ? err.msg : "out of memory");
            rc = raw ? err.code : 3;
        }
        for (int k = 0; k < p.records[r].n_parts && rc == 0; k++)
            rc = dump_tensor(&p, p.records[r].parts[k].tensor, raw, argv[2]);
        free(raw);
    }
    mp_pack_close(&p);
    return rc;
}
