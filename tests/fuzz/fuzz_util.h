/* Shared by the libFuzzer targets (tests/fuzz/fuzz_*.c): the fuzzer's bytes as the
 * files the readers take by path.
 *
 * A directory-shaped input (a pack, a checkpoint) is one byte string holding its
 * files, each after a marker line at the start of the input or of a line:
 *     @@@ manifest.json
 *     {...}
 *     @@@ tier-0.bin
 *     ...
 * A file's bytes run up to the newline before the next marker (or the end). Names
 * are [A-Za-z0-9._-], 1..64 characters, not starting with a dot; a section with
 * another name is skipped, so every file stays inside the directory. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/error.h"

#define FUZZ_MARKER "@@@ "

/* A fresh private directory under $TMPDIR (else /dev/shm, else /tmp), made once per
 * process and emptied by fuzz_dir_clear; aborts when none can be made. */
const char *fuzz_dir(void);
/* A second one, for what a target writes (an export's output). */
const char *fuzz_out_dir(void);
/* Removes every file in dir (not recursive: the inputs are flat). */
void fuzz_dir_clear(const char *dir);

/* Writes data[0..size) to dir/name; returns the malloc'd path, or NULL on failure. */
char *fuzz_write_file(const char *dir, const char *name, const uint8_t *data, size_t size);

/* Writes each file of a split input into dir (emptied first); returns how many. */
int fuzz_split_into(const char *dir, const uint8_t *data, size_t size);

/* For single-file formats: the path of dir/file, the input's "file" section as is
 * when it has one, else the file build(dir) writes from the other sections (it
 * returns 0 when it cannot). Fills path (cap bytes); returns 0 when there is none. */
int fuzz_single_file(const char *dir, int (*build)(const char *dir), char *path, size_t cap);

/* Reads dir/name whole into a malloc'd buffer; NULL when absent. */
uint8_t *fuzz_read_file(const char *dir, const char *name, size_t *size);

/* Checksums would stop nearly every mutation of a pack at the first check, so the
 * harness fills in those a seed leaves out: manifest.xxh3 when absent, and a tier
 * header's checksum (bytes 56..63) and file size (16..23) when zero (tiers 0..3), and
 * a record's xxh3 in manifest.json when it is all zeros (the manifest is then
 * rewritten compact).
 * A value the fuzzer sets is kept, so the mismatch paths are reached too. */
void fuzz_fill_pack_sums(const char *dir);

/* The project's error rule, checked on every failure of the API under test: exit 2
 * (bad input) or 3 (I/O, corrupt record) with a one-line message; anything else
 * aborts, so the fuzzer reports it. With FUZZ_VERBOSE set, prints the message (to
 * see why a seed or reproducer is refused). Returns rc. */
int fuzz_check(int rc, const mp_error *err);

/* Little-endian u64 at p. */
uint64_t fuzz_get_u64(const uint8_t *p);
void fuzz_put_u64(uint8_t *p, uint64_t v);

#endif
