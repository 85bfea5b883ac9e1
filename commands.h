/* Every subcommand: parses its own arguments, returns an exit code and fills err.
 * main.c dispatches and prints err as one line. */
#ifndef MP_COMMANDS_H
#define MP_COMMANDS_H

#include "core/error.h"

#define MP_VERSION "0.1.0"

int mp_cmd_inspect(int argc, char **argv, mp_error *err);
int mp_cmd_convert(int argc, char **argv, mp_error *err);
int mp_cmd_quant(int argc, char **argv, mp_error *err);
int mp_cmd_check(int argc, char **argv, mp_error *err);
int mp_cmd_reference(int argc, char **argv, mp_error *err);
int mp_cmd_verify(int argc, char **argv, mp_error *err);
int mp_cmd_compare(int argc, char **argv, mp_error *err);
int mp_cmd_profile(int argc, char **argv, mp_error *err);

#endif
