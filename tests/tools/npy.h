/* Writing .npy files for the test tools whose outputs NumPy oracles read. */
#ifndef MP_TEST_TOOLS_NPY_H
#define MP_TEST_TOOLS_NPY_H

#include <stdio.h>

/* ---- .npy (format version 1.0: magic, header length, a Python dict literal padded
 * with spaces to a multiple of 64 bytes and ending in a newline, then the raw data) ---- */

static int write_npy(const char *dir, const char *name, const char *descr, long d0, long d1, const void *p,
                     size_t elem)
{
    char path[4096], dict[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%ld, %ld), }", descr,
                       d0, d1);
    int total = (10 + len + 1 + 63) / 64 * 64, pad = total - 10 - len - 1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((total - 10) & 0xff),
                              (unsigned char)((total - 10) >> 8)};
    fwrite(head, 1, 10, f);
    fwrite(dict, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(p, elem, (size_t)(d0 * d1), f);
    return fclose(f) == 0 ? 0 : -1;
}

#endif
