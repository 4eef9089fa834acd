/*
 * The network half's stub of the runner: seam_to_runner calls become
 * messages on the socketpair, and the runner's messages, once the channel
 * has checked them, become seam_net_in calls.
 */
#include "runstub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "xalloc.h"

struct runstub {
	struct seamchan *ch;
	struct seam_to_runner table;
	const struct seam_net_in *in;
	runstub_end_fn end;
	void *arg;
	int inited;
};

static void send_buf(struct runstub *s, struct buf *b, int r)
{
	if (r == 0 && (r = seamchan_send(s->ch, b, -1)) < 0)
		log_error("cannot send to the runner", "error=%s",
		    logq(strerror(-r)));
	buf_free(b);
}

static void t_start(void *ctx, uint64_t jh, const char *job_id, int attempt,
    const char *jws, size_t n)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(SEAMWIRE_HDR + SEAMWIRE_MAX);

	send_buf(s, &b, seamwire_put_start(&b, jh, (uint32_t)attempt, job_id,
	    jws, n));
}

static void t_stop(void *ctx, uint64_t jh, enum seam_stop why)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(64);

	send_buf(s, &b, seamwire_put_u32(&b, SW_STOP, jh, (uint32_t)why));
}

static void t_artifact_done(void *ctx, uint64_t jh, uint64_t id, int ok,
    const char *error)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_ERR_MAX);

	send_buf(s, &b, seamwire_put_artifact_done(&b, jh, id, ok, error));
}

static void t_fetch_done(void *ctx, uint64_t jh, uint64_t id, int ok,
    long status, uint64_t bytes, const char *error)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_ERR_MAX);

	send_buf(s, &b, seamwire_put_fetch_done(&b, jh, id, bytes,
	    status > 0 && status < 1000 ? (uint32_t)status : 0, ok, error));
}

static void t_cache_get_done(void *ctx, uint64_t jh, uint64_t id, int ok,
    uint64_t bytes, const char *sha256, const char *text)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_ERR_MAX);

	send_buf(s, &b, seamwire_put_cache_get_done(&b, jh, id, bytes, ok, sha256,
	    text));
}

static void t_cache_put_done(void *ctx, uint64_t jh, uint64_t id, int ok,
    const char *text)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(2 * SEAMWIRE_ERR_MAX);

	send_buf(s, &b, seamwire_put_cache_put_done(&b, jh, id, ok, text));
}

static void t_release(void *ctx, uint64_t jh)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(64);

	send_buf(s, &b, seamwire_put(&b, SW_RELEASE, jh, NULL, 0));
}

static void t_exit(void *ctx, int code)
{
	struct runstub *s = ctx;
	struct buf b = BUF_INIT(64);

	send_buf(s, &b, seamwire_put_u32(&b, SW_EXIT, 0, (uint32_t)code & 255));
	seamchan_flush(s->ch, 2000);
}

static void on_msg(void *arg, struct seamwire_msg *m)
{
	struct runstub *s = arg;
	const struct seam_net_in *in = s->in;
	struct seam_done d = { 0 };

	if (!s->inited && m->type != SW_INIT) {
		seamwire_msg_clear(m);
		s->end(s->arg, "a message before init");
		return;
	}
	switch (m->type) {
	case SW_INIT:
		if (s->inited || in->init(in->ctx, m->s1, m->fd) < 0) {
			seamwire_msg_clear(m);
			s->end(s->arg, s->inited ? "init twice" : "bad settings");
			return;
		}
		m->fd = -1;	/* the half's now */
		s->inited = 1;
		break;
	case SW_SPOOL:
		in->spool(in->ctx, m->jh, m->fd);
		m->fd = -1;
		break;
	case SW_LOGGED:
		in->logged(in->ctx, m->jh, m->n);
		break;
	case SW_STEP:
		in->step(in->ctx, m->jh, (int)(m->u & 0x7fffffff));
		break;
	case SW_ARTIFACT:
		in->artifact(in->ctx, m->jh, m->id, m->fd, m->s1, m->n);
		m->fd = -1;
		break;
	case SW_FETCH:
		in->fetch(in->ctx, m->jh, m->id, m->s1, m->fd, m->n);
		m->fd = -1;
		break;
	case SW_DONE:
		d.result = m->u <= SEAM_REJECTED ? (enum seam_result)m->u :
		    SEAM_FAILED;
		d.reason_code = m->s1 && m->s1[0] ? m->s1 : NULL;
		d.reason = m->s2 && m->s2[0] ? m->s2 : NULL;
		d.exit_codes = (const int *)m->exits;
		d.nexit = m->nexit;
		d.outputs = m->outputs;
		d.noutputs = m->noutputs;
		in->done(in->ctx, m->jh, &d);
		break;
	case SW_CACHE_GET:
		in->cache_get(in->ctx, m->jh, m->id, m->s1, m->fd, m->n);
		m->fd = -1;
		break;
	case SW_CACHE_PUT:
		in->cache_put(in->ctx, m->jh, m->id, m->fd, m->s1, m->n);
		m->fd = -1;
		break;
	case SW_DRAIN:
		in->drain(in->ctx);
		break;
	case SW_QUIT:
		in->quit(in->ctx);
		break;
	}
	seamwire_msg_clear(m);
}

static void on_bad(void *arg, const struct seamwire_hdr *h, const char *why)
{
	(void)arg;
	log_error("the runner sent a bad message; ignored", "type=%u length=%u "
	    "why=%s", h->type, h->len, logq(why));
}

static void on_end(void *arg, int err, const char *why)
{
	struct runstub *s = arg;

	(void)err;
	s->end(s->arg, why);
}

int runstub_new(struct ev_loop *loop, int fd, const struct seam_net_in *in,
    runstub_end_fn end, void *arg, struct runstub **out)
{
	struct runstub *s = xcalloc(1, sizeof(*s));
	int r;

	s->in = in;
	s->end = end;
	s->arg = arg;
	s->table = (struct seam_to_runner){ s, t_start, t_stop, t_artifact_done,
	    t_fetch_done, t_release, t_exit, t_cache_get_done, t_cache_put_done };
	if ((r = seamchan_new(loop, fd, SEAMWIRE_FROM_RUNNER, on_msg, on_bad,
	    on_end, s, &s->ch)) < 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void runstub_set_in(struct runstub *s, const struct seam_net_in *in)
{
	s->in = in;
}

const struct seam_to_runner *runstub_table(struct runstub *s)
{
	return &s->table;
}

void runstub_free(struct runstub *s)
{
	if (s == NULL)
		return;
	seamchan_free(s->ch);
	free(s);
}
