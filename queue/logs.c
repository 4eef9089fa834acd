/*
 * Job logs (docs/protocol.md sections 4.4 and 5.3): one append-only file
 * per job attempt, <data>/logs/<job>/<attempt>.log. The file's size is
 * the server's length, so an append needs no database write: the bytes
 * are on disk (fsync'd with --sync full) before the length is
 * acknowledged, and a crash mid-write leaves at most a correct prefix of
 * what the agent sent, which the offset rules then take in their stride.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apierr.h"
#include "config.h"
#include "ev.h"
#include "fsx.h"
#include "gz.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

char *logs_path(struct queue *q, const char *job, int attempt)
{
	return xasprintf("%s/logs/%s/%d.log", q->dir, job, attempt);
}

int64_t logs_length(struct queue *q, const char *job, int attempt)
{
	char *path = logs_path(q, job, attempt);
	struct stat st;
	int r = stat(path, &st);

	free(path);
	return r == 0 ? (int64_t)st.st_size : 0;
}

static int sink(void *arg, const void *p, size_t n)
{
	return buf_append(arg, p, n);
}

/* The chunk's bytes, inflated into q->scratch when gzip. */
static int chunk_bytes(struct queue *q, const void *body, size_t n, int gzip,
    const char **data, size_t *len, struct apierr *e)
{
	int r;

	if (!gzip) {
		*data = body;
		*len = n;
		return 0;
	}
	buf_reset(&q->scratch);
	r = gz_inflate_all(body, n, LOG_CHUNK_MAX, sink, &q->scratch);
	if (r == -E2BIG)
		return apierr_too_large(e, LOG_CHUNK_MAX, "log chunk inflates past "
		    "%d bytes; refused without inflating the rest", LOG_CHUNK_MAX);
	if (r < 0)
		return apierr_bad(e, "log chunk is not one complete gzip member");
	*data = q->scratch.data ? q->scratch.data : "";
	*len = q->scratch.len;
	return 0;
}

static int write_log(struct queue *q, struct qjob *j, const char *p,
    size_t n, struct apierr *e)
{
	char *dir = xasprintf("%s/logs/%s", q->dir, j->id);
	char *path = logs_path(q, j->id, j->attempt);
	int fd = -1, r = fsx_mkdir_p(dir, 0700);

	if (r == 0 && (fd = open(path, O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC, 0600)) < 0)
		r = -errno;
	if (r == 0)
		r = fsx_write_all(fd, p, n);
	if (r == 0 && q->cfg->sync_full && fdatasync(fd) < 0)
		r = -errno;
	/* Nothing of a failed append may stay: the agent sends it again. */
	if (r < 0 && fd >= 0)
		(void)!ftruncate(fd, j->log_len);
	if (fd >= 0)
		close(fd);
	free(dir);
	free(path);
	if (r < 0) {
		log_error("cannot write log", "job=%s error=%s", j->id,
		    logq(strerror(-r)));
		apierr_set(e, r == -ENOSPC ? 503 : 500, r == -ENOSPC ?
		    "unavailable" : "internal", "the queue could not write the log");
		e->retry_after = r == -ENOSPC ? 30 : 0;
		return -1;
	}
	return 0;
}

int logs_append(struct queue *q, struct qagent *a, const char *lease_id,
    int64_t offset, const void *body, size_t n, int gzip, int64_t *length,
    struct apierr *e)
{
	struct qlease *l;
	struct qjob *j;
	const char *data = NULL;
	size_t len = 0, skip;

	if (lease_get(q, a, lease_id, &l, e) < 0)
		return -1;
	j = l->job;
	if (offset > j->log_len)
		return apierr_offset(e, j->log_len, "log offset %lld is past the "
		    "end (length %lld)", (long long)offset, (long long)j->log_len);
	if (chunk_bytes(q, body, n, gzip, &data, &len, e) < 0)
		return -1;
	/* Bytes the server already has are skipped: a resend is harmless. */
	skip = (size_t)(j->log_len - offset);
	if (len > skip) {
		if ((int64_t)(len - skip) > q->cfg->max_log - j->log_len)
			return apierr_too_large(e, q->cfg->max_log, "the log of this "
			    "attempt would pass %lld bytes", (long long)q->cfg->max_log);
		if (write_log(q, j, data + skip, len - skip, e) < 0)
			return -1;
		j->log_len += (int64_t)(len - skip);
		q->log_bytes += (int64_t)(len - skip);
		logs_wake(q, j, 0);
	}
	*length = j->log_len;
	return 0;
}

/* ---- reading and following ---- */

static void follower_unlink(struct qfollower *f)
{
	struct qjob *j = f->job;

	if (!f->linked)
		return;
	if (f->prev)
		f->prev->next = f->next;
	else
		j->followers = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	f->linked = 0;
	f->job = NULL;
	ev_timer_free(f->timer);
	f->timer = NULL;
}

void logs_follower_cancel(struct qfollower *f)
{
	follower_unlink(f);
}

static void follower_done(struct qfollower *f, int status)
{
	follower_unlink(f);
	f->status = status;
	f->wake(f);
}

static void follower_fired(struct ev_timer *t, void *arg)
{
	(void)t;
	follower_done(arg, 0);
}

void logs_wake(struct queue *q, struct qjob *j, int all)
{
	struct qfollower *f, *next;

	(void)q;
	for (f = j->followers; f; f = next) {
		next = f->next;
		if (all || f->attempt != j->attempt || j->log_len > f->offset)
			follower_done(f, 1);
	}
}

static int open_range(struct queue *q, const char *job,
    struct logs_read *r, struct apierr *e)
{
	char *path = logs_path(q, job, r->attempt);

	r->count = r->length - r->offset;
	if (r->count > LOG_CHUNK_MAX)
		r->count = LOG_CHUNK_MAX;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (r->fd < 0)
		return apierr_internal(e, "the log file cannot be opened");
	return 0;
}

static void follow(struct queue *q, struct qjob *j, int attempt,
    int64_t offset, int wait_s, struct qfollower *f)
{
	f->q = q;
	f->job = j;
	f->attempt = attempt;
	f->offset = offset;
	f->prev = NULL;
	f->next = j->followers;
	if (j->followers)
		j->followers->prev = f;
	j->followers = f;
	f->linked = 1;
	f->timer = ev_timer_new(q->loop, follower_fired, f);
	ev_timer_start(f->timer, (int64_t)wait_s * 1000);
}

int logs_read(struct queue *q, const char *job, int attempt, int64_t offset,
    int wait_s, struct qfollower *f, struct logs_read *r, struct apierr *e)
{
	struct qjob *j = hmap_get(q->jobs, job);
	int cur;

	if (j)
		cur = j->attempt;
	else if (jobs_current_attempt(q, job, &cur, e) < 0)
		return -1;
	if (attempt > cur)
		return apierr_notfound(e, "job '%s' has no attempt %d (it is at "
		    "attempt %d)", job, attempt, cur);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->attempt = attempt > 0 ? attempt : cur;
	r->complete = j == NULL || r->attempt < cur;
	r->length = j && r->attempt == cur ? j->log_len :
	    logs_length(q, job, r->attempt);
	r->offset = offset;
	if (offset > r->length) {
		apierr_offset(e, r->length, "log offset %lld is past the end "
		    "(length %lld)", (long long)offset, (long long)r->length);
		e->status = 416;
		return -1;
	}
	if (offset < r->length)
		return open_range(q, job, r, e);
	if (!r->complete && wait_s > 0 && f && !q->stopping) {
		follow(q, j, r->attempt, offset, wait_s, f);
		return 1;
	}
	return 0;
}
