/* The commands of this folder, dispatched by main.c. */
#ifndef MP_PRUNE_COMMANDS_H
#define MP_PRUNE_COMMANDS_H

#include "../core/error.h"

int mp_cmd_prune(int argc, char **argv, mp_error *err);
int mp_cmd_distill(int argc, char **argv, mp_error *err);

#endif
