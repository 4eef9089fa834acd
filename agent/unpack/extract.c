#include "extract.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "xalloc.h"

/* Directories are made searchable; the agent makes the tree read-only
 * once every entry is in. */
#define DIR_MODE 0755

static int refuse(struct extract *x, const struct extract_entry *e, int r,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int refuse(struct extract *x, const struct extract_entry *e, int r,
    const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(x->err, sizeof(x->err), "refused entry '%.200s': %.290s",
	    e->path ? e->path : "(none)", why);
	return r;
}

/* Relative, and no ".." component ("./x" and "x/" are fine). */
static int name_inside(const char *p)
{
	if (p == NULL || p[0] == '/' || p[0] == '\0')
		return 0;
	while (*p) {
		size_t c = strcspn(p, "/");
		if (c == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += c;
		while (*p == '/')
			p++;
	}
	return 1;
}

/*
 * The text of a symlink stays inside the entry's own tree. Not what keeps
 * the agent safe (a chain of links that each look inside climbs out; the
 * kernel's check in make_symlink and every later walk beneath the root
 * are what hold), but it names the usual mistake clearly.
 */
static int link_text_inside(const char *entry_path, const char *target)
{
	int depth = 0;

	if (target[0] == '/' || target[0] == '\0')
		return 0;
	for (const char *p = entry_path; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			depth++;
	for (const char *p = target; *p; ) {
		size_t c = strcspn(p, "/");
		if (c == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (c > 0 && !(c == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return 0;
		p += c;
		while (*p == '/')
			p++;
	}
	return 1;
}

static int fs_refusal(struct extract *x, const struct extract_entry *e, int r)
{
	return refuse(x, e, r, "%s", beneath_strerror(r));
}

/* Makes room for a new name as tar does (a later entry wins), but never
 * replaces a directory with something else. */
static int clear_name(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

static int create_file(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);

	return fd >= 0 ? fd : -errno;
}

static int write_data(struct extract *x, const struct extract_entry *e,
    int fd, extract_read_fn rd, void *arg)
{
	const void *buf;
	size_t n;
	int64_t off;
	int r;

	while ((r = rd(arg, &buf, &n, &off)) > 0) {
		/* Sparse blocks come at offsets; none may lie past the size
		 * the header declared, which the caps were checked against. */
		if (off < 0 || (uint64_t)off > (uint64_t)e->size ||
		    n > (uint64_t)e->size - (uint64_t)off)
			return refuse(x, e, -EINVAL, "data past its declared size");
		const char *p = buf;
		while (n > 0) {
			ssize_t w = pwrite(fd, p, n, off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return refuse(x, e, -errno, "cannot write: %s",
				    strerror(errno));
			p += w;
			off += w;
			n -= (size_t)w;
		}
	}
	if (r < 0)
		return refuse(x, e, r, "the archive is corrupt");
	if (ftruncate(fd, e->size) < 0)
		return refuse(x, e, -errno, "cannot write: %s", strerror(errno));
	return 0;
}

static int make_file(struct extract *x, const struct extract_entry *e,
    extract_read_fn rd, void *arg)
{
	char name[NAME_MAX + 1];
	int dfd = -1, fd = -1, r;

	if (e->size < 0 || (uint64_t)e->size > x->max_bytes - x->bytes)
		return refuse(x, e, -EFBIG, "the archive unpacks to more than "
		    "%llu bytes", (unsigned long long)x->max_bytes);
	x->bytes += (uint64_t)e->size;
	if ((r = beneath_parent(x->rootfd, e->path, DIR_MODE, 0, &dfd, name,
	    sizeof(name))) < 0)
		return fs_refusal(x, e, r);
	fd = create_file(dfd, name);
	if (fd == -EEXIST && (fd = clear_name(dfd, name)) == 0)
		fd = create_file(dfd, name);
	if (fd < 0) {
		r = refuse(x, e, fd, "cannot create it: %s",
		    fd == -EISDIR ? "a directory has that name" : strerror(-fd));
		goto out;
	}
	if ((r = write_data(x, e, fd, rd, arg)) < 0)
		goto out;
	/* No set-id or sticky bit from an archive, ever. */
	(void)fchmod(fd, (e->mode & 0777) | 0400);
	if (e->mtime >= 0) {
		struct timespec t[2] = { { e->mtime, 0 }, { e->mtime, 0 } };
		(void)futimens(fd, t);	/* times are a nicety */
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

/* 1 when path, resolved beneath the root, would leave it (or loops). */
static int leads_out(struct extract *x, const char *path)
{
	int fd, r = beneath_open(x->rootfd, path, O_PATH, 0, &fd);

	if (r == 0)
		close(fd);
	return r == -EXDEV || r == -ELOOP;
}

static int make_symlink(struct extract *x, const struct extract_entry *e)
{
	char name[NAME_MAX + 1];
	int dfd = -1, r;

	if (e->link == NULL || !link_text_inside(e->path, e->link))
		return refuse(x, e, -EPERM, "a link pointing outside");
	if ((r = beneath_parent(x->rootfd, e->path, DIR_MODE, 0, &dfd, name,
	    sizeof(name))) < 0)
		return fs_refusal(x, e, r);
	if ((r = clear_name(dfd, name)) < 0) {
		r = refuse(x, e, r, "cannot create it: %s", strerror(-r));
		goto out;
	}
	if (symlinkat(e->link, dfd, name) < 0) {
		r = refuse(x, e, -errno, "cannot create it: %s", strerror(errno));
		goto out;
	}
	/* Where it leads now, as the kernel resolves it: a link through
	 * links made before that climbs out is refused here. Dangling is
	 * fine for now; extract_finish looks again once all are made, and
	 * whatever comes meanwhile is resolved beneath the root too. */
	if (leads_out(x, e->path)) {
		(void)unlinkat(dfd, name, 0);
		r = refuse(x, e, -EPERM, "a link pointing outside (through "
		    "other links)");
		goto out;
	}
	x->links = xreallocarray(x->links, x->nlinks + 1, sizeof(char *));
	x->links[x->nlinks++] = xstrdup(e->path);
	r = 0;
out:
	close(dfd);
	return r;
}

static int make_hardlink(struct extract *x, const struct extract_entry *e)
{
	char sname[NAME_MAX + 1], name[NAME_MAX + 1];
	int sfd = -1, dfd = -1, r;
	struct stat st;

	/* A hard link names an earlier entry of the archive. */
	if (!name_inside(e->link))
		return refuse(x, e, -EPERM, "a hard link outside");
	if ((r = beneath_parent(x->rootfd, e->link, 0, 0, &sfd, sname,
	    sizeof(sname))) < 0)
		return refuse(x, e, r, "a hard link to '%.100s': %s", e->link,
		    beneath_strerror(r));
	/* A hard link to a symlink would move the link's text to a place
	 * where it was never checked. */
	if (fstatat(sfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		r = refuse(x, e, -EPERM, "a hard link to '%.100s', which is not "
		    "a file of the archive", e->link);
		goto out;
	}
	if ((r = beneath_parent(x->rootfd, e->path, DIR_MODE, 0, &dfd, name,
	    sizeof(name))) < 0) {
		r = fs_refusal(x, e, r);
		goto out;
	}
	if ((r = clear_name(dfd, name)) == 0 && linkat(sfd, sname, dfd, name, 0) < 0)
		r = -errno;
	if (r < 0) {
		r = refuse(x, e, r, "cannot create it: %s", strerror(-r));
		goto out;
	}
	r = 0;
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

int extract_finish(struct extract *x)
{
	for (size_t i = 0; i < x->nlinks; i++) {
		if (!leads_out(x, x->links[i]))
			continue;
		snprintf(x->err, sizeof(x->err), "refused entry '%.200s': a link "
		    "pointing outside (through links made after it)", x->links[i]);
		return -EPERM;
	}
	return 0;
}

void extract_free(struct extract *x)
{
	for (size_t i = 0; i < x->nlinks; i++)
		free(x->links[i]);
	free(x->links);
	x->links = NULL;
	x->nlinks = 0;
}

void extract_init(struct extract *x, int rootfd, uint64_t max_bytes,
    uint64_t max_entries)
{
	memset(x, 0, sizeof(*x));
	x->rootfd = rootfd;
	x->max_bytes = max_bytes;
	x->max_entries = max_entries;
}

int extract_entry(struct extract *x, const struct extract_entry *e,
    extract_read_fn rd, void *arg)
{
	int r;

	if (++x->entries > x->max_entries)
		return refuse(x, e, -E2BIG, "the archive has more than %llu "
		    "entries", (unsigned long long)x->max_entries);
	if (!name_inside(e->path))
		return refuse(x, e, -EPERM, "absolute or with '..'");
	if (x->no_links && (e->type == EXTRACT_SYMLINK ||
	    e->type == EXTRACT_HARDLINK))
		return refuse(x, e, -EPERM, "a link, where none may be");
	switch (e->type) {
	case EXTRACT_DIR:
		if ((r = beneath_mkdir_p(x->rootfd, e->path, DIR_MODE, 0, NULL)) < 0)
			return fs_refusal(x, e, r);
		return 0;
	case EXTRACT_FILE:
		return make_file(x, e, rd, arg);
	case EXTRACT_SYMLINK:
		return make_symlink(x, e);
	case EXTRACT_HARDLINK:
		return make_hardlink(x, e);
	case EXTRACT_OTHER:
		break;
	}
	return refuse(x, e, -EPERM, "device, FIFO or socket");
}
