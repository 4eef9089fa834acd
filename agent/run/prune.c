#include "prune.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "docker.h"
#include "log.h"
#include "xalloc.h"

struct cand {
	char *id;
	char *tag;
	int64_t created;
};

struct prune {
	struct prune_params p;	/* keep and in_use point at our copies */
	char **keep, **in_use;
	char root[PATH_MAX];
	struct cand *c;
	size_t nc, next;
	int64_t removed;
};

int64_t prune_free_mb(const char *path)
{
	char p[PATH_MAX];
	struct statvfs st;

	snprintf(p, sizeof(p), "%s", path);
	/* /var/lib/docker is 0710 root: a non-root agent asks its parent,
	 * normally the same file system. */
	for (;;) {
		if (statvfs(p, &st) == 0)
			return (int64_t)((uint64_t)st.f_bavail * st.f_frsize >> 20);
		char *slash = strrchr(p, '/');
		if (slash == NULL || slash == p)
			return statvfs("/", &st) == 0 ?
			    (int64_t)((uint64_t)st.f_bavail * st.f_frsize >> 20) : -1;
		*slash = '\0';
	}
}

static void note(struct prune *pr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct prune *pr, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (pr->p.note)
		pr->p.note(pr->p.arg, line);
	log_info("disk pressure", "detail=%s", logq(line));
}

static void done(struct prune *pr)
{
	prune_done_fn fn = pr->p.done;
	void *arg = pr->p.arg;

	for (size_t i = 0; i < pr->nc; i++) {
		free(pr->c[i].id);
		free(pr->c[i].tag);
	}
	free(pr->c);
	for (size_t i = 0; i < pr->p.nkeep; i++)
		free(pr->keep[i]);
	for (size_t i = 0; i < pr->p.nin_use; i++)
		free(pr->in_use[i]);
	free(pr->keep);
	free(pr->in_use);
	free(pr);
	fn(arg);
}

static int listed(char *const *v, size_t n, const char *tag)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i]);
		/* "busybox" names "busybox:latest" too. */
		if (strcmp(v[i], tag) == 0 || (strncmp(v[i], tag, len) == 0 &&
		    strcmp(tag + len, ":latest") == 0))
			return 1;
	}
	return 0;
}

static int cmp_created(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->created < y->created ? -1 : x->created > y->created;
}

static void remove_next(struct prune *pr);

static void on_removed(void *arg, const struct docker_res *r)
{
	struct prune *pr = arg;
	struct cand *c = &pr->c[pr->next - 1];

	if (r->err == 0) {
		pr->removed++;
		note(pr, "removed image %s", c->tag ? c->tag : c->id);
	} else if (r->err != -EBUSY) {
		note(pr, "could not remove image %s: %s", c->tag ? c->tag : c->id,
		    r->msg);
	}
	remove_next(pr);
}

static void remove_next(struct prune *pr)
{
	int64_t free_mb = prune_free_mb(pr->root);

	if (free_mb >= pr->p.floor_mb || pr->next >= pr->nc) {
		note(pr, "%s: %lld MiB free (floor %lld MiB), %lld image%s removed",
		    free_mb >= pr->p.floor_mb ? "done" : "nothing more to remove",
		    (long long)free_mb, (long long)pr->p.floor_mb,
		    (long long)pr->removed, pr->removed == 1 ? "" : "s");
		done(pr);
		return;
	}
	struct cand *c = &pr->c[pr->next++];
	if (docker_image_remove(pr->p.d, c->tag ? c->tag : c->id, on_removed,
	    pr, NULL) < 0)
		remove_next(pr);
}

/* Images that may go: not kept, not in use; an image with several tags
 * goes tag by tag. */
static void on_listed(void *arg, const struct docker_res *r)
{
	struct prune *pr = arg;

	if (r->err < 0) {
		note(pr, "cannot list images: %s", r->msg);
		done(pr);
		return;
	}
	for (size_t i = 0; i < r->n_images; i++) {
		const struct docker_image *im = &r->images[i];
		int spared = 0;
		for (size_t t = 0; t < im->n_tags; t++)
			if (listed(pr->p.keep, pr->p.nkeep, im->tags[t]) ||
			    listed(pr->p.in_use, pr->p.nin_use, im->tags[t]))
				spared = 1;
		if (spared)
			continue;
		for (size_t t = 0; t < (im->n_tags ? im->n_tags : 1); t++) {
			pr->c = xreallocarray(pr->c, pr->nc + 1, sizeof(*pr->c));
			pr->c[pr->nc].id = xstrdup(im->id);
			pr->c[pr->nc].tag = im->n_tags ? xstrdup(im->tags[t]) : NULL;
			pr->c[pr->nc].created = im->created;
			pr->nc++;
		}
	}
	qsort(pr->c, pr->nc, sizeof(*pr->c), cmp_created);
	remove_next(pr);
}

static void on_info(void *arg, const struct docker_res *r)
{
	struct prune *pr = arg;

	if (r->err < 0 || r->root_dir == NULL) {
		log_warn("cannot learn the Docker root to check free space",
		    "error=%s", logq(r->msg));
		done(pr);
		return;
	}
	snprintf(pr->root, sizeof(pr->root), "%s", r->root_dir);
	int64_t free_mb = prune_free_mb(pr->root);
	if (free_mb < 0 || free_mb >= pr->p.floor_mb) {
		done(pr);
		return;
	}
	note(pr, "%lld MiB free under %s, below the floor of %lld MiB: removing "
	    "unused images, oldest first", (long long)free_mb, pr->root,
	    (long long)pr->p.floor_mb);
	if (docker_image_list(pr->p.d, on_listed, pr, NULL) < 0)
		done(pr);
}

static char **copy_list(char *const *v, size_t n)
{
	char **c = xcalloc(n ? n : 1, sizeof(char *));

	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

void prune_start(const struct prune_params *p)
{
	struct prune *pr = xcalloc(1, sizeof(*pr));

	/* The caller's lists need not outlive this call. */
	pr->p = *p;
	pr->keep = copy_list(p->keep, p->nkeep);
	pr->in_use = copy_list(p->in_use, p->nin_use);
	pr->p.keep = pr->keep;
	pr->p.in_use = pr->in_use;
	if (p->d == NULL || p->floor_mb <= 0 ||
	    docker_info(p->d, on_info, pr, NULL) < 0)
		done(pr);
}
