/* Output directories (packs, exported checkpoints) are written under a temporary name
 * next to their final path and renamed into place only when complete, so a directory
 * under the final name is always whole. */
#ifndef MP_OUTDIR_H
#define MP_OUTDIR_H

#include <stdbool.h>

#include "error.h"

/* Renames the finished directory tmp to path. An existing path is an input error unless
 * replace; then it is moved aside first (rename() cannot replace a non-empty
 * directory), removed once tmp is in place, and put back if the rename fails. */
int mp_outdir_commit(const char *tmp, const char *path, bool replace, mp_error *err);

/* Removes path and everything under it, without following links (best effort). */
void mp_remove_tree(const char *path);

#endif
