#include "prune_input.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../formats/pack.h"
#include "../model/checkpoint.h"

int mp_convert_args_add(mp_convert_args *a, const char *word, const char *value, mp_error *err)
{
    if (a->argc + 1 + (value != NULL) > MP_PRUNE_CONVERT_ARGS)
        return mp_fail(err, MP_EXIT_INPUT, "%s: too many encoding options (at most %d words)", word,
                       MP_PRUNE_CONVERT_ARGS);
    a->argv[a->argc++] = word;
    if (value)
        a->argv[a->argc++] = value;
    return MP_OK;
}

int mp_prune_input_kind(const char *path, bool *is_checkpoint, mp_error *err)
{
    struct stat st;
    *is_checkpoint = false;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "%s: no such pack or checkpoint (expected a directory)", path);
    if (mp_is_pack(path))
        return MP_OK;
    char config[4200];
    snprintf(config, sizeof config, "%s/config.json", path);
    if (stat(config, &st) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: neither a pack (manifest.json) nor a checkpoint (config.json)", path);
    /* Opened here, not only in the child convert: a broken checkpoint is then one line. */
    mp_checkpoint ck;
    int rc = mp_checkpoint_open(&ck, path, err);
    if (rc != MP_OK)
        return rc;
    if (ck.model.n_problems > 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: %d tensor problem%s (see moepack inspect), first: %s", path,
                     ck.model.n_problems, ck.model.n_problems == 1 ? "" : "s", ck.model.problems[0]);
    mp_checkpoint_close(&ck);
    *is_checkpoint = rc == MP_OK;
    return rc;
}

/* The child: stdout onto stderr, then moepack convert. Returns only on failure. */
static void exec_convert(char **argv)
{
    if (dup2(STDERR_FILENO, STDOUT_FILENO) >= 0)
        execv("/proc/self/exe", argv);
    fprintf(stderr, "moepack prune: cannot run moepack convert: %s\n", strerror(errno));
    _exit(MP_EXIT_IO);
}

int mp_prune_input_convert(const char *ckpt, const char *dir, const mp_convert_args *args, int threads, bool quiet,
                           mp_error *err)
{
    char threads_text[16];
    char *argv[MP_PRUNE_CONVERT_ARGS + 12];
    int n = 0;
    argv[n++] = "moepack";
    argv[n++] = "convert";
    argv[n++] = (char *)ckpt;
    argv[n++] = "-o";
    argv[n++] = (char *)dir;
    for (int i = 0; i < args->argc; i++)
        argv[n++] = (char *)args->argv[i];
    if (threads > 0) {
        snprintf(threads_text, sizeof threads_text, "%d", threads);
        argv[n++] = "--threads";
        argv[n++] = threads_text;
    }
    if (quiet)
        argv[n++] = "--quiet";
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return mp_fail(err, MP_EXIT_IO, "%s: cannot start moepack convert: %s", ckpt, strerror(errno));
    if (pid == 0)
        exec_convert(argv);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return mp_fail(err, MP_EXIT_IO, "%s: waiting for moepack convert: %s", ckpt, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return MP_OK;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : MP_EXIT_IO;
    return mp_fail(err, code == MP_EXIT_INPUT ? MP_EXIT_INPUT : MP_EXIT_IO,
                   "%s: converting the checkpoint to a scratch pack failed (moepack convert %s %d, above)", ckpt,
                   WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? code : WTERMSIG(status));
}
