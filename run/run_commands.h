/* The subcommand of run/ that main.c dispatches to. */
#ifndef MP_RUN_COMMANDS_H
#define MP_RUN_COMMANDS_H

#include "../core/error.h"

int mp_cmd_run(int argc, char **argv, mp_error *err);

#endif
