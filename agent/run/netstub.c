#include "netstub.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "fsx.h"
#include "log.h"
#include "xalloc.h"

struct sjob {
	struct sjob *next;
	uint64_t jh;
	char path[PATH_MAX];
	int fd;			/* written by us */
	uint64_t len;
	int over;		/* past SKIFF_MAX_SPOOL or a write failed */
	int done;		/* the runner reported the end */
	int released;		/* the network half is finished with it */
};

struct netstub {
	struct netstub_params p;
	struct seamchan *ch;
	const struct seam_to_runner *runner;
	struct seam_to_net table;
	struct sjob *jobs;
	size_t njobs;
	char *spool_dir;
};

static struct sjob *find(struct netstub *s, uint64_t jh)
{
	for (struct sjob *j = s->jobs; j; j = j->next)
		if (j->jh == jh)
			return j;
	return NULL;
}

static void sjob_free(struct netstub *s, struct sjob *j, int remove)
{
	struct sjob **pp = &s->jobs;

	while (*pp && *pp != j)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = j->next;
		s->njobs--;
	}
	if (j->fd >= 0)
		close(j->fd);
	if (remove && j->path[0])
		unlink(j->path);
	free(j);
}

static void send_buf(struct netstub *s, struct buf *b, int r, int fd)
{
	if (r == 0)
		r = seamchan_send(s->ch, b, fd);
	else if (fd >= 0)
		close(fd);
	if (r < 0 && r != -EPIPE)
		log_error("cannot send to the network half", "error=%s",
		    logq(strerror(-r)));
	buf_free(b);
}

/* ---- seam_to_net, as the runner calls it ---- */

static void t_log(void *ctx, uint64_t jh, const void *data, size_t n)
{
	struct netstub *s = ctx;
	struct sjob *j = find(s, jh);
	int r;

	if (j == NULL || j->over || n == 0)
		return;
	if (j->len + n > s->p.max_spool) {
		j->over = 1;
		log_error("cannot keep the job's log; failing the job: it is over "
		    "SKIFF_MAX_SPOOL",
		    "path=%s", logq(j->path));
	} else if ((r = fsx_write_all(j->fd, data, n)) < 0) {
		/* A short write may have landed partly: cut it off so that the
		 * spool holds whole records only. */
		if (ftruncate(j->fd, (off_t)j->len) == 0)
			lseek(j->fd, (off_t)j->len, SEEK_SET);
		j->over = 1;
		log_error("cannot keep the job's log; failing the job: the spool "
		    "write failed",
		    "path=%s error=%s", logq(j->path), logq(strerror(-r)));
	} else {
		j->len += n;
		seamchan_send_logged(s->ch, jh, j->len);
		return;
	}
	if (s->runner && !j->done)
		s->runner->stop(s->runner->ctx, jh, SEAM_STOP_SPOOL);
}

static void t_step(void *ctx, uint64_t jh, int index)
{
	struct netstub *s = ctx;
	struct buf b = BUF_INIT(64);

	send_buf(s, &b, seamwire_put_u32(&b, SW_STEP, jh,
	    index < 0 ? 0 : (uint32_t)index), -1);
}

static void t_artifact(void *ctx, uint64_t jh, uint64_t id, int fd,
    const char *name, uint64_t size)
{
	struct netstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_NAME_MAX);
	int r = seamwire_put_u64s_str(&b, SW_ARTIFACT, jh, id, size, name);

	send_buf(s, &b, r, fd);
	if (r < 0 && s->runner)
		s->runner->artifact_done(s->runner->ctx, jh, id, 0,
		    "cannot hand the artifact to the network half");
}

static void t_fetch(void *ctx, uint64_t jh, uint64_t id, const char *url,
    int fd, uint64_t max)
{
	struct netstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_URL_MAX);
	int r = seamwire_put_u64s_str(&b, SW_FETCH, jh, id, max, url);

	send_buf(s, &b, r, fd);
	if (r < 0 && s->runner)
		s->runner->fetch_done(s->runner->ctx, jh, id, 0, 0, 0,
		    "cannot hand the download to the network half");
}

static void t_cache_get(void *ctx, uint64_t jh, uint64_t id, const char *keys,
    int fd, uint64_t max)
{
	struct netstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_KEYS_MAX);
	int r = seamwire_put_u64s_str(&b, SW_CACHE_GET, jh, id, max, keys);

	send_buf(s, &b, r, fd);
	if (r < 0 && s->runner)
		s->runner->cache_get_done(s->runner->ctx, jh, id, 0, 0, NULL,
		    "cannot hand the restore to the network half");
}

static void t_cache_put(void *ctx, uint64_t jh, uint64_t id, int fd,
    const char *key, uint64_t size)
{
	struct netstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_KEYS_MAX);
	int r = seamwire_put_u64s_str(&b, SW_CACHE_PUT, jh, id, size, key);

	send_buf(s, &b, r, fd);
	if (r < 0 && s->runner)
		s->runner->cache_put_done(s->runner->ctx, jh, id, 0,
		    "cannot hand the cache to the network half");
}

static void t_done(void *ctx, uint64_t jh, const struct seam_done *d)
{
	struct netstub *s = ctx;
	struct sjob *j = find(s, jh);
	struct buf b = BUF_INIT(SEAMWIRE_HDR + SEAMWIRE_MAX);

	send_buf(s, &b, seamwire_put_done(&b, jh, (uint32_t)d->result,
	    d->reason_code, d->reason, d->exit_codes, d->nexit, d->outputs,
	    d->noutputs), -1);
	if (j && (j->done = 1) && j->released)
		sjob_free(s, j, 1);
}

/* ---- the network half's messages ---- */

static int valid_id(const char *id)
{
	size_t n = strlen(id);

	return n >= 1 && n <= SEAMWIRE_ID_MAX && strspn(id,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
	    n;
}

/* Fails a job the runner never saw: the network half completes it. */
static void refuse(struct netstub *s, uint64_t jh, enum seam_result res,
    const char *code, const char *why)
{
	struct seam_done d = { res, code, why, NULL, 0, NULL, 0 };

	t_done(s, jh, &d);
}

static void on_start(struct netstub *s, struct seamwire_msg *m)
{
	struct sjob *j;
	int ro;

	if (!valid_id(m->s1) || m->u < 1 || m->u > 1000000) {
		log_error("the network half sent a start with a bad job id or "
		    "attempt; refused", "attempt=%u", m->u);
		refuse(s, m->jh, SEAM_REJECTED, "bad_message",
		    "the job's id or attempt is malformed");
		return;
	}
	if (find(s, m->jh)) {
		log_error("the network half sent a start for a job handle in use; "
		    "refused", "job=%s", m->s1);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->jh = m->jh;
	j->fd = -1;
	j->next = s->jobs;
	s->jobs = j;
	s->njobs++;
	if (snprintf(j->path, sizeof(j->path), "%s/%s.%u.log", s->p.spool_dir,
	    m->s1, m->u) >= (int)sizeof(j->path))
		errno = ENAMETOOLONG;
	else
		j->fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
		    O_CLOEXEC | O_NOFOLLOW, 0600);
	ro = j->fd >= 0 ? open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (ro < 0) {
		log_error("cannot keep the job's log; failing the job: the spool "
		    "cannot be created",
		    "job=%s path=%s error=%s", m->s1, logq(j->path),
		    logq(strerror(errno)));
		j->done = 1;
		refuse(s, m->jh, SEAM_FAILED, "spool_failed",
		    "the agent cannot create the job's log spool");
		return;
	}
	struct buf b = BUF_INIT(64);
	send_buf(s, &b, seamwire_put(&b, SW_SPOOL, m->jh, NULL, 0), ro);
	s->runner->start(s->runner->ctx, m->jh, m->s1, (int)m->u, m->s2,
	    m->s2len);
}

static void on_msg(void *arg, struct seamwire_msg *m)
{
	struct netstub *s = arg;
	struct sjob *j;

	switch (m->type) {
	case SW_START:
		on_start(s, m);
		break;
	case SW_STOP:
		if (find(s, m->jh) && m->u <= SEAM_STOP_QUIT)
			s->runner->stop(s->runner->ctx, m->jh, (enum seam_stop)m->u);
		break;
	case SW_ARTIFACT_DONE:
		if (find(s, m->jh))
			s->runner->artifact_done(s->runner->ctx, m->jh, m->id, (int)m->u,
			    m->s1[0] ? m->s1 : NULL);
		break;
	case SW_FETCH_DONE:
		if (find(s, m->jh))
			s->runner->fetch_done(s->runner->ctx, m->jh, m->id, (int)m->u,
			    (long)m->status, m->n, m->s1[0] ? m->s1 : NULL);
		break;
	case SW_CACHE_GET_DONE:
		if (find(s, m->jh))
			s->runner->cache_get_done(s->runner->ctx, m->jh, m->id,
			    (int)m->u, m->n, m->s1[0] ? m->s1 : NULL, m->s2);
		break;
	case SW_CACHE_PUT_DONE:
		if (find(s, m->jh))
			s->runner->cache_put_done(s->runner->ctx, m->jh, m->id,
			    (int)m->u, m->s1);
		break;
	case SW_RELEASE:
		/* Gone once the runner is done with it too. */
		if ((j = find(s, m->jh)) != NULL && (j->released = 1) && j->done)
			sjob_free(s, j, 1);
		break;
	case SW_EXIT:
		s->p.exit(s->p.ctx, (int)m->u);
		break;
	}
	seamwire_msg_clear(m);
}

static void on_bad(void *arg, const struct seamwire_hdr *h, const char *why)
{
	struct netstub *s = arg;

	log_error("the network half sent a bad message; refused", "type=%u "
	    "(%s) length=%u job_handle=%llu why=%s", h->type,
	    seamwire_type_name(h->type), h->len, (unsigned long long)h->jh,
	    logq(why));
	/* A job it meant to start is answered, so that its lease ends. */
	if (h->type == SW_START && h->jh != 0 && find(s, h->jh) == NULL)
		refuse(s, h->jh, SEAM_REJECTED, "bad_message", why);
}

static void on_end(void *arg, int err, const char *why)
{
	struct netstub *s = arg;

	(void)err;
	s->p.gone(s->p.ctx, why);
}

int netstub_new(const struct netstub_params *p, struct netstub **out)
{
	struct netstub *s = xcalloc(1, sizeof(*s));
	int r;

	s->p = *p;
	s->p.spool_dir = s->spool_dir = xstrdup(p->spool_dir);
	s->table = (struct seam_to_net){ s, t_log, t_step, t_artifact, t_fetch,
	    t_done, t_cache_get, t_cache_put };
	if ((r = seamchan_new(p->loop, p->fd, SEAMWIRE_FROM_NET, on_msg, on_bad,
	    on_end, s, &s->ch)) < 0) {
		free(s->spool_dir);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void netstub_set_runner(struct netstub *s, const struct seam_to_runner *r)
{
	s->runner = r;
}

const struct seam_to_net *netstub_table(struct netstub *s)
{
	return &s->table;
}

int netstub_init(struct netstub *s, const char *json, int state_fd)
{
	struct buf b = BUF_INIT(SEAMWIRE_HDR + SEAMWIRE_INIT_MAX);
	int r = seamwire_put(&b, SW_INIT, 0, json, strlen(json));

	if (r == 0)
		r = seamchan_send(s->ch, &b, state_fd);
	else
		close(state_fd);
	buf_free(&b);
	return r;
}

void netstub_drain(struct netstub *s)
{
	struct buf b = BUF_INIT(64);

	send_buf(s, &b, seamwire_put(&b, SW_DRAIN, 0, NULL, 0), -1);
}

void netstub_quit(struct netstub *s)
{
	struct buf b = BUF_INIT(64);

	send_buf(s, &b, seamwire_put(&b, SW_QUIT, 0, NULL, 0), -1);
}

size_t netstub_jobs(const struct netstub *s)
{
	return s->njobs;
}

void netstub_free(struct netstub *s)
{
	if (s == NULL)
		return;
	/* What is left was not released: kept for the operator (the next
	 * start of the agent clears the spool). */
	while (s->jobs)
		sjob_free(s, s->jobs, 0);
	seamchan_free(s->ch);
	free(s->spool_dir);
	free(s);
}
