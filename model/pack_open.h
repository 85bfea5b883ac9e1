/* Opening a pack for use: the format's own checks (formats/pack_reader.c), then the
 * one that needs the canonical model: every tensor is named as a tensor of the model
 * the manifest describes (docs/FORMAT.md "Tensor names"). Every command that reads a
 * pack (check, verify, run, quant, export, prune, ...) opens it here. */
#ifndef MP_PACK_OPEN_H
#define MP_PACK_OPEN_H

#include <stdbool.h>

#include "../formats/pack.h"

/* As mp_pack_open (deferred: mp_pack_open_deferred); a name that is not a canonical
 * name of the manifest's model is exit 2 naming manifest.json and the tensor. */
int mp_model_pack_open(mp_pack *p, const char *dir, bool deferred, mp_error *err);

#endif
