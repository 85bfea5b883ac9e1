/* A HuggingFace checkpoint directory: config.json, the safetensors weights and the
 * canonical model built over them. */
#ifndef MP_CHECKPOINT_H
#define MP_CHECKPOINT_H

#include "model.h"

typedef struct {
    char *dir;
    mp_st_set st;
    mp_model model;
} mp_checkpoint;

/* path: the checkpoint directory (config.json beside the weights). */
int mp_checkpoint_open(mp_checkpoint *c, const char *path, mp_error *err);
void mp_checkpoint_close(mp_checkpoint *c);

#endif
