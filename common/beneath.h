/*
 * Paths a job controls, resolved beneath a directory fd.
 *
 * A job writes its workspace (its steps do, on the host and in containers
 * as root), and what it unpacks or places among its inputs is its own
 * choice too. Any symbolic link in such a tree may have been put there to
 * make the agent follow it out: checking a path as a string and then
 * handing it to the kernel to walk from / cannot be made safe (a chain of
 * links that each look inside climbs to /; a link can be swapped in
 * between check and use). So every operation the agent makes on such a
 * tree starts from a directory fd the agent opened itself and resolves
 * the rest with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the
 * kernel refuses, atomically, any walk that would leave the root, however
 * it is spelt. Creation is mkdirat/openat/symlinkat/linkat of one name in
 * a directory so resolved.
 *
 * Where links have no business (BENEATH_NO_LINKS) every link on the way is
 * refused as well. Kernels without openat2 (before 5.6) get a walk one
 * component at a time that refuses every link and every "..".
 *
 * Errors: -EXDEV for a path that leaves the root (or an absolute one),
 * -ELOOP for a link where none is allowed, -ENOTDIR, -ENOENT, ... as the
 * kernel says; see beneath_strerror.
 */
#ifndef SKIFF_BENEATH_H
#define SKIFF_BENEATH_H

#include <sys/stat.h>
#include <sys/types.h>

#define BENEATH_NO_LINKS 1u	/* refuse every symbolic link on the way */

/* Opens path beneath rootfd with open flags (O_CLOEXEC is added, O_CREAT
 * is not allowed: create with beneath_parent and one name). */
int beneath_open(int rootfd, const char *path, int flags, unsigned how,
    int *out);
/* mkdir -p of path beneath rootfd ("" or "." is the root itself); *out,
 * when not NULL, gets an O_RDONLY|O_DIRECTORY fd of the last directory. */
int beneath_mkdir_p(int rootfd, const char *path, mode_t mode, unsigned how,
    int *out);
/*
 * Opens the directory that holds path's last component, creating it (and
 * those above) with mkmode when mkmode is not 0; name gets that
 * component, which is never "", "." or "..", and has no '/'
 * (a path that ends in "/", ".", or ".." is refused with -EISDIR, so a
 * caller that creates a file does not create it somewhere else).
 */
int beneath_parent(int rootfd, const char *path, mode_t mkmode, unsigned how,
    int *dirfd, char *name, size_t namelen);
/*
 * Opens a regular file for reading. Anything else (a FIFO, a device, a
 * socket, a directory) is refused with -EINVAL without being opened for
 * reading: an O_PATH fd is checked with fstat first and only then that
 * very inode opened, so a FIFO cannot block the caller and a device
 * cannot act on an open. *st gets the file's stat.
 */
int beneath_open_regular(int rootfd, const char *path, unsigned how,
    int *out, struct stat *st);
/* Words for an error of this module ("leaves the directory", ...). */
const char *beneath_strerror(int err);

#endif
