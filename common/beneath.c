#include "beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* openat2 answers EAGAIN when a rename elsewhere raced the walk. */
#define RACE_TRIES 16

static int without_openat2;

void beneath_test_without_openat2(int on);

/* For tests of the fallback walk; not in the header on purpose. */
void beneath_test_without_openat2(int on)
{
	without_openat2 = on;
}

static int is_dotdot(const char *p, size_t n)
{
	return n == 2 && p[0] == '.' && p[1] == '.';
}

/*
 * Before openat2: one component at a time, never through a link and never
 * up, so nothing can lead out whatever the tree holds.
 */
static int walk(int rootfd, const char *path, int flags, int *out)
{
	int cur = -1, r = 0;
	const char *p = path;

	if ((cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	while (*p == '/')
		p++;
	while (*p) {
		size_t c = strcspn(p, "/");
		char comp[NAME_MAX + 1];
		const char *rest = p + c;
		while (*rest == '/')
			rest++;
		if (c > NAME_MAX) {
			r = -ENAMETOOLONG;
			goto out;
		}
		if (is_dotdot(p, c)) {
			r = -EXDEV;
			goto out;
		}
		memcpy(comp, p, c);
		comp[c] = '\0';
		p = rest;
		if (c == 1 && comp[0] == '.' && *rest)
			continue;
		struct stat st;
		int next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 || fstat(next, &st) < 0) {
			r = -errno;
			if (next >= 0)
				close(next);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			close(next);
			r = -ELOOP;
			goto out;
		}
		if (*rest && !S_ISDIR(st.st_mode)) {
			close(next);
			r = -ENOTDIR;
			goto out;
		}
		if (!*rest && !(flags & O_PATH)) {
			/* The last one for real, relative to its checked parent. */
			close(next);
			next = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC);
			if (next < 0) {
				r = errno == ELOOP ? -ELOOP : -errno;
				goto out;
			}
		}
		close(cur);
		cur = next;
	}
	if (flags & O_DIRECTORY) {
		struct stat st;
		if (fstat(cur, &st) < 0 || !S_ISDIR(st.st_mode)) {
			r = -ENOTDIR;
			goto out;
		}
	}
	*out = cur;
	return 0;
out:
	close(cur);
	return r;
}

int beneath_open(int rootfd, const char *path, int flags, unsigned how,
    int *out)
{
	struct open_how oh = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = -1;

	if (flags & O_CREAT)
		return -EINVAL;
	if (path[0] == '/')
		return -EXDEV;
	if (path[0] == '\0')
		path = ".";
	if (how & BENEATH_NO_LINKS)
		oh.resolve |= RESOLVE_NO_SYMLINKS;
	if (!without_openat2) {
		for (int i = 0; i < RACE_TRIES; i++) {
			fd = (int)syscall(SYS_openat2, rootfd, path, &oh, sizeof(oh));
			if (fd >= 0 || errno != EAGAIN)
				break;
		}
		if (fd >= 0) {
			*out = fd;
			return 0;
		}
		if (errno != ENOSYS)
			return -errno;
	}
	return walk(rootfd, path, flags, out);
}

int beneath_mkdir_p(int rootfd, const char *path, mode_t mode, unsigned how,
    int *out)
{
	char prefix[PATH_MAX];
	size_t plen = 0;
	const char *p = path;
	int cur = -1, r;

	if (path[0] == '/')
		return -EXDEV;
	if ((r = beneath_open(rootfd, ".", O_RDONLY | O_DIRECTORY, how, &cur)) < 0)
		return r;
	while (*p) {
		size_t c = strcspn(p, "/");
		const char *comp = p;
		p += c;
		while (*p == '/')
			p++;
		if (c == 0 || (c == 1 && comp[0] == '.'))
			continue;
		/* Nothing is ever created by climbing: a ".." here is a
		 * mistake or an attack. */
		if (is_dotdot(comp, c)) {
			r = -EXDEV;
			goto out;
		}
		if (c > NAME_MAX || plen + c + 2 > sizeof(prefix)) {
			r = -ENAMETOOLONG;
			goto out;
		}
		if (plen)
			prefix[plen++] = '/';
		memcpy(prefix + plen, comp, c);
		plen += c;
		prefix[plen] = '\0';
		int next;
		r = beneath_open(rootfd, prefix, O_RDONLY | O_DIRECTORY, how, &next);
		if (r == -ENOENT) {
			/* One name in the directory we hold: mkdirat never
			 * follows a link that is already there. */
			if (mkdirat(cur, prefix + plen - c, mode) < 0 && errno != EEXIST) {
				r = -errno;
				goto out;
			}
			r = beneath_open(rootfd, prefix, O_RDONLY | O_DIRECTORY, how,
			    &next);
		}
		if (r < 0)
			goto out;
		close(cur);
		cur = next;
	}
	if (out) {
		*out = cur;
		cur = -1;
	}
	r = 0;
out:
	if (cur >= 0)
		close(cur);
	return r;
}

int beneath_parent(int rootfd, const char *path, mode_t mkmode, unsigned how,
    int *dirfd, char *name, size_t namelen)
{
	char dir[PATH_MAX];
	size_t n = strlen(path);
	const char *slash;
	int r, fd;

	if (path[0] == '/')
		return -EXDEV;
	if (n == 0 || path[n - 1] == '/')
		return -EISDIR;
	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(path, '/');
	const char *last = slash ? slash + 1 : path;
	size_t ln = strlen(last);
	if ((ln == 1 && last[0] == '.') || is_dotdot(last, ln))
		return -EISDIR;
	if (ln > NAME_MAX || ln >= namelen)
		return -ENAMETOOLONG;
	memcpy(dir, path, (size_t)(last - path));
	dir[last - path] = '\0';
	if (mkmode)
		r = beneath_mkdir_p(rootfd, dir, mkmode, how, &fd);
	else
		r = beneath_open(rootfd, dir, O_RDONLY | O_DIRECTORY, how, &fd);
	if (r < 0)
		return r;
	memcpy(name, last, ln + 1);
	*dirfd = fd;
	return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int beneath_open_regular(int rootfd, const char *path, unsigned how,
    int *out, struct stat *st)
{
	char self[64];
	struct stat ps, fs;
	int pfd, fd, r;

	if ((r = beneath_open(rootfd, path, O_PATH, how, &pfd)) < 0)
		return r;
	if (fstat(pfd, &ps) < 0) {
		r = -errno;
		close(pfd);
		return r;
	}
	if (!S_ISREG(ps.st_mode)) {
		close(pfd);
		return -EINVAL;
	}
	/*
	 * Reopen that very inode. O_NONBLOCK as well: a file whose owner
	 * holds a write lease would otherwise hold the open for the lease
	 * break time (45 s by default).
	 */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* No /proc: the same walk again, checked to be the same. */
		r = beneath_open(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY,
		    how, &fd);
		if (r < 0)
			fd = -1, errno = -r;
	}
	if (fd < 0) {
		r = -errno;
		close(pfd);
		return r;
	}
	close(pfd);
	if (fstat(fd, &fs) < 0 || !S_ISREG(fs.st_mode) || !same_file(&ps, &fs)) {
		close(fd);
		return -EINVAL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);	/* regular: no matter */
	*st = fs;
	*out = fd;
	return 0;
}

const char *beneath_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case EXDEV:
		return "it leads outside its directory (an absolute path, '..' "
		    "or a symbolic link out)";
	case ELOOP:
		return "it goes through a symbolic link";
	case EINVAL:
		return "not a regular file";
	case EWOULDBLOCK:
		return "the file is held by a lease";
	default:
		return strerror(err);
	}
}
