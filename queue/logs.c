/*
 * Job logs (docs/protocol.md sections 4.4 and 5.3): one append-only file
 * per job attempt, <data>/logs/<job>/<attempt>.log. The file's size is
 * the server's length, so an append needs no database write: the bytes
 * are on disk (fsync'd with --sync full) before the length is
 * acknowledged, and a crash mid-write leaves at most a correct prefix of
 * what the agent sent, which the offset rules then take in their stride.
 *
 * None of the log work runs on the loop thread, so that a lease or a
 * submit never waits behind it (issue 11):
 *
 * - An append (struct logs_put) is checked on the loop (lease, offset),
 *   then a worker of the write pool inflates it (capped as before), checks
 *   --max-log and writes it into the attempt's file, which stays open
 *   (struct qlogf, one per job attempt, closed when the attempt or the
 *   job ends or the queue stops).
 * - With --sync full, written appends wait for a group commit: whatever
 *   was written while the previous commit ran is made durable by one
 *   commit, an fdatasync of each dirty file spread over the sync pool, so
 *   a thousand appends cost about one journal commit, not a thousand.
 * - Only then, back on the loop, the length moves, followers are woken
 *   and the answer goes out.
 *
 * One append per attempt is out at a time; more wait in its order, and
 * each is checked against the length the earlier ones left, so a resent
 * or concurrent PUT of the same lease cannot interleave its bytes.
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
#include "workq.h"
#include "xalloc.h"

/*
 * A commit's files are spread over this many sync threads at most. They
 * wait on the disk, not the CPU, so there are more of them than writers:
 * on the CI machine's ext4 (no journal, so each fdatasync writes its
 * file's data and inode itself) 256 jobs appending 8 KiB each reached
 * about 4,000 appends/s with 4 sync threads and 5,500 with 16, the same
 * as --sync normal, where the loop thread's CPU is the limit instead.
 */
#define LOGS_SYNC_PARTS_MAX 16

/* The open file of one job attempt. */
struct qlogf {
	struct queue *q;
	struct qjob *job;		/* NULL once the attempt has ended */
	char id[ID_MAX + 1];
	int attempt;
	char *dir, *path;
	int fd;				/* -1 until a worker opens it */
	int64_t len;			/* durable; the job's log_len */
	struct logs_put *busy;		/* the append out */
	struct logs_put *head, *tail;	/* appends waiting for it */
	int closing;			/* the queue stops: close when idle */
	struct workq_item close_wi;
};

struct logs_put {
	struct workq_item wi;
	struct queue *q;
	struct qlogf *lf;
	char lease[ID_MAX + 1], agent[ID_MAX + 1];
	int64_t offset;
	char *body;
	size_t n;
	int gzip;
	int64_t start, max;		/* the length before it; --max-log */
	size_t wrote;			/* bytes appended (worker) */
	int err;			/* negative errno (worker or loop) */
	int finished, abandoned, inline_caller;
	int failed;			/* the answer is e */
	int64_t length;
	struct apierr e;
	void (*wake)(struct logs_put *p);
	void *arg;
	struct logs_put *next;		/* waiting, or in a commit */
};

/* One group commit, cut in parts that sync on the sync pool at once. */
struct commit;
struct commit_part {
	struct workq_item wi;
	struct commit *c;
	size_t from, to;		/* into c->ops */
};

struct commit {
	struct logs *ls;
	struct logs_put **ops;
	size_t n;
	struct commit_part parts[LOGS_SYNC_PARTS_MAX];
	int left;
};

struct logs {
	struct queue *q;
	struct workq *wq, *syncq;
	int nsync;
	struct ev_timer *kick;		/* a commit at the end of this round */
	struct logs_put *dirty, *dirty_tail;	/* written, not yet synced */
	size_t ndirty;
	int syncing;
};

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

/* ---- on a worker ---- */

static int sink(void *arg, const void *p, size_t n)
{
	return buf_append(arg, p, n);
}

static int pwrite_all(int fd, const char *p, size_t n, int64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int open_file(struct qlogf *lf)
{
	int r = fsx_mkdir_p(lf->dir, 0700);

	if (r == 0 && (lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_CLOEXEC,
	    0600)) < 0)
		r = -errno;
	return r;
}

/*
 * Inflates (capped), checks --max-log and writes the new part at the
 * length. Only this item touches lf->fd while it is out. A failed write
 * leaves nothing: the agent sends it again.
 */
static void put_write(struct logs_put *p, struct buf *scratch)
{
	struct qlogf *lf = p->lf;
	const char *data = p->body ? p->body : "";
	size_t len = p->n, skip = (size_t)(p->start - p->offset);
	int r;

	if (p->gzip) {
		buf_reset(scratch);
		r = gz_inflate_all(p->body, p->n, LOG_CHUNK_MAX, sink, scratch);
		if (r < 0) {
			p->err = r == -E2BIG ? -E2BIG : -EBADMSG;
			return;
		}
		data = scratch->data ? scratch->data : "";
		len = scratch->len;
	}
	/* Bytes the server already has are skipped: a resend is harmless. */
	if (len <= skip)
		return;
	if ((int64_t)(len - skip) > p->max - p->start) {
		p->err = -EFBIG;
		return;
	}
	if (lf->fd < 0 && (r = open_file(lf)) < 0) {
		p->err = r;
		return;
	}
	if ((r = pwrite_all(lf->fd, data + skip, len - skip, p->start)) < 0) {
		(void)!ftruncate(lf->fd, (off_t)p->start);
		p->err = r;
		return;
	}
	p->wrote = len - skip;
}

static void put_work(struct workq_item *it, struct buf *scratch)
{
	put_write((struct logs_put *)(void *)it, scratch);
}

static void part_work(struct workq_item *it, struct buf *scratch)
{
	struct commit_part *cp = (struct commit_part *)(void *)it;

	(void)scratch;
	for (size_t i = cp->from; i < cp->to; i++) {
		struct logs_put *p = cp->c->ops[i];
		if (fdatasync(p->lf->fd) < 0) {
			p->err = -errno;
			(void)!ftruncate(p->lf->fd, (off_t)p->start);
		}
	}
}

static void close_work(struct workq_item *it, struct buf *scratch)
{
	struct qlogf *lf = (struct qlogf *)(void *)((char *)it -
	    offsetof(struct qlogf, close_wi));

	(void)scratch;
	close(lf->fd);
	lf->fd = -1;
}

/* ---- open files (loop thread) ---- */

static void lf_free(struct qlogf *lf)
{
	free(lf->dir);
	free(lf->path);
	free(lf);
}

static void close_done(struct workq_item *it)
{
	lf_free((struct qlogf *)(void *)((char *)it -
	    offsetof(struct qlogf, close_wi)));
}

static void lf_detach(struct qlogf *lf)
{
	if (lf->job && lf->job->log == lf)
		lf->job->log = NULL;
	lf->job = NULL;
}

/* An idle file that no append will use again. */
static void lf_close(struct qlogf *lf)
{
	struct logs *ls = lf->q->logs;

	lf_detach(lf);
	if (lf->fd < 0) {
		lf_free(lf);
		return;
	}
	/* The last close of a big unlinked file frees its blocks: on a
	 * worker too. */
	lf->close_wi.work = close_work;
	lf->close_wi.done = close_done;
	workq_submit(ls->wq, &lf->close_wi);
}

static struct qlogf *lf_get(struct queue *q, struct qjob *j)
{
	struct qlogf *lf = j->log;

	if (lf)
		return lf;
	lf = xcalloc(1, sizeof(*lf));
	lf->q = q;
	lf->job = j;
	snprintf(lf->id, sizeof(lf->id), "%s", j->id);
	lf->attempt = j->attempt;
	lf->dir = xasprintf("%s/logs/%s", q->dir, j->id);
	lf->path = logs_path(q, j->id, j->attempt);
	lf->fd = -1;
	lf->len = j->log_len;
	j->log = lf;
	return lf;
}

/* ---- appends (loop thread) ---- */

static void put_start_next(struct qlogf *lf);

static void put_notify(struct logs_put *p)
{
	p->finished = 1;
	free(p->body);
	p->body = NULL;
	if (p->inline_caller)
		return;
	if (p->abandoned || p->wake == NULL)
		free(p);
	else
		p->wake(p);
}

/* The lease that sent p is still the one holding its attempt. */
static int put_lease_valid(struct logs_put *p)
{
	struct qlease *l = lease_find(p->q, p->lease);
	struct qlogf *lf = p->lf;

	return l && lf->job && l->job == lf->job && l->attempt == lf->attempt &&
	    strcmp(l->agent->id, p->agent) == 0;
}

static void put_fail_err(struct logs_put *p)
{
	struct queue *q = p->q;
	int r = p->err;

	p->failed = 1;
	switch (r) {
	case -E2BIG:
		apierr_too_large(&p->e, LOG_CHUNK_MAX, "log chunk inflates past "
		    "%d bytes; refused without inflating the rest", LOG_CHUNK_MAX);
		return;
	case -EBADMSG:
		apierr_bad(&p->e, "log chunk is not one complete gzip member");
		return;
	case -EFBIG:
		apierr_too_large(&p->e, q->cfg->max_log, "the log of this attempt "
		    "would pass %lld bytes", (long long)q->cfg->max_log);
		return;
	}
	log_error("cannot write log", "job=%s error=%s", p->lf->id,
	    logq(strerror(-r)));
	apierr_set(&p->e, r == -ENOSPC ? 503 : 500, r == -ENOSPC ?
	    "unavailable" : "internal", "the queue could not write the log");
	p->e.retry_after = r == -ENOSPC ? 30 : 0;
}

/* The bytes are durable (or p failed): the length moves, followers are
 * woken, p is answered, and the next append of the attempt goes out. */
static void put_finish(struct logs_put *p)
{
	struct qlogf *lf = p->lf;
	struct queue *q = p->q;

	if (lf->busy == p)
		lf->busy = NULL;
	if (p->err < 0) {
		put_fail_err(p);
	} else {
		lf->len += (int64_t)p->wrote;
		q->log_bytes += (int64_t)p->wrote;
		if (lf->job) {
			lf->job->log_len = lf->len;
			if (p->wrote)
				logs_wake(q, lf->job, 0);
		}
		if (put_lease_valid(p))
			p->length = lf->len;
		else
			p->failed = apierr_lost(&p->e, "lease '%s' ended during the "
			    "append", p->lease) < 0;
	}
	put_notify(p);
	if (!p->inline_caller)
		put_start_next(lf);
}

static void put_written(struct workq_item *it)
{
	struct logs_put *p = (struct logs_put *)(void *)it;
	struct logs *ls = p->q->logs;

	if (p->err < 0 || p->wrote == 0 || !p->q->cfg->sync_full) {
		put_finish(p);
		return;
	}
	p->next = NULL;
	if (ls->dirty_tail)
		ls->dirty_tail->next = p;
	else
		ls->dirty = p;
	ls->dirty_tail = p;
	ls->ndirty++;
	/* At the end of this round: every append written in it joins. */
	if (!ls->syncing)
		ev_timer_start(ls->kick, 0);
}

/*
 * Checks p against the attempt as the earlier appends left it; 0 when it
 * went out to a worker, -1 with p->e set otherwise.
 */
static int put_check(struct logs_put *p)
{
	struct qlogf *lf = p->lf;

	if (!put_lease_valid(p))
		return p->failed = apierr_lost(&p->e, "lease '%s' has ended",
		    p->lease) < 0, -1;
	if (p->offset > lf->len)
		return p->failed = apierr_offset(&p->e, lf->len, "log offset %lld "
		    "is past the end (length %lld)", (long long)p->offset,
		    (long long)lf->len) < 0, -1;
	p->start = lf->len;
	p->max = p->q->cfg->max_log;
	lf->busy = p;
	return 0;
}

static void put_send(struct logs_put *p)
{
	p->wi.work = put_work;
	p->wi.done = put_written;
	workq_submit(p->q->logs->wq, &p->wi);
}

/* The next waiting append, once the attempt is idle; bounded by the
 * appends waiting. */
static void put_start_next(struct qlogf *lf)
{
	struct logs_put *p;

	while (lf->busy == NULL && (p = lf->head) != NULL) {
		if ((lf->head = p->next) == NULL)
			lf->tail = NULL;
		p->next = NULL;
		if (p->abandoned) {
			put_notify(p);
			continue;
		}
		if (put_check(p) == 0)
			put_send(p);
		else
			put_notify(p);
	}
	if (lf->busy == NULL && (lf->job == NULL || lf->closing))
		lf_close(lf);
}

static void commit_start(struct logs *ls);

/* The last part of a commit is back: its appends are answered, and the
 * appends written meanwhile go in the next commit at once. */
static void part_done(struct workq_item *it)
{
	struct commit *c = ((struct commit_part *)(void *)it)->c;
	struct logs *ls = c->ls;

	if (--c->left > 0)
		return;
	for (size_t i = 0; i < c->n; i++)
		put_finish(c->ops[i]);
	free(c->ops);
	free(c);
	ls->syncing = 0;
	commit_start(ls);
}

/* Takes every dirty append into one commit, its files spread over the
 * sync pool: each part syncs its files one after the other, the parts
 * at once. */
static void commit_start(struct logs *ls)
{
	struct commit *c;
	size_t per, k = 0;
	int nparts;

	if (ls->syncing || ls->dirty == NULL)
		return;
	c = xcalloc(1, sizeof(*c));
	c->ls = ls;
	c->ops = xcalloc(ls->ndirty, sizeof(*c->ops));
	for (struct logs_put *p = ls->dirty; p; p = p->next)
		c->ops[c->n++] = p;
	ls->dirty = ls->dirty_tail = NULL;
	ls->ndirty = 0;
	ls->syncing = 1;
	nparts = c->n < (size_t)ls->nsync ? (int)c->n : ls->nsync;
	per = (c->n + (size_t)nparts - 1) / (size_t)nparts;
	for (int i = 0; i < nparts && k < c->n; i++) {
		struct commit_part *cp = &c->parts[c->left++];
		cp->c = c;
		cp->from = k;
		cp->to = k + per < c->n ? k + per : c->n;
		k = cp->to;
		cp->wi.work = part_work;
		cp->wi.done = part_done;
		/* Dones run on this thread, after this returns: c->left is
		 * complete before the first. */
		workq_submit(ls->syncq, &cp->wi);
	}
}

static void on_kick(struct ev_timer *t, void *arg)
{
	(void)t;
	commit_start(arg);
}

static void put_init(struct logs_put *p, struct queue *q, struct qagent *a,
    const char *lease_id, int64_t offset, int gzip)
{
	p->q = q;
	snprintf(p->lease, sizeof(p->lease), "%s", lease_id);
	snprintf(p->agent, sizeof(p->agent), "%s", a->id);
	p->offset = offset;
	p->gzip = gzip;
}

int logs_put_begin(struct queue *q, struct qagent *a, const char *lease_id,
    int64_t offset, struct buf *body, int gzip,
    void (*wake)(struct logs_put *p), void *arg, struct logs_put **out,
    struct apierr *e)
{
	struct qlease *l;
	struct qlogf *lf;
	struct logs_put *p;

	if (lease_get(q, a, lease_id, &l, e) < 0)
		return -1;
	if (q->stopping) {
		apierr_set(e, 503, "unavailable", "the queue is shutting down");
		e->retry_after = 5;
		return -1;
	}
	lf = lf_get(q, l->job);
	/* Idle: refused at once without inflating, as before. */
	if (lf->busy == NULL && offset > lf->len)
		return apierr_offset(e, lf->len, "log offset %lld is past the end "
		    "(length %lld)", (long long)offset, (long long)lf->len);
	p = xcalloc(1, sizeof(*p));
	put_init(p, q, a, lease_id, offset, gzip);
	p->lf = lf;
	p->body = buf_steal(body, &p->n);
	p->wake = wake;
	p->arg = arg;
	if (lf->busy) {
		if (lf->tail)
			lf->tail->next = p;
		else
			lf->head = p;
		lf->tail = p;
	} else if (put_check(p) < 0) {
		*e = p->e;
		free(p->body);
		free(p);
		return -1;
	} else {
		put_send(p);
	}
	*out = p;
	return 0;
}

int logs_put_result(const struct logs_put *p, int64_t *length,
    struct apierr *e)
{
	if (p->failed) {
		*e = p->e;
		return -1;
	}
	*length = p->length;
	return 0;
}

void *logs_put_arg(const struct logs_put *p)
{
	return p->arg;
}

void logs_put_free(struct logs_put *p)
{
	if (p == NULL)
		return;
	if (p->finished)
		free(p);
	else
		p->abandoned = 1;
}

int logs_append(struct queue *q, struct qagent *a, const char *lease_id,
    int64_t offset, const void *body, size_t n, int gzip, int64_t *length,
    struct apierr *e)
{
	struct logs_put p;
	struct qlease *l;
	struct buf scratch = BUF_INIT(LOG_CHUNK_MAX);
	int r;

	if (lease_get(q, a, lease_id, &l, e) < 0)
		return -1;
	memset(&p, 0, sizeof(p));
	put_init(&p, q, a, lease_id, offset, gzip);
	p.lf = lf_get(q, l->job);
	p.inline_caller = 1;
	if (p.lf->busy)
		return apierr_conflict(e, "an append of this attempt is in flight");
	if (put_check(&p) < 0) {
		*e = p.e;
		return -1;
	}
	p.body = xmalloc(n + 1);
	memcpy(p.body, body, n);
	p.n = n;
	put_write(&p, &scratch);
	buf_free(&scratch);
	if (p.err == 0 && p.wrote && q->cfg->sync_full &&
	    fdatasync(p.lf->fd) < 0) {
		p.err = -errno;
		(void)!ftruncate(p.lf->fd, (off_t)p.start);
	}
	put_finish(&p);
	r = logs_put_result(&p, length, e);
	put_start_next(p.lf);
	return r;
}

/* ---- the pools ---- */

int logs_start(struct queue *q)
{
	struct logs *ls = xcalloc(1, sizeof(*ls));
	int n = (int)q->cfg->log_workers, r;

	ls->q = q;
	ls->nsync = LOGS_SYNC_PARTS_MAX;
	q->logs = ls;
	/* With --sync normal nothing is synced: no sync threads. */
	if ((r = workq_new(q->loop, n, LOG_CHUNK_MAX, &ls->wq)) < 0 ||
	    (q->cfg->sync_full &&
	    (r = workq_new(q->loop, ls->nsync, 0, &ls->syncq)) < 0))
		return r;
	ls->kick = ev_timer_new(q->loop, on_kick, ls);
	return 0;
}

/* Runs what is out to its end without the loop: appends written are
 * committed, waiting ones go out. Bounded by the appends there are. */
static void drain(struct logs *ls)
{
	for (;;) {
		if (ls->wq)
			workq_drain(ls->wq);
		commit_start(ls);
		if (ls->syncq == NULL || workq_busy(ls->syncq) == 0)
			break;
		workq_drain(ls->syncq);
	}
}

void logs_free(struct queue *q)
{
	struct logs *ls = q->logs;
	struct hmap_iter it = { 0 };
	struct qjob *j;

	if (ls == NULL)
		return;
	drain(ls);
	while ((j = hmap_next(q->jobs, &it)) != NULL)
		if (j->log && j->log->busy == NULL)
			lf_close(j->log);
	drain(ls);
	workq_free(ls->wq);
	workq_free(ls->syncq);
	ev_timer_free(ls->kick);
	free(ls);
	q->logs = NULL;
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

/*
 * The attempt's file is done with when the attempt or the job has ended
 * (an append out still finishes, then it closes), or when the queue
 * stops (appends already taken are still answered).
 */
static void lf_ending(struct queue *q, struct qjob *j)
{
	struct qlogf *lf = j->log;

	if (lf == NULL)
		return;
	if (jstate_terminal(j->state) || lf->attempt != j->attempt)
		lf_detach(lf);
	else if (q->stopping)
		lf->closing = 1;
	else
		return;
	if (lf->busy == NULL)
		lf_close(lf);
}

void logs_wake(struct queue *q, struct qjob *j, int all)
{
	struct qfollower *f, *next;

	for (f = j->followers; f; f = next) {
		next = f->next;
		if (all || f->attempt != j->attempt || j->log_len > f->offset)
			follower_done(f, 1);
	}
	/* all: the attempt changed, the job ended, or the queue stops. */
	if (all)
		lf_ending(q, j);
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
