#include "export.h"

/* Scaffolding while the GGUF writer is being written in its own branch. */
int mp_export_gguf(const mp_export_options *o, mp_error *err)
{
    return mp_fail(err, MP_EXIT_INPUT, "%s: GGUF export is not built yet", o->pack);
}
