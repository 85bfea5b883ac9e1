/* Layouts of the generated Unicode tables (tokenizer/unicode_tables.c, written by
 * tools/gen_unicode.py). Every table is sorted by its first field(s) for binary search. */
#ifndef MP_UNICODE_TABLES_H
#define MP_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "unicode.h"

typedef struct {
    uint32_t lo, hi;        /* inclusive */
    mp_char_class cls;
} mp_class_range;

typedef struct {
    uint32_t lo, hi;        /* inclusive */
    uint8_t ccc;            /* canonical combining class, never 0 here */
} mp_combining_range;

typedef struct {
    uint32_t cp;
    uint16_t start, len;    /* the full decomposition: mp_decomposition_data[start..start+len) */
} mp_decomposition;

typedef struct {
    uint32_t first, second, composite;
} mp_composition;

extern const char mp_unicode_version[];
extern const mp_class_range mp_class_ranges[];
extern const size_t mp_class_ranges_count;
extern const mp_combining_range mp_combining_ranges[];
extern const size_t mp_combining_ranges_count;
extern const mp_decomposition mp_decompositions[];
extern const size_t mp_decompositions_count;
extern const uint32_t mp_decomposition_data[];
extern const size_t mp_decomposition_data_count;
extern const mp_composition mp_compositions[];
extern const size_t mp_compositions_count;

#endif
