/* ckpt_dump CKPT OUTDIR: every tensor of a checkpoint's canonical model, decoded to
 * f32 by the checkpoint reader (model/weights.c), as OUTDIR/<canonical name>.f32.
 * Tests compare these with pack_dump's files: a lossless conversion is bit-exact. */
#include <stdio.h>
#include <stdlib.h>

#include "../../model/checkpoint.h"
#include "../../model/plan.h"
#include "../../model/weights.h"

static int dump_part(const mp_model *m, const mp_plan_part *part, const char *outdir, mp_error *err)
{
    size_t n = (size_t)(part->rows * part->cols);
    float *values = malloc(n * sizeof *values);
    if (!values)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = part->is_bias ? mp_ckpt_read_bias(m, &part->lin, values, err)
                           : mp_ckpt_read_rows(m, &part->lin, 0, part->rows, values, err);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", outdir, part->name);
    FILE *f = rc == MP_OK ? fopen(path, "wb") : NULL;
    if (rc == MP_OK && (!f || fwrite(values, sizeof *values, n, f) != n))
        rc = mp_fail(err, MP_EXIT_IO, "%s: write failed", path);
    if (f && fclose(f) != 0 && rc == MP_OK)
        rc = mp_fail(err, MP_EXIT_IO, "%s: close failed", path);
    free(values);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ckpt_dump CKPT OUTDIR\n");
        return 2;
    }
    mp_checkpoint ck;
    mp_plan plan;
    mp_error err = {0};
    int rc = mp_checkpoint_open(&ck, argv[1], &err);
    if (rc == MP_OK && (rc = mp_plan_build(&plan, &ck.model, NULL, &err)) == MP_OK) {
        for (int i = 0; i < plan.n_parts && rc == MP_OK; i++)
            rc = dump_part(&ck.model, &plan.parts[i], argv[2], &err);
        mp_plan_free(&plan);
    }
    if (rc == MP_OK || ck.dir)
        mp_checkpoint_close(&ck);
    if (rc != MP_OK)
        fprintf(stderr, "ckpt_dump: %s\n", err.msg);
    return rc;
}
