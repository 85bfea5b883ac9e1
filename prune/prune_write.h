/* Writes the pruned pack: every kept expert's record copied byte for byte (raw bytes
 * unchanged, renumbered 0..keep-1 in original order), the routers, router biases
 * and correction biases sliced to the kept experts (exact: their rows are copied,
 * never re-encoded), every other record copied; the expert count updated in the
 * manifest's model and in config.json; routing_stats sliced. A tensor found in
 * o->replace (same encoding and shape) takes its staged bytes instead. Written under a
 * temporary name and renamed when complete. */
#ifndef MP_PRUNE_WRITE_H
#define MP_PRUNE_WRITE_H

#include <jansson.h>
#include <stdbool.h>

#include "../formats/pack.h"
#include "../quant/stage.h"
#include "prune_plan.h"

typedef struct {
    const char *out;
    bool force, quiet;
    int n_layers;      /* decoder layers: MTP layer j is plan layer n_layers + j */
    json_t *provenance; /* taken over */
    const mp_stage *replace; /* tensors re-encoded elsewhere (merged experts, refit routers), by input
                                name: written instead of the input's bytes; NULL for none */
} mp_prune_write_options;

typedef struct {
    int records, experts_kept, experts_dropped, sliced;
    uint64_t bytes_in, bytes_out;
} mp_prune_written;

int mp_prune_write(const mp_pack *in, const mp_prune_plan *plan, mp_prune_write_options *o, mp_prune_written *out,
                   mp_error *err);

/* "layers.3.experts.17.down" as the same tensor of expert `expert` ("layers.3.experts.5.down")
 * into buf; -1 when the name holds no expert number or buf is too small. */
int mp_expert_tensor_name(const char *name, int expert, char *buf, size_t cap);

#endif
