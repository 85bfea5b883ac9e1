/* Small POSIX file helpers with complete-or-fail semantics. */
#ifndef MP_FILEIO_H
#define MP_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Reads exactly len bytes at offset off; a short file is an I/O error naming path. */
int mp_pread_full(int fd, void *dst, uint64_t len, uint64_t off, const char *path, mp_error *err);
int mp_write_full(int fd, const void *src, uint64_t len, const char *path, mp_error *err);
/* Writes exactly len bytes at offset off (a header completed at the end). */
int mp_pwrite_full(int fd, const void *src, uint64_t len, uint64_t off, const char *path, mp_error *err);
/* Reads a whole small file (config, index JSON) into a NUL-terminated buffer. */
int mp_read_small_file(const char *path, uint64_t max_bytes, char **out, size_t *len, mp_error *err);
/* A temporary name next to path, unique to this process: "path.tmp-PID". Caller frees. */
char *mp_temp_name(const char *path);
char *mp_strdup(const char *s);
/* Appends a printf-formatted line (at most 511 bytes) to a growable array of malloc'd
 * strings. Returns 0, or -1 (nothing appended) when out of memory. */
int mp_lines_appendf(char ***lines, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
char *mp_path_join(const char *dir, const char *name);

/* One output file, written under mp_temp_name(path) (removed on a signal, see
 * cleanup.h) and renamed to path by mp_outfile_commit only when complete, so that a
 * file under the final name is always whole. Any failure, or mp_outfile_abort, removes
 * the temporary. Writes are buffered; every error names the file. */
typedef struct {
    char *path, *temp;
    int fd;
    char *buf;
    size_t len;
} mp_outfile;

int mp_outfile_open(mp_outfile *f, const char *path, mp_error *err);
int mp_outfile_write(mp_outfile *f, const void *src, uint64_t len, mp_error *err);
int mp_outfile_printf(mp_outfile *f, mp_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes len bytes at offset off (a header completed at the end), after the buffer. */
int mp_outfile_pwrite(mp_outfile *f, const void *src, uint64_t len, uint64_t off, mp_error *err);
/* Flushes, syncs, closes and renames; on failure the temporary is removed. */
int mp_outfile_commit(mp_outfile *f, mp_error *err);
/* Also safe on a zeroed mp_outfile that was never opened. */
void mp_outfile_abort(mp_outfile *f);

#endif
