/* LD_PRELOAD shim for the fault tests (tests/cli/test_faults.sh): makes writes to
 * regular files fail the way a failing disk does, so that every writer's error path
 * runs. Only writes through the write/pwrite/writev family are seen: stdio's internal
 * flushes call the kernel directly and pass unharmed.
 *
 *   MP_FAULT_PATH=PREFIX   only files whose path starts with PREFIX (default: every
 *                          regular file; pipes and terminals are never touched, so the
 *                          error message still reaches stderr)
 *   MP_FAULT_AFTER=N       after N bytes written in all, writes fail; the write that
 *                          crosses N is cut short first, as on a full disk
 *   MP_FAULT_CALL=N        the Nth write call fails (and every later one)
 *   MP_FAULT_ERRNO=N       the errno given (default EIO)
 *   MP_FAULT_FSYNC=1       fsync and fdatasync fail
 *   MP_FAULT_CLOSE=1       close of a file written to fails (the descriptor is closed)
 *   MP_FAULT_SLOW_US=N     every write sleeps N microseconds first (nothing fails), so
 *                          that a signal arrives while the output is being written
 *
 * Built as a shared object by the Makefile (build/fault_shim.so), not linked into
 * anything. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED_FD 4096

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*fd_fn)(int);

/* A preload shim has no other place for its counters than process-wide state. */
static unsigned long long bytes_written, calls_made;
static unsigned char written_fd[MAX_TRACKED_FD];

static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort();
    return f;
}

static long long env_number(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atoll(v) : -1;
}

static int fault_errno(void)
{
    long long e = env_number("MP_FAULT_ERRNO");
    return e > 0 ? (int)e : EIO;
}

/* A regular file under MP_FAULT_PATH. */
static int targeted(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    const char *prefix = getenv("MP_FAULT_PATH");
    if (!prefix || !*prefix)
        return 1;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = '\0';
    return strncmp(path, prefix, strlen(prefix)) == 0;
}

/* How many of len bytes may be written to fd: len, fewer (a short write), or -1 with
 * errno set when the write fails. */
static ssize_t allowance(int fd, size_t len)
{
    if (!targeted(fd))
        return (ssize_t)len;
    if (fd < MAX_TRACKED_FD)
        written_fd[fd] = 1;
    long long slow = env_number("MP_FAULT_SLOW_US");
    if (slow > 0) {
        struct timespec ts = {(time_t)(slow / 1000000), (long)(slow % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    unsigned long long call = __atomic_add_fetch(&calls_made, 1, __ATOMIC_SEQ_CST);
    long long nth = env_number("MP_FAULT_CALL");
    if (nth > 0 && call >= (unsigned long long)nth) {
        errno = fault_errno();
        return -1;
    }
    long long after = env_number("MP_FAULT_AFTER");
    if (after < 0)
        return (ssize_t)len;
    unsigned long long before = __atomic_fetch_add(&bytes_written, len, __ATOMIC_SEQ_CST);
    if (before >= (unsigned long long)after) {
        errno = fault_errno();
        return -1;
    }
    unsigned long long room = (unsigned long long)after - before;
    return len > room ? (ssize_t)room : (ssize_t)len;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    static write_fn next;
    if (!next)
        next = (write_fn)real("write");
    ssize_t n = allowance(fd, len);
    return n < 0 ? -1 : next(fd, buf, (size_t)n);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    static pwrite_fn next;
    if (!next)
        next = (pwrite_fn)real("pwrite");
    ssize_t n = allowance(fd, len);
    return n < 0 ? -1 : next(fd, buf, (size_t)n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    return pwrite(fd, buf, len, off);
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

/* A vector write cut short fails whole: simpler, and a writer must cope with both. */
ssize_t writev(int fd, const struct iovec *iov, int n)
{
    static writev_fn next;
    if (!next)
        next = (writev_fn)real("writev");
    size_t total = iov_total(iov, n);
    ssize_t allowed = allowance(fd, total);
    if (allowed >= 0 && (size_t)allowed < total) {
        errno = fault_errno();
        return -1;
    }
    return allowed < 0 ? -1 : next(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    static pwritev_fn next;
    if (!next)
        next = (pwritev_fn)real("pwritev");
    size_t total = iov_total(iov, n);
    ssize_t allowed = allowance(fd, total);
    if (allowed >= 0 && (size_t)allowed < total) {
        errno = fault_errno();
        return -1;
    }
    return allowed < 0 ? -1 : next(fd, iov, n, off);
}

static int sync_fault(int fd, const char *name)
{
    fd_fn next = (fd_fn)real(name);
    if (env_number("MP_FAULT_FSYNC") > 0 && targeted(fd)) {
        errno = fault_errno();
        return -1;
    }
    return next(fd);
}

int fsync(int fd)
{
    return sync_fault(fd, "fsync");
}

int fdatasync(int fd)
{
    return sync_fault(fd, "fdatasync");
}

int close(int fd)
{
    static fd_fn next;
    if (!next)
        next = (fd_fn)real("close");
    int was_written = fd >= 0 && fd < MAX_TRACKED_FD && written_fd[fd];
    if (was_written)
        written_fd[fd] = 0;
    int rc = next(fd);
    if (rc == 0 && was_written && env_number("MP_FAULT_CLOSE") > 0) {
        errno = fault_errno();
        return -1;
    }
    return rc;
}
