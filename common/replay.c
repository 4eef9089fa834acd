#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsx.h"
#include "job.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#define REPLAY_MAX_FILE (64 * 1024 * 1024)

struct entry {
	char jti[65];
	int64_t exp;
	int used;
};

struct replay {
	char path[PATH_MAX];
	int fd;
	int64_t margin;
	struct entry *tab;
	size_t cap;		/* power of two */
	size_t n;
	size_t lines;		/* lines in the file, live or not */
	size_t compacted;	/* live entries at the last compaction */
};

/* exp + margin >= now, without the overflow a hand-edited or corrupted
 * exp (or a huge margin) would cause. */
static int live(const struct replay *r, int64_t exp, int64_t now)
{
	int64_t oldest;

	if (__builtin_sub_overflow(now, r->margin, &oldest))
		return r->margin > 0;
	return exp >= oldest;
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct entry *slot(const struct replay *r, const char *jti)
{
	size_t i = hash(jti) & (r->cap - 1);

	while (r->tab[i].used && strcmp(r->tab[i].jti, jti) != 0)
		i = (i + 1) & (r->cap - 1);
	return &r->tab[i];
}

static void insert(struct replay *r, const char *jti, int64_t exp);

static void grow(struct replay *r)
{
	struct entry *old = r->tab;
	size_t oldcap = r->cap;

	r->cap = oldcap ? oldcap * 2 : 64;
	r->tab = xcalloc(r->cap, sizeof(*r->tab));
	r->n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used)
			insert(r, old[i].jti, old[i].exp);
	free(old);
}

static void insert(struct replay *r, const char *jti, int64_t exp)
{
	if ((r->n + 1) * 4 > r->cap * 3)
		grow(r);
	struct entry *e = slot(r, jti);
	if (!e->used) {
		e->used = 1;
		snprintf(e->jti, sizeof(e->jti), "%s", jti);
		e->exp = exp;
		r->n++;
	}
	if (exp > e->exp)
		e->exp = exp;
}

/* One "jti exp" line, as replay_add writes it; -1 for anything else. */
static int parse_line(const char *p, size_t n, char jti[65], int64_t *exp)
{
	char num[24];
	const char *sp = memchr(p, ' ', n);

	if (sp == NULL || sp - p > 64 || n - (size_t)(sp - p) - 1 >= sizeof(num))
		return -1;
	memcpy(jti, p, (size_t)(sp - p));
	jti[sp - p] = '\0';
	memcpy(num, sp + 1, n - (size_t)(sp - p) - 1);
	num[n - (size_t)(sp - p) - 1] = '\0';
	if (!job_jti_valid(jti) ||
	    strnum_i64(num, INT64_MIN, INT64_MAX, exp, NULL) < 0)
		return -1;
	return 0;
}

/* Parses "jti exp" lines; a torn last line from a crash is ignored, and
 * so is any line that is not of that form. */
static void load(struct replay *r, const char *text, size_t len, int64_t now)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		char jti[65];
		int64_t exp;
		r->lines++;
		if (parse_line(p, (size_t)(nl - p), jti, &exp) == 0 &&
		    live(r, exp, now))
			insert(r, jti, exp);
		p = nl + 1;
	}
}

static int open_append(struct replay *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = open(r->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	return r->fd < 0 ? -errno : 0;
}

/* Rewrites the file with the live entries only. */
static int compact(struct replay *r, int64_t now)
{
	struct buf b = BUF_INIT(REPLAY_MAX_FILE);
	size_t nlive = 0;

	for (size_t i = 0; i < r->cap; i++) {
		struct entry *e = &r->tab[i];
		if (!e->used || !live(r, e->exp, now))
			continue;
		buf_printf(&b, "%s %lld\n", e->jti, (long long)e->exp);
		nlive++;
	}
	int rr = fsx_write_file(r->path, b.data ? b.data : "", b.len, 0600);
	buf_free(&b);
	if (rr < 0)
		return rr;
	r->lines = nlive;
	r->compacted = nlive;
	/* Rebuild the table from what is live. */
	struct entry *old = r->tab;
	size_t oldcap = r->cap;
	r->tab = NULL;
	r->cap = 0;
	r->n = 0;
	grow(r);
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used && live(r, old[i].exp, now))
			insert(r, old[i].jti, old[i].exp);
	free(old);
	return open_append(r);
}

int replay_open(const char *dir, int64_t now, int64_t margin,
    struct replay **out)
{
	struct replay *r = xcalloc(1, sizeof(*r));
	struct buf b = BUF_INIT(REPLAY_MAX_FILE);
	int rr;

	r->fd = -1;
	r->margin = margin;
	if (snprintf(r->path, sizeof(r->path), "%s/replay", dir) >=
	    (int)sizeof(r->path)) {
		free(r);
		return -ENAMETOOLONG;
	}
	grow(r);
	rr = fsx_read_file(r->path, REPLAY_MAX_FILE, &b);
	if (rr < 0 && rr != -ENOENT) {
		buf_free(&b);
		replay_close(r);
		return rr;
	}
	load(r, buf_cstr(&b), b.len, now);
	int torn = b.len && b.data[b.len - 1] != '\n';
	buf_free(&b);
	/* Rewriting costs two fsyncs: only when something was dropped, a
	 * line was torn by a crash, or there is no file yet. */
	if (rr == -ENOENT || torn || r->lines != r->n)
		rr = compact(r, now);
	else
		rr = open_append(r);
	if (rr < 0) {
		replay_close(r);
		return rr;
	}
	r->compacted = r->n;
	*out = r;
	return 0;
}

int replay_seen(const struct replay *r, const char *jti)
{
	return slot(r, jti)->used;
}

int replay_add(struct replay *r, const char *jti, int64_t exp)
{
	char line[96];

	if (!job_jti_valid(jti))
		return -EINVAL;
	if (replay_seen(r, jti))
		return -EEXIST;
	int n = snprintf(line, sizeof(line), "%s %lld\n", jti, (long long)exp);
	int rr = fsx_write_all(r->fd, line, (size_t)n);
	if (rr == 0 && fdatasync(r->fd) < 0)
		rr = -errno;
	if (rr < 0)
		return rr;
	insert(r, jti, exp);
	r->lines++;
	/* Compacting when the file has doubled since the last time keeps
	 * the cost amortised constant per job. */
	if (r->lines >= 256 && r->lines >= 2 * r->compacted) {
		int64_t now = (int64_t)time(NULL);
		if ((rr = compact(r, now)) < 0)
			log_warn("replay cache compaction failed", "err=%s",
			    logq(strerror(-rr)));
	}
	return 0;
}

size_t replay_count(const struct replay *r)
{
	return r->n;
}

void replay_close(struct replay *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->tab);
	free(r);
}
