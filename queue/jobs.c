/*
 * Jobs: submit, status, list, cancel, and the ends a job reaches without
 * an agent's result (canceled while queued, expired, lost).
 */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "apierr.h"
#include "config.h"
#include "err.h"
#include "ev.h"
#include "hmap.h"
#include "job.h"
#include "jsonx.h"
#include "jws.h"
#include "log.h"
#include "reqjson.h"
#include "route.h"
#include "store.h"
#include "xalloc.h"

void jobs_free(struct qjob *j)
{
	if (j == NULL)
		return;
	ev_timer_free(j->exp_timer);
	queue_strv_free(j->labels, j->nlabels);
	queue_strv_free(j->excluded, j->nexcluded);
	free(j->cancel_reason);
	free(j);
}

static int take_labels(const cJSON *job, struct jobs_sub *s, struct apierr *e)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(job, "labels"), *it;

	if (a == NULL)
		return 0;
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > JOB_MAX_LABELS)
		return apierr_bad(e, "job.labels must be an array of at most %d "
		    "labels", JOB_MAX_LABELS);
	s->labels = xcalloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(char *));
	cJSON_ArrayForEach(it, a) {
		if (!cJSON_IsString(it) || !job_label_valid(it->valuestring))
			return apierr_bad(e, "job.labels entries must match "
			    "[A-Za-z0-9_.:=-]{1,64}");
		s->labels[s->nlabels++] = xstrdup(it->valuestring);
	}
	return 0;
}

static int take_aud(const cJSON *root, struct jobs_sub *s, struct apierr *e)
{
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(root, "aud");

	if (cJSON_IsArray(aud))
		aud = cJSON_GetArrayItem(aud, 0);
	if (!cJSON_IsString(aud) || strlen(aud->valuestring) >= sizeof(s->pool))
		return apierr_bad(e, "claim 'aud' must name the pool (a string, or "
		    "an array whose first entry is one)");
	memcpy(s->pool, aud->valuestring, strlen(aud->valuestring) + 1);
	return 0;
}

/* Reads the fields the queue keeps from an unverified payload, leniently:
 * the rest of the schema is the agents' to check. */
static int take_fields(const cJSON *root, struct jobs_sub *s, struct apierr *e)
{
	const cJSON *jti = cJSON_GetObjectItemCaseSensitive(root, "jti");
	const cJSON *job = cJSON_GetObjectItemCaseSensitive(root, "job");
	const char *name = NULL;

	if (!cJSON_IsString(jti) || !job_jti_valid(jti->valuestring))
		return apierr_bad(e, "claim 'jti' must match [A-Za-z0-9_-]{8,64}");
	memcpy(s->id, jti->valuestring, strlen(jti->valuestring) + 1);
	if (jsonx_int(root, "exp", 0, INT64_C(1) << 53, &s->exp) < 0)
		return apierr_bad(e, "claim 'exp' must be a non-negative integer");
	if (take_aud(root, s, e) < 0)
		return -1;
	if (!cJSON_IsObject(job))
		return apierr_bad(e, "claim 'job' must be an object");
	if (jsonx_string(job, "name", JOB_MAX_NAME, &name) == -EINVAL)
		return apierr_bad(e, "job.name must be a string of at most %d "
		    "bytes", JOB_MAX_NAME);
	memcpy(s->name, name ? name : "", strlen(name ? name : "") + 1);
	return take_labels(job, s, e);
}

/* The payload of a compact JWS, unverified, as a JSON object in *root. */
static int peek_payload(const char *jws, size_t n, cJSON **root,
    struct apierr *e)
{
	struct buf payload = BUF_INIT(JWS_MAX_COMPACT);
	struct err er;
	int jerr, r = -1;

	*root = NULL;
	if (jws_peek_payload(jws, n, &payload, &er) < 0) {
		apierr_bad(e, "not a compact JWS: %s", er.msg);
		e->reason = job_reason_code((enum job_reason)er.code);
		goto out;
	}
	*root = jsonx_parse(payload.data, payload.len, JWS_MAX_COMPACT,
	    JOB_MAX_DEPTH, &jerr);
	if (*root == NULL && jerr == JSONX_UTF8) {
		reqj_utf8_error(payload.data, payload.len, "the JWS payload", e);
		goto out;
	}
	if (!cJSON_IsObject(*root)) {
		apierr_bad(e, "the JWS payload is not a JSON object of at most %d "
		    "levels without duplicate keys", JOB_MAX_DEPTH);
		e->reason = *root == NULL && jerr == JSONX_SYNTAX ? "bad_json" :
		    *root == NULL && jerr == JSONX_TOO_DEEP ? "too_deep" : NULL;
		cJSON_Delete(*root);
		*root = NULL;
		goto out;
	}
	r = 0;
out:
	buf_free(&payload);
	return r;
}

static int peek_job(const char *jws, size_t n, struct jobs_sub *s,
    struct apierr *e)
{
	cJSON *root;
	int r = peek_payload(jws, n, &root, e);

	if (r == 0)
		r = take_fields(root, s, e);
	cJSON_Delete(root);
	return r;
}

int jobs_steps_json(const char *jws, size_t n, cJSON **out,
    struct apierr *e)
{
	cJSON *root, *list, *st;
	const cJSON *steps;
	int k = 0;

	if (peek_payload(jws, n, &root, e) < 0)
		return -1;
	steps = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(root, "job"), "steps");
	list = cJSON_CreateArray();
	cJSON_ArrayForEach(st, steps) {
		const char *name = NULL, *image = NULL;
		int coe = 0;
		cJSON *o;
		if (!cJSON_IsArray(steps) || k++ == JOB_MAX_STEPS)
			break;
		o = cJSON_CreateObject();
		(void)jsonx_string(st, "name", JOB_MAX_NAME, &name);
		(void)jsonx_string(st, "image", JOBS_STEP_IMAGE_MAX, &image);
		(void)jsonx_bool(st, "continue_on_error", &coe);
		cJSON_AddStringToObject(o, "name", name ? name : "");
		if (image)
			cJSON_AddStringToObject(o, "image", image);
		else
			cJSON_AddNullToObject(o, "image");
		cJSON_AddBoolToObject(o, "continue_on_error", coe);
		cJSON_AddItemToArray(list, o);
	}
	cJSON_Delete(root);
	*out = cJSON_CreateObject();
	cJSON_AddItemToObject(*out, "steps", list);
	return 0;
}

struct jws_text {
	char *jws;
};

static int jws_text_row(sqlite3_stmt *row, void *arg)
{
	((struct jws_text *)arg)->jws = xstrdup(store_text(row, 0));
	return 1;
}

int jobs_steps(struct queue *q, const char *id, cJSON **out,
    struct apierr *e)
{
	struct jws_text jt = { NULL };
	int r = store_query(q->st, SQL_JOB_JWS, jws_text_row, &jt, "t", id);

	if (r < 0)
		return queue_store_err(q, r, e);
	if (jt.jws == NULL)
		return apierr_notfound(e, "no job '%s'", id);
	r = jobs_steps_json(jt.jws, strlen(jt.jws), out, e);
	free(jt.jws);
	return r;
}

/* With --trusted-keys: the agent's own checks, but for the audience,
 * the replay cache and the secrets. */
static int verify_job(struct queue *q, const char *jws, size_t n,
    struct jobs_sub *s, struct apierr *e)
{
	struct job_check c = { &q->trusted, NULL, queue_now(),
	    q->cfg->clock_skew, NULL };
	struct job *j = NULL;
	struct err er;

	if (job_verify(jws, n, &c, &j, &er) < 0) {
		apierr_set(e, 422, "rejected", "%s", er.msg);
		e->reason = job_reason_code((enum job_reason)er.code);
		return -1;
	}
	snprintf(s->id, sizeof(s->id), "%s", j->jti);
	snprintf(s->pool, sizeof(s->pool), "%s", j->aud[0]);
	snprintf(s->name, sizeof(s->name), "%s", j->name);
	s->exp = j->exp;
	s->labels = xcalloc(j->nlabels + 1, sizeof(char *));
	for (size_t i = 0; i < j->nlabels; i++)
		s->labels[s->nlabels++] = xstrdup(j->labels[i]);
	job_free(j);
	return 0;
}

static int check_submit(struct queue *q, const struct jobs_sub *s,
    struct apierr *e)
{
	if (!route_pool_valid(s->pool))
		return apierr_bad(e, "pool '%.128s' (claim 'aud') must match "
		    "[A-Za-z0-9_.:-]{1,128}", s->pool);
	if (queue_now() >= s->exp + q->cfg->clock_skew) {
		apierr_set(e, 422, "rejected", "job expired at %lld, now is %lld "
		    "(skew %llds)", (long long)s->exp, (long long)queue_now(),
		    (long long)q->cfg->clock_skew);
		e->reason = "expired";
		return -1;
	}
	return 0;
}

static int insert_job(struct queue *q, const struct jobs_sub *s,
    const char *jws, size_t n, int64_t *seq, struct apierr *e)
{
	char *labels = queue_strv_json(s->labels, s->nlabels);
	char *text = xstrndup(jws, n);
	int r = store_exec(q->st, SQL_JOB_INSERT, "tttttiii", s->id, s->pool,
	    s->name, labels, text, s->exp, (int64_t)q->cfg->max_attempts,
	    queue_now());

	free(labels);
	free(text);
	if (r == -EEXIST)
		return apierr_conflict(e, "a job with id '%s' exists", s->id);
	if (r < 0)
		return queue_store_err(q, r, e);
	*seq = store_last_rowid(q->st);
	return 0;
}

static struct qjob *job_from_submit(struct queue *q, struct jobs_sub *s,
    int64_t seq)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	snprintf(j->id, sizeof(j->id), "%s", s->id);
	j->pool = queue_pool(q, s->pool);
	j->labels = s->labels;
	j->nlabels = s->nlabels;
	s->labels = NULL;
	s->nlabels = 0;
	j->exp = s->exp;
	j->seq = seq;
	j->attempt = 1;
	j->max_attempts = (int)q->cfg->max_attempts;
	j->excluded = xcalloc(1, sizeof(char *));
	j->q = q;
	return j;
}

int jobs_take_submit(struct queue *q, const char *jws, size_t n,
    struct jobs_sub *s, struct apierr *e)
{
	int r;

	memset(s, 0, sizeof(*s));
	r = q->have_trusted ? verify_job(q, jws, n, s, e) :
	    peek_job(jws, n, s, e);
	return r < 0 ? r : check_submit(q, s, e);
}

void jobs_sub_free(struct jobs_sub *s)
{
	queue_strv_free(s->labels, s->nlabels);
	s->labels = NULL;
	s->nlabels = 0;
}

int jobs_submit(struct queue *q, const char *jws, size_t n, cJSON **status,
    struct apierr *e)
{
	struct jobs_sub s;
	struct qjob *j;
	int64_t seq = 0;
	int r;

	if ((r = jobs_take_submit(q, jws, n, &s, e)) < 0 ||
	    (r = insert_job(q, &s, jws, n, &seq, e)) < 0)
		goto out;
	j = job_from_submit(q, &s, seq);
	hmap_put(q->jobs, j->id, j);
	log_info("job submitted", "job=%s pool=%s name=%s", j->id,
	    logq(j->pool->name), logq(s.name));
	jobs_enqueue(q, j);
	lease_dispatch_job(q, j);
	r = jobs_status(q, s.id, status, e);
out:
	queue_strv_free(s.labels, s.nlabels);
	return r;
}

/* ---- status ---- */

static void add_nullable_int(cJSON *o, const char *k, sqlite3_stmt *row,
    int col)
{
	if (store_null(row, col))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k,
		    (double)sqlite3_column_int64(row, col));
}

static void add_nullable_text(cJSON *o, const char *k, sqlite3_stmt *row,
    int col)
{
	if (store_null(row, col))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddStringToObject(o, k, store_text(row, col));
}

static void add_json_array(cJSON *o, const char *k, const char *text)
{
	int jerr;
	cJSON *a = jsonx_parse(text, strlen(text), 1 << 20, 2, &jerr);

	if (!cJSON_IsArray(a)) {
		cJSON_Delete(a);
		a = cJSON_CreateArray();
	}
	cJSON_AddItemToObject(o, k, a);
}

static void add_json_object(cJSON *o, const char *k, const char *text)
{
	int jerr;
	cJSON *a = jsonx_parse(text, strlen(text), 1 << 20, 2, &jerr);

	if (!cJSON_IsObject(a)) {
		cJSON_Delete(a);
		a = cJSON_CreateObject();
	}
	cJSON_AddItemToObject(o, k, a);
}

static cJSON *status_of_row(struct queue *q, sqlite3_stmt *row)
{
	cJSON *o = cJSON_CreateObject();
	const char *id = store_text(row, JC_ID);
	struct qjob *j = hmap_get(q->jobs, id);
	int attempt = sqlite3_column_int(row, JC_ATTEMPT);

	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "name", store_text(row, JC_NAME));
	cJSON_AddStringToObject(o, "pool", store_text(row, JC_POOL));
	add_json_array(o, "labels", store_text(row, JC_LABELS));
	cJSON_AddStringToObject(o, "state", store_text(row, JC_STATE));
	cJSON_AddNumberToObject(o, "attempt", attempt);
	cJSON_AddNumberToObject(o, "max_attempts",
	    sqlite3_column_int(row, JC_MAX_ATTEMPTS));
	add_nullable_text(o, "agent", row, JC_AGENT);
	add_nullable_int(o, "created", row, JC_CREATED);
	add_nullable_int(o, "leased", row, JC_LEASED);
	add_nullable_int(o, "completed", row, JC_COMPLETED);
	add_nullable_int(o, "exp", row, JC_EXP);
	cJSON_AddBoolToObject(o, "cancel_requested",
	    sqlite3_column_int(row, JC_CANCEL_REQUESTED) != 0);
	add_nullable_text(o, "cancel_reason", row, JC_CANCEL_REASON);
	add_nullable_text(o, "result", row, JC_RESULT);
	add_json_array(o, "exit_codes", store_text(row, JC_EXIT_CODES));
	add_nullable_text(o, "reason_code", row, JC_REASON_CODE);
	add_nullable_text(o, "reason", row, JC_REASON);
	cJSON_AddNumberToObject(o, "log_length", (double)(j ? j->log_len :
	    logs_length(q, id, attempt)));
	/* One job's status has its outputs; the list leaves them out. */
	if (sqlite3_column_count(row) > JC_OUTPUTS)
		add_json_object(o, "outputs", store_text(row, JC_OUTPUTS));
	return o;
}

struct rows {
	struct queue *q;
	cJSON *one;
	cJSON *list;
};

static int status_row(sqlite3_stmt *row, void *arg)
{
	struct rows *r = arg;
	cJSON *o = status_of_row(r->q, row);

	if (r->list)
		cJSON_AddItemToArray(r->list, o);
	else
		r->one = o;
	return 0;
}

int jobs_status(struct queue *q, const char *id, cJSON **out,
    struct apierr *e)
{
	struct rows rs = { q, NULL, NULL };
	int r = store_query(q->st, SQL_JOB_GET, status_row, &rs, "t", id);

	if (r < 0)
		return queue_store_err(q, r, e);
	if (rs.one == NULL)
		return apierr_notfound(e, "no job '%s'", id);
	*out = rs.one;
	return 0;
}

int jobs_list(struct queue *q, const char *pool, const char *state,
    const char *name, int limit, int offset, cJSON **out, struct apierr *e)
{
	struct rows rs = { q, NULL, cJSON_CreateArray() };
	enum jstate s;
	int r;

	if (state && jstate_parse(state, &s) < 0) {
		cJSON_Delete(rs.list);
		return apierr_bad(e, "state '%.32s' is not a job state", state);
	}
	r = store_query(q->st, SQL_JOB_LIST, status_row, &rs, "tttii", pool,
	    state, name, (int64_t)limit, (int64_t)offset);
	if (r < 0) {
		cJSON_Delete(rs.list);
		return queue_store_err(q, r, e);
	}
	*out = cJSON_CreateObject();
	cJSON_AddItemToObject(*out, "jobs", rs.list);
	return 0;
}

struct attempt_row {
	int found;
	int attempt;
};

static int attempt_row(sqlite3_stmt *row, void *arg)
{
	struct attempt_row *r = arg;

	r->found = 1;
	r->attempt = sqlite3_column_int(row, 1);
	return 1;
}

int jobs_current_attempt(struct queue *q, const char *id, int *attempt,
    struct apierr *e)
{
	struct qjob *j = hmap_get(q->jobs, id);
	struct attempt_row ar = { 0, 0 };
	int r;

	if (j) {
		*attempt = j->attempt;
		return 0;
	}
	if ((r = store_query(q->st, SQL_JOB_STATE, attempt_row, &ar, "t",
	    id)) < 0)
		return queue_store_err(q, r, e);
	if (!ar.found)
		return apierr_notfound(e, "no job '%s'", id);
	*attempt = ar.attempt;
	return 0;
}

/* ---- ends ---- */

int jobs_store_end(struct queue *q, const char *id, enum jstate state,
    const char *reason_code, const char *reason)
{
	return store_exec(q->st, SQL_JOB_END, "titttt" "t", jstate_name(state),
	    queue_now(), jstate_name(state), "[]", reason_code, reason, id);
}

void jobs_forget(struct queue *q, struct qjob *j, enum jstate end)
{
	if (j->state == JS_QUEUED)
		jobs_unqueue(q, j);
	j->state = end;
	j->pool->completed[end]++;
	hmap_del(q->jobs, j->id);
	logs_wake(q, j, 1);
	art_forget_job(q, j->id);
	log_info("job ended", "job=%s state=%s attempt=%d", j->id,
	    jstate_name(end), j->attempt);
	jobs_free(j);
}

/* A queued job ends by itself: exp passed, or canceled. */
static int end_queued(struct queue *q, struct qjob *j, enum jstate end,
    const char *code, const char *reason, struct apierr *e)
{
	int r = store_begin(q->st);

	if (r == 0 && (r = jobs_store_end(q, j->id, end, code, reason)) == 0)
		r = store_commit(q->st);
	else
		store_rollback(q->st);
	if (r < 0)
		return queue_store_err(q, r, e);
	jobs_forget(q, j, end);
	return 0;
}

static void exp_fired(struct ev_timer *t, void *arg)
{
	struct qjob *j = arg;
	struct apierr e;

	if (j->state != JS_QUEUED)
		return;
	if (end_queued(j->q, j, JS_EXPIRED, "expired",
	    "exp passed while the job was queued", &e) < 0) {
		log_error("cannot expire job", "job=%s error=%s", j->id,
		    logq(e.msg));
		ev_timer_start(t, 1000);
	}
}

void jobs_enqueue(struct queue *q, struct qjob *j)
{
	struct qpool *p = j->pool;
	struct qjob *after = p->tail;
	int64_t due;

	/* FIFO by submit order: a requeued job goes back to its place. */
	while (after && after->seq > j->seq)
		after = after->prev;
	j->prev = after;
	j->next = after ? after->next : p->head;
	if (j->next)
		j->next->prev = j;
	else
		p->tail = j;
	if (after)
		after->next = j;
	else
		p->head = j;
	p->nqueued++;
	j->state = JS_QUEUED;
	j->lease = NULL;
	j->queued_ms = ev_now_update(q->loop);
	if (j->exp_timer == NULL)
		j->exp_timer = ev_timer_new(q->loop, exp_fired, j);
	due = (j->exp + q->cfg->clock_skew) * 1000 - queue_now_ms();
	ev_timer_start(j->exp_timer, due > 0 ? due : 0);
}

void jobs_unqueue(struct queue *q, struct qjob *j)
{
	struct qpool *p = j->pool;

	(void)q;
	if (j->prev)
		j->prev->next = j->next;
	else
		p->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		p->tail = j->prev;
	j->prev = j->next = NULL;
	p->nqueued--;
	ev_timer_stop(j->exp_timer);
}

static struct qjob *job_of_row(struct queue *q, sqlite3_stmt *row)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	snprintf(j->id, sizeof(j->id), "%s", store_text(row, 0));
	j->q = q;
	j->pool = queue_pool(q, store_text(row, 1));
	if (queue_strv_parse(store_text(row, 2), JOB_MAX_LABELS, &j->labels,
	    &j->nlabels) < 0 ||
	    queue_strv_parse(store_text(row, 8), 1 << 16, &j->excluded,
	    &j->nexcluded) < 0 ||
	    jstate_parse(store_text(row, 5), &j->state) < 0) {
		log_error("job row is damaged; skipped", "job=%s", j->id);
		jobs_free(j);
		return NULL;
	}
	j->exp = sqlite3_column_int64(row, 3);
	j->seq = sqlite3_column_int64(row, 4);
	j->attempt = sqlite3_column_int(row, 6);
	j->max_attempts = sqlite3_column_int(row, 7);
	j->cancel_requested = sqlite3_column_int(row, 9);
	if (!store_null(row, 10))
		j->cancel_reason = xstrdup(store_text(row, 10));
	j->log_len = logs_length(q, j->id, j->attempt);
	return j;
}

static int load_row(sqlite3_stmt *row, void *arg)
{
	struct queue *q = arg;
	struct qjob *j = job_of_row(q, row);

	if (j == NULL)
		return 0;
	hmap_put(q->jobs, j->id, j);
	/* Leased and running jobs get their lease from lease_load. */
	if (j->state == JS_QUEUED)
		jobs_enqueue(q, j);
	return 0;
}

int jobs_load(struct queue *q)
{
	return store_query(q->st, SQL_JOBS_ACTIVE, load_row, q, NULL);
}

int jobs_cancel(struct queue *q, const char *id, const char *reason,
    cJSON **status, struct apierr *e)
{
	struct qjob *j = hmap_get(q->jobs, id);
	int r;

	if (j == NULL) {
		if (jobs_status(q, id, status, e) < 0)
			return -1;
		cJSON_Delete(*status);
		*status = NULL;
		return apierr_conflict(e, "job '%s' has ended", id);
	}
	if (j->state == JS_QUEUED) {
		if (end_queued(q, j, JS_CANCELED, "canceled",
		    *reason ? reason : "canceled while queued", e) < 0)
			return -1;
	} else if (!j->cancel_requested) {
		r = store_exec(q->st, SQL_JOB_CANCEL_REQ, "tt", reason, id);
		if (r < 0)
			return queue_store_err(q, r, e);
		j->cancel_requested = 1;
		j->cancel_reason = xstrdup(reason);
		log_info("job cancel requested", "job=%s", id);
	}
	return jobs_status(q, id, status, e);
}
