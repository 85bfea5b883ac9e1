#include "export.h"

/* Scaffolding while the compressed-tensors writer is being written in its own branch. */
int mp_export_compressed_tensors(const mp_export_options *o, mp_error *err)
{
    return mp_fail(err, MP_EXIT_INPUT, "%s: compressed-tensors export is not built yet", o->pack);
}
