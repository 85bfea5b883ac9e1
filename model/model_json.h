/* The canonical model config as JSON (the pack manifest's "model"). */
#ifndef MP_MODEL_JSON_H
#define MP_MODEL_JSON_H

#include <jansson.h>

#include "model.h"

json_t *mp_model_config_json(const mp_model *m);

#endif
