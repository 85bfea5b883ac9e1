/* The commands of this folder, dispatched by main.c: each parses its own arguments,
 * returns an exit code and fills err. */
#ifndef MP_CONVERT_COMMANDS_H
#define MP_CONVERT_COMMANDS_H

#include "../core/error.h"

int mp_cmd_inspect(int argc, char **argv, mp_error *err);
int mp_cmd_convert(int argc, char **argv, mp_error *err);
int mp_cmd_quant(int argc, char **argv, mp_error *err);

#endif
