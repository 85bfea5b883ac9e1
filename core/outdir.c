#include "outdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void mp_remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int mp_outdir_commit(const char *tmp, const char *path, bool replace, mp_error *err)
{
    struct stat st;
    char *old = NULL;
    if (lstat(path, &st) == 0) {
        if (!replace)
            return mp_fail(err, MP_EXIT_INPUT, "%s already exists (use --force to replace it)", path);
        size_t n = strlen(path) + 32;
        old = malloc(n);
        if (!old)
            return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
        snprintf(old, n, "%s.old-%ld", path, (long)getpid());
        if (rename(path, old) != 0) {
            free(old);
            return mp_fail_errno(err, "%s: move aside", path);
        }
    }
    int rc = rename(tmp, path) == 0 ? MP_OK : mp_fail_errno(err, "%s: rename to %s", tmp, path);
    if (old) {
        if (rc == MP_OK)
            mp_remove_tree(old);
        else
            rename(old, path);
        free(old);
    }
    return rc;
}
