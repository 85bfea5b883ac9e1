/* Full integrity check of a pack: structure (on open), tier headers, the zero
 * padding between records, every record's checksum, decompression and size. */
#ifndef MP_CHECK_H
#define MP_CHECK_H

#include "../formats/pack.h"

typedef struct {
    int tiers, records, tensors;
    uint64_t bytes;
} mp_check_result;

/* Opens and checks the pack at dir; the first problem is reported in err (exit 2
 * for a malformed pack, 3 for corrupt bytes), naming the record. */
int mp_pack_check(const char *dir, bool quiet, mp_check_result *result, mp_error *err);

#endif
