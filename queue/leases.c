/*
 * Leases: matching queued jobs to agents, held long-polls, the ack window
 * and the TTL, heartbeats, and complete (docs/protocol.md sections 4.2,
 * 4.3, 4.6 and 9).
 *
 * Invariant at rest: no held request could take any queued job. So a new
 * or requeued job is offered only to the held requests of its pool, and
 * an agent that freed a slot only looks at the queue for its own held
 * requests.
 */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "apierr.h"
#include "config.h"
#include "ev.h"
#include "hmap.h"
#include "log.h"
#include "reqjson.h"
#include "store.h"
#include "xalloc.h"

static void lease_fired(struct ev_timer *t, void *arg);

void lease_free(struct qlease *l)
{
	if (l == NULL)
		return;
	ev_timer_free(l->timer);
	free(l);
}

static void arm(struct qlease *l, int64_t seconds)
{
	ev_timer_start(l->timer, seconds * 1000);
}

static int excluded(const struct qjob *j, const struct qagent *a)
{
	for (size_t i = 0; i < j->nexcluded; i++)
		if (strcmp(j->excluded[i], a->id) == 0)
			return 1;
	return 0;
}

static int can_take(const struct qagent *a, const struct qjob *j)
{
	return !a->gone && a->nleases < (size_t)a->capacity &&
	    queue_labels_match(j, a) && !excluded(j, a);
}

static struct qjob *match_for(struct qagent *a)
{
	for (struct qjob *j = a->pool->head; j; j = j->next)
		if (can_take(a, j))
			return j;
	return NULL;
}

static struct qlease *lease_new(struct queue *q, struct qjob *j,
    struct qagent *a)
{
	struct qlease *l = xcalloc(1, sizeof(*l));

	token_id_new("lse_", l->id);
	l->job = j;
	l->agent = a;
	l->attempt = j->attempt;
	l->q = q;
	l->timer = ev_timer_new(q->loop, lease_fired, l);
	return l;
}

static void attach(struct queue *q, struct qlease *l)
{
	l->job->lease = l;
	l->agent->nleases++;
	l->job->pool->nleased++;
	hmap_put(q->leases, l->id, l);
}

/* Unlinks a lease from its job, agent and pool, and frees it. */
static void detach(struct queue *q, struct qlease *l)
{
	struct qagent *a = l->agent;

	hmap_del(q->leases, l->id);
	l->job->lease = NULL;
	l->job->pool->nleased--;
	a->nleases--;
	lease_free(l);
	agents_release(q, a);
}

static int hand_out(struct queue *q, struct qjob *j, struct qagent *a,
    struct qlease **out)
{
	struct qlease *l = lease_new(q, j, a);
	int64_t now = queue_now();
	int r = store_begin(q->st);

	if (r == 0)
		r = store_exec(q->st, SQL_JOB_SET_LEASED, "tit", a->id, now, j->id);
	if (r == 0)
		r = store_exec(q->st, SQL_LEASE_INSERT, "ttiti", l->id, j->id,
		    (int64_t)l->attempt, a->id, now);
	r = r == 0 ? store_commit(q->st) : (store_rollback(q->st), r);
	if (r < 0) {
		lease_free(l);
		return r;
	}
	jobs_unqueue(q, j);
	j->state = JS_LEASED;
	attach(q, l);
	arm(l, q->cfg->ack_window);
	metrics_observe(&j->pool->pickup,
	    (double)(ev_now_update(q->loop) - j->queued_ms) / 1000.0);
	log_info("lease handed out", "job=%s attempt=%d agent=%s lease=%s",
	    j->id, j->attempt, a->id, l->id);
	*out = l;
	return 0;
}

/* ---- held requests ---- */

static void waiter_link(struct qpool *p, struct qwaiter *w)
{
	w->prev = p->w_tail;
	w->next = NULL;
	if (p->w_tail)
		p->w_tail->next = w;
	else
		p->w_head = w;
	p->w_tail = w;
	p->nwaiters++;
	w->agent->nwaiters++;
	w->linked = 1;
}

void lease_waiter_cancel(struct qwaiter *w)
{
	struct qpool *p = w->pool;

	if (!w->linked)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		p->w_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		p->w_tail = w->prev;
	w->prev = w->next = NULL;
	w->linked = 0;
	p->nwaiters--;
	ev_timer_free(w->timer);
	w->timer = NULL;
	w->agent->nwaiters--;
	agents_release(w->q, w->agent);
}

static void waiter_done(struct qwaiter *w, int status, struct qlease *l)
{
	struct queue *q = w->q;

	metrics_observe(&w->pool->lease_wait,
	    (double)(ev_now_update(q->loop) - w->start_ms) / 1000.0);
	lease_waiter_cancel(w);
	w->status = status;
	w->lease = l;
	w->wake(w);
}

static void waiter_fired(struct ev_timer *t, void *arg)
{
	(void)t;
	waiter_done(arg, 0, NULL);
}

int lease_request(struct queue *q, struct qagent *a, int wait_s,
    struct qwaiter *w, struct qlease **out, struct apierr *e)
{
	struct qjob *j;
	int64_t wait = wait_s < q->cfg->max_lease_wait ? wait_s :
	    q->cfg->max_lease_wait;

	if (q->stopping) {
		apierr_set(e, 503, "unavailable", "the queue is shutting down");
		e->retry_after = 5;
		return -1;
	}
	w->q = q;
	w->agent = a;
	w->pool = a->pool;
	w->start_ms = ev_now_update(q->loop);
	if ((j = match_for(a)) != NULL || wait == 0) {
		*out = NULL;
		if (j && hand_out(q, j, a, out) < 0)
			return apierr_internal(e, "the queue could not write its "
			    "database");
		metrics_observe(&a->pool->lease_wait, 0);
		return 0;
	}
	w->timer = ev_timer_new(q->loop, waiter_fired, w);
	ev_timer_start(w->timer, wait * 1000);
	waiter_link(a->pool, w);
	return 1;
}

void lease_dispatch_job(struct queue *q, struct qjob *j)
{
	struct qlease *l;

	if (j->state != JS_QUEUED)
		return;
	for (struct qwaiter *w = j->pool->w_head; w; w = w->next) {
		if (!can_take(w->agent, j))
			continue;
		if (hand_out(q, j, w->agent, &l) == 0)
			waiter_done(w, 1, l);
		return;
	}
}

void lease_dispatch_agent(struct queue *q, struct qagent *a)
{
	struct qwaiter *w, *next;
	struct qjob *j;
	struct qlease *l;

	for (w = a->pool->w_head; w; w = next) {
		next = w->next;
		if (w->agent != a)
			continue;
		if ((j = match_for(a)) == NULL || hand_out(q, j, a, &l) < 0)
			return;
		/* waiter_done may free nothing but w's links: next stays. */
		waiter_done(w, 1, l);
	}
}

struct jws_row {
	char *jws;
};

static int jws_row(sqlite3_stmt *row, void *arg)
{
	struct jws_row *r = arg;
	r->jws = xstrdup(store_text(row, 0));
	return 1;
}

cJSON *lease_json(struct queue *q, const struct qlease *l)
{
	struct jws_row jr = { NULL };
	cJSON *o = cJSON_CreateObject();

	store_query(q->st, SQL_JOB_JWS, jws_row, &jr, "t", l->job->id);
	cJSON_AddStringToObject(o, "lease", l->id);
	cJSON_AddStringToObject(o, "job", l->job->id);
	cJSON_AddNumberToObject(o, "attempt", l->attempt);
	cJSON_AddStringToObject(o, "jws", jr.jws ? jr.jws : "");
	cJSON_AddNumberToObject(o, "ack_window", (double)q->cfg->ack_window);
	cJSON_AddNumberToObject(o, "lease_ttl", (double)q->cfg->lease_ttl);
	cJSON_AddNumberToObject(o, "heartbeat_interval",
	    (double)q->cfg->heartbeat_interval);
	free(jr.jws);
	return o;
}

/* ---- leases held by agents ---- */

struct lease_row {
	int found;
	char agent[ID_MAX + 1];
	char job[ID_MAX + 1];
	char state[16];
};

static int lease_row(sqlite3_stmt *row, void *arg)
{
	struct lease_row *r = arg;

	r->found = 1;
	snprintf(r->job, sizeof(r->job), "%s", store_text(row, 0));
	snprintf(r->agent, sizeof(r->agent), "%s", store_text(row, 2));
	snprintf(r->state, sizeof(r->state), "%s", store_text(row, 3));
	return 1;
}

/* The answer for a lease that is not active: 404, 403 or 410. */
static int inactive(struct queue *q, struct qagent *a, const char *id,
    struct lease_row *lr, struct apierr *e)
{
	int r = store_query(q->st, SQL_LEASE_GET, lease_row, lr, "t", id);

	if (r < 0)
		return queue_store_err(q, r, e);
	if (!lr->found)
		return apierr_notfound(e, "no lease '%s'", id);
	if (strcmp(lr->agent, a->id) != 0)
		return apierr_set(e, 403, "forbidden", "lease '%s' belongs to "
		    "another agent", id);
	return apierr_lost(e, "lease '%s' has ended (%s)", id, lr->state);
}

static int ack(struct queue *q, struct qlease *l, struct apierr *e)
{
	struct qjob *j = l->job;
	int r, add = !excluded(j, l->agent);
	char *ex;

	j->excluded = xreallocarray(j->excluded, j->nexcluded + 2,
	    sizeof(char *));
	if (add)
		j->excluded[j->nexcluded++] = xstrdup(l->agent->id);
	ex = queue_strv_json(j->excluded, j->nexcluded);
	r = store_begin(q->st);
	if (r == 0)
		r = store_exec(q->st, SQL_LEASE_ACK, "t", l->id);
	if (r == 0)
		r = store_exec(q->st, SQL_JOB_SET_RUNNING, "tt", ex, j->id);
	r = r == 0 ? store_commit(q->st) : (store_rollback(q->st), r);
	free(ex);
	if (r < 0) {
		if (add)
			free(j->excluded[--j->nexcluded]);
		return queue_store_err(q, r, e);
	}
	l->acked = 1;
	j->state = JS_RUNNING;
	arm(l, q->cfg->lease_ttl);
	log_info("lease acknowledged", "job=%s lease=%s", j->id, l->id);
	return 0;
}

int lease_get(struct queue *q, struct qagent *a, const char *id,
    struct qlease **out, struct apierr *e)
{
	struct qlease *l = hmap_get(q->leases, id);
	struct lease_row lr = { 0 };

	if (l == NULL)
		return inactive(q, a, id, &lr, e);
	if (l->agent != a)
		return apierr_set(e, 403, "forbidden", "lease '%s' belongs to "
		    "another agent", id);
	if (!l->acked && ack(q, l, e) < 0)
		return -1;
	*out = l;
	return 0;
}

int lease_heartbeat(struct queue *q, struct qagent *a, const char *id,
    cJSON **out, struct apierr *e)
{
	struct qlease *l;

	if (lease_get(q, a, id, &l, e) < 0)
		return -1;
	arm(l, q->cfg->lease_ttl);
	*out = cJSON_CreateObject();
	cJSON_AddNumberToObject(*out, "lease_ttl", (double)q->cfg->lease_ttl);
	cJSON_AddNumberToObject(*out, "heartbeat_interval",
	    (double)q->cfg->heartbeat_interval);
	cJSON_AddBoolToObject(*out, "cancel", l->job->cancel_requested);
	if (l->job->cancel_requested)
		cJSON_AddStringToObject(*out, "cancel_reason",
		    l->job->cancel_reason ? l->job->cancel_reason : "");
	return 0;
}

/* ---- ends of leases ---- */

/* What becomes of the job when its lease ends without a result. */
static enum jstate fate(struct queue *q, const struct qjob *j,
    enum lease_kind kind, int *attempt)
{
	*attempt = j->attempt;
	if (j->cancel_requested)
		return JS_CANCELED;
	if (kind == LK_TTL) {
		if (j->attempt >= j->max_attempts)
			return JS_LOST;
		(*attempt)++;
	}
	if (queue_now() >= j->exp + q->cfg->clock_skew)
		return JS_EXPIRED;
	return JS_QUEUED;
}

static const char *fate_reason(enum jstate s)
{
	switch (s) {
	case JS_CANCELED: return "canceled; the lease ended before the agent "
	    "completed the job";
	case JS_LOST: return "every attempt's lease expired";
	default: return "exp passed while the job was waiting for a new lease";
	}
}

static int store_expiry(struct queue *q, struct qlease *l, enum jstate end,
    int attempt)
{
	int r = store_begin(q->st);

	if (r == 0)
		r = store_exec(q->st, SQL_LEASE_END, "tit", "expired", queue_now(),
		    l->id);
	if (r == 0 && end == JS_QUEUED)
		r = store_exec(q->st, SQL_JOB_REQUEUE, "it", (int64_t)attempt,
		    l->job->id);
	else if (r == 0)
		r = jobs_store_end(q, l->job->id, end, jstate_name(end),
		    fate_reason(end));
	return r == 0 ? store_commit(q->st) : (store_rollback(q->st), r);
}

int lease_expire(struct queue *q, struct qlease *l, enum lease_kind kind)
{
	struct qjob *j = l->job;
	struct qagent *a = l->agent;
	int attempt, r, keep_agent = !a->gone;
	enum jstate end = fate(q, j, kind, &attempt);

	if ((r = store_expiry(q, l, end, attempt)) < 0)
		return r;
	log_info("lease expired", "job=%s lease=%s kind=%s acked=%d next=%s",
	    j->id, l->id, kind == LK_ACK ? "ack" : "ttl", l->acked,
	    jstate_name(end));
	j->pool->expired[kind]++;
	detach(q, l);
	if (end != JS_QUEUED) {
		jobs_forget(q, j, end);
	} else {
		if (attempt != j->attempt) {
			j->attempt = attempt;
			j->log_len = logs_length(q, j->id, attempt);
			logs_wake(q, j, 1);
		}
		jobs_enqueue(q, j);
		lease_dispatch_job(q, j);
	}
	if (keep_agent)
		lease_dispatch_agent(q, a);
	return 0;
}

static void lease_fired(struct ev_timer *t, void *arg)
{
	struct qlease *l = arg;

	if (lease_expire(l->q, l, l->acked ? LK_TTL : LK_ACK) < 0) {
		log_error("cannot expire lease; retrying", "lease=%s", l->id);
		ev_timer_start(t, 1000);
	}
}

struct qlease *lease_find(struct queue *q, const char *id)
{
	return hmap_get(q->leases, id);
}

void lease_undelivered(struct queue *q, const char *lease_id)
{
	struct qlease *l = hmap_get(q->leases, lease_id);

	/* The answer did not reach the agent: do not wait for the ack
	 * window to find out. */
	if (l && !l->acked) {
		log_info("lease answer undelivered", "lease=%s", lease_id);
		if (lease_expire(q, l, LK_ACK) < 0)
			log_error("cannot requeue undelivered lease", "lease=%s",
			    lease_id);
	}
}

/* ---- complete ---- */

static int completed_before(struct queue *q, struct qagent *a,
    const char *id, cJSON **out, struct apierr *e)
{
	struct lease_row lr = { 0 };
	cJSON *st = NULL;

	(void)inactive(q, a, id, &lr, e);
	if (e->status != 410 || strcmp(lr.state, "completed") != 0)
		return -1;
	/* Complete is idempotent: the stored result again. */
	if (jobs_status(q, lr.job, &st, e) < 0)
		return -1;
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "state",
	    cJSON_GetStringValue(cJSON_GetObjectItem(st, "state")));
	cJSON_Delete(st);
	return 0;
}

static char *exit_codes_json(const struct reqj_complete *c)
{
	cJSON *a = cJSON_CreateArray();
	char *s;

	for (size_t i = 0; i < c->nexit; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)c->exit_codes[i]));
	s = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
	return s;
}

static int store_complete(struct queue *q, struct qlease *l,
    const struct reqj_complete *c)
{
	char *codes = exit_codes_json(c);
	const char *res = jstate_name(c->result);
	int r = store_begin(q->st);

	if (r == 0)
		r = store_exec(q->st, SQL_JOB_END, "tittttt", res, queue_now(), res,
		    codes, c->reason_code[0] ? c->reason_code : NULL,
		    c->reason[0] ? c->reason : NULL, l->job->id);
	if (r == 0 && c->outputs)
		r = store_exec(q->st, SQL_JOB_SET_OUTPUTS, "tt", c->outputs,
		    l->job->id);
	if (r == 0)
		r = store_exec(q->st, SQL_LEASE_END, "tit", "completed",
		    queue_now(), l->id);
	free(codes);
	return r == 0 ? store_commit(q->st) : (store_rollback(q->st), r);
}

int lease_complete(struct queue *q, struct qagent *a, const char *id,
    const struct reqj_complete *c, cJSON **out, struct apierr *e)
{
	struct qlease *l = hmap_get(q->leases, id);
	struct qjob *j;
	int r, keep_agent = !a->gone;

	if (l == NULL)
		return completed_before(q, a, id, out, e);
	if (lease_get(q, a, id, &l, e) < 0)
		return -1;
	j = l->job;
	if (c->log_length != j->log_len)
		return apierr_offset(e, j->log_len, "log_length %lld is not the "
		    "server's length %lld", (long long)c->log_length,
		    (long long)j->log_len);
	if ((r = store_complete(q, l, c)) < 0)
		return queue_store_err(q, r, e);
	detach(q, l);
	jobs_forget(q, j, c->result);
	if (keep_agent)
		lease_dispatch_agent(q, a);
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "state", jstate_name(c->result));
	return 0;
}

/* ---- start ---- */

struct active_lease {
	char id[ID_MAX + 1], job[ID_MAX + 1], agent[ID_MAX + 1];
	int attempt, acked;
};

struct active_rows {
	struct active_lease *v;
	size_t n;
};

static int active_row(sqlite3_stmt *row, void *arg)
{
	struct active_rows *rs = arg;
	struct active_lease *al;

	rs->v = xreallocarray(rs->v, rs->n + 1, sizeof(*rs->v));
	al = &rs->v[rs->n++];
	snprintf(al->id, sizeof(al->id), "%s", store_text(row, 0));
	snprintf(al->job, sizeof(al->job), "%s", store_text(row, 1));
	al->attempt = sqlite3_column_int(row, 2);
	snprintf(al->agent, sizeof(al->agent), "%s", store_text(row, 3));
	al->acked = sqlite3_column_int(row, 4);
	return 0;
}

/*
 * A lease in flight when the queue stopped goes on: its agent could not
 * heartbeat while the queue was down, so it gets a fresh ack window or
 * TTL from now.
 */
static int restore(struct queue *q, const struct active_lease *al)
{
	struct qjob *j = hmap_get(q->jobs, al->job);
	struct qagent *a = hmap_get(q->agents, al->agent);
	struct qlease *l;

	if (j == NULL || a == NULL || j->lease || j->state == JS_QUEUED ||
	    al->attempt != j->attempt)
		return store_exec(q->st, SQL_LEASE_END, "tit", "expired",
		    queue_now(), al->id);
	l = xcalloc(1, sizeof(*l));
	snprintf(l->id, sizeof(l->id), "%s", al->id);
	l->job = j;
	l->agent = a;
	l->attempt = al->attempt;
	l->acked = al->acked;
	l->q = q;
	l->timer = ev_timer_new(q->loop, lease_fired, l);
	attach(q, l);
	arm(l, l->acked ? q->cfg->lease_ttl : q->cfg->ack_window);
	return 0;
}

/* Leased jobs that lost their lease row go back to the queue. */
static int requeue_orphans(struct queue *q)
{
	struct hmap_iter it = { 0 };
	struct qjob *j, **orphans = NULL;
	size_t n = 0;
	int r = 0;

	while ((j = hmap_next(q->jobs, &it)) != NULL)
		if (j->state != JS_QUEUED && j->lease == NULL) {
			orphans = xreallocarray(orphans, n + 1, sizeof(*orphans));
			orphans[n++] = j;
		}
	for (size_t i = 0; i < n && r == 0; i++) {
		r = store_exec(q->st, SQL_JOB_REQUEUE, "it",
		    (int64_t)orphans[i]->attempt, orphans[i]->id);
		if (r == 0)
			jobs_enqueue(q, orphans[i]);
	}
	free(orphans);
	return r;
}

int lease_load(struct queue *q)
{
	struct active_rows rs = { NULL, 0 };
	int r = store_query(q->st, SQL_LEASES_ACTIVE, active_row, &rs, NULL);

	for (size_t i = 0; r == 0 && i < rs.n; i++)
		r = restore(q, &rs.v[i]);
	free(rs.v);
	return r == 0 ? requeue_orphans(q) : r;
}
