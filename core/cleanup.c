#include "cleanup.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_FILES 32
#define MAX_PATH 4096
#define MAX_SCRATCH 4

static char armed_dir[MAX_PATH];
static char armed_files[MAX_FILES][MAX_PATH];
static volatile sig_atomic_t armed;
static volatile sig_atomic_t armed_whole_dir; /* remove every entry, not a list */
static char scratch_dir[MAX_SCRATCH][MAX_PATH];
static volatile sig_atomic_t scratch_count;
static char armed_file[MAX_PATH];
static volatile sig_atomic_t file_armed;

/* Every entry of a flat directory, through the raw getdents64 system call: readdir
 * allocates, so it may not run in a signal handler. */
static void unlink_entries(const char *dir)
{
    static char buf[8192];
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[] */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            const char *name = buf + off + 19;
            if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
                unlinkat(fd, name, 0);
            off += reclen;
        }
    }
    close(fd);
}

/* Only async-signal-safe calls: unlink, rmdir, signal, raise. */
static void on_signal(int sig)
{
    if (armed) {
        if (armed_whole_dir)
            unlink_entries(armed_dir);
        for (int i = 0; i < MAX_FILES && armed_files[i][0]; i++)
            unlink(armed_files[i]);
        rmdir(armed_dir);
    }
    if (file_armed)
        unlink(armed_file);
    for (int i = 0; i < scratch_count; i++) {
        unlink_entries(scratch_dir[i]);
        rmdir(scratch_dir[i]);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

static void arm(const char *dir, const char *const *files, int whole_dir)
{
    armed = 0;
    if (!dir || strlen(dir) + 64 >= MAX_PATH)
        return;
    memset(armed_files, 0, sizeof armed_files);
    strcpy(armed_dir, dir);
    for (int i = 0; files && files[i] && i < MAX_FILES; i++)
        if (strlen(dir) + strlen(files[i]) + 2 < MAX_PATH) {
            strcpy(armed_files[i], dir);
            strcat(armed_files[i], "/");
            strcat(armed_files[i], files[i]);
        }
    armed_whole_dir = whole_dir;
    install_handlers();
    armed = 1;
}

void mp_cleanup_arm(const char *dir, const char *const *files)
{
    arm(dir, files, 0);
}

void mp_cleanup_arm_dir(const char *dir)
{
    arm(dir, NULL, 1);
}

/* A stack: prune of a checkpoint holds its converted pack while the router refit
 * registers (and forgets) its own scratch pack. */
void mp_cleanup_scratch(const char *dir)
{
    if (!dir) {
        if (scratch_count > 0)
            scratch_count--;
        return;
    }
    if (strlen(dir) >= MAX_PATH || scratch_count >= MAX_SCRATCH)
        return;
    strcpy(scratch_dir[scratch_count], dir);
    install_handlers();
    scratch_count++;
}

void mp_cleanup_file(const char *path)
{
    file_armed = 0;
    if (!path || strlen(path) >= MAX_PATH)
        return;
    strcpy(armed_file, path);
    install_handlers();
    file_armed = 1;
}
