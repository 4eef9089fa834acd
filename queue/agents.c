/*
 * Agents and registration tokens (docs/protocol.md sections 4.1, 4.7, 5.6
 * and 5.7). Tokens are stored as SHA-256 hashes only. An agent token is
 * found by its hash in memory and then compared in constant time; the
 * lookup itself can only leak timing about a hash, which does not help
 * anyone guess a token.
 */
#include "queue.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "apierr.h"
#include "b64.h"
#include "config.h"
#include "hmap.h"
#include "log.h"
#include "reqjson.h"
#include "route.h"
#include "store.h"
#include "xalloc.h"

/* Last-seen times are kept in memory and written at most this often. */
#define SEEN_WRITE_EVERY 30

void agents_free(struct qagent *a)
{
	if (a == NULL)
		return;
	free(a->name);
	queue_strv_free(a->labels, a->nlabels);
	free(a);
}

void agents_release(struct queue *q, struct qagent *a)
{
	if (!a->gone || a->pinned || a->nleases || a->nwaiters)
		return;
	hmap_del(q->agents, a->id);
	agents_free(a);
}

int agents_seen_within(const struct queue *q, const struct qagent *a,
    int64_t now)
{
	return a->nwaiters > 0 || now - a->last_seen <= 3 * q->cfg->lease_wait;
}

static void index_agent(struct queue *q, struct qagent *a)
{
	hex_encode(a->hash, sizeof(a->hash), a->hash_hex);
	hmap_put(q->agents, a->id, a);
	hmap_put(q->agents_by_hash, a->hash_hex, a);
}

/* ---- registration ---- */

struct regtok {
	int found, revoked;
	char id[ID_MAX + 1];
	char pool[129];
	unsigned char hash[TOKEN_HASH_BYTES];
};

static int regtok_row(sqlite3_stmt *row, void *arg)
{
	struct regtok *t = arg;

	t->found = sqlite3_column_bytes(row, 2) == TOKEN_HASH_BYTES;
	snprintf(t->id, sizeof(t->id), "%s", store_text(row, 0));
	snprintf(t->pool, sizeof(t->pool), "%s", store_text(row, 1));
	if (t->found)
		memcpy(t->hash, sqlite3_column_blob(row, 2), TOKEN_HASH_BYTES);
	t->revoked = !store_null(row, 3);
	return 1;
}

static int find_regtok(struct queue *q, const char *tok, size_t n,
    struct regtok *t, struct apierr *e)
{
	unsigned char h[TOKEN_HASH_BYTES];
	int r;

	token_hash(tok, n, h);
	r = store_query(q->st, SQL_TOKEN_BY_HASH, regtok_row, t, "b", h,
	    sizeof(h));
	if (r < 0)
		return queue_store_err(q, r, e);
	if (!t->found || !token_hash_equal(t->hash, h) || t->revoked)
		return apierr_set(e, 401, "unauthorized", "registration token is "
		    "unknown or revoked");
	return 0;
}

static struct qagent *agent_new(struct queue *q, const struct regtok *t,
    struct reqj_register *req)
{
	struct qagent *a = xcalloc(1, sizeof(*a));

	token_id_new("agt_", a->id);
	a->name = xstrdup(req->name);
	a->pool = queue_pool(q, t->pool);
	a->labels = xcalloc(req->nlabels + 1, sizeof(char *));
	for (size_t i = 0; i < req->nlabels; i++) {
		a->labels[i] = req->labels[i];
		req->labels[i] = NULL;
	}
	a->nlabels = req->nlabels;
	req->nlabels = 0;
	a->capacity = req->capacity;
	a->last_seen = a->last_seen_saved = queue_now();
	snprintf(a->reg_token, sizeof(a->reg_token), "%s", t->id);
	return a;
}

static cJSON *register_answer(struct queue *q, const struct qagent *a,
    const char *token)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "agent_id", a->id);
	cJSON_AddStringToObject(o, "agent_token", token);
	cJSON_AddStringToObject(o, "pool", a->pool->name);
	cJSON_AddNumberToObject(o, "lease_wait", (double)q->cfg->lease_wait);
	cJSON_AddNumberToObject(o, "ack_window", (double)q->cfg->ack_window);
	cJSON_AddNumberToObject(o, "lease_ttl", (double)q->cfg->lease_ttl);
	cJSON_AddNumberToObject(o, "heartbeat_interval",
	    (double)q->cfg->heartbeat_interval);
	return o;
}

static int insert_agent(struct queue *q, const struct qagent *a,
    const char *version)
{
	char *labels = queue_strv_json(a->labels, a->nlabels);
	int r = store_exec(q->st, SQL_AGENT_INSERT, "tbtttitiit", a->id,
	    a->hash, sizeof(a->hash), a->name, a->pool->name, labels,
	    (int64_t)a->capacity, version, a->last_seen, a->last_seen,
	    a->reg_token);

	free(labels);
	return r;
}

int agents_register(struct queue *q, const char *tok, size_t n,
    const char *body, size_t blen, cJSON **out, struct apierr *e)
{
	struct reqj_register req;
	struct regtok t = { 0 };
	struct qagent *a;
	char *token;
	int r;

	if (find_regtok(q, tok, n, &t, e) < 0)
		return -1;
	if (reqj_register(body, blen, &req, e) < 0)
		return -1;
	a = agent_new(q, &t, &req);
	token = token_new("sat_");
	token_hash(token, strlen(token), a->hash);
	if ((r = insert_agent(q, a, req.version)) < 0) {
		agents_free(a);
		sodium_memzero(token, strlen(token));
		free(token);
		reqj_register_free(&req);
		return queue_store_err(q, r, e);
	}
	index_agent(q, a);
	log_info("agent registered", "agent=%s pool=%s name=%s", a->id,
	    logq(a->pool->name), logq(a->name));
	*out = register_answer(q, a, token);
	sodium_memzero(token, strlen(token));
	free(token);
	reqj_register_free(&req);
	lease_dispatch_agent(q, a);
	return 0;
}

int agents_auth(struct queue *q, const char *tok, size_t n,
    struct qagent **out, struct apierr *e)
{
	char hex[2 * TOKEN_HASH_BYTES + 1];
	unsigned char h[TOKEN_HASH_BYTES];
	struct qagent *a;
	int64_t now = queue_now();

	token_hash(tok, n, h);
	hex_encode(h, sizeof(h), hex);
	a = hmap_get(q->agents_by_hash, hex);
	if (a == NULL || a->gone || !token_hash_equal(a->hash, h))
		return apierr_set(e, 401, "unauthorized", "agent token is unknown, "
		    "revoked or deregistered");
	a->last_seen = now;
	if (now - a->last_seen_saved >= SEEN_WRITE_EVERY &&
	    store_exec(q->st, SQL_AGENT_SEEN, "it", now, a->id) == 0)
		a->last_seen_saved = now;
	*out = a;
	return 0;
}

/* ---- leaving ---- */

/*
 * An agent that leaves (or is revoked) gives its leases back at once:
 * one it never acknowledged goes back to the queue as the same attempt,
 * one it acknowledged counts as an attempt (nobody will heartbeat it).
 */
static void drop_agent(struct queue *q, struct qagent *a, const char *state)
{
	struct hmap_iter it = { 0 };
	struct qlease *l, **mine = NULL;
	size_t n = 0;

	a->gone = 1;
	a->pinned = 1;
	hmap_del(q->agents_by_hash, a->hash_hex);
	for (struct qwaiter *w = a->pool->w_head, *next; w; w = next) {
		next = w->next;
		if (w->agent != a)
			continue;
		lease_waiter_cancel(w);
		w->status = -EPERM;
		w->wake(w);
	}
	while ((l = hmap_next(q->leases, &it)) != NULL)
		if (l->agent == a) {
			mine = xreallocarray(mine, n + 1, sizeof(*mine));
			mine[n++] = l;
		}
	for (size_t i = 0; i < n; i++)
		if (lease_expire(q, mine[i], mine[i]->acked ? LK_TTL : LK_ACK) < 0)
			log_error("cannot end a lease of a leaving agent; its timer "
			    "will", "lease=%s", mine[i]->id);
	free(mine);
	log_info("agent gone", "agent=%s state=%s", a->id, state);
	a->pinned = 0;
	agents_release(q, a);
}

int agents_deregister(struct queue *q, struct qagent *a, struct apierr *e)
{
	int r = store_exec(q->st, SQL_AGENT_SET_STATE, "tt", "deregistered",
	    a->id);

	if (r < 0)
		return queue_store_err(q, r, e);
	drop_agent(q, a, "deregistered");
	return 0;
}

struct state_row {
	int found;
};

static int found_row(sqlite3_stmt *row, void *arg)
{
	(void)row;
	((struct state_row *)arg)->found = 1;
	return 1;
}

int agents_revoke(struct queue *q, const char *id, struct apierr *e)
{
	struct qagent *a = hmap_get(q->agents, id);
	struct state_row sr = { 0 };
	int r;

	if (a == NULL || a->gone) {
		r = store_query(q->st, SQL_AGENT_GET, found_row, &sr, "t", id);
		if (r < 0)
			return queue_store_err(q, r, e);
		return sr.found ? 0 : apierr_notfound(e, "no agent '%s'", id);
	}
	if ((r = store_exec(q->st, SQL_AGENT_SET_STATE, "tt", "revoked", id)) < 0)
		return queue_store_err(q, r, e);
	drop_agent(q, a, "revoked");
	return 0;
}

/* ---- listing ---- */

static const char *live_state(const struct queue *q, const struct qagent *a,
    int64_t now)
{
	if (a == NULL || a->gone)
		return "gone";
	if (a->nleases > 0)
		return "busy";
	return agents_seen_within(q, a, now) ? "idle" : "gone";
}

static cJSON *jobs_of(struct queue *q, const struct qagent *a)
{
	struct hmap_iter it = { 0 };
	struct qlease *l;
	cJSON *arr = cJSON_CreateArray();

	while (a && (l = hmap_next(q->leases, &it)) != NULL)
		if (l->agent == a)
			cJSON_AddItemToArray(arr, cJSON_CreateString(l->job->id));
	return arr;
}

static void add_labels(cJSON *o, const char *json)
{
	char **v;
	size_t n;
	cJSON *arr = cJSON_CreateArray();

	if (queue_strv_parse(json, 1 << 10, &v, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
		queue_strv_free(v, n);
	}
	cJSON_AddItemToObject(o, "labels", arr);
}

static int agent_row(sqlite3_stmt *row, void *arg)
{
	struct queue *q = *(struct queue **)arg;
	cJSON *list = ((cJSON **)arg)[1], *o = cJSON_CreateObject();
	const char *id = store_text(row, 0);
	struct qagent *a = hmap_get(q->agents, id);
	int64_t now = queue_now();

	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "name", store_text(row, 1));
	cJSON_AddStringToObject(o, "pool", store_text(row, 2));
	add_labels(o, store_text(row, 3));
	cJSON_AddNumberToObject(o, "capacity", sqlite3_column_int(row, 4));
	cJSON_AddStringToObject(o, "version", store_text(row, 5));
	cJSON_AddStringToObject(o, "state", live_state(q, a, now));
	cJSON_AddItemToObject(o, "jobs", jobs_of(q, a));
	cJSON_AddNumberToObject(o, "registered",
	    (double)sqlite3_column_int64(row, 6));
	cJSON_AddNumberToObject(o, "last_seen", (double)(a ? a->last_seen :
	    sqlite3_column_int64(row, 7)));
	cJSON_AddItemToArray(list, o);
	return 0;
}

int agents_list(struct queue *q, const char *pool, cJSON **out,
    struct apierr *e)
{
	cJSON *list = cJSON_CreateArray();
	void *ctx[2] = { q, list };
	int r = store_query(q->st, SQL_AGENTS_LIST, agent_row, ctx, "t", pool);

	if (r < 0) {
		cJSON_Delete(list);
		return queue_store_err(q, r, e);
	}
	*out = cJSON_CreateObject();
	cJSON_AddItemToObject(*out, "agents", list);
	return 0;
}

/* ---- registration tokens ---- */

int agents_token_add(struct queue *q, const char *pool, const char *token,
    const char *description)
{
	char id[ID_MAX + 1];
	unsigned char h[TOKEN_HASH_BYTES];
	int r;

	token_id_new("tok_", id);
	token_hash(token, strlen(token), h);
	r = store_exec(q->st, SQL_TOKEN_INSERT, "ttbti", id, pool, h, sizeof(h),
	    description, queue_now());
	return r == -EEXIST ? 0 : r;
}

/* pool NULL: a viewer token (viewers.c checks and revokes those). */
int agents_token_create(struct queue *q, const char *pool,
    const char *description, cJSON **out, struct apierr *e)
{
	char id[ID_MAX + 1];
	unsigned char h[TOKEN_HASH_BYTES];
	char *token;
	int64_t now = queue_now();
	int r;

	if (pool && !route_pool_valid(pool))
		return apierr_bad(e, "pool must match [A-Za-z0-9_.:-]{1,128}");
	token_id_new("tok_", id);
	token = token_new(pool ? "srt_" : "svw_");
	token_hash(token, strlen(token), h);
	r = pool ? store_exec(q->st, SQL_TOKEN_INSERT, "ttbti", id, pool, h,
	    sizeof(h), description, now) : store_exec(q->st, SQL_VIEWER_INSERT,
	    "tbti", id, h, sizeof(h), description, now);
	if (r == 0) {
		*out = cJSON_CreateObject();
		cJSON_AddStringToObject(*out, "id", id);
		if (pool)
			cJSON_AddStringToObject(*out, "pool", pool);
		cJSON_AddStringToObject(*out, "token", token);
		cJSON_AddStringToObject(*out, "description", description);
		cJSON_AddNumberToObject(*out, "created", (double)now);
		log_info(pool ? "registration token created" : "viewer token "
		    "created", "id=%s pool=%s", id, logq(pool ? pool : "-"));
	}
	sodium_memzero(token, strlen(token));
	free(token);
	return r < 0 ? queue_store_err(q, r, e) : 0;
}

/* A viewer token's row has no pool (NULL). */
static int token_row(sqlite3_stmt *row, void *arg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", store_text(row, 0));
	if (!store_null(row, 1))
		cJSON_AddStringToObject(o, "pool", store_text(row, 1));
	cJSON_AddStringToObject(o, "description", store_text(row, 2));
	cJSON_AddNumberToObject(o, "created",
	    (double)sqlite3_column_int64(row, 3));
	if (store_null(row, 4))
		cJSON_AddNullToObject(o, "revoked");
	else
		cJSON_AddNumberToObject(o, "revoked",
		    (double)sqlite3_column_int64(row, 4));
	cJSON_AddItemToArray(arg, o);
	return 0;
}

/* pool NULL: the viewer tokens. */
int agents_token_list(struct queue *q, const char *pool, cJSON **out,
    struct apierr *e)
{
	cJSON *list = cJSON_CreateArray();
	int r;

	if (pool && !route_pool_valid(pool)) {
		cJSON_Delete(list);
		return apierr_bad(e, "pool must match [A-Za-z0-9_.:-]{1,128}");
	}
	r = pool ? store_query(q->st, SQL_TOKEN_LIST, token_row, list, "t",
	    pool) : store_query(q->st, SQL_VIEWER_LIST, token_row, list, NULL);
	if (r < 0) {
		cJSON_Delete(list);
		return queue_store_err(q, r, e);
	}
	*out = cJSON_CreateObject();
	cJSON_AddItemToObject(*out, "tokens", list);
	return 0;
}

struct idlist {
	char (*v)[ID_MAX + 1];
	size_t n;
};

static int id_row(sqlite3_stmt *row, void *arg)
{
	struct idlist *l = arg;

	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	snprintf(l->v[l->n++], ID_MAX + 1, "%s", store_text(row, 0));
	return 0;
}

/* Revoking a registration token revokes the agents it registered. */
int agents_token_revoke(struct queue *q, const char *id, struct apierr *e)
{
	struct state_row sr = { 0 };
	struct idlist agents = { NULL, 0 };
	int r = store_exec(q->st, SQL_TOKEN_REVOKE, "it", queue_now(), id);

	if (r == 0 && store_changes(q->st) == 0) {
		r = store_query(q->st, SQL_TOKEN_GET, found_row, &sr, "t", id);
		if (r == 0 && !sr.found) {
			/* Viewer tokens share the tok_ ids and this endpoint. */
			if ((r = viewers_revoke(q, id, e)) != 0)
				return r < 0 ? r : 0;
			return apierr_notfound(e, "no token '%s'", id);
		}
	}
	if (r == 0)
		r = store_query(q->st, SQL_AGENTS_OF_TOKEN, id_row, &agents, "t",
		    id);
	if (r < 0) {
		free(agents.v);
		return queue_store_err(q, r, e);
	}
	for (size_t i = 0; i < agents.n && r == 0; i++)
		r = agents_revoke(q, agents.v[i], e);
	free(agents.v);
	if (r == 0)
		log_info("registration token revoked", "id=%s agents=%zu", id,
		    agents.n);
	return r;
}

/* ---- start ---- */

static int load_row(sqlite3_stmt *row, void *arg)
{
	struct queue *q = arg;
	struct qagent *a = xcalloc(1, sizeof(*a));

	snprintf(a->id, sizeof(a->id), "%s", store_text(row, 0));
	if (sqlite3_column_bytes(row, 1) != TOKEN_HASH_BYTES ||
	    queue_strv_parse(store_text(row, 4), REQJ_MAX_AGENT_LABELS,
	    &a->labels, &a->nlabels) < 0) {
		log_error("agent row is damaged; skipped", "agent=%s", a->id);
		agents_free(a);
		return 0;
	}
	memcpy(a->hash, sqlite3_column_blob(row, 1), TOKEN_HASH_BYTES);
	a->name = xstrdup(store_text(row, 2));
	a->pool = queue_pool(q, store_text(row, 3));
	a->capacity = sqlite3_column_int(row, 5);
	a->last_seen = a->last_seen_saved = sqlite3_column_int64(row, 8);
	snprintf(a->reg_token, sizeof(a->reg_token), "%s", store_text(row, 9));
	index_agent(q, a);
	return 0;
}

int agents_load(struct queue *q)
{
	return store_query(q->st, SQL_AGENTS_ACTIVE, load_row, q, NULL);
}
