#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"

int mp_checkpoint_open(mp_checkpoint *c, const char *path, mp_error *err)
{
    memset(c, 0, sizeof *c);
    struct stat st;
    if (stat(path, &st) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no such checkpoint directory", path);
    if (!S_ISDIR(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "%s: expected a checkpoint directory (config.json and *.safetensors)", path);
    c->dir = mp_strdup(path);
    char *config_path = mp_path_join(path, "config.json");
    mp_config cfg;
    int rc = mp_config_read(&cfg, config_path, err);
    free(config_path);
    if (rc == MP_OK) {
        rc = mp_st_set_open(&c->st, path, err);
        if (rc != MP_OK)
            mp_config_free(&cfg);
    }
    if (rc == MP_OK)
        rc = mp_model_build(&c->model, &cfg, &c->st, err);
    if (rc != MP_OK)
        mp_checkpoint_close(c);
    return rc;
}

void mp_checkpoint_close(mp_checkpoint *c)
{
    mp_model_free(&c->model);
    mp_st_set_close(&c->st);
    free(c->dir);
    memset(c, 0, sizeof *c);
}
