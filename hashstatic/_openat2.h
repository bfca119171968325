/*
 * How hashstatic's C parts open a file under the static root: openat2 with no symbolic link
 * followed, so that the descriptor names exactly the file at that path (no readlink of
 * /proc/self/fd is needed to learn where it is). Shared by hashstatic._speedups (open_plain)
 * and hashstatic._digests (digest_files), so that the two cannot open differently.
 *
 * Linux only: HAVE_OPEN_PLAIN is defined where the system call is known at build time.
 *
 * Also how both name the version of a file they opened (file_key_of). Include it after
 * Python.h.
 */
#ifndef HASHSTATIC_OPENAT2_H
#define HASHSTATIC_OPENAT2_H

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* (st_dev, st_ino, mtime_ns, ctime_ns, st_size) of st: hashstatic.cache's _Key of a file, or
   NULL with an exception set. */
static inline PyObject *
file_key_of(const struct stat *st)
{
    long long mtime = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    long long ctime = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
    return Py_BuildValue("(KKLLL)", (unsigned long long)st->st_dev,
                         (unsigned long long)st->st_ino, mtime, ctime, (long long)st->st_size);
}

#if defined(SYS_openat2)
#define HAVE_OPEN_PLAIN 1
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_SYMLINKS 0x04
#endif

/* Read-only; non-blocking, so that a FIFO swapped in cannot hang the open; close-on-exec;
   and no symbolic link as the last part either. */
#define PLAIN_OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)

/* struct open_how of <linux/openat2.h>, spelt out so that the header is not needed. */
struct plain_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

/* A descriptor for the file at path, or -1 with errno set (ELOOP: a symbolic link on the way;
   ENOSYS, EPERM or E2BIG: a kernel or filter without openat2). Call it without the
   interpreter lock. */
static inline long
plain_open(const char *path)
{
    struct plain_how how = {
        .flags = (uint64_t)PLAIN_OPEN_FLAGS,
        .mode = 0,
        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    return syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}
#endif /* SYS_openat2 */
#endif /* __linux__ */

#endif /* HASHSTATIC_OPENAT2_H */
