/*
 * Caches that outlive the VM (docs/protocol.md 4.9): per pool, a key
 * saved once, restored by key or by a key prefix, evicted least recently
 * used past the pool's cap.
 *
 * Saving is an artifact upload (artifacts.c does PUT, resume, SHA-256
 * and commit) whose row's job is "cache:" and 32 hex digits of the
 * pool's SHA-256 (no job id has a ':'), with attempt 0 and the key as the
 * name: UNIQUE (job, attempt, name) keeps one upload per key and pool.
 * Its bytes are <data>/caches/<upload id>, beside no job's, so retention
 * never touches them. The commit moves the row from uploads to caches.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "apierr.h"
#include "b64.h"
#include "config.h"
#include "fsx.h"
#include "job.h"
#include "log.h"
#include "reqjson.h"
#include "store.h"
#include "xalloc.h"

#define CACHE_JOB_PREFIX "cache:"
#define EVICT_MAX 1000		/* caches evicted by one commit at most */
#define SWEEP_MAX 64		/* abandoned uploads dropped by one create */

int caches_is_job(const char *job)
{
	return strncmp(job, CACHE_JOB_PREFIX, 6) == 0;
}

char *caches_file(struct queue *q, const char *id)
{
	return xasprintf("%s/caches/%s", q->dir, id);
}

static void cache_job(const char *pool, char out[ID_MAX + 1])
{
	unsigned char d[32];
	char hex[65];

	crypto_hash_sha256(d, (const unsigned char *)pool, strlen(pool));
	hex_encode(d, sizeof(d), hex);
	snprintf(out, ID_MAX + 1, "%s%.32s", CACHE_JOB_PREFIX, hex);
}

struct crow {
	int found;
	char id[ID_MAX + 1];
	char key[256];
	int64_t size;
	char sha[65];
	char pool[130];
};

static int crow_cb(sqlite3_stmt *row, void *arg)
{
	struct crow *c = arg;

	c->found = 1;
	snprintf(c->id, sizeof(c->id), "%s", store_text(row, 0));
	snprintf(c->key, sizeof(c->key), "%s", store_text(row, 1));
	c->size = sqlite3_column_int64(row, 2);
	snprintf(c->sha, sizeof(c->sha), "%s", store_text(row, 3));
	if (sqlite3_column_count(row) > 4)
		snprintf(c->pool, sizeof(c->pool), "%s", store_text(row, 4));
	return 1;
}

/* An upload row: id, job, attempt, lease, name, size, state, sha256. */
struct urow {
	int found;
	char id[ID_MAX + 1];
	char lease[ID_MAX + 1];
	int64_t size;
};

static int urow_cb(sqlite3_stmt *row, void *arg)
{
	struct urow *u = arg;

	u->found = 1;
	snprintf(u->id, sizeof(u->id), "%s", store_text(row, 0));
	snprintf(u->lease, sizeof(u->lease), "%s", store_text(row, 3));
	u->size = sqlite3_column_int64(row, 5);
	return 1;
}

static int id_cb(sqlite3_stmt *row, void *arg)
{
	snprintf(arg, ID_MAX + 1, "%s", store_text(row, 0));
	return 1;
}

static int64_t file_size(struct queue *q, const char *id)
{
	char *p = caches_file(q, id);
	struct stat st;
	int r = stat(p, &st);

	free(p);
	return r == 0 ? (int64_t)st.st_size : 0;
}

static void remove_file(struct queue *q, const char *id);

static int total_cb(sqlite3_stmt *row, void *arg)
{
	*(int64_t *)arg = sqlite3_column_int64(row, 0);
	return 1;
}

/* An uncommitted upload's file: its bytes were counted as stored
 * (artifacts.c counts what a PUT writes) and go with it. */
static void remove_upload_file(struct queue *q, const char *id)
{
	int64_t had = file_size(q, id);

	q->artifact_bytes -= had < q->artifact_bytes ? had : q->artifact_bytes;
	remove_file(q, id);
}

static void remove_file(struct queue *q, const char *id)
{
	char *p = caches_file(q, id);

	if (unlink(p) < 0 && errno != ENOENT)
		log_warn("cache file not removed", "id=%s error=%s", id,
		    logq(strerror(errno)));
	free(p);
}

struct idlist {
	char ids[SWEEP_MAX][ID_MAX + 1];
	size_t n;
};

static int idlist_cb(sqlite3_stmt *row, void *arg)
{
	struct idlist *l = arg;

	if (l->n >= SWEEP_MAX)
		return 1;
	snprintf(l->ids[l->n++], ID_MAX + 1, "%s", store_text(row, 0));
	return 0;
}

/* Drops the pool's cache uploads whose lease ended uncommitted (a job
 * that failed or was lost mid-upload), so that their files do not stay
 * until someone saves the same key. At most SWEEP_MAX a call. */
static void sweep_abandoned(struct queue *q, const char *job,
    const char *keep_lease)
{
	struct idlist *l = xcalloc(1, sizeof(*l));

	if (store_query(q->st, SQL_UPLOADS_OF_JOB, idlist_cb, l, "t", job) < 0)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		struct urow u = { 0 };
		if (store_query(q->st, SQL_UPLOAD_GET, urow_cb, &u, "t",
		    l->ids[i]) < 0 || !u.found || strcmp(u.lease, keep_lease) == 0 ||
		    lease_find(q, u.lease) != NULL)
			continue;
		art_forget_upload(q, u.id);
		if (store_exec(q->st, SQL_UPLOAD_DELETE, "t", u.id) == 0)
			remove_upload_file(q, u.id);
	}
out:
	free(l);
}

static cJSON *exists_answer(const char *key)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "exists", 1);
	cJSON_AddStringToObject(o, "key", key);
	return o;
}

int caches_create(struct queue *q, struct qagent *a, const char *lease_id,
    const struct reqj_cache *req, int *status, cJSON **out,
    struct apierr *e)
{
	const struct qcfg *c = q->cfg;
	struct qlease *l;
	struct crow have = { 0 };
	struct urow up = { 0 };
	char job[ID_MAX + 1], id[ID_MAX + 1] = "";
	const char *pool;
	int r, fd;
	char *dir, *p;

	if (lease_get(q, a, lease_id, &l, e) < 0)
		return -1;
	pool = l->job->pool->name;
	if ((r = store_query(q->st, SQL_CACHE_GET, crow_cb, &have, "tt", pool,
	    req->key)) < 0)
		return queue_store_err(q, r, e);
	if (have.found) {
		*status = 200;
		*out = exists_answer(req->key);
		return 0;
	}
	cache_job(pool, job);
	sweep_abandoned(q, job, l->id);
	if ((r = store_query(q->st, SQL_UPLOAD_BY_NAME, id_cb, id, "tit", job,
	    (int64_t)0, req->key)) < 0)
		return queue_store_err(q, r, e);
	if (id[0] && (r = store_query(q->st, SQL_UPLOAD_GET, urow_cb, &up, "t",
	    id)) < 0)
		return queue_store_err(q, r, e);
	if (up.found && strcmp(up.lease, l->id) == 0) {
		/* This lease again (a retry): its upload and offset. */
		if (up.size != req->size)
			return apierr_conflict(e, "cache '%s' is being saved with size "
			    "%lld", req->key, (long long)up.size);
		*status = 200;
		*out = cJSON_CreateObject();
		cJSON_AddStringToObject(*out, "upload", up.id);
		cJSON_AddNumberToObject(*out, "offset", (double)file_size(q, up.id));
		return 0;
	}
	if (up.found && lease_find(q, up.lease) != NULL) {
		/* Another job saves the same key right now: it wins. */
		*status = 200;
		*out = exists_answer(req->key);
		cJSON_AddBoolToObject(*out, "saving", 1);
		return 0;
	}
	if (up.found) {
		/* Left by a lease that ended: it never will be committed. */
		art_forget_upload(q, up.id);
		if ((r = store_exec(q->st, SQL_UPLOAD_DELETE, "t", up.id)) < 0)
			return queue_store_err(q, r, e);
		remove_upload_file(q, up.id);
	}
	/* An agent saves its job's caches one after the other: more open at
	 * once is an agent filling the disk past every cap. */
	int64_t open_n = 0;
	if ((r = store_query(q->st, SQL_CACHE_OPEN_OF_LEASE, total_cb, &open_n,
	    "tt", job, l->id)) < 0)
		return queue_store_err(q, r, e);
	if (open_n >= JOB_MAX_CACHES)
		return apierr_conflict(e, "the lease already has %lld caches being "
		    "saved", (long long)open_n);
	if (req->size > c->max_cache)
		return apierr_too_large(e, c->max_cache, "cache of %lld bytes is "
		    "over the per-cache cap", (long long)req->size);
	if (req->size > c->max_cache_pool)
		return apierr_too_large(e, c->max_cache_pool, "cache of %lld bytes "
		    "is over the pool's cap", (long long)req->size);
	token_id_new("upl_", id);
	dir = xasprintf("%s/caches", q->dir);
	r = fsx_mkdir_p(dir, 0700);
	free(dir);
	if (r == 0) {
		p = caches_file(q, id);
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		r = fd < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
		free(p);
	}
	if (r < 0)
		return r == -ENOSPC ? apierr_set(e, 503, "unavailable", "the "
		    "queue's disk is full") : apierr_internal(e, "the queue could "
		    "not create the cache file");
	r = store_exec(q->st, SQL_UPLOAD_INSERT, "ttittii", id, job, (int64_t)0,
	    l->id, req->key, req->size, queue_now());
	if (r < 0) {
		remove_file(q, id);
		return queue_store_err(q, r, e);
	}
	log_info("cache upload created", "pool=%s key=%s upload=%s size=%lld",
	    logq(pool), logq(req->key), id, (long long)req->size);
	*status = 201;
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "upload", id);
	cJSON_AddNumberToObject(*out, "offset", 0);
	return 0;
}

static int evict(struct queue *q, const char *pool, const char *keep)
{
	int64_t total = 0;
	int r;

	for (int i = 0; i < EVICT_MAX; i++) {
		struct crow lru = { 0 };
		if ((r = store_query(q->st, SQL_CACHE_TOTAL, total_cb, &total, "t",
		    pool)) < 0)
			return r;
		if (total <= q->cfg->max_cache_pool)
			return 0;
		if ((r = store_query(q->st, SQL_CACHE_LRU, crow_cb, &lru, "t",
		    pool)) < 0)
			return r;
		if (!lru.found || strcmp(lru.id, keep) == 0)
			return 0;
		if ((r = store_exec(q->st, SQL_CACHE_DELETE, "t", lru.id)) < 0)
			return r;
		remove_file(q, lru.id);
		log_info("cache evicted", "pool=%s key=%s id=%s size=%lld",
		    logq(pool), logq(lru.key), lru.id, (long long)lru.size);
	}
	return 0;
}

int caches_committed(struct queue *q, const char *pool, const char *key,
    const char *id, int64_t size, const char *sha256, struct apierr *e)
{
	int r;

	if ((r = store_begin(q->st)) < 0)
		return queue_store_err(q, r, e);
	r = store_exec(q->st, SQL_CACHE_INSERT, "tttiti", id, pool, key, size,
	    sha256, queue_now_ms());
	if (r == 0)
		r = store_exec(q->st, SQL_UPLOAD_DELETE, "t", id);
	if (r == 0)
		r = store_commit(q->st);
	else
		store_rollback(q->st);
	if (r < 0) {
		return queue_store_err(q, r, e);
	}
	/* The bytes are a cache's now, not an upload's. */
	q->artifact_bytes -= size;
	log_info("cache saved", "pool=%s key=%s id=%s size=%lld", logq(pool),
	    logq(key), id, (long long)size);
	if ((r = evict(q, pool, id)) < 0)
		log_error("cache eviction failed", "pool=%s error=%s", logq(pool),
		    logq(strerror(-r)));
	return 0;
}

static cJSON *found_answer(const struct crow *c)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cache", c->id);
	cJSON_AddStringToObject(o, "key", c->key);
	cJSON_AddNumberToObject(o, "size", (double)c->size);
	cJSON_AddStringToObject(o, "sha256", c->sha);
	return o;
}

int caches_find(struct queue *q, struct qagent *a, const char *lease_id,
    const struct reqj_cache *req, cJSON **out, struct apierr *e)
{
	struct qlease *l;
	struct crow c = { 0 };
	const char *pool;
	int r;

	if (lease_get(q, a, lease_id, &l, e) < 0)
		return -1;
	pool = l->job->pool->name;
	r = store_query(q->st, SQL_CACHE_GET, crow_cb, &c, "tt", pool, req->key);
	for (size_t i = 0; r == 0 && !c.found && i < req->nrestore; i++)
		r = store_query(q->st, SQL_CACHE_PREFIX, crow_cb, &c, "tt", pool,
		    req->restore[i]);
	if (r == 0 && c.found)
		r = store_exec(q->st, SQL_CACHE_TOUCH, "tti", c.id, pool,
		    queue_now_ms());
	if (r < 0)
		return queue_store_err(q, r, e);
	if (!c.found) {
		*out = cJSON_CreateObject();
		cJSON_AddNullToObject(*out, "cache");
		return 0;
	}
	*out = found_answer(&c);
	return 0;
}

int caches_open(struct queue *q, struct qagent *a, const char *lease_id,
    const char *id, int *fd, int64_t *size, char sha256[65],
    struct apierr *e)
{
	struct qlease *l;
	struct crow c = { 0 };
	char *p;
	int r;

	if (lease_get(q, a, lease_id, &l, e) < 0)
		return -1;
	if ((r = store_query(q->st, SQL_CACHE_BY_ID, crow_cb, &c, "t", id)) < 0)
		return queue_store_err(q, r, e);
	/* Another pool's cache is not there for this agent. A 404 on a
	 * lease-scoped path would read as the lease gone: 403 instead. */
	if (!c.found || strcmp(c.pool, l->job->pool->name) != 0)
		return apierr_set(e, 403, "forbidden", "no cache '%s' in this "
		    "pool", id);
	p = caches_file(q, id);
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (*fd < 0)
		return apierr_internal(e, "the queue could not open cache '%s'", id);
	*size = c.size;
	memcpy(sha256, c.sha, 65);
	return 0;
}

static int list_cb(sqlite3_stmt *row, void *arg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", store_text(row, 0));
	cJSON_AddStringToObject(o, "key", store_text(row, 1));
	cJSON_AddNumberToObject(o, "size", (double)sqlite3_column_int64(row, 2));
	cJSON_AddStringToObject(o, "sha256", store_text(row, 3));
	cJSON_AddNumberToObject(o, "created",
	    (double)(sqlite3_column_int64(row, 4) / 1000));
	cJSON_AddNumberToObject(o, "last_used",
	    (double)(sqlite3_column_int64(row, 5) / 1000));
	cJSON_AddItemToArray(arg, o);
	return 0;
}

int caches_list(struct queue *q, const char *pool, cJSON **out,
    struct apierr *e)
{
	cJSON *list = cJSON_CreateArray();
	int64_t total = 0;
	int r = store_query(q->st, SQL_CACHE_LIST, list_cb, list, "t", pool);

	if (r == 0)
		r = store_query(q->st, SQL_CACHE_TOTAL, total_cb, &total, "t", pool);
	if (r < 0) {
		cJSON_Delete(list);
		return queue_store_err(q, r, e);
	}
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "pool", pool);
	cJSON_AddNumberToObject(*out, "bytes", (double)total);
	cJSON_AddNumberToObject(*out, "limit", (double)q->cfg->max_cache_pool);
	cJSON_AddItemToObject(*out, "caches", list);
	return 0;
}

int caches_delete(struct queue *q, const char *pool, const char *id,
    struct apierr *e)
{
	struct crow c = { 0 };
	int r;

	if ((r = store_query(q->st, SQL_CACHE_BY_ID, crow_cb, &c, "t", id)) < 0)
		return queue_store_err(q, r, e);
	if (!c.found || strcmp(c.pool, pool) != 0)
		return apierr_notfound(e, "pool '%s' has no cache '%s'", pool, id);
	if ((r = store_exec(q->st, SQL_CACHE_DELETE, "t", id)) < 0)
		return queue_store_err(q, r, e);
	remove_file(q, id);
	log_info("cache deleted", "pool=%s key=%s id=%s", logq(pool),
	    logq(c.key), id);
	return 0;
}

static int sum_cb(sqlite3_stmt *row, void *arg)
{
	*(int64_t *)arg = sqlite3_column_int64(row, 0);
	return 1;
}

void caches_count_bytes(struct queue *q)
{
	int64_t n = 0;

	if (store_query(q->st, SQL_CACHES_BYTES, sum_cb, &n, "") == 0)
		q->cache_bytes = n;
}
