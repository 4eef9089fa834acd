/*
 * File-system helpers shared by the programs: bounded reads, atomic
 * writes with a chosen mode, directory creation and removal that never
 * follows a symbolic link.
 */
#ifndef SKIFF_FSX_H
#define SKIFF_FSX_H

#include <stddef.h>
#include <sys/types.h>

struct buf;

/* Reads the whole file into out (appending); -E2BIG past max bytes. */
int fsx_read_file(const char *path, size_t max, struct buf *out);
/* The same relative to dirfd; flags are added to the open (O_NOFOLLOW). */
int fsx_read_fileat(int dirfd, const char *path, size_t max, int flags,
    struct buf *out);
/* Writes via a temporary file, fsync and rename, so readers see either
 * the old or the new contents; the file is created with mode. */
int fsx_write_file(const char *path, const void *data, size_t len,
    mode_t mode);
/* The same beneath dirfd (whose fsync makes the rename durable). */
int fsx_write_fileat(int dirfd, const char *path, const void *data,
    size_t len, mode_t mode);
/* mkdir -p; existing directories are fine. */
int fsx_mkdir_p(const char *path, mode_t mode);
/* rm -rf below dirfd/name without following links; tolerant of ENOENT. */
int fsx_remove_tree(const char *path);
/*
 * 0 when path is a regular file this process can open for reading;
 * -EISDIR, -EINVAL (a FIFO, a device, a socket: looked at with O_PATH,
 * never opened, so none can block or act) or the open's -errno.
 */
int fsx_check_regular(const char *path);
/* write() until done or a hard error. */
int fsx_write_all(int fd, const void *p, size_t n);

#endif
