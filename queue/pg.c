#include "pg.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev.h"
#include "log.h"
#include "xalloc.h"

/* A batch is closed with a Sync after this many queries or bytes even
 * within one round, so that one transaction never grows without bound. */
#define BATCH_MAX 64
#define BATCH_BYTES (4 << 20)
/* Bulk bytes sent on a connection and not yet answered. Past it, bulk
 * queries wait here, unsent: libpq would otherwise buffer whatever the
 * database has not taken yet, growing (and copying) its output buffer
 * without bound on the loop thread. */
#define BULK_INFLIGHT (8 << 20)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum cstate { CS_DOWN, CS_CONNECTING, CS_READY };

struct pgconn;

struct pg_query {
	pg_cb cb;
	void *arg;
	struct pg_query *next;
	struct pgconn *conn;
	PGresult *res;
	int is_sync;		/* a Sync marker in a connection's list */
	int forgotten;
	const char *fail;	/* deferred failure */
	size_t bytes;		/* what it carries, for BULK_INFLIGHT */
	/* while it waits to be sent: its SQL (a literal) and a copy of its
	 * parameters */
	const char *sql;
	int flags;
	struct pg_params *held;
	char *heldbuf;
};

struct pgconn {
	struct pg *p;
	int index;		/* -1: the listener */
	PGconn *c;
	int fd;
	unsigned events;
	struct ev_io *io;
	struct ev_timer *retry;
	enum cstate st;
	int backoff_ms;
	struct pg_query *head, *tail;	/* in flight, in order, with Syncs */
	size_t inflight;
	int open_batch;
	int batch_n;
	size_t batch_bytes;
	size_t out_bytes;		/* sent, not answered */
	int broken;
	int listened;
	int ever_up;
};

struct pg {
	struct ev_loop *loop;
	char *conninfo;
	char *password;
	struct pgconn *conns;
	int n;
	struct pgconn listener;
	char **channels;
	pg_notify_cb on_notify;
	void *arg;
	struct ev_timer *round;		/* Syncs, deferred failures, reconnects */
	struct pg_query *failq, *failq_tail;
	struct pg_query *pend, *pend_tail;	/* bulk queries not sent yet */
	struct pg_stats st;
};

static void drain_pending(struct pg *p);

static void conn_start(struct pgconn *k);
static void on_io(struct ev_io *w, int fd, unsigned events, void *arg);

/* ---- parameters ---- */

void pg_params_init(struct pg_params *p)
{
	memset(p, 0, sizeof(*p));
}

static int param_slot(struct pg_params *p)
{
	if (p->n >= PG_MAX_PARAMS) {
		log_error("too many query parameters (a bug)", "n=%d", p->n);
		abort();
	}
	return p->n++;
}

void pg_param_text(struct pg_params *p, const char *s)
{
	int i = param_slot(p);

	p->v[i] = s;
	p->len[i] = 0;
	p->fmt[i] = 0;
}

void pg_param_int(struct pg_params *p, long long v)
{
	int i = param_slot(p);

	snprintf(p->num[i], sizeof(p->num[i]), "%lld", v);
	p->v[i] = p->num[i];
	p->fmt[i] = 0;
}

void pg_param_bin(struct pg_params *p, const void *data, size_t n)
{
	int i = param_slot(p);

	p->v[i] = n ? data : "";
	p->len[i] = (int)n;
	p->fmt[i] = 1;
}

/* ---- results ---- */

const char *pg_jsonb(const PGresult *r, int row, int col, size_t *len)
{
	const char *v;
	int n;

	if (PQgetisnull(r, row, col))
		return NULL;
	v = PQgetvalue(r, row, col);
	n = PQgetlength(r, row, col);
	/* Binary jsonb: version 1, then the JSON text. */
	if (PQfformat(r, col) == 1) {
		if (n < 1 || v[0] != 1)
			return NULL;
		v++;
		n--;
	}
	*len = (size_t)n;
	return v;
}

const char *pg_bytea(const PGresult *r, int row, int col, size_t *len)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	*len = (size_t)PQgetlength(r, row, col);
	return PQgetvalue(r, row, col);
}

/* ---- the round timer: everything deferred out of a caller's stack ---- */

static void kick(struct pg *p)
{
	if (!ev_timer_active(p->round))
		ev_timer_start(p->round, 0);
}

static void defer_fail(struct pg *p, struct pg_query *q, const char *why)
{
	q->fail = why;
	q->next = NULL;
	if (p->failq_tail)
		p->failq_tail->next = q;
	else
		p->failq = q;
	p->failq_tail = q;
	kick(p);
}

static void watch(struct pgconn *k, unsigned events)
{
	int fd = PQsocket(k->c);

	/* While connecting, libpq may close its socket and open another
	 * with the same number (another address, SSL refused): epoll has
	 * forgotten the old one, so it is registered again every time. */
	if (k->st == CS_CONNECTING) {
		ev_io_stop(k->io);
		k->io = NULL;
	}
	if (k->io && fd == k->fd && events == k->events)
		return;
	if (k->io && fd == k->fd) {
		ev_io_set(k->io, events);
		k->events = events;
		return;
	}
	ev_io_stop(k->io);
	k->io = NULL;
	k->fd = fd;
	k->events = events;
	if (fd >= 0)
		k->io = ev_io_start(k->p->loop, fd, events, on_io, k);
}

static const char *conn_name(const struct pgconn *k)
{
	static char b[16];

	if (k->index < 0)
		return "listener";
	snprintf(b, sizeof(b), "%d", k->index);
	return b;
}

static void deliver(struct pg_query *q, PGresult *res, const char *err)
{
	if (!q->forgotten && q->cb)
		q->cb(q->arg, res, err);
}

/* The connection is gone: every query on it fails, and it is made again
 * after a backoff. */
static void conn_down(struct pgconn *k, const char *why)
{
	struct pg *p = k->p;
	struct pg_query *q, *next, *list = k->head;
	int had = k->st == CS_READY;
	char *msg = xstrdup(why);

	/* First out of the pool, so that a callback sending a query does
	 * not pick this connection again. */
	k->head = k->tail = NULL;
	k->inflight = 0;
	k->open_batch = 0;
	k->batch_n = 0;
	k->out_bytes = 0;
	k->broken = 0;
	ev_io_stop(k->io);
	k->io = NULL;
	k->fd = -1;
	if (k->c)
		PQfinish(k->c);
	k->c = NULL;
	if (had) {
		p->st.up -= k->index >= 0;
		if (k->index < 0)
			p->st.listening = 0;
	}
	k->st = CS_DOWN;
	k->listened = 0;
	k->backoff_ms = k->backoff_ms ? k->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (k->backoff_ms > BACKOFF_MAX_MS)
		k->backoff_ms = BACKOFF_MAX_MS;
	log_warn("PostgreSQL connection down; reconnecting", "conn=%s "
	    "error=%s retry_ms=%d", conn_name(k), logq(msg), k->backoff_ms);
	free(msg);
	ev_timer_start(k->retry, k->backoff_ms);
	for (q = list; q; q = next) {
		next = q->next;
		if (!q->is_sync) {
			p->st.failed++;
			deliver(q, NULL, "the connection to PostgreSQL was lost");
		}
		if (q->res)
			PQclear(q->res);
		free(q);
	}
	/* Held bulk queries go to another connection, or fail with it. */
	drain_pending(p);
}

static void broken(struct pgconn *k)
{
	k->broken = 1;
	kick(k->p);
}

static void flush_out(struct pgconn *k)
{
	int r = PQflush(k->c);

	if (r < 0) {
		broken(k);
		return;
	}
	watch(k, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void append(struct pgconn *k, struct pg_query *q)
{
	q->next = NULL;
	q->conn = k;
	if (k->tail)
		k->tail->next = q;
	else
		k->head = q;
	k->tail = q;
}

static void sync_batch(struct pgconn *k)
{
	struct pg_query *m;

	if (PQpipelineSync(k->c) != 1) {
		broken(k);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	m->is_sync = 1;
	append(k, m);
	k->open_batch = 0;
	k->batch_n = 0;
	k->batch_bytes = 0;
	k->p->st.batches++;
}

/* ---- connecting ---- */

static void ready(struct pgconn *k)
{
	struct pg *p = k->p;

	PQsetnonblocking(k->c, 1);
	k->st = CS_READY;
	k->backoff_ms = 0;
	if (k->ever_up)
		p->st.reconnects++;
	k->ever_up = 1;
	if (k->index < 0) {
		char *sql = xstrdup("");
		for (char **c = p->channels; *c; c++) {
			char *n = xasprintf("%sLISTEN %s;", sql, *c);
			free(sql);
			sql = n;
		}
		if (PQsendQuery(k->c, sql) != 1) {
			free(sql);
			broken(k);
			return;
		}
		free(sql);
	} else {
		if (PQenterPipelineMode(k->c) != 1) {
			broken(k);
			return;
		}
		p->st.up++;
	}
	log_info("PostgreSQL connection up", "conn=%s", conn_name(k));
	flush_out(k);
}

static void connecting(struct pgconn *k)
{
	PostgresPollingStatusType st = PQconnectPoll(k->c);

	log_debug("PostgreSQL connecting", "conn=%s poll=%d fd=%d",
	    conn_name(k), (int)st, PQsocket(k->c));
	switch (st) {
	case PGRES_POLLING_READING:
		watch(k, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		watch(k, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		ready(k);
		return;
	default:
		conn_down(k, PQerrorMessage(k->c));
		return;
	}
}

static void conn_start(struct pgconn *k)
{
	const char *keys[] = { "dbname", "fallback_application_name",
	    k->p->password ? "password" : NULL, NULL };
	const char *vals[] = { k->p->conninfo, "skiff-queue", k->p->password,
	    NULL };

	k->c = PQconnectStartParams(keys, vals, 1);
	if (k->c == NULL) {
		conn_down(k, "out of memory");
		return;
	}
	if (PQstatus(k->c) == CONNECTION_BAD) {
		conn_down(k, PQerrorMessage(k->c));
		return;
	}
	k->st = CS_CONNECTING;
	k->fd = -1;
	watch(k, EV_WRITE);
}

static void on_retry(struct ev_timer *t, void *arg)
{
	(void)t;
	conn_start(arg);
}

/* ---- reading ---- */

static void finish_query(struct pgconn *k, struct pg_query *q)
{
	struct pg *p = k->p;
	PGresult *r = q->res;
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	k->head = q->next;
	if (k->head == NULL)
		k->tail = NULL;
	k->inflight--;
	k->out_bytes -= q->bytes < k->out_bytes ? q->bytes : k->out_bytes;
	p->st.queries++;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		deliver(q, r, NULL);
	} else {
		const char *why = st == PGRES_PIPELINE_ABORTED ?
		    "aborted by an earlier error in its batch" :
		    r ? PQresultErrorMessage(r) : "no result";
		p->st.failed++;
		if (st != PGRES_PIPELINE_ABORTED)
			log_error("PostgreSQL query failed", "conn=%s error=%s",
			    conn_name(k), logq(why));
		deliver(q, NULL, why);
	}
	if (r)
		PQclear(r);
	free(q);
	if (p->pend)
		drain_pending(p);
}

static void read_pipeline(struct pgconn *k)
{
	/* Bounded: each turn consumes one result that is already read. */
	while (k->head && !k->broken && k->st == CS_READY && !PQisBusy(k->c)) {
		struct pg_query *q = k->head;
		PGresult *r = PQgetResult(k->c);

		if (q->is_sync) {
			if (r == NULL)
				break;
			if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
				log_error("PostgreSQL pipeline out of step", "conn=%s "
				    "status=%s", conn_name(k),
				    PQresStatus(PQresultStatus(r)));
				PQclear(r);
				broken(k);
				return;
			}
			PQclear(r);
			k->head = q->next;
			if (k->head == NULL)
				k->tail = NULL;
			free(q);
			continue;
		}
		if (r == NULL) {
			finish_query(k, q);
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			log_error("PostgreSQL pipeline out of step", "conn=%s",
			    conn_name(k));
			PQclear(r);
			broken(k);
			return;
		}
		if (q->res == NULL)
			q->res = r;
		else
			PQclear(r);
	}
}

static void read_listener(struct pgconn *k)
{
	struct pg *p = k->p;
	PGnotify *n;
	PGresult *r;

	while (!k->listened && !PQisBusy(k->c)) {
		r = PQgetResult(k->c);
		if (r == NULL) {
			k->listened = 1;
			p->st.listening = 1;
			/* Whatever was notified while down is unknown. */
			p->on_notify(p->arg, NULL, NULL);
			break;
		}
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error("LISTEN failed", "error=%s",
			    logq(PQresultErrorMessage(r)));
			PQclear(r);
			broken(k);
			return;
		}
		PQclear(r);
	}
	while ((n = PQnotifies(k->c)) != NULL) {
		p->on_notify(p->arg, n->relname, n->extra);
		PQfreemem(n);
	}
}

static void on_io(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct pgconn *k = arg;

	(void)w;
	(void)fd;
	if (k->st == CS_CONNECTING) {
		connecting(k);
		return;
	}
	if (k->st != CS_READY)
		return;
	if (events & EV_WRITE)
		flush_out(k);
	if (k->broken)
		return;
	if ((events & (EV_READ | EV_ERROR)) && PQconsumeInput(k->c) != 1) {
		conn_down(k, PQerrorMessage(k->c));
		return;
	}
	if (PQstatus(k->c) == CONNECTION_BAD) {
		conn_down(k, PQerrorMessage(k->c));
		return;
	}
	if (k->index < 0)
		read_listener(k);
	else
		read_pipeline(k);
	if (!k->broken && k->st == CS_READY)
		flush_out(k);
}

static void on_round(struct ev_timer *t, void *arg)
{
	struct pg *p = arg;
	struct pg_query *q;

	(void)t;
	while ((q = p->failq) != NULL) {
		p->failq = q->next;
		if (p->failq == NULL)
			p->failq_tail = NULL;
		p->st.failed++;
		deliver(q, NULL, q->fail);
		free(q);
	}
	for (int i = -1; i < p->n; i++) {
		struct pgconn *k = i < 0 ? &p->listener : &p->conns[i];
		if (k->broken) {
			conn_down(k, k->c ? PQerrorMessage(k->c) : "broken");
			continue;
		}
		if (k->st == CS_READY && k->open_batch) {
			sync_batch(k);
			if (!k->broken)
				flush_out(k);
		}
	}
}

/* ---- the pool ---- */

static void conn_init(struct pg *p, struct pgconn *k, int index)
{
	k->p = p;
	k->index = index;
	k->fd = -1;
	k->retry = ev_timer_new(p->loop, on_retry, k);
}

int pg_open(struct ev_loop *loop, const char *conninfo, const char *password,
    int nconn,
    const char *const *channels, pg_notify_cb on_notify, void *arg,
    struct pg **out)
{
	struct pg *p = xcalloc(1, sizeof(*p));
	size_t nch = 0;

	while (channels && channels[nch])
		nch++;
	p->loop = loop;
	p->conninfo = xstrdup(conninfo);
	p->password = password ? xstrdup(password) : NULL;
	p->n = nconn;
	p->conns = xcalloc((size_t)nconn, sizeof(*p->conns));
	p->channels = xcalloc(nch + 1, sizeof(char *));
	for (size_t i = 0; i < nch; i++)
		p->channels[i] = xstrdup(channels[i]);
	p->on_notify = on_notify;
	p->arg = arg;
	p->round = ev_timer_new(loop, on_round, p);
	conn_init(p, &p->listener, -1);
	for (int i = 0; i < nconn; i++)
		conn_init(p, &p->conns[i], i);
	conn_start(&p->listener);
	for (int i = 0; i < nconn; i++)
		conn_start(&p->conns[i]);
	*out = p;
	return 0;
}

int pg_wait_ready(struct pg *p, int timeout_ms)
{
	int64_t end = ev_now_update(p->loop) + timeout_ms;

	while (p->st.up < p->n || !p->st.listening) {
		int64_t left = end - ev_now_update(p->loop);
		if (left <= 0)
			return -ETIMEDOUT;
		ev_run_once(p->loop, (int)left);
	}
	return 0;
}

static void conn_free(struct pgconn *k)
{
	struct pg_query *q, *next;

	for (q = k->head; q; q = next) {
		next = q->next;
		if (q->res)
			PQclear(q->res);
		free(q);
	}
	ev_io_stop(k->io);
	ev_timer_free(k->retry);
	if (k->c)
		PQfinish(k->c);
}

void pg_close(struct pg *p)
{
	struct pg_query *q;

	if (p == NULL)
		return;
	while ((q = p->failq) != NULL) {
		p->failq = q->next;
		free(q);
	}
	while ((q = p->pend) != NULL) {
		p->pend = q->next;
		free(q->held);
		free(q->heldbuf);
		free(q);
	}
	for (int i = 0; i < p->n; i++)
		conn_free(&p->conns[i]);
	conn_free(&p->listener);
	ev_timer_free(p->round);
	for (char **c = p->channels; *c; c++)
		free(*c);
	free(p->channels);
	free(p->conns);
	free(p->conninfo);
	if (p->password) {
		sodium_memzero(p->password, strlen(p->password));
		free(p->password);
	}
	free(p);
}

/* The least busy connection of the class: control queries on the first
 * half of the pool, bulk ones on the second (both on a pool of one). */
static struct pgconn *pick_in(struct pg *p, int from, int to)
{
	struct pgconn *best = NULL;

	for (int i = from; i < to; i++) {
		struct pgconn *k = &p->conns[i];
		if (k->st != CS_READY || k->broken)
			continue;
		if (best == NULL || k->inflight < best->inflight)
			best = k;
	}
	return best;
}

static struct pgconn *pick(struct pg *p, int bulk)
{
	int half = p->n > 1 ? p->n / 2 : 0;
	int from = bulk ? half : 0, to = bulk || p->n == 1 ? p->n : half;
	struct pgconn *k = pick_in(p, from, to);

	/* Its half all down (reconnecting after a restart, which the halves
	 * do each at their own pace): the other half rather than a 503. */
	return k ? k : pick_in(p, 0, p->n);
}

/* Sends q (sql with params) on k now. */
static void send_now(struct pg *p, struct pgconn *k, struct pg_query *q,
    const char *sql, const struct pg_params *params)
{
	int batched = q->flags & PG_BATCH, n = params ? params->n : 0;

	/* A query alone never joins a batch's transaction. */
	if (!batched && k->open_batch)
		sync_batch(k);
	if (!k->broken && PQsendQueryParams(k->c, sql, n, NULL,
	    params ? params->v : NULL, params ? params->len : NULL,
	    params ? params->fmt : NULL, 1) != 1) {
		log_error("cannot send a query to PostgreSQL", "conn=%s error=%s",
		    conn_name(k), logq(PQerrorMessage(k->c)));
		broken(k);
	}
	if (k->broken) {
		defer_fail(p, q, "the connection to PostgreSQL was lost");
		return;
	}
	append(k, q);
	k->inflight++;
	k->out_bytes += q->bytes;
	if (batched) {
		k->open_batch = 1;
		k->batch_bytes += q->bytes;
		if (++k->batch_n >= BATCH_MAX || k->batch_bytes >= BATCH_BYTES)
			sync_batch(k);
		else
			kick(p);
	} else {
		sync_batch(k);
	}
	if (!k->broken)
		flush_out(k);
}

/* A bulk connection under BULK_INFLIGHT, or NULL. */
static struct pgconn *bulk_room(struct pg *p)
{
	struct pgconn *k = pick(p, 1);

	return k && k->out_bytes < BULK_INFLIGHT ? k : NULL;
}

/* Keeps q with a copy of its parameters until a bulk connection has
 * room. */
static void hold(struct pg *p, struct pg_query *q, const char *sql,
    const struct pg_params *params)
{
	size_t total = 0, at = 0;

	q->sql = sql;
	q->held = xcalloc(1, sizeof(*q->held));
	if (params) {
		*q->held = *params;
		for (int i = 0; i < params->n; i++)
			total += params->fmt[i] ? (size_t)params->len[i] :
			    params->v[i] ? strlen(params->v[i]) + 1 : 0;
		q->heldbuf = xmalloc(total ? total : 1);
		for (int i = 0; i < params->n; i++) {
			size_t len = params->fmt[i] ? (size_t)params->len[i] :
			    params->v[i] ? strlen(params->v[i]) + 1 : 0;
			if (params->v[i] == NULL)
				continue;
			memcpy(q->heldbuf + at, params->v[i], len);
			q->held->v[i] = q->heldbuf + at;
			at += len;
		}
	}
	q->next = NULL;
	if (p->pend_tail)
		p->pend_tail->next = q;
	else
		p->pend = q;
	p->pend_tail = q;
}

static void drain_pending(struct pg *p)
{
	struct pg_query *q;
	struct pgconn *k;

	if (p->pend && pick(p, 1) == NULL) {
		/* No bulk connection is up: they fail as new ones would. */
		while ((q = p->pend) != NULL) {
			p->pend = q->next;
			free(q->held);
			free(q->heldbuf);
			q->held = NULL;
			q->heldbuf = NULL;
			defer_fail(p, q, "no connection to PostgreSQL is up");
		}
		p->pend_tail = NULL;
		return;
	}
	while ((q = p->pend) != NULL && (k = bulk_room(p)) != NULL) {
		p->pend = q->next;
		if (p->pend == NULL)
			p->pend_tail = NULL;
		send_now(p, k, q, q->sql, q->held);
		free(q->held);
		free(q->heldbuf);
		q->held = NULL;
		q->heldbuf = NULL;
	}
}

struct pg_query *pg_send(struct pg *p, const char *sql,
    const struct pg_params *params, int flags, pg_cb cb, void *arg)
{
	struct pg_query *q = xcalloc(1, sizeof(*q));
	int bulk = (flags & (PG_BATCH | PG_BULK)) != 0;
	struct pgconn *k = pick(p, bulk);
	int n = params ? params->n : 0;

	q->bytes = strlen(sql);
	for (int i = 0; i < n; i++)
		q->bytes += params->fmt[i] ? (size_t)params->len[i] :
		    params->v[i] ? strlen(params->v[i]) : 0;
	q->cb = cb;
	q->arg = arg;
	q->flags = flags | (bulk ? PG_BULK : 0);
	if (k == NULL) {
		defer_fail(p, q, "no connection to PostgreSQL is up");
		return q;
	}
	if (bulk && (p->pend || (k = bulk_room(p)) == NULL)) {
		/* In order: behind those already waiting. */
		hold(p, q, sql, params);
		return q;
	}
	send_now(p, k, q, sql, params);
	return q;
}

void pg_forget(struct pg_query *q)
{
	if (q)
		q->forgotten = 1;
}

void pg_get_stats(const struct pg *p, struct pg_stats *st)
{
	*st = p->st;
}
