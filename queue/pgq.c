#include "pgq.h"
#include "srvint.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "b64.h"
#include "config.h"
#include "ev.h"
#include "gz.h"
#include "hmap.h"
#include "jsonx.h"
#include "log.h"
#include "pg.h"
#include "pgans.h"
#include "reqjson.h"
#include "server.h"
#include "strnum.h"
#include "token.h"
#include "ui.h"
#include "workq.h"
#include "xalloc.h"

/* The schema, from pgschema.sql (built into the binary by CMake). */
extern const char skiff_pgschema_sql[], skiff_pgschema2_sql[],
    skiff_pgschema3_sql[];

#define SCHEMA_VERSION 3
/* Any value; the lock only serialises migrations of replicas starting
 * together. */
#define MIGRATE_LOCK 0x736b6966
#define SWEEP_IDLE_MS 1000
#define SWEEP_LIMIT 500
#define STATS_EVERY_MS 2000
#define RETAIN_BATCH 64
#define PUT_CHUNK (1024 * 1024)
#define READ_CHUNK (1024 * 1024)

struct pgpool;

/* A request's state while it talks to PostgreSQL; it may outlive the
 * request (r NULL) until its query answers. */
struct pgr {
	int refs;
	struct req *r;
	struct pgq *pq;
	struct pg_query *query;
	int (*then)(struct pgr *g, cJSON *ans, PGresult *res);
	/* the answer */
	unsigned status;
	cJSON *body;
	int failed;
	struct apierr err;
	char *bytes;		/* a log range */
	size_t nbytes;
	struct buf text;	/* /metrics */
	int has_text;
	int viewer_ok;		/* a viewer token passed: the operation next */
	char sent_lease[ID_MAX + 1];
	/* a held long-poll */
	struct pgpool *pool;
	char agent[ID_MAX + 1];
	struct pgr *wprev, *wnext;
	int waiting;
	int in_dispatch;
	int wait_over;		/* its wait passed during a dispatch */
	struct ev_timer *timer;
	int64_t start_ms;
	uint64_t pool_seq;
	/* a log follow */
	char job[ROUTE_PARAM_MAX + 1];
	struct pgr *fnext, *fprev;
	char follow_id[ID_MAX + 1];
	int64_t wait_ms;
	int following, parked, dirty;
	int attempt;
	int64_t offset;
	/* a log append */
	char lease[ID_MAX + 1];
	/* an upload PUT */
	char upload[ROUTE_PARAM_MAX + 1];
	struct gz *gz;
	int64_t put_start, put_pos, put_size;
	crypto_hash_sha256_state sha, sha_start;
	struct buf chunk;
	int chunk_busy;
	int begun;
	int ended;
	struct apierr refuse;	/* answered once the chunk in flight is in */
	int log_complete;
	/* a download */
	int download;		/* answered as a download */
	char sha256[65];
	int64_t size;
};

struct pgpool {
	char *name;
	struct pgr *head, *tail;	/* held polls, oldest first */
	size_t n;
	int dispatching, again;
};

/* Followers of one job on this replica. */
struct pgfol {
	char job[ROUTE_PARAM_MAX + 1];
	struct pgr *head;
};

struct pgq {
	struct queue *q;
	struct pg *pg;
	struct hmap *pools;		/* name -> struct pgpool */
	struct hmap *follows;		/* job -> struct pgfol */
	uint64_t pool_seq;		/* skiff_pool notifications seen */
	struct ev_timer *sweep, *retain;
	int sweeping, retaining;
	int64_t stats_at;
	uint64_t retained;
	struct workq *wq;		/* inflates log chunks */
};

static struct pgq *PQ(struct queue *q) { return q->pg; }

/* ---- the schema ---- */

int pgq_schema_version(void)
{
	return SCHEMA_VERSION;
}

static PGconn *connect_sync(const char *conninfo, const char *password)
{
	const char *keys[] = { "dbname", "fallback_application_name",
	    password ? "password" : NULL, NULL };
	const char *vals[] = { conninfo, "skiff-queue", password, NULL };

	return PQconnectdbParams(keys, vals, 1);
}

static int exec_ok(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		log_error("PostgreSQL schema step failed", "step=%s error=%s", what,
		    logq(PQresultErrorMessage(r)));
	PQclear(r);
	return ok ? 0 : -EIO;
}

static int stored_version(PGconn *c, int *v)
{
	PGresult *r = PQexec(c, "SELECT to_regclass('skiff.meta') IS NOT NULL");
	int have = PQresultStatus(r) == PGRES_TUPLES_OK &&
	    strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	*v = 0;
	if (!have)
		return 0;
	r = PQexec(c, "SELECT v FROM skiff.meta WHERE k = 'schema_version'");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return -EIO;
	}
	if (PQntuples(r) == 1 && strnum_int(PQgetvalue(r, 0, 0), 1, 1 << 20, v,
	    NULL) < 0) {
		PQclear(r);
		return -EIO;
	}
	PQclear(r);
	return 0;
}

/*
 * Versioned: skiff.meta holds the schema version. A database at an older
 * version is migrated in one transaction under an advisory lock (replicas
 * starting together wait for each other); one at a newer version than
 * this binary knows is refused, so that an old replica never runs on a
 * schema it does not understand.
 */
static int migrate(const char *conninfo, const char *password)
{
	PGconn *c = connect_sync(conninfo, password);
	char sql[128];
	int v = 0, r = -EIO;

	if (PQstatus(c) != CONNECTION_OK) {
		log_error("cannot connect to PostgreSQL", "error=%s",
		    logq(PQerrorMessage(c)));
		PQfinish(c);
		return -ECONNREFUSED;
	}
	if (exec_ok(c, "BEGIN", "begin") < 0)
		goto out;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)",
	    MIGRATE_LOCK);
	if (exec_ok(c, sql, "lock") < 0 || stored_version(c, &v) < 0)
		goto out;
	if (v > SCHEMA_VERSION) {
		log_error("the PostgreSQL schema is newer than this skiff-queue",
		    "schema=%d supported=%d", v, SCHEMA_VERSION);
		goto out;
	}
	if (v == 0) {
		if (exec_ok(c, skiff_pgschema_sql, "create") < 0 ||
		    exec_ok(c, "CREATE TABLE skiff.meta (k text PRIMARY KEY, "
		    "v text NOT NULL)", "meta") < 0 ||
		    exec_ok(c, "INSERT INTO skiff.meta VALUES ('schema_version', "
		    "'1')", "version") < 0)
			goto out;
		v = 1;
	}
	/* Each migration from version n to n + 1, in this same transaction:
	 * a new database goes through all of them. */
	if (v == 1) {
		if (exec_ok(c, skiff_pgschema2_sql, "version 2") < 0 ||
		    exec_ok(c, "UPDATE skiff.meta SET v = '2' WHERE k = "
		    "'schema_version'", "version") < 0)
			goto out;
		log_info("PostgreSQL schema at version 2", "from=%d", v);
		v = 2;
	}
	if (v == 2) {
		if (exec_ok(c, skiff_pgschema3_sql, "version 3") < 0 ||
		    exec_ok(c, "UPDATE skiff.meta SET v = '3' WHERE k = "
		    "'schema_version'", "version") < 0)
			goto out;
		log_info("PostgreSQL schema at version 3", "from=%d", v);
		v = 3;
	}
	r = exec_ok(c, "COMMIT", "commit");
out:
	if (r < 0)
		exec_ok(c, "ROLLBACK", "rollback");
	PQfinish(c);
	return r;
}

/* ---- requests ---- */

static struct pgr *pgr_of(struct req *r)
{
	struct pgr *g = r->pg;

	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		g->refs = 1;
		g->r = r;
		g->pq = PQ(r->s->q);
		r->pg = g;
	}
	return g;
}

static void pgr_unref(struct pgr *g)
{
	if (--g->refs > 0)
		return;
	cJSON_Delete(g->body);
	free(g->bytes);
	buf_free(&g->text);
	buf_free(&g->chunk);
	gz_free(g->gz);
	ev_timer_free(g->timer);
	sodium_memzero(&g->sha, sizeof(g->sha));
	free(g);
}

static void answer(struct pgr *g, unsigned status, cJSON *body)
{
	cJSON_Delete(g->body);
	g->status = status;
	g->body = body;
}

static int fail_with(struct pgr *g, const struct apierr *e)
{
	g->failed = 1;
	g->err = *e;
	return 0;
}

static int unavailable(struct pgr *g, const char *why)
{
	struct apierr e;

	log_warn("request answered 503: PostgreSQL", "error=%s", logq(why));
	apierr_set(&e, 503, "unavailable", "the queue's database is "
	    "unavailable; try again");
	e.retry_after = 1;
	return fail_with(g, &e);
}

/* A function answered something that is not an answer: a schema this
 * binary does not match, or a bug. Not worth a retry. */
static void broken_answer(struct pgr *g, const char *text, size_t n)
{
	char head[121];

	snprintf(head, sizeof(head), "%.*s", (int)(n < 120 ? n : 120),
	    text ? text : "");
	log_error("a PostgreSQL function's answer is malformed", "answer=%s",
	    logq(head));
	apierr_internal(&g->err, "the queue's database answered something it "
	    "could not read");
	g->failed = 1;
}

static void wake(struct pgr *g)
{
	if (g->r)
		srv_wake(g->r);
}

static cJSON *take_body(cJSON *ans)
{
	cJSON *b = cJSON_DetachItemFromObjectCaseSensitive(ans, "b");

	if (cJSON_IsNull(b)) {
		cJSON_Delete(b);
		return NULL;
	}
	return b;
}

/*
 * The answer of a function query into a: 1 when it is a success, 0 when
 * the query failed, the answer is malformed or it is an error (g->failed
 * and g->err set then). a is to be freed in every case.
 */
static int decode(struct pgr *g, PGresult *res, const char *err,
    struct pgans *a)
{
	const char *text = NULL;
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	if (err) {
		unavailable(g, err);
	} else if (PQntuples(res) != 1 || (text = pg_jsonb(res, 0, 0, &n)) ==
	    NULL || pgans_decode(text, n, a) < 0) {
		broken_answer(g, text, n);
	} else if (a->is_error) {
		g->err = a->err;
		g->failed = 1;
	} else {
		return 1;
	}
	return 0;
}

static void on_result(void *arg, PGresult *res, const char *err)
{
	struct pgr *g = arg;
	struct pgans a;
	int more = 0;

	g->query = NULL;
	if (decode(g, res, err, &a)) {
		g->status = (unsigned)a.status;
		more = g->then ? g->then(g, a.root, res) : 0;
		if (!g->then)
			answer(g, g->status, pgans_take_body(&a));
	}
	pgans_free(&a);
	if (!more)
		wake(g);
	pgr_unref(g);
}

/* Sends sql; the answer goes through then (NULL: the body as is). */
static void call(struct pgr *g, const char *sql, const struct pg_params *p,
    int batched, int (*then)(struct pgr *, cJSON *, PGresult *))
{
	g->then = then;
	g->refs++;
	g->query = pg_send(g->pq->pg, sql, p, batched, on_result, g);
}

static enum MHD_Result park(struct req *r)
{
	r->wait = RW_DB;
	return srv_suspend(r);
}

/* Runs sql for r and parks it until the answer. */
static enum MHD_Result run(struct req *r, const char *sql,
    const struct pg_params *p, int (*then)(struct pgr *, cJSON *,
    PGresult *))
{
	call(pgr_of(r), sql, p, 0, then);
	return park(r);
}

static const struct qcfg *CFG(const struct pgr *g)
{
	return g->pq->q->cfg;
}

/* How often an agent's last_seen is written. */
static int seen_every(const struct qcfg *c)
{
	return c->lease_wait < 30 ? (int)(c->lease_wait > 0 ? c->lease_wait : 1) :
	    30;
}

static void agent_params(struct req *r, struct pg_params *p)
{
	pg_params_init(p);
	pg_param_bin(p, r->tok_hash, sizeof(r->tok_hash));
	pg_param_int(p, seen_every(r->s->cfg));
}

/* A text[] literal of strings (each quoted, so any byte but NUL is
 * safe). */
static char *text_array(char *const *v, size_t n)
{
	struct buf b = BUF_INIT(1 << 20);

	buf_puts(&b, "{");
	for (size_t i = 0; i < n; i++) {
		buf_puts(&b, i ? ",\"" : "\"");
		for (const char *s = v[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				buf_puts(&b, "\\");
			buf_append(&b, s, 1);
		}
		buf_puts(&b, "\"");
	}
	buf_puts(&b, "}");
	return buf_steal(&b, NULL);
}

/* ---- agent endpoints ---- */

static int then_register(struct pgr *g, cJSON *ans, PGresult *res)
{
	const struct qcfg *c = CFG(g);
	cJSON *b = take_body(ans);

	(void)res;
	cJSON_AddNumberToObject(b, "lease_wait", (double)c->lease_wait);
	cJSON_AddNumberToObject(b, "ack_window", (double)c->ack_window);
	cJSON_AddNumberToObject(b, "lease_ttl", (double)c->lease_ttl);
	cJSON_AddNumberToObject(b, "heartbeat_interval",
	    (double)c->heartbeat_interval);
	/* The token is in the answer already (it never reaches the
	 * database, only its hash). */
	cJSON_AddItemToObject(b, "agent_token", cJSON_DetachItemFromObject(
	    g->body, "agent_token"));
	log_info("agent registered", "agent=%s pool=%s", cJSON_GetStringValue(
	    cJSON_GetObjectItem(b, "agent_id")), logq(cJSON_GetStringValue(
	    cJSON_GetObjectItem(b, "pool"))));
	answer(g, 201, b);
	return 0;
}

static enum MHD_Result h_register(struct req *r)
{
	struct reqj_register req;
	struct pg_params p;
	unsigned char rh[TOKEN_HASH_BYTES], ah[TOKEN_HASH_BYTES];
	char id[ID_MAX + 1], *token, *labels;
	struct apierr e;
	struct pgr *g;
	enum MHD_Result ok;

	if (reqj_register(r->body.data, r->body.len, &req, &e) < 0)
		return srv_reply_error(r, &e);
	g = pgr_of(r);
	token_hash(r->token, r->token_len, rh);
	token_id_new("agt_", id);
	token = token_new("sat_");
	token_hash(token, strlen(token), ah);
	/* Kept for then_register; the object is freed with g. */
	g->body = cJSON_CreateObject();
	cJSON_AddStringToObject(g->body, "agent_token", token);
	sodium_memzero(token, strlen(token));
	free(token);
	labels = text_array(req.labels, req.nlabels);
	pg_params_init(&p);
	pg_param_bin(&p, rh, sizeof(rh));
	pg_param_text(&p, id);
	pg_param_bin(&p, ah, sizeof(ah));
	pg_param_text(&p, req.name);
	pg_param_text(&p, labels);
	pg_param_int(&p, req.capacity);
	pg_param_text(&p, req.version);
	ok = run(r, "SELECT skiff.op_register($1, $2, $3, $4, $5, $6, $7)", &p,
	    then_register);
	free(labels);
	reqj_register_free(&req);
	return ok;
}

/* -- lease requests and held polls -- */

static struct pgpool *pool_get(struct pgq *pq, const char *name)
{
	struct pgpool *p = hmap_get(pq->pools, name);

	if (p == NULL) {
		p = xcalloc(1, sizeof(*p));
		p->name = xstrdup(name);
		hmap_put(pq->pools, p->name, p);
	}
	return p;
}

static struct qpool *qpool_of(struct pgr *g)
{
	return queue_pool(g->pq->q, g->pool->name);
}

/* Takes g out of its pool's held polls (the list's reference too). */
static void waiter_unlink(struct pgr *g)
{
	struct pgpool *p = g->pool;

	if (!g->waiting)
		return;
	if (g->wprev)
		g->wprev->wnext = g->wnext;
	else
		p->head = g->wnext;
	if (g->wnext)
		g->wnext->wprev = g->wprev;
	else
		p->tail = g->wprev;
	g->wprev = g->wnext = NULL;
	g->waiting = 0;
	p->n--;
	qpool_of(g)->nwaiters--;
	metrics_observe(&qpool_of(g)->lease_wait,
	    (double)(ev_now_update(g->pq->q->loop) - g->start_ms) / 1000.0);
	ev_timer_stop(g->timer);
	pgr_unref(g);
}

static cJSON *lease_answer(struct pgr *g, cJSON *lease)
{
	const struct qcfg *c = CFG(g);
	cJSON *o = cJSON_CreateObject();
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(lease,
	    "lease"));

	cJSON_AddStringToObject(o, "lease", id ? id : "");
	cJSON_AddStringToObject(o, "job", cJSON_GetStringValue(
	    cJSON_GetObjectItem(lease, "job")));
	cJSON_AddNumberToObject(o, "attempt", cJSON_GetNumberValue(
	    cJSON_GetObjectItem(lease, "attempt")));
	cJSON_AddStringToObject(o, "jws", cJSON_GetStringValue(
	    cJSON_GetObjectItem(lease, "jws")));
	cJSON_AddNumberToObject(o, "ack_window", (double)c->ack_window);
	cJSON_AddNumberToObject(o, "lease_ttl", (double)c->lease_ttl);
	cJSON_AddNumberToObject(o, "heartbeat_interval",
	    (double)c->heartbeat_interval);
	return o;
}

/* The answer of a lease handed out never reached its agent. */
static void undelivered(struct pgq *pq, const char *lease)
{
	struct pg_params p;

	log_info("lease answer undelivered", "lease=%s", lease);
	pg_params_init(&p);
	pg_param_text(&p, lease);
	pg_param_int(&p, pq->q->cfg->clock_skew);
	pg_send(pq->pg, "SELECT skiff.op_undelivered($1, $2)", &p, 0, NULL,
	    NULL);
}

/* A lease for g: answered, or given back when g went away. */
static void give_lease(struct pgr *g, cJSON *lease)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(lease,
	    "lease"));
	const char *pool = cJSON_GetStringValue(cJSON_GetObjectItem(lease,
	    "pool"));

	if (id == NULL)
		return;
	if (g->r == NULL) {
		undelivered(g->pq, id);
		return;
	}
	snprintf(g->r->lease_sent, sizeof(g->r->lease_sent), "%s", id);
	if (pool)
		metrics_observe(&queue_pool(g->pq->q, pool)->pickup,
		    cJSON_GetNumberValue(cJSON_GetObjectItem(lease, "pickup_ms")) /
		    1000.0);
	log_info("lease handed out", "job=%s lease=%s agent=%s",
	    cJSON_GetStringValue(cJSON_GetObjectItem(lease, "job")), id,
	    cJSON_GetStringValue(cJSON_GetObjectItem(lease, "agent")));
	answer(g, 200, lease_answer(g, lease));
}

static void dispatch(struct pgq *pq, struct pgpool *p);
static void waiter_fired(struct ev_timer *t, void *arg);

struct dispatch {
	struct pgq *pq;
	struct pgpool *pool;
	struct pgr **snap;
	size_t n;
};

static void on_dispatch(void *arg, PGresult *res, const char *err)
{
	struct dispatch *d = arg;
	struct pgpool *p = d->pool;
	cJSON *ans = NULL, *it;
	const char *text;
	size_t n = 0;
	int jerr;

	if (err == NULL && PQntuples(res) == 1 &&
	    (text = pg_jsonb(res, 0, 0, &n)) != NULL)
		ans = jsonx_parse(text, n, 64 << 20, 64, &jerr);
	cJSON_ArrayForEach(it, ans) {
		int i = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "i"));
		cJSON *lease = cJSON_GetObjectItem(it, "lease");
		struct pgr *g;

		if (i < 1 || (size_t)i > d->n)
			continue;
		g = d->snap[i - 1];
		if (g->waiting) {
			waiter_unlink(g);
			give_lease(g, lease);
			wake(g);
		} else {
			undelivered(d->pq, cJSON_GetStringValue(
			    cJSON_GetObjectItem(lease, "lease")));
		}
	}
	cJSON_Delete(ans);
	for (size_t i = 0; i < d->n; i++) {
		struct pgr *g = d->snap[i];
		g->in_dispatch = 0;
		if (g->waiting && g->wait_over)
			waiter_fired(g->timer, g);
		pgr_unref(g);
	}
	p->dispatching = 0;
	free(d->snap);
	if (p->again) {
		p->again = 0;
		dispatch(d->pq, p);
	}
	free(d);
}

/* Offers the pool's queued jobs to the polls held here, oldest first. One
 * dispatch per pool at a time; a notification meanwhile runs another. */
static void dispatch(struct pgq *pq, struct pgpool *p)
{
	struct dispatch *d;
	struct pg_params pp;
	char **ids;
	char *arr;
	size_t i = 0;

	if (p->n == 0)
		return;
	if (p->dispatching) {
		p->again = 1;
		return;
	}
	d = xcalloc(1, sizeof(*d));
	d->pq = pq;
	d->pool = p;
	d->snap = xcalloc(p->n, sizeof(*d->snap));
	ids = xcalloc(p->n + 1, sizeof(char *));
	for (struct pgr *g = p->head; g; g = g->wnext) {
		g->refs++;
		g->in_dispatch = 1;
		d->snap[i] = g;
		ids[i++] = g->agent;
	}
	d->n = i;
	arr = text_array(ids, i);
	free(ids);
	pg_params_init(&pp);
	pg_param_text(&pp, p->name);
	pg_param_text(&pp, arr);
	pg_param_int(&pp, pq->q->cfg->ack_window * 1000);
	p->dispatching = 1;
	pg_send(pq->pg, "SELECT skiff.op_dispatch($1, $2, $3)", &pp, 0,
	    on_dispatch, d);
	free(arr);
}

/* A held poll ends with an error (the agent gone, the queue stopping). */
static void waiter_fail(struct pgr *g, int status, const char *code,
    const char *msg, int retry_after)
{
	g->refs++;
	waiter_unlink(g);
	apierr_set(&g->err, status, code, "%s", msg);
	g->err.retry_after = retry_after;
	g->failed = 1;
	wake(g);
	pgr_unref(g);
}

static void waiter_fired(struct ev_timer *t, void *arg)
{
	struct pgr *g = arg;

	(void)t;
	if (!g->waiting)
		return;
	if (g->in_dispatch) {
		/* A job may be on its way to this poll: the answer waits for
		 * the dispatch, so that no lease is handed to a poll that has
		 * just been told 204. */
		g->wait_over = 1;
		return;
	}
	g->refs++;
	waiter_unlink(g);
	answer(g, 204, NULL);
	wake(g);
	pgr_unref(g);
}

static void hold(struct pgr *g, const char *pool, const char *agent,
    int64_t wait_s)
{
	struct pgpool *p = pool_get(g->pq, pool);

	g->pool = p;
	snprintf(g->agent, sizeof(g->agent), "%s", agent);
	g->wprev = p->tail;
	g->wnext = NULL;
	if (p->tail)
		p->tail->wnext = g;
	else
		p->head = g;
	p->tail = g;
	p->n++;
	g->waiting = 1;
	g->refs++;
	qpool_of(g)->nwaiters++;
	if (g->timer == NULL)
		g->timer = ev_timer_new(g->pq->q->loop, waiter_fired, g);
	ev_timer_start(g->timer, wait_s * 1000);
	/* A job queued while the lease query was out notified before this
	 * poll was held: look again. */
	if (g->pq->pool_seq != g->pool_seq)
		dispatch(g->pq, p);
}

static int then_lease(struct pgr *g, cJSON *ans, PGresult *res)
{
	const struct qcfg *c = CFG(g);
	int64_t wait = g->offset;	/* the wait asked for, in seconds */
	const char *pool, *agent;

	(void)res;
	if (g->status == 200) {
		cJSON *b = cJSON_GetObjectItem(ans, "b");
		pool = cJSON_GetStringValue(cJSON_GetObjectItem(b, "pool"));
		give_lease(g, b);
		metrics_observe(&queue_pool(g->pq->q, pool ? pool : "")->lease_wait,
		    0);
		return 0;
	}
	pool = cJSON_GetStringValue(cJSON_GetObjectItem(ans, "pool"));
	agent = cJSON_GetStringValue(cJSON_GetObjectItem(ans, "agent"));
	if (wait > c->max_lease_wait)
		wait = c->max_lease_wait;
	if (wait <= 0 || pool == NULL || agent == NULL || g->r == NULL ||
	    g->pq->q->stopping) {
		answer(g, 204, NULL);
		return 0;
	}
	g->status = 0;
	g->start_ms = ev_now_update(g->pq->q->loop);
	hold(g, pool, agent, wait);
	return 1;
}

static enum MHD_Result h_lease(struct req *r)
{
	struct reqj_lease lr;
	struct pg_params p;
	struct apierr e;
	struct pgr *g;

	if (reqj_lease(r->body.data, r->body.len, &lr, &e) < 0)
		return srv_reply_error(r, &e);
	g = pgr_of(r);
	g->offset = lr.wait;
	g->pool_seq = g->pq->pool_seq;
	agent_params(r, &p);
	pg_param_int(&p, r->s->cfg->ack_window * 1000);
	return run(r, "SELECT skiff.op_lease($1, $2, $3)", &p, then_lease);
}

static enum MHD_Result h_deregister(struct req *r)
{
	struct reqj_text t;
	struct pg_params p;
	struct apierr e;

	if (reqj_text(r->body.data, r->body.len, "reason", &t, &e) < 0)
		return srv_reply_error(r, &e);
	pg_params_init(&p);
	pg_param_bin(&p, r->tok_hash, sizeof(r->tok_hash));
	pg_param_int(&p, r->s->cfg->clock_skew);
	return run(r, "SELECT skiff.op_deregister($1, $2)", &p, NULL);
}

static int then_heartbeat(struct pgr *g, cJSON *ans, PGresult *res)
{
	const struct qcfg *c = CFG(g);
	cJSON *b = cJSON_GetObjectItem(ans, "b"), *o = cJSON_CreateObject();
	int cancel = cJSON_IsTrue(cJSON_GetObjectItem(b, "cancel"));

	(void)res;
	cJSON_AddNumberToObject(o, "lease_ttl", (double)c->lease_ttl);
	cJSON_AddNumberToObject(o, "heartbeat_interval",
	    (double)c->heartbeat_interval);
	cJSON_AddBoolToObject(o, "cancel", cancel);
	if (cancel)
		cJSON_AddStringToObject(o, "cancel_reason", cJSON_GetStringValue(
		    cJSON_GetObjectItem(b, "cancel_reason")));
	answer(g, 200, o);
	return 0;
}

static enum MHD_Result h_heartbeat(struct req *r)
{
	struct pg_params p;
	struct apierr e;

	if (reqj_heartbeat(r->body.data, r->body.len, &e) < 0)
		return srv_reply_error(r, &e);
	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_int(&p, r->s->cfg->lease_ttl * 1000);
	return run(r, "SELECT skiff.op_heartbeat($1, $2, $3, $4)", &p,
	    then_heartbeat);
}

/* -- logs -- */

static int sink(void *arg, const void *p, size_t n)
{
	return buf_append(arg, p, n);
}

/* A refused chunk still answers the lease's own error first, as the
 * store on disk does (its lease is looked at before its bytes). */
static int then_refused(struct pgr *g, cJSON *ans, PGresult *res)
{
	(void)ans;
	(void)res;
	g->failed = 1;	/* g->err was set before the check */
	return 0;
}

/*
 * A log append: the chunk is inflated (with the gzip-bomb cap) on the
 * worker pool, never on the loop; then its bytes go to the database in a
 * batched query, so that the appends of a round share one commit. What
 * the request carried is copied in, since the request may go away while
 * the worker runs.
 */
struct log_put {
	struct workq_item it;
	struct pgr *g;
	unsigned char tok_hash[32];
	char lease[ROUTE_PARAM_MAX + 1];
	int64_t offset;
	char *body;
	size_t n;
	int gzip;
	struct buf out;
	int rc;
};

static void log_put_work(struct workq_item *it, struct buf *scratch)
{
	struct log_put *lp = (struct log_put *)it;

	(void)scratch;
	if (lp->gzip)
		lp->rc = gz_inflate_all(lp->body, lp->n, LOG_CHUNK_MAX, sink,
		    &lp->out);
}

static void send_append(struct log_put *lp)
{
	struct pgr *g = lp->g;
	const struct qcfg *c = CFG(g);
	struct pg_params p;
	const char *data = lp->gzip ? lp->out.data : lp->body;
	size_t n = lp->gzip ? lp->out.len : lp->n;

	pg_params_init(&p);
	pg_param_bin(&p, lp->tok_hash, sizeof(lp->tok_hash));
	pg_param_int(&p, seen_every(c));
	pg_param_text(&p, lp->lease);
	if (lp->rc < 0) {
		/* The lease's own error answers first, as on SQLite. */
		if (lp->rc == -E2BIG)
			apierr_too_large(&g->err, LOG_CHUNK_MAX, "log chunk inflates "
			    "past %d bytes; refused without inflating the rest",
			    LOG_CHUNK_MAX);
		else
			apierr_bad(&g->err, "log chunk is not one complete gzip member");
		pg_param_int(&p, c->lease_ttl * 1000);
		call(g, "SELECT skiff.op_lease_check($1, $2, $3, $4)", &p, 0,
		    then_refused);
		return;
	}
	pg_param_int(&p, lp->offset);
	pg_param_bin(&p, data ? data : "", n);
	pg_param_int(&p, c->lease_ttl * 1000);
	pg_param_int(&p, c->max_log);
	call(g, "SELECT skiff.op_log_append($1, $2, $3, $4, $5, $6, $7)", &p,
	    PG_BATCH, NULL);
}

static void log_put_done(struct workq_item *it)
{
	struct log_put *lp = (struct log_put *)it;

	if (lp->g->r)		/* nobody to answer: nothing to store */
		send_append(lp);
	pgr_unref(lp->g);
	buf_free(&lp->out);
	free(lp->body);
	free(lp);
}

static enum MHD_Result h_log_put(struct req *r)
{
	struct pgr *g = pgr_of(r);
	struct log_put *lp = xcalloc(1, sizeof(*lp));

	lp->g = g;
	g->refs++;
	memcpy(lp->tok_hash, r->tok_hash, sizeof(lp->tok_hash));
	snprintf(lp->lease, sizeof(lp->lease), "%s", r->rm.param);
	lp->offset = r->offset;
	lp->gzip = r->gzip;
	lp->body = buf_steal(&r->body, &lp->n);
	buf_init(&lp->out, LOG_CHUNK_MAX);
	if (!lp->gzip) {
		/* Nothing to inflate: straight to the database. */
		log_put_done(&lp->it);
		return park(r);
	}
	lp->it.work = log_put_work;
	lp->it.done = log_put_done;
	workq_submit(g->pq->wq, &lp->it);
	return park(r);
}

static enum MHD_Result h_complete(struct req *r)
{
	struct reqj_complete c;
	struct pg_params p;
	struct apierr e;
	struct buf codes = BUF_INIT(4096);
	enum MHD_Result ok;

	if (reqj_complete(r->body.data, r->body.len, &c, &e) < 0)
		return srv_reply_error(r, &e);
	buf_puts(&codes, "[");
	for (size_t i = 0; i < c.nexit; i++)
		buf_printf(&codes, "%s%lld", i ? "," : "",
		    (long long)c.exit_codes[i]);
	buf_puts(&codes, "]");
	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_text(&p, jstate_name(c.result));
	pg_param_text(&p, codes.data);
	pg_param_text(&p, c.reason_code);
	pg_param_text(&p, c.reason);
	pg_param_int(&p, c.log_length);
	pg_param_int(&p, r->s->cfg->lease_ttl * 1000);
	pg_param_text(&p, c.outputs);
	ok = run(r, "SELECT skiff.op_complete($1, $2, $3, $4, $5, $6, $7, $8, "
	    "$9, $10::jsonb)", &p, NULL);
	buf_free(&codes);
	reqj_complete_clear(&c);
	return ok;
}

/* -- artifacts -- */

static enum MHD_Result h_art_create(struct req *r)
{
	const struct qcfg *c = r->s->cfg;
	struct reqj_artifact a;
	struct pg_params p;
	struct apierr e;

	if (reqj_artifact(r->body.data, r->body.len, &a, &e) < 0)
		return srv_reply_error(r, &e);
	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_text(&p, a.name);
	pg_param_int(&p, a.size);
	pg_param_int(&p, c->lease_ttl * 1000);
	pg_param_int(&p, c->max_artifact);
	pg_param_int(&p, c->max_artifacts_total);
	pg_param_int(&p, c->max_artifact_count);
	return run(r, "SELECT skiff.op_art_create($1, $2, $3, $4, $5, $6, $7, "
	    "$8, $9)", &p, NULL);
}

static enum MHD_Result h_upload_get(struct req *r)
{
	struct pg_params p;

	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_int(&p, r->s->cfg->lease_ttl * 1000);
	return run(r, "SELECT skiff.op_upload_get($1, $2, $3, $4)", &p, NULL);
}

static enum MHD_Result h_upload_commit(struct req *r)
{
	struct pg_params p;
	struct apierr e;
	char sha[65];

	if (reqj_commit(r->body.data, r->body.len, sha, &e) < 0)
		return srv_reply_error(r, &e);
	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_text(&p, sha);
	pg_param_int(&p, r->s->cfg->lease_ttl * 1000);
	return run(r, "SELECT skiff.op_art_commit($1, $2, $3, $4, $5)", &p, NULL);
}

/* -- caches (docs/protocol.md 4.9; queue/pgschema3.sql) -- */

static enum MHD_Result h_cache_create(struct req *r)
{
	const struct qcfg *c = r->s->cfg;
	struct reqj_cache k;
	struct pg_params p;
	struct apierr e;

	if (reqj_cache(r->body.data, r->body.len, 0, &k, &e) < 0)
		return srv_reply_error(r, &e);
	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_text(&p, k.key);
	pg_param_int(&p, k.size);
	pg_param_int(&p, c->lease_ttl * 1000);
	pg_param_int(&p, c->max_cache);
	pg_param_int(&p, c->max_cache_pool);
	return run(r, "SELECT skiff.op_cache_create($1, $2, $3, $4, $5, $6, $7, "
	    "$8)", &p, NULL);
}

static enum MHD_Result h_cache_find(struct req *r)
{
	struct reqj_cache k;
	struct pg_params p;
	struct apierr e;
	char *v[REQJ_MAX_RESTORE_KEYS], *arr;
	enum MHD_Result ok;

	if (reqj_cache(r->body.data, r->body.len, 1, &k, &e) < 0)
		return srv_reply_error(r, &e);
	for (size_t i = 0; i < k.nrestore; i++)
		v[i] = k.restore[i];
	arr = text_array(v, k.nrestore);
	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_text(&p, k.key);
	pg_param_text(&p, arr);
	pg_param_int(&p, r->s->cfg->lease_ttl * 1000);
	ok = run(r, "SELECT skiff.op_cache_find($1, $2, $3, $4, $5::text[], $6)",
	    &p, NULL);
	free(arr);
	return ok;
}

static int then_art_open(struct pgr *g, cJSON *ans, PGresult *res);

static enum MHD_Result h_cache_get(struct req *r)
{
	struct pg_params p;

	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_text(&p, r->rm.name);
	pg_param_int(&p, r->s->cfg->lease_ttl * 1000);
	return run(r, "SELECT skiff.op_cache_open($1, $2, $3, $4, $5)", &p,
	    then_art_open);
}

/* ---- admin endpoints ---- */

static int then_submit(struct pgr *g, cJSON *ans, PGresult *res)
{
	cJSON *b = take_body(ans);

	(void)res;
	log_info("job submitted", "job=%s pool=%s", cJSON_GetStringValue(
	    cJSON_GetObjectItem(b, "id")), logq(cJSON_GetStringValue(
	    cJSON_GetObjectItem(b, "pool"))));
	answer(g, 201, b);
	return 0;
}

static enum MHD_Result h_submit(struct req *r)
{
	struct jobs_sub s;
	struct pg_params p;
	struct apierr e;
	size_t n = r->body.len;
	const char *jws = r->body.data ? r->body.data : "";
	char *labels, *text;
	enum MHD_Result ok;

	while (n > 0 && (jws[n - 1] == '\n' || jws[n - 1] == '\r'))
		n--;
	if (jobs_take_submit(r->s->q, jws, n, &s, &e) < 0) {
		jobs_sub_free(&s);
		return srv_reply_error(r, &e);
	}
	labels = text_array(s.labels, s.nlabels);
	text = xstrndup(jws, n);
	pg_params_init(&p);
	pg_param_text(&p, s.id);
	pg_param_text(&p, s.pool);
	pg_param_text(&p, s.name);
	pg_param_text(&p, labels);
	pg_param_text(&p, text);
	pg_param_int(&p, s.exp);
	pg_param_int(&p, r->s->cfg->max_attempts);
	ok = run(r, "SELECT skiff.op_submit($1, $2, $3, $4, $5, $6, $7)", &p,
	    then_submit);
	free(labels);
	free(text);
	jobs_sub_free(&s);
	return ok;
}

static enum MHD_Result h_job_list(struct req *r)
{
	struct api_jobq jq;
	struct pg_params p;
	struct apierr e;
	enum jstate js;

	if (api_job_query(r, &jq, &e) < 0)
		return srv_reply_error(r, &e);
	if (jq.state && jstate_parse(jq.state, &js) < 0) {
		apierr_bad(&e, "state '%.32s' is not a job state", jq.state);
		return srv_reply_error(r, &e);
	}
	pg_params_init(&p);
	pg_param_text(&p, jq.pool);
	pg_param_text(&p, jq.state);
	pg_param_text(&p, jq.name);
	pg_param_int(&p, jq.limit);
	pg_param_int(&p, jq.offset);
	return run(r, "SELECT skiff.op_jobs($1, $2, $3, $4, $5)", &p, NULL);
}

static enum MHD_Result one_text(struct req *r, const char *sql,
    const char *v)
{
	struct pg_params p;

	pg_params_init(&p);
	pg_param_text(&p, v);
	return run(r, sql, &p, NULL);
}

static enum MHD_Result text_and_skew(struct req *r, const char *sql,
    const char *v)
{
	struct pg_params p;

	pg_params_init(&p);
	pg_param_text(&p, v);
	pg_param_int(&p, r->s->cfg->clock_skew);
	return run(r, sql, &p, NULL);
}

static enum MHD_Result h_cancel(struct req *r)
{
	struct reqj_text t;
	struct pg_params p;
	struct apierr e;

	if (reqj_text(r->body.data, r->body.len, "reason", &t, &e) < 0)
		return srv_reply_error(r, &e);
	pg_params_init(&p);
	pg_param_text(&p, r->rm.param);
	pg_param_text(&p, t.text);
	return run(r, "SELECT skiff.op_cancel($1, $2)", &p, NULL);
}

static enum MHD_Result h_agents(struct req *r)
{
	char pool[130];
	const char *po;
	struct pg_params p;
	struct apierr e;

	if (api_query_str(r, "pool", pool, sizeof(pool), &po, &e) < 0)
		return srv_reply_error(r, &e);
	pg_params_init(&p);
	pg_param_text(&p, po);
	pg_param_int(&p, r->s->cfg->lease_wait);
	return run(r, "SELECT skiff.op_agents($1, $2)", &p, NULL);
}

/* A created token's answer: the row, and the token itself (new_token). */
static int then_token(struct pgr *g, cJSON *ans, PGresult *res)
{
	cJSON *b = take_body(ans);
	const char *pool = cJSON_GetStringValue(cJSON_GetObjectItem(b, "pool"));

	(void)res;
	cJSON_AddItemToObject(b, "token", cJSON_DetachItemFromObject(g->body,
	    "token"));
	log_info(pool ? "registration token created" : "viewer token created",
	    "id=%s pool=%s", cJSON_GetStringValue(cJSON_GetObjectItem(b, "id")),
	    logq(pool ? pool : "-"));
	answer(g, 201, b);
	return 0;
}

/* A new token of the kind prefix says, for r: its id and hash for the
 * query; the token itself waits in the answer for then_token. */
static void new_token(struct req *r, const char *prefix, char id[ID_MAX + 1],
    unsigned char h[TOKEN_HASH_BYTES])
{
	struct pgr *g = pgr_of(r);
	char *token;

	token_id_new("tok_", id);
	token = token_new(prefix);
	token_hash(token, strlen(token), h);
	g->body = cJSON_CreateObject();
	cJSON_AddStringToObject(g->body, "token", token);
	sodium_memzero(token, strlen(token));
	free(token);
}

/* POST /v1/pools/{pool}/tokens, or with pool NULL /v1/viewer-tokens. */
static enum MHD_Result h_token_create(struct req *r, const char *pool)
{
	struct reqj_text t;
	struct pg_params p;
	struct apierr e;
	unsigned char h[TOKEN_HASH_BYTES];
	char id[ID_MAX + 1];

	if (reqj_text(r->body.data, r->body.len, "description", &t, &e) < 0)
		return srv_reply_error(r, &e);
	new_token(r, pool ? "srt_" : "svw_", id, h);
	pg_params_init(&p);
	pg_param_text(&p, id);
	if (pool)
		pg_param_text(&p, pool);
	pg_param_bin(&p, h, sizeof(h));
	pg_param_text(&p, t.text);
	return run(r, pool ? "SELECT skiff.op_token_create($1, $2, $3, $4)" :
	    "SELECT skiff.op_viewer_create($1, $2, $3)", &p, then_token);
}

/* ---- log reads and follows ---- */

static struct pgfol *fol_get(struct pgq *pq, const char *job, int make)
{
	struct pgfol *f = hmap_get(pq->follows, job);

	if (f == NULL && make) {
		f = xcalloc(1, sizeof(*f));
		snprintf(f->job, sizeof(f->job), "%s", job);
		hmap_put(pq->follows, f->job, f);
	}
	return f;
}

static void follow_unlink(struct pgr *g)
{
	struct pgfol *f;

	if (!g->following)
		return;
	f = fol_get(g->pq, g->job, 0);
	if (g->fprev)
		g->fprev->fnext = g->fnext;
	else if (f)
		f->head = g->fnext;
	if (g->fnext)
		g->fnext->fprev = g->fprev;
	g->fprev = g->fnext = NULL;
	g->following = 0;
	g->parked = 0;
	ev_timer_stop(g->timer);
	if (f && f->head == NULL) {
		hmap_del(g->pq->follows, f->job);
		free(f);
	}
	pgr_unref(g);
}

static void follow_link(struct pgr *g)
{
	struct pgfol *f = fol_get(g->pq, g->job, 1);

	g->fprev = NULL;
	g->fnext = f->head;
	if (f->head)
		f->head->fprev = g;
	f->head = g;
	g->following = 1;
	g->refs++;
}

static void read_log(struct pgr *g, int wait_s);

static int then_log(struct pgr *g, cJSON *ans, PGresult *res)
{
	cJSON *b = cJSON_GetObjectItem(ans, "b");
	size_t n = 0;
	const char *data = pg_bytea(res, 0, 1, &n);
	int complete = cJSON_IsTrue(cJSON_GetObjectItem(b, "complete"));

	g->attempt = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(b,
	    "attempt"));
	g->size = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(b,
	    "length"));
	if ((data == NULL || n == 0) && !complete && g->following &&
	    g->r && !g->pq->q->stopping) {
		if (g->dirty) {
			/* Bytes arrived while this read was out. */
			g->dirty = 0;
			read_log(g, 1);
			return 1;
		}
		g->parked = 1;
		return 1;
	}
	follow_unlink(g);
	free(g->bytes);
	g->bytes = n ? xmemdup(data, n) : NULL;
	g->nbytes = n;
	g->status = 200;
	g->log_complete = complete;
	return 0;
}

/* A read that may park registers its follow, so that appends on any
 * replica notify this job; one that answers whatever it finds does not. */
static void read_log(struct pgr *g, int again)
{
	struct pg_params p;

	(void)again;
	if (g->following && g->follow_id[0] == '\0')
		token_id_new("fol_", g->follow_id);
	pg_params_init(&p);
	pg_param_text(&p, g->job);
	pg_param_int(&p, g->attempt);
	pg_param_int(&p, g->offset);
	pg_param_int(&p, LOG_CHUNK_MAX);
	pg_param_text(&p, g->following ? g->follow_id : NULL);
	pg_param_int(&p, g->wait_ms + 5000);
	call(g, "SELECT r, bytes FROM skiff.op_log_read($1, $2, $3, $4, $5, $6)",
	    &p, PG_BULK, then_log);
}

static void follow_fired(struct ev_timer *t, void *arg)
{
	struct pgr *g = arg;

	(void)t;
	if (!g->following)
		return;
	if (!g->parked) {
		/* A read is out: it answers what it finds, without parking. */
		follow_unlink(g);
		return;
	}
	/* The wait passed: what is there now, without waiting. */
	g->refs++;
	follow_unlink(g);
	read_log(g, 0);
	pgr_unref(g);
}

static enum MHD_Result h_job_log(struct req *r, int64_t offset,
    int64_t wait, int64_t attempt)
{
	struct pgr *g = pgr_of(r);

	snprintf(g->job, sizeof(g->job), "%s", r->rm.param);
	g->offset = offset;
	g->attempt = (int)attempt;
	g->wait_ms = wait * 1000;
	if (wait > 0 && !r->s->q->stopping) {
		follow_link(g);
		if (g->timer == NULL)
			g->timer = ev_timer_new(r->s->q->loop, follow_fired, g);
		ev_timer_start(g->timer, wait * 1000);
	}
	read_log(g, 0);
	return park(r);
}

/* Bytes appended to job (or its attempt moved): every follower here
 * reads again; one whose read is out reads again when it answers. */
static void log_notified(struct pgq *pq, const char *job)
{
	struct pgfol *f = fol_get(pq, job, 0);
	struct pgr *g, *next;

	for (g = f ? f->head : NULL; g; g = next) {
		next = g->fnext;
		if (!g->parked) {
			g->dirty = 1;
			continue;
		}
		g->refs++;
		follow_unlink(g);
		read_log(g, 0);
		pgr_unref(g);
	}
}

/* ---- upload PUTs ---- */

static void put_rollback(struct pgr *g)
{
	struct pg_params p;

	pg_params_init(&p);
	pg_param_text(&p, g->upload);
	pg_param_int(&p, g->put_start);
	pg_param_bin(&p, &g->sha_start, g->put_start ? sizeof(g->sha_start) : 0);
	if (g->put_start == 0)
		p.v[2] = NULL;	/* no state before the first byte */
	pg_send(g->pq->pg, "SELECT skiff.op_put_rollback($1, $2, $3)", &p,
	    PG_BULK, NULL, NULL);
	g->put_pos = g->put_start;
	g->sha = g->sha_start;
}

/* The PUT stops with error e: the bytes it stored go, and the rest of
 * the body is read and dropped. */
static void put_refuse(struct pgr *g, const struct apierr *e)
{
	if (g->failed)
		return;
	g->failed = 1;
	g->err = *e;
	put_rollback(g);
	buf_reset(&g->chunk);
}

static int then_put_begin(struct pgr *g, cJSON *ans, PGresult *res)
{
	cJSON *b = cJSON_GetObjectItem(ans, "b");
	size_t n = 0;
	const char *st = pg_bytea(res, 0, 1, &n);

	g->put_start = g->put_pos = (int64_t)cJSON_GetNumberValue(
	    cJSON_GetObjectItem(b, "offset"));
	g->put_size = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(b,
	    "size"));
	if (g->put_start == 0) {
		crypto_hash_sha256_init(&g->sha);
	} else if (st && n == sizeof(g->sha)) {
		memcpy(&g->sha, st, n);
	} else {
		apierr_internal(&g->err, "the upload's hash state is missing; "
		    "the upload must start again");
		g->failed = 1;
		return 0;
	}
	g->sha_start = g->sha;
	if (g->r && g->r->gzip && gz_new((uint64_t)(g->put_size - g->put_start),
	    &g->gz) < 0) {
		apierr_internal(&g->err, "out of memory");
		g->failed = 1;
		return 0;
	}
	g->begun = 1;
	g->status = 0;
	return 0;
}

static void put_resume(struct pgr *g)
{
	/* Not a wake: the body goes on where it stopped. */
	if (g->r && g->r->suspended) {
		g->r->suspended = 0;
		g->r->s->nsuspended--;
		srv_resume(g->r);
	}
}

static void on_put_begun(void *arg, PGresult *res, const char *err);

enum MHD_Result pgq_begin(struct req *r)
{
	struct pgr *g = pgr_of(r);
	struct pg_params p;

	snprintf(g->upload, sizeof(g->upload), "%s", r->rm.param);
	buf_init(&g->chunk, PUT_CHUNK + 65536);
	agent_params(r, &p);
	pg_param_text(&p, r->rm.param);
	pg_param_int(&p, r->offset);
	pg_param_text(&p, r->gzip ? "true" : "false");
	pg_param_int(&p, r->content_length);
	pg_param_int(&p, r->s->cfg->lease_ttl * 1000);
	g->refs++;
	g->then = then_put_begin;
	g->query = pg_send(g->pq->pg, "SELECT r, hstate FROM skiff.op_put_begin("
	    "$1, $2, $3, $4, $5, $6, $7)", &p, 0, on_put_begun, g);
	r->suspended = 1;
	r->parked_in_head = 1;
	r->s->nsuspended++;
	MHD_suspend_connection(r->c);
	return MHD_YES;
}

static void on_put_begun(void *arg, PGresult *res, const char *err)
{
	struct pgr *g = arg;
	struct pgans a;

	g->query = NULL;
	if (decode(g, res, err, &a))
		then_put_begin(g, a.root, res);
	pgans_free(&a);
	/* Refused before the body: it is read and dropped (up to the
	 * server's cap) and the error answered at its end. */
	if (g->failed && g->r)
		srv_fail_body(g->r, &g->err);
	put_resume(g);
	pgr_unref(g);
}

static void flush_chunk(struct pgr *g);

/* The body has ended and nothing is in flight: the answer. */
static void put_done(struct pgr *g)
{
	if (!g->failed && g->refuse.status) {
		put_refuse(g, &g->refuse);
	} else if (!g->failed) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "offset", (double)g->put_pos);
		answer(g, 200, o);
	}
	wake(g);
}

static void on_chunk(void *arg, PGresult *res, const char *err)
{
	struct pgr *g = arg;
	struct pgans a;

	g->query = NULL;
	g->chunk_busy = 0;
	/* An error (another PUT moved the upload) leaves g failed: its
	 * bytes are not this one's to roll back. */
	decode(g, res, err, &a);
	pgans_free(&a);
	if (g->ended) {
		if (!g->failed && !g->refuse.status && g->chunk.len)
			flush_chunk(g);
		else
			put_done(g);
	} else {
		put_resume(g);
	}
	pgr_unref(g);
}

static void flush_chunk(struct pgr *g)
{
	struct pg_params p;
	crypto_hash_sha256_state fin;
	unsigned char d[32];
	char hex[65], *dig = NULL;
	int64_t off = g->put_pos - (int64_t)g->chunk.len;

	if (g->put_pos == g->put_size) {
		fin = g->sha;
		crypto_hash_sha256_final(&fin, d);
		hex_encode(d, sizeof(d), hex);
		dig = hex;
	}
	pg_params_init(&p);
	pg_param_text(&p, g->upload);
	pg_param_int(&p, off);
	pg_param_bin(&p, g->chunk.data ? g->chunk.data : "", g->chunk.len);
	pg_param_bin(&p, &g->sha, sizeof(g->sha));
	pg_param_text(&p, dig);
	g->chunk_busy = 1;
	g->refs++;
	g->query = pg_send(g->pq->pg, "SELECT skiff.op_put_chunk($1, $2, $3, "
	    "$4, $5)", &p, PG_BULK, on_chunk, g);
	buf_reset(&g->chunk);
}

static int put_sink(void *arg, const void *data, size_t n)
{
	struct pgr *g = arg;

	if ((int64_t)n > g->put_size - g->put_pos) {
		apierr_too_large(&g->err, g->put_size, "the bytes pass the declared "
		    "size of %lld", (long long)g->put_size);
		return -E2BIG;
	}
	crypto_hash_sha256_update(&g->sha, data, n);
	g->put_pos += (int64_t)n;
	return buf_append(&g->chunk, data, n);
}

enum MHD_Result pgq_body(struct req *r, const char *data, size_t n,
    size_t *used)
{
	struct pgr *g = pgr_of(r);
	struct apierr e = { 0 };
	size_t take;
	int rc;

	*used = n;
	if (g->failed || !g->begun)
		return MHD_YES;		/* dropped; the error answers at the end */
	if (g->chunk_busy || g->chunk.len >= PUT_CHUNK) {
		/* Back-pressure: the rest once the chunk in flight is stored. */
		*used = 0;
		r->suspended = 1;
		r->s->nsuspended++;
		MHD_suspend_connection(r->c);
		return MHD_YES;
	}
	take = n > 65536 ? 65536 : n;
	*used = take;
	rc = g->gz ? gz_feed(g->gz, data, take, put_sink, g) :
	    put_sink(g, data, take);
	if (rc < 0) {
		if (g->gz && rc == -E2BIG && g->err.status == 0)
			apierr_too_large(&g->err, g->put_size, "the body inflates past "
			    "the declared size of %lld", (long long)g->put_size);
		else if (rc == -EBADMSG)
			apierr_bad(&g->err, "the body is not one gzip member");
		e = g->err;
		put_refuse(g, &e);
		return MHD_YES;
	}
	if (g->chunk.len >= PUT_CHUNK)
		flush_chunk(g);
	return MHD_YES;
}

static enum MHD_Result h_upload_put(struct req *r)
{
	struct pgr *g = pgr_of(r);

	if (g->failed)
		return srv_reply_error(r, &g->err);
	g->ended = 1;
	if (g->gz && gz_finish(g->gz) < 0)
		apierr_bad(&g->refuse, "the body is not one complete gzip member");
	r->wait = RW_DB;
	if (g->chunk_busy)
		return srv_suspend(r);		/* on_chunk answers */
	if (!g->refuse.status && g->chunk.len) {
		flush_chunk(g);
		return srv_suspend(r);
	}
	put_done(g);
	g->r = r;
	r->woken = 0;
	return pgq_woken(r);
}

/* ---- downloads: a committed artifact, read chunk by chunk ---- */

struct pgdl {
	struct pgq *pq;
	struct srv *s;
	struct MHD_Connection *c;
	char upload[ROUTE_PARAM_MAX + 1];
	int64_t size;
	char *buf;
	size_t len;
	int64_t at;		/* offset of buf */
	struct pg_query *query;
	int suspended, failed, freed;
};

static void dl_release(struct pgdl *d)
{
	if (d->query || !d->freed)
		return;
	free(d->buf);
	free(d);
}

static void on_dl(void *arg, PGresult *res, const char *err)
{
	struct pgdl *d = arg;
	size_t n = 0;
	const char *data = err ? NULL : pg_bytea(res, 0, 0, &n);

	d->query = NULL;
	if (d->freed) {
		dl_release(d);
		return;
	}
	if (data == NULL || n == 0) {
		log_error("artifact read failed", "upload=%s error=%s", d->upload,
		    logq(err ? err : "no bytes"));
		d->failed = 1;
	} else {
		free(d->buf);
		d->buf = xmemdup(data, n);
		d->len = n;
	}
	if (d->suspended) {
		d->suspended = 0;
		srv_resume_conn(d->s, d->c);
	}
}

static ssize_t dl_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct pgdl *d = cls;
	struct pg_params p;

	if (d->failed)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (d->buf && (int64_t)pos >= d->at && (int64_t)pos < d->at +
	    (int64_t)d->len) {
		size_t off = (size_t)((int64_t)pos - d->at);
		size_t n = d->len - off < max ? d->len - off : max;
		memcpy(out, d->buf + off, n);
		return (ssize_t)n;
	}
	if (d->query == NULL) {
		d->at = (int64_t)pos;
		free(d->buf);
		d->buf = NULL;
		d->len = 0;
		pg_params_init(&p);
		pg_param_text(&p, d->upload);
		pg_param_int(&p, (long long)pos);
		pg_param_int(&p, READ_CHUNK);
		d->query = pg_send(d->pq->pg, "SELECT skiff.op_art_read($1, $2, $3)",
		    &p, PG_BULK, on_dl, d);
	}
	/* No bytes yet: parked until the chunk is read (libmicrohttpd asks
	 * again once resumed). */
	d->suspended = 1;
	MHD_suspend_connection(d->c);
	return 0;
}

static void dl_free(void *cls)
{
	struct pgdl *d = cls;

	d->freed = 1;
	if (d->suspended)
		d->suspended = 0;
	pg_forget(d->query);
	if (d->query)
		d->query = NULL;
	dl_release(d);
}

static int then_art_open(struct pgr *g, cJSON *ans, PGresult *res)
{
	cJSON *b = cJSON_GetObjectItem(ans, "b");
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(b, "upload"));
	const char *sha = cJSON_GetStringValue(cJSON_GetObjectItem(b, "sha256"));

	(void)res;
	snprintf(g->upload, sizeof(g->upload), "%s", id ? id : "");
	snprintf(g->sha256, sizeof(g->sha256), "%s", sha ? sha : "");
	g->size = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(b, "size"));
	g->status = 200;
	g->download = 1;
	return 0;
}

static enum MHD_Result reply_download(struct req *r, struct pgr *g)
{
	char disp[UI_DISPOSITION_MAX];
	struct pgdl *d;
	struct MHD_Response *resp;

	if (g->size == 0) {
		resp = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
	} else {
		d = xcalloc(1, sizeof(*d));
		d->pq = g->pq;
		d->s = r->s;
		d->c = r->c;
		d->size = g->size;
		snprintf(d->upload, sizeof(d->upload), "%s", g->upload);
		resp = MHD_create_response_from_callback((uint64_t)g->size,
		    64 * 1024, dl_read, d, dl_free);
	}
	MHD_add_response_header(resp, "Content-Type",
	    "application/octet-stream");
	MHD_add_response_header(resp, "Skiff-Sha256", g->sha256);
	ui_disposition(r->rm.name, disp);
	MHD_add_response_header(resp, "Content-Disposition", disp);
	return srv_reply_response(r, 200, resp);
}

/* ---- notifications ---- */

static void agent_gone(struct pgq *pq, const char *agent)
{
	struct hmap_iter it = { 0 };
	struct pgpool *p;
	struct pgr *g, *next;

	while ((p = hmap_next(pq->pools, &it)) != NULL)
		for (g = p->head; g; g = next) {
			next = g->wnext;
			if (strcmp(g->agent, agent) == 0)
				waiter_fail(g, 401, "unauthorized", "agent token was "
				    "revoked or deregistered", 0);
		}
}

static void sweep_soon(struct pgq *pq, int64_t ms);

/* Every follower reads again (notifications may have been lost). */
static void follow_all(struct pgq *pq)
{
	struct hmap_iter it = { 0 };
	struct pgfol *f;
	char (*jobs)[ROUTE_PARAM_MAX + 1] = NULL;
	size_t n = 0;

	while ((f = hmap_next(pq->follows, &it)) != NULL) {
		jobs = xreallocarray(jobs, n + 1, sizeof(*jobs));
		memcpy(jobs[n++], f->job, sizeof(f->job));
	}
	for (size_t i = 0; i < n; i++)
		log_notified(pq, jobs[i]);
	free(jobs);
}

static void on_notify(void *arg, const char *chan, const char *payload)
{
	struct pgq *pq = arg;
	struct hmap_iter it = { 0 };
	struct pgpool *p;

	if (chan == NULL) {
		/* (Re)connected: anything may have been missed. */
		pq->pool_seq++;
		while ((p = hmap_next(pq->pools, &it)) != NULL)
			dispatch(pq, p);
		follow_all(pq);
		sweep_soon(pq, 0);
		return;
	}
	if (strcmp(chan, "skiff_pool") == 0) {
		pq->pool_seq++;
		if ((p = hmap_get(pq->pools, payload)) != NULL)
			dispatch(pq, p);
	} else if (strcmp(chan, "skiff_log") == 0) {
		log_notified(pq, payload);
	} else if (strcmp(chan, "skiff_agent") == 0) {
		agent_gone(pq, payload);
	}
}

/* ---- timers: the sweep and retention ---- */

static void on_sweep(void *arg, PGresult *res, const char *err)
{
	struct pgq *pq = arg;
	cJSON *ans = NULL, *it;
	const char *text;
	size_t n = 0;
	int jerr;
	int64_t next = SWEEP_IDLE_MS;

	pq->sweeping = 0;
	if (err == NULL && (text = pg_jsonb(res, 0, 0, &n)) != NULL)
		ans = jsonx_parse(text, n, 1 << 20, 16, &jerr);
	if (ans) {
		double ended = cJSON_GetNumberValue(cJSON_GetObjectItem(ans, "n"));
		cJSON *nx = cJSON_GetObjectItem(ans, "next_ms");
		if (ended >= SWEEP_LIMIT)
			next = 0;
		else if (cJSON_IsNumber(nx) && nx->valuedouble < next)
			next = nx->valuedouble < 0 ? 0 : (int64_t)nx->valuedouble;
		if (ended > 0)
			log_debug("sweep ended leases or jobs", "n=%.0f", ended);
		/* Safety net: pools with queued jobs and polls held here get
		 * another look, whatever notification was lost. */
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(ans, "queued")) {
			struct pgpool *p = hmap_get(pq->pools,
			    cJSON_GetStringValue(it));
			if (p)
				dispatch(pq, p);
		}
	}
	cJSON_Delete(ans);
	if (!pq->q->stopping)
		ev_timer_start(pq->sweep, next);
}

static void sweep_fired(struct ev_timer *t, void *arg)
{
	struct pgq *pq = arg;
	struct hmap_iter it = { 0 };
	struct pgpool *p;
	struct pg_params pp;
	char **names = NULL, *arr;
	size_t n = 0;

	(void)t;
	if (pq->sweeping)
		return;
	while ((p = hmap_next(pq->pools, &it)) != NULL)
		if (p->n) {
			names = xreallocarray(names, n + 1, sizeof(char *));
			names[n++] = p->name;
		}
	arr = text_array(names, n);
	free(names);
	pg_params_init(&pp);
	pg_param_int(&pp, pq->q->cfg->clock_skew);
	pg_param_int(&pp, SWEEP_LIMIT);
	pg_param_text(&pp, arr);
	pq->sweeping = 1;
	pg_send(pq->pg, "SELECT skiff.op_sweep($1, $2, $3)", &pp, 0, on_sweep,
	    pq);
	free(arr);
}

static void sweep_soon(struct pgq *pq, int64_t ms)
{
	if (!pq->sweeping && !pq->q->stopping)
		ev_timer_start(pq->sweep, ms);
}

static int64_t retain_idle_ms(const struct qcfg *c)
{
	int64_t ms = c->retain * 1000 / 4;

	return ms < 1000 ? 1000 : ms > 60000 ? 60000 : ms;
}

static void on_retain(void *arg, PGresult *res, const char *err)
{
	struct pgq *pq = arg;
	cJSON *ans = NULL;
	const char *text;
	size_t n = 0;
	int jerr;
	double done = 0;

	pq->retaining = 0;
	if (err == NULL && (text = pg_jsonb(res, 0, 0, &n)) != NULL &&
	    (ans = jsonx_parse(text, n, 1 << 16, 4, &jerr)) != NULL)
		done = cJSON_GetNumberValue(cJSON_GetObjectItem(ans, "n"));
	cJSON_Delete(ans);
	if (err)
		log_error("retention round failed; trying again later", "error=%s",
		    logq(err));
	pq->q->jobs_deleted += (uint64_t)done;
	pq->retained += (uint64_t)done;
	if (done < RETAIN_BATCH && pq->retained > 0) {
		/* One line per backlog cleared, as on SQLite. */
		log_info("retention deleted jobs", "jobs=%llu",
		    (unsigned long long)pq->retained);
		pq->retained = 0;
	}
	if (!pq->q->stopping)
		ev_timer_start(pq->retain, done >= RETAIN_BATCH ? 10 :
		    retain_idle_ms(pq->q->cfg));
}

static void retain_fired(struct ev_timer *t, void *arg)
{
	struct pgq *pq = arg;
	const struct qcfg *c = pq->q->cfg;
	int64_t now = queue_now();
	struct pg_params p;

	(void)t;
	pg_params_init(&p);
	pg_param_int(&p, now - c->retain);
	pg_param_int(&p, now - c->clock_skew);
	pg_param_int(&p, RETAIN_BATCH);
	pq->retaining = 1;
	pg_send(pq->pg, "SELECT skiff.op_retain($1, $2, $3)", &p, 0, on_retain,
	    pq);
}

/* ---- /metrics ---- */

/* op_stats's answer into the pools' numbers, as the SQLite store keeps
 * them in memory, for /metrics and /v1/pools to render alike. */
static void load_stats(struct queue *q, cJSON *root)
{
	struct hmap_iter it = { 0 };
	struct qpool *qp;
	cJSON *o, *c, *ans = cJSON_GetObjectItem(root, "b");

	while ((qp = hmap_next(q->pools, &it)) != NULL) {
		qp->nqueued = qp->nleased = 0;
		qp->pg_idle = qp->pg_busy = 0;
		memset(qp->completed, 0, sizeof(qp->completed));
		memset(qp->expired, 0, sizeof(qp->expired));
	}
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(ans, "pools")) {
		qp = queue_pool(q, o->string);
		qp->nqueued = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o,
		    "queued"));
		qp->nleased = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o,
		    "leased"));
	}
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(ans, "agents")) {
		qp = queue_pool(q, o->string);
		qp->pg_idle = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o,
		    "idle"));
		qp->pg_busy = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o,
		    "busy"));
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(ans, "counters")) {
		const char *pool = cJSON_GetStringValue(cJSON_GetArrayItem(c, 0));
		const char *key = cJSON_GetStringValue(cJSON_GetArrayItem(c, 1));
		double n = cJSON_GetNumberValue(cJSON_GetArrayItem(c, 2));
		enum jstate s;
		if (pool == NULL || key == NULL)
			continue;
		qp = queue_pool(q, pool);
		if (strncmp(key, "completed_", 10) == 0 &&
		    jstate_parse(key + 10, &s) == 0)
			qp->completed[s] = (uint64_t)n;
		else if (strcmp(key, "expired_ack") == 0)
			qp->expired[LK_ACK] = (uint64_t)n;
		else if (strcmp(key, "expired_ttl") == 0)
			qp->expired[LK_TTL] = (uint64_t)n;
	}
	q->log_bytes = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(ans,
	    "log_bytes"));
	q->artifact_bytes = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(
	    ans, "artifact_bytes"));
	q->cache_bytes = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(
	    ans, "cache_bytes"));
}

static int then_stats(struct pgr *g, cJSON *root, PGresult *res)
{
	struct queue *q = g->pq->q;

	(void)res;
	load_stats(q, root);
	buf_init(&g->text, (size_t)64 << 20);
	qmetrics_render(q, &g->text);
	g->has_text = 1;
	g->status = 200;
	return 0;
}

static int then_steps(struct pgr *g, cJSON *root, PGresult *res)
{
	const char *jws = cJSON_GetStringValue(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(root, "b"), "jws"));
	cJSON *out;

	(void)res;
	if (jws == NULL || jobs_steps_json(jws, strlen(jws), &out, &g->err) < 0) {
		if (jws == NULL)
			apierr_internal(&g->err, "the job has no JWS");
		g->failed = 1;
		return 0;
	}
	answer(g, 200, out);
	return 0;
}

static int then_pools(struct pgr *g, cJSON *root, PGresult *res)
{
	(void)res;
	load_stats(g->pq->q, root);
	answer(g, 200, qmetrics_pools(g->pq->q));
	return 0;
}

/* ---- viewer tokens ---- */

static int then_viewer_ok(struct pgr *g, cJSON *ans, PGresult *res)
{
	(void)ans;
	(void)res;
	g->viewer_ok = 1;
	return 0;
}

/* ---- the endpoints ---- */

static enum MHD_Result woken_log(struct req *r, struct pgr *g)
{
	char len[24], att[16];
	const char *h[] = { "Skiff-Log-Length", len,
	    "Skiff-Log-Complete", g->log_complete ? "1" : "0",
	    "Skiff-Log-Attempt", att, NULL };

	snprintf(len, sizeof(len), "%lld", (long long)g->size);
	snprintf(att, sizeof(att), "%d", g->attempt);
	return srv_reply_bytes(r, 200, g->bytes, g->nbytes, h);
}

enum MHD_Result pgq_woken(struct req *r)
{
	struct pgr *g = r->pg;
	struct apierr e;
	cJSON *b;

	r->woken = 0;
	if (g == NULL)
		return srv_reply_empty(r, 500);
	if (g->failed)
		return srv_reply_error(r, &g->err);
	if (g->viewer_ok) {
		/* The viewer token passed: now what it asked for. */
		g->viewer_ok = 0;
		g->status = 0;
		if (r->view_check == VC_FORBID)
			return srv_reply_error(r, (api_viewer_forbidden(&e), &e));
		r->view_check = VC_NONE;
		return pgq_finish(r);
	}
	if (g->has_text)
		return srv_reply_text(r, g->status, "text/plain; version=0.0.4; "
		    "charset=utf-8", &g->text);
	if (g->download)
		return reply_download(r, g);
	if (r->rm.id == R_JOB_LOG)
		return woken_log(r, g);
	b = g->body;
	g->body = NULL;
	if (g->status == 204 || g->status == 0 || b == NULL) {
		cJSON_Delete(b);
		return srv_reply_empty(r, g->status ? g->status : 204);
	}
	return srv_reply_json(r, g->status, b);
}

enum MHD_Result pgq_finish(struct req *r)
{
	struct apierr e;
	struct pg_params p;
	int64_t a, b, c;

	if (r->view_check != VC_NONE) {
		pg_params_init(&p);
		pg_param_bin(&p, r->tok_hash, sizeof(r->tok_hash));
		return run(r, "SELECT skiff.op_viewer_auth($1)", &p, then_viewer_ok);
	}
	switch (r->rm.id) {
	case R_POOLS:
		pg_params_init(&p);
		pg_param_int(&p, r->s->cfg->lease_wait);
		return run(r, "SELECT skiff.op_stats($1)", &p, then_pools);
	case R_VIEWERS_CREATE: return h_token_create(r, NULL);
	case R_JOB_STEPS:
		pg_params_init(&p);
		pg_param_text(&p, r->rm.param);
		return run(r, "SELECT skiff.op_job_jws($1)", &p, then_steps);
	case R_VIEWERS_LIST:
		return run(r, "SELECT skiff.op_viewer_list()", NULL, NULL);
	case R_UI_LOGIN: return api_ui(r);
	case R_METRICS:
		pg_params_init(&p);
		pg_param_int(&p, r->s->cfg->lease_wait);
		return run(r, "SELECT skiff.op_stats($1)", &p, then_stats);
	case R_REGISTER: return h_register(r);
	case R_LEASE: return h_lease(r);
	case R_DEREGISTER: return h_deregister(r);
	case R_HEARTBEAT: return h_heartbeat(r);
	case R_LOG_PUT: return h_log_put(r);
	case R_ART_CREATE: return h_art_create(r);
	case R_COMPLETE: return h_complete(r);
	case R_UPLOAD_PUT: return h_upload_put(r);
	case R_UPLOAD_GET: return h_upload_get(r);
	case R_UPLOAD_COMMIT: return h_upload_commit(r);
	case R_JOB_SUBMIT: return h_submit(r);
	case R_JOB_LIST: return h_job_list(r);
	case R_JOB_GET:
		return one_text(r, "SELECT skiff.op_job($1)", r->rm.param);
	case R_JOB_LOG:
		if (api_query_int(r, "offset", 0, INT64_C(1) << 53, 0, &a, &e) < 0 ||
		    api_query_int(r, "wait", 0, 60, 0, &b, &e) < 0 ||
		    api_query_int(r, "attempt", 1, 1000, 0, &c, &e) < 0)
			return srv_reply_error(r, &e);
		return h_job_log(r, a, b, c);
	case R_JOB_ARTS:
		if (api_query_int(r, "attempt", 1, 1000, 0, &a, &e) < 0)
			return srv_reply_error(r, &e);
		pg_params_init(&p);
		pg_param_text(&p, r->rm.param);
		pg_param_int(&p, a);
		return run(r, "SELECT skiff.op_art_list($1, $2)", &p, NULL);
	case R_JOB_ART:
		if (api_query_int(r, "attempt", 1, 1000, 0, &a, &e) < 0)
			return srv_reply_error(r, &e);
		pg_params_init(&p);
		pg_param_text(&p, r->rm.param);
		pg_param_int(&p, a);
		pg_param_text(&p, r->rm.name);
		return run(r, "SELECT skiff.op_art_open($1, $2, $3)", &p,
		    then_art_open);
	case R_CACHE_CREATE: return h_cache_create(r);
	case R_CACHE_FIND: return h_cache_find(r);
	case R_CACHE_GET: return h_cache_get(r);
	case R_CACHES_LIST:
		pg_params_init(&p);
		pg_param_text(&p, r->rm.param);
		pg_param_int(&p, r->s->cfg->max_cache_pool);
		return run(r, "SELECT skiff.op_caches_list($1, $2)", &p, NULL);
	case R_CACHE_DEL:
		pg_params_init(&p);
		pg_param_text(&p, r->rm.param);
		pg_param_text(&p, r->rm.name);
		return run(r, "SELECT skiff.op_cache_delete($1, $2)", &p, NULL);
	case R_JOB_CANCEL: return h_cancel(r);
	case R_AGENTS: return h_agents(r);
	case R_AGENT_DEL:
		return text_and_skew(r, "SELECT skiff.op_agent_revoke($1, $2)",
		    r->rm.param);
	case R_TOKENS_CREATE: return h_token_create(r, r->rm.param);
	case R_TOKENS_LIST:
		return one_text(r, "SELECT skiff.op_token_list($1)", r->rm.param);
	case R_TOKEN_DEL:
		return text_and_skew(r, "SELECT skiff.op_token_revoke($1, $2)",
		    r->rm.param);
	default:
		apierr_internal(&e, "no such endpoint on this store");
		return srv_reply_error(r, &e);
	}
}

void pgq_done(struct req *r, int completed_ok)
{
	struct pgr *g = r->pg;

	if (r->lease_sent[0] && !completed_ok && r->s->q->pg)
		undelivered(PQ(r->s->q), r->lease_sent);
	if (g == NULL)
		return;
	r->pg = NULL;
	g->r = NULL;
	waiter_unlink(g);
	follow_unlink(g);
	/* A query still out keeps g until it answers (to nobody): it holds
	 * its own reference, and what it hands out (a lease) is given back. */
	pgr_unref(g);
}

/* ---- start and stop ---- */

static const char *const channels[] = { "skiff_pool", "skiff_log",
    "skiff_agent", NULL };

int pgq_open(struct queue *q, const char *conninfo, const char *password,
    int nconn)
{
	struct pgq *pq;
	int r;

	if ((r = migrate(conninfo, password)) < 0)
		return r;
	pq = xcalloc(1, sizeof(*pq));
	pq->q = q;
	pq->pools = hmap_new();
	pq->follows = hmap_new();
	q->pg = pq;
	if ((r = workq_new(q->loop, (int)q->cfg->log_workers, 0, &pq->wq)) < 0)
		return r;
	pq->sweep = ev_timer_new(q->loop, sweep_fired, pq);
	pq->retain = ev_timer_new(q->loop, retain_fired, pq);
	pg_open(q->loop, conninfo, password, nconn, channels, on_notify, pq,
	    &pq->pg);
	if ((r = pg_wait_ready(pq->pg, 15000)) < 0) {
		log_error("PostgreSQL connections did not come up", "timeout_s=15");
		return r;
	}
	ev_timer_start(pq->sweep, 0);
	if (q->cfg->retain > 0) {
		ev_timer_start(pq->retain, 0);
		log_info("retention on", "retain=%llds",
		    (long long)q->cfg->retain);
	}
	log_info("queue on PostgreSQL", "schema=%d connections=%d",
	    SCHEMA_VERSION, nconn);
	return 0;
}

void pgq_stop(struct queue *q)
{
	struct pgq *pq = PQ(q);
	struct hmap_iter it = { 0 };
	struct pgpool *p;

	if (pq == NULL)
		return;
	ev_timer_stop(pq->sweep);
	ev_timer_stop(pq->retain);
	while ((p = hmap_next(pq->pools, &it)) != NULL)
		while (p->head)
			waiter_fail(p->head, 503, "unavailable", "the queue is "
			    "shutting down", 5);
	follow_all(pq);
}

void pgq_close(struct queue *q)
{
	struct pgq *pq = PQ(q);
	struct hmap_iter it = { 0 };
	struct pgpool *p;
	struct pgfol *f;

	if (pq == NULL)
		return;
	/* Inflations out finish first: their dones send nothing now. */
	workq_free(pq->wq);
	pg_close(pq->pg);
	ev_timer_free(pq->sweep);
	ev_timer_free(pq->retain);
	while ((p = hmap_next(pq->pools, &it)) != NULL) {
		free(p->name);
		free(p);
	}
	hmap_free(pq->pools);
	memset(&it, 0, sizeof(it));
	while ((f = hmap_next(pq->follows, &it)) != NULL)
		free(f);
	hmap_free(pq->follows);
	free(pq);
	q->pg = NULL;
}
