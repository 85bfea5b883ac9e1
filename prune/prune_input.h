/* What moepack prune is given: a pack, or a HuggingFace checkpoint that is first
 * converted into a scratch pack by moepack convert itself. */
#ifndef MP_PRUNE_INPUT_H
#define MP_PRUNE_INPUT_H

#include <stdbool.h>

#include "../core/error.h"

#define MP_PRUNE_CONVERT_ARGS 48

/* convert's encoding options as prune was given them, in convert's spelling. */
typedef struct {
    const char *argv[MP_PRUNE_CONVERT_ARGS];
    int argc;
    const char *first; /* the first option as the user spelt it, for messages */
} mp_convert_args;

/* Appends word and, when not NULL, its value; more than MP_PRUNE_CONVERT_ARGS words
 * is a usage error. */
int mp_convert_args_add(mp_convert_args *a, const char *word, const char *value, mp_error *err);

/* *is_checkpoint: path is a checkpoint (config.json beside safetensors weights that
 * the model builder accepts), not a pack. Neither: a one-line MP_EXIT_INPUT error. */
int mp_prune_input_kind(const char *path, bool *is_checkpoint, mp_error *err);

/* Converts the checkpoint into the pack dir by running `moepack convert CKPT -o dir
 * ARGS` with this very executable: convert stands beside prune in the include order,
 * and running the command itself guarantees the pack is the one convert makes. Its
 * summary and progress go to stderr (prune's stdout stays its own). */
int mp_prune_input_convert(const char *ckpt, const char *dir, const mp_convert_args *args, int threads, bool quiet,
                           mp_error *err);

#endif
