/* The commands of this folder, dispatched by main.c: each parses its own arguments,
 * returns an exit code and fills err. */
#ifndef MP_VERIFY_COMMANDS_H
#define MP_VERIFY_COMMANDS_H

#include "../core/error.h"

int mp_cmd_check(int argc, char **argv, mp_error *err);
int mp_cmd_reference(int argc, char **argv, mp_error *err);
int mp_cmd_verify(int argc, char **argv, mp_error *err);
int mp_cmd_compare(int argc, char **argv, mp_error *err);
int mp_cmd_profile(int argc, char **argv, mp_error *err);
int mp_cmd_tokenize(int argc, char **argv, mp_error *err);

#endif
