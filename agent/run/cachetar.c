#include "cachetar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "beneath.h"
#include "xalloc.h"

#define BLOCK 512
#define COPY_BUF (256 * 1024)
#define USTAR_SIZE_MAX 077777777777LL	/* 11 octal digits */

struct ctar {
	gzFile gz;
	uint64_t max_bytes, max_entries, entries;
	cachetar_note_fn note;
	void *arg;
	struct cachetar_stats *st;
	char *buf;
	int err;
};

static void note(struct ctar *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct ctar *t, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	if (t->note == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	t->note(t->arg, line);
}

static int put(struct ctar *t, const void *p, size_t n)
{
	while (n > 0) {
		unsigned chunk = n > (1u << 30) ? 1u << 30 : (unsigned)n;
		int w = gzwrite(t->gz, p, chunk);
		if (w <= 0)
			return -EIO;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

static int pad(struct ctar *t, uint64_t n)
{
	static const char zero[BLOCK];
	size_t r = (size_t)(n % BLOCK);

	return r ? put(t, zero, BLOCK - r) : 0;
}

/* len - 1 octal digits, zero-padded, and a NUL (v fits: callers check). */
static void octal(char *dst, size_t len, uint64_t v)
{
	dst[len - 1] = '\0';
	for (size_t i = len - 1; i-- > 0; v >>= 3)
		dst[i] = (char)('0' + (v & 7));
}

static void checksum(unsigned char *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static int raw_header(struct ctar *t, const char *name, char type,
    mode_t mode, uint64_t size, int64_t mtime)
{
	unsigned char h[BLOCK];

	memset(h, 0, sizeof(h));
	memcpy(h, name, strnlen(name, 100));
	octal((char *)h + 100, 8, mode & 0777);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size);
	octal((char *)h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	checksum(h);
	return put(t, h, sizeof(h));
}

/* One pax record "LEN key=value\n", LEN counting itself. */
static size_t pax_record(char *dst, size_t cap, const char *key,
    const char *value)
{
	size_t body = strlen(key) + strlen(value) + 3, len = body + 1;

	while (snprintf(NULL, 0, "%zu", len) + body != len)
		len++;
	return (size_t)snprintf(dst, cap, "%zu %s=%s\n", len, key, value);
}

/* The header of an entry; a pax header first for a long name or size. */
static int header(struct ctar *t, const char *name, char type, mode_t mode,
    uint64_t size, int64_t mtime)
{
	size_t nlen = strlen(name);
	char pax[8192], num[32];
	size_t plen = 0;
	int r;

	if (++t->entries > t->max_entries) {
		note(t, "more than %llu entries", (unsigned long long)t->max_entries);
		return -E2BIG;
	}
	if (nlen >= 100)
		plen += pax_record(pax + plen, sizeof(pax) - plen, "path", name);
	if (size > (uint64_t)USTAR_SIZE_MAX) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
		plen += pax_record(pax + plen, sizeof(pax) - plen, "size", num);
	}
	if (plen >= sizeof(pax))
		return -ENAMETOOLONG;
	if (plen) {
		if ((r = raw_header(t, "././@PaxHeader", 'x', 0644, plen, 0)) < 0 ||
		    (r = put(t, pax, plen)) < 0 || (r = pad(t, plen)) < 0)
			return r;
	}
	return raw_header(t, name, type, mode,
	    size > (uint64_t)USTAR_SIZE_MAX ? 0 : size, mtime);
}

static int add_file(struct ctar *t, int fd, const char *name,
    const struct stat *st)
{
	uint64_t size = (uint64_t)st->st_size, done = 0;
	int r;

	if (size > t->max_bytes - t->st->bytes) {
		note(t, "%s: the cache would pass %llu bytes", name,
		    (unsigned long long)t->max_bytes);
		return -E2BIG;
	}
	if ((r = header(t, name, '0', st->st_mode, size, st->st_mtime)) < 0)
		return r;
	while (done < size) {
		size_t want = size - done > COPY_BUF ? COPY_BUF : (size_t)(size - done);
		ssize_t got = pread(fd, t->buf, want, (off_t)done);
		if (got < 0)
			return -errno;
		if (got == 0) {
			/* It shrank: zeros keep the archive whole. */
			memset(t->buf, 0, want);
			got = (ssize_t)want;
		}
		if ((r = put(t, t->buf, (size_t)got)) < 0)
			return r;
		done += (uint64_t)got;
	}
	t->st->files++;
	t->st->bytes += size;
	return pad(t, size);
}

static const char *kind(mode_t m)
{
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	return "not a file or directory";
}

static int add_dir(struct ctar *t, int dfd, const char *name, int depth);

/* One entry of a directory (or a path named by the job) beneath dfd. */
static int add_at(struct ctar *t, int dfd, const char *rel, const char *name,
    int depth)
{
	struct stat st;
	int fd, r;

	if (fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd < 0)
			return -errno;
		r = header(t, name, '5', st.st_mode, 0, st.st_mtime);
		if (r == 0)
			r = add_dir(t, fd, name, depth + 1);
		close(fd);
		t->st->dirs++;
		return r;
	}
	if (S_ISREG(st.st_mode)) {
		/* Opened as a regular file or not at all: swapped for a FIFO or
		 * a device since the stat, it is refused, not opened. */
		r = beneath_open_regular(dfd, rel, BENEATH_NO_LINKS, &fd, &st);
		if (r < 0) {
			note(t, "%s: skipped: %s", name, beneath_strerror(r));
			t->st->skipped++;
			return 0;
		}
		r = add_file(t, fd, name, &st);
		close(fd);
		return r;
	}
	note(t, "%s: skipped: %s", name, kind(st.st_mode));
	t->st->skipped++;
	return 0;
}

static int add_dir(struct ctar *t, int dfd, const char *name, int depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0, fd;

	if (depth > CACHETAR_MAX_DEPTH) {
		note(t, "%s: deeper than %d directories", name, CACHETAR_MAX_DEPTH);
		return -ELOOP;
	}
	if ((fd = dup(dfd)) < 0 || (d = fdopendir(fd)) == NULL) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (r == 0 && (errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *child = xasprintf("%s/%s", name, e->d_name);
		r = add_at(t, dirfd(d), e->d_name, child, depth);
		free(child);
	}
	if (r == 0 && errno != 0)
		r = -errno;
	closedir(d);
	return r;
}

/* A path the job named: every component beneath wsfd, no link on the
 * way (BENEATH_NO_LINKS), the last one included. */
static int add_path(struct ctar *t, int wsfd, const char *path)
{
	char name[256];
	int pfd, r;

	r = beneath_parent(wsfd, path, 0, BENEATH_NO_LINKS, &pfd, name,
	    sizeof(name));
	if (r == -ENOENT) {
		note(t, "%s: not there, nothing to save", path);
		return 0;
	}
	if (r < 0) {
		note(t, "%s: skipped: %s", path, beneath_strerror(r));
		t->st->skipped++;
		return 0;
	}
	r = add_at(t, pfd, name, path, 0);
	close(pfd);
	if (r == -ENOENT) {
		note(t, "%s: not there, nothing to save", path);
		return 0;
	}
	return r;
}

int cachetar_pack(int wsfd, char *const *paths, size_t npaths, int outfd,
    int level, uint64_t max_bytes, uint64_t max_entries,
    cachetar_note_fn notefn, void *arg, struct cachetar_stats *st)
{
	struct ctar t = { 0 };
	char mode[8];
	int fd, r = 0;
	static const char zero[2 * BLOCK];

	memset(st, 0, sizeof(*st));
	if ((fd = dup(outfd)) < 0)
		return -errno;
	snprintf(mode, sizeof(mode), "wb%d", level < 1 || level > 9 ? 1 : level);
	if ((t.gz = gzdopen(fd, mode)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	gzbuffer(t.gz, 128 * 1024);
	t.max_bytes = max_bytes;
	t.max_entries = max_entries;
	t.note = notefn;
	t.arg = arg;
	t.st = st;
	t.buf = xmalloc(COPY_BUF);
	for (size_t i = 0; r == 0 && i < npaths; i++) {
		/* The same tree named twice goes in once. */
		int dup_path = 0;
		for (size_t k = 0; k < i; k++)
			dup_path |= strcmp(paths[k], paths[i]) == 0;
		if (!dup_path)
			r = add_path(&t, wsfd, paths[i]);
	}
	if (r == 0)
		r = put(&t, zero, sizeof(zero));
	if (gzclose(t.gz) != Z_OK && r == 0)
		r = -EIO;
	free(t.buf);
	return r;
}
