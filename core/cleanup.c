#include "cleanup.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define MAX_FILES 32
#define MAX_PATH 4096

static char armed_dir[MAX_PATH];
static char armed_files[MAX_FILES][MAX_PATH];
static volatile sig_atomic_t armed;

/* Only async-signal-safe calls: unlink, rmdir, signal, raise. */
static void on_signal(int sig)
{
    if (armed) {
        for (int i = 0; i < MAX_FILES && armed_files[i][0]; i++)
            unlink(armed_files[i]);
        rmdir(armed_dir);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void mp_cleanup_arm(const char *dir, const char *const *files)
{
    armed = 0;
    if (!dir || strlen(dir) + 64 >= MAX_PATH)
        return;
    memset(armed_files, 0, sizeof armed_files);
    strcpy(armed_dir, dir);
    for (int i = 0; files[i] && i < MAX_FILES; i++)
        if (strlen(dir) + strlen(files[i]) + 2 < MAX_PATH) {
            strcpy(armed_files[i], dir);
            strcat(armed_files[i], "/");
            strcat(armed_files[i], files[i]);
        }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    armed = 1;
}
