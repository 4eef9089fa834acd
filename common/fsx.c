#include "fsx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

int fsx_read_file(const char *path, size_t max, struct buf *out)
{
	return fsx_read_fileat(AT_FDCWD, path, max, 0, out);
}

int fsx_read_fileat(int dirfd, const char *path, size_t max, int flags,
    struct buf *out)
{
	char chunk[8192];
	int r = 0;
	size_t before = out->len;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((size_t)n > max || out->len > max - (size_t)n) {
			r = -E2BIG;
			break;
		}
		if ((r = buf_append(out, chunk, (size_t)n)) < 0)
			break;
	}
	close(fd);
	if (r < 0 && out->len > before) {
		/* Outputs are untouched on failure: no half file. */
		out->len = before;
		out->data[before] = '\0';
	}
	return r;
}

int fsx_check_regular(const char *path)
{
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	close(fd);
	if (r < 0)
		return r;
	/* Regular: opening it has no side effect; this checks permission. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		return -errno;
	close(fd);
	return 0;
}

int fsx_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int fsx_write_file(const char *path, const void *data, size_t len,
    mode_t mode)
{
	int r = fsx_write_fileat(AT_FDCWD, path, data, len, mode);

	return r < 0 ? r : fsync_parent(path);
}

int fsx_write_fileat(int dirfd, const char *path, const void *data,
    size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	/* The umask must not widen or narrow what the caller asked for. */
	errno = 0;
	if (fchmod(fd, mode) < 0 || (r = fsx_write_all(fd, data, len)) < 0 ||
	    fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, path) < 0) {
		r = -errno;
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (dirfd != AT_FDCWD && fsync(dirfd) < 0)
		return -errno;
	return 0;
}

int fsx_mkdir_p(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, n + 1);
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * Opens the directory name below dfd without following a link. A step can
 * leave a directory without read or search permission (mode 0), which an
 * agent not running as root could then not empty: make it searchable
 * first. fchmodat follows links, so check the entry is a directory of
 * ours first, and never through a link (AT_SYMLINK_NOFOLLOW): a step
 * that swaps in a link in between gets the chmod refused.
 */
static int open_subdir(int dfd, const char *name)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;
	int fd = openat(dfd, name, flags);

	if (fd >= 0 || errno != EACCES)
		return fd >= 0 ? fd : -errno;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EACCES;
	if (fchmodat(dfd, name, 0700, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	fd = openat(dfd, name, flags);
	return fd >= 0 ? fd : -errno;
}

/*
 * A tree a job made may be any depth (a loop of mkdir and cd makes 10,000
 * levels in a second). Past this depth a directory is moved up to the top
 * of the tree being removed and emptied by a later pass: no recursion,
 * and no more open directories, than this.
 */
#define REMOVE_MAX_DEPTH 64

struct rm {
	int topfd;
	unsigned hoisted, seq;
};

/* Moves name (a directory in dfd) to the top under a fresh name. */
static int hoist(struct rm *rm, int dfd, const char *name)
{
	char to[64];

	for (int i = 0; i < 64; i++) {
		snprintf(to, sizeof(to), ".skiff-deep.%ld.%u", (long)getpid(),
		    rm->seq++);
		if (renameat(dfd, name, rm->topfd, to) == 0) {
			rm->hoisted++;
			return 0;
		}
		if (errno != EEXIST && errno != ENOTEMPTY)
			return -errno;
	}
	return -EEXIST;
}

/* Removes everything inside the directory dfd (which it closes). */
static int remove_contents(struct rm *rm, int dfd, int depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if ((d = fdopendir(dfd)) == NULL) {
		r = -errno;
		close(dfd);
		return r;
	}
	/* dfd may be a dup of the top's fd, sharing the offset a pass
	 * before left at the end. */
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			r = -errno;
			continue;
		}
		if (depth + 1 >= REMOVE_MAX_DEPTH) {
			int rr = hoist(rm, dirfd(d), e->d_name);
			if (rr < 0)
				r = rr;
			continue;
		}
		int sub = open_subdir(dirfd(d), e->d_name);
		if (sub < 0) {
			r = sub;
			continue;
		}
		/* A directory without write or search permission for us:
		 * make it removable; we own the workspace. */
		fchmod(sub, 0700);
		int rr = remove_contents(rm, sub, depth + 1);
		if (rr < 0)
			r = rr;
		if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0 &&
		    errno != ENOENT)
			r = -errno;
	}
	closedir(d);
	return r;
}

int fsx_remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	struct rm rm = { -1, 0, 0 };
	int r;

	rm.topfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rm.topfd < 0)
		return -errno;
	fchmod(rm.topfd, 0700);
	/* Each pass removes what lies above the depth cap and moves what
	 * lies below it up: a bounded number of passes for any tree that
	 * is not growing while we remove it. */
	for (unsigned pass = 0; pass < 1000000; pass++) {
		int fd = fcntl(rm.topfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			r = -errno;
			break;
		}
		rm.hoisted = 0;
		r = remove_contents(&rm, fd, 0);
		if (rm.hoisted == 0 || r < 0)
			break;
	}
	close(rm.topfd);
	if (rmdir(path) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}
