#include "artifacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "buf.h"
#include "xalloc.h"

struct parts {
	char *v[ARTIFACTS_MAX_DEPTH + 1];
	size_t n;
};

/* Splits a copy of s at '/' (empty components dropped). */
static char *split(const char *s, struct parts *p)
{
	char *copy = xstrdup(s), *c = copy;

	p->n = 0;
	while (*c && p->n < ARTIFACTS_MAX_DEPTH) {
		char *slash = strchr(c, '/');
		if (slash)
			*slash = '\0';
		if (*c)
			p->v[p->n++] = c;
		if (!slash)
			break;
		c = slash + 1;
	}
	return copy;
}

static int comp_match(const char *pat, const char *name)
{
	return fnmatch(pat, name, FNM_PERIOD) == 0;
}

/* Does path[0..nq) match pattern pat[0..np)? '**' spans 0..n parts. */
static int match_parts(char *const *pat, size_t np, char *const *path,
    size_t nq)
{
	if (np == 0)
		return nq == 0;
	if (strcmp(pat[0], "**") == 0) {
		for (size_t k = 0; k <= nq; k++) {
			/* '**' does not enter hidden directories either. */
			if (k > 0 && path[k - 1][0] == '.')
				return 0;
			if (match_parts(pat + 1, np - 1, path + k, nq - k))
				return 1;
		}
		return 0;
	}
	return nq > 0 && comp_match(pat[0], path[0]) &&
	    match_parts(pat + 1, np - 1, path + 1, nq - 1);
}

/* Could a file below directory path[0..nq) match? Prunes the walk. */
static int match_prefix(char *const *pat, size_t np, char *const *path,
    size_t nq)
{
	if (nq == 0)
		return 1;
	if (np == 0)
		return 0;
	if (strcmp(pat[0], "**") == 0)
		return path[0][0] != '.' || match_prefix(pat + 1, np - 1, path, nq);
	return comp_match(pat[0], path[0]) &&
	    match_prefix(pat + 1, np - 1, path + 1, nq - 1);
}

int artifacts_match(const char *glob, const char *path)
{
	struct parts g, p;
	char *a = split(glob, &g), *b = split(path, &p);
	int r = match_parts(g.v, g.n, p.v, p.n);

	free(a);
	free(b);
	return r;
}

struct walk {
	struct parts *globs;
	size_t nglobs;
	struct parts cur;
	size_t visited;
	void (*hit)(void *, const char *);
	void *arg;
	int truncated;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void report(struct walk *w)
{
	struct buf b = BUF_INIT(4096 + 1);

	for (size_t i = 0; i < w->cur.n; i++) {
		if (i)
			buf_putc(&b, '/');
		if (buf_puts(&b, w->cur.v[i]) < 0) {
			buf_free(&b);
			return;
		}
	}
	w->hit(w->arg, buf_cstr(&b));
	buf_free(&b);
}

static int any_match(struct walk *w, int prefix)
{
	for (size_t i = 0; i < w->nglobs; i++) {
		struct parts *g = &w->globs[i];
		if (prefix ? match_prefix(g->v, g->n, w->cur.v, w->cur.n) :
		    match_parts(g->v, g->n, w->cur.v, w->cur.n))
			return 1;
	}
	return 0;
}

/* Sorted names of dfd's entries (so uploads come in a stable order). */
static char **list_dir(int dfd, size_t *count, struct walk *w)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;

	if (d == NULL) {
		close(dfd);
		return NULL;
	}
	/* dfd is a dup sharing its offset with the caller's fd, which an
	 * earlier walk may have left at the end. */
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (++w->visited > ARTIFACTS_MAX_VISIT) {
			w->truncated = 1;
			break;
		}
		names = xreallocarray(names, n + 1, sizeof(char *));
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(char *), cmp_str);
	*count = n;
	return names;
}

static void walk_dir(struct walk *w, int dfd)
{
	int ddup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	size_t n = 0;
	char **names = ddup >= 0 ? list_dir(ddup, &n, w) : NULL;
	struct stat st;

	for (size_t i = 0; i < n; i++) {
		if (w->truncated || w->cur.n >= ARTIFACTS_MAX_DEPTH)
			break;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		w->cur.v[w->cur.n++] = names[i];
		if (S_ISDIR(st.st_mode) && any_match(w, 1)) {
			int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				walk_dir(w, sub);
				close(sub);
			}
		} else if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) &&
		    any_match(w, 0)) {
			/* A link is reported too: opening it is refused, and said. */
			report(w);
		}
		w->cur.n--;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int artifacts_glob(int wsfd, char *const *globs, size_t nglobs,
    void (*hit)(void *arg, const char *path), void *arg)
{
	struct walk w;
	char **copies = xcalloc(nglobs ? nglobs : 1, sizeof(char *));

	memset(&w, 0, sizeof(w));
	w.globs = xcalloc(nglobs ? nglobs : 1, sizeof(*w.globs));
	w.nglobs = nglobs;
	w.hit = hit;
	w.arg = arg;
	for (size_t i = 0; i < nglobs; i++)
		copies[i] = split(globs[i], &w.globs[i]);
	if (nglobs)
		walk_dir(&w, wsfd);
	for (size_t i = 0; i < nglobs; i++)
		free(copies[i]);
	free(copies);
	free(w.globs);
	return w.truncated ? -E2BIG : 0;
}

/*
 * Beneath the workspace, no link anywhere on the way, and only a regular
 * file: a FIFO or a device a step left under an artifact's name is
 * refused without being opened for reading (it would block the agent, or
 * act on the open).
 */
int artifacts_open(int wsfd, const char *path, int *out, uint64_t *size)
{
	struct stat st;
	int fd, r;

	if (path[0] == '/' || path[0] == '\0')
		return -EXDEV;
	if ((r = beneath_open_regular(wsfd, path, BENEATH_NO_LINKS, &fd, &st)) < 0)
		return r == -ELOOP ? -EXDEV : r;
	*out = fd;
	*size = (uint64_t)st.st_size;
	return 0;
}
