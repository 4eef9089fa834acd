/*
 * Artifact uploads (docs/protocol.md sections 4.5 and 5.4): create with
 * the caps checked before a byte is sent, PUT at an offset streamed to
 * disk in constant memory (optionally gzip, inflated with the remaining
 * size as its cap), and commit against the SHA-256 of what was stored.
 *
 * Files are <data>/artifacts/<job>/<upload id>: the name an agent gives
 * is only a database value, never part of a path. The file's size is the
 * upload's offset. The running SHA-256 of the bytes so far is kept in
 * memory; after a restart it is recomputed from the file once.
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
#include "gz.h"
#include "hmap.h"
#include "log.h"
#include "reqjson.h"
#include "store.h"
#include "xalloc.h"

struct qupload {
	char id[ID_MAX + 1];
	char job[ID_MAX + 1];
	int attempt;
	char lease[ID_MAX + 1];
	char name[256];
	int64_t size;
	int committed;
	char sha256[65];
	crypto_hash_sha256_state sha;
	int64_t hashed;		/* bytes covered by sha; -1: not computed */
	int busy;		/* a PUT is streaming into it */
	int orphan;		/* out of the map; freed when the PUT ends */
};

struct art_put {
	struct queue *q;
	struct qupload *u;
	int fd;
	struct gz *gz;
	int64_t start, pos;
	crypto_hash_sha256_state sha_at_start;
	struct apierr err;	/* why the sink stopped */
};

static char *file_path(struct queue *q, const char *job, const char *id)
{
	/* A cache's upload (caches.c) lives with the caches, not the job. */
	if (caches_is_job(job))
		return caches_file(q, id);
	return xasprintf("%s/artifacts/%s/%s", q->dir, job, id);
}

static int64_t file_size(struct queue *q, const struct qupload *u)
{
	char *p = file_path(q, u->job, u->id);
	struct stat st;
	int r = stat(p, &st);

	free(p);
	return r == 0 ? (int64_t)st.st_size : 0;
}

static int store_fail(struct queue *q, int r, struct apierr *e)
{
	return queue_store_err(q, r, e);
}

static int io_fail(int r, const char *what, struct apierr *e)
{
	log_error("artifact I/O failed", "what=%s error=%s", what,
	    logq(strerror(-r)));
	if (r == -ENOSPC) {
		apierr_set(e, 503, "unavailable", "the queue's disk is full");
		e->retry_after = 30;
		return -1;
	}
	return apierr_internal(e, "the queue could not %s the artifact", what);
}

/* ---- the in-memory state of an upload ---- */

static int upload_row(sqlite3_stmt *row, void *arg)
{
	struct qupload *u = arg;

	snprintf(u->id, sizeof(u->id), "%s", store_text(row, 0));
	snprintf(u->job, sizeof(u->job), "%s", store_text(row, 1));
	u->attempt = sqlite3_column_int(row, 2);
	snprintf(u->lease, sizeof(u->lease), "%s", store_text(row, 3));
	snprintf(u->name, sizeof(u->name), "%s", store_text(row, 4));
	u->size = sqlite3_column_int64(row, 5);
	u->committed = strcmp(store_text(row, 6), "committed") == 0;
	snprintf(u->sha256, sizeof(u->sha256), "%s", store_text(row, 7));
	return 1;
}

static int load_upload(struct queue *q, const char *id, struct qupload **out,
    struct apierr *e)
{
	struct qupload *u = hmap_get(q->uploads, id);
	int r;

	if (u) {
		*out = u;
		return 0;
	}
	u = xcalloc(1, sizeof(*u));
	u->hashed = -1;
	r = store_query(q->st, SQL_UPLOAD_GET, upload_row, u, "t", id);
	if (r < 0 || u->id[0] == '\0') {
		free(u);
		return r < 0 ? store_fail(q, r, e) :
		    apierr_notfound(e, "no upload '%s'", id);
	}
	hmap_put(q->uploads, u->id, u);
	*out = u;
	return 0;
}

static void upload_drop(struct queue *q, struct qupload *u)
{
	hmap_del(q->uploads, u->id);
	if (u->busy)
		u->orphan = 1;
	else
		free(u);
}

void art_forget_upload(struct queue *q, const char *id)
{
	struct qupload *u = hmap_get(q->uploads, id);

	if (u)
		upload_drop(q, u);
}

/* A cache's upload belongs to the job of its lease (or to none, when
 * that lease is gone): it goes from memory with that job. */
static int cache_upload_of(struct queue *q, const struct qupload *u,
    const char *job)
{
	struct qlease *l = lease_find(q, u->lease);

	return l == NULL || strcmp(l->job->id, job) == 0;
}

void art_forget_job(struct queue *q, const char *job)
{
	struct hmap_iter it = { 0 };
	struct qupload *u, **v = NULL;
	size_t n = 0;

	while ((u = hmap_next(q->uploads, &it)) != NULL)
		if (strcmp(u->job, job) == 0 || (caches_is_job(u->job) &&
		    cache_upload_of(q, u, job))) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n++] = u;
		}
	for (size_t i = 0; i < n; i++)
		upload_drop(q, v[i]);
	free(v);
}

void art_close(struct queue *q)
{
	struct hmap_iter it = { 0 };
	struct qupload *u = NULL;

	while ((u = hmap_next(q->uploads, &it)) != NULL)
		free(u);
	hmap_free(q->uploads);
	q->uploads = NULL;
}

/* The upload belongs to the caller's lease, which is still active. */
static int check_owner(struct queue *q, struct qagent *a,
    const struct qupload *u, struct apierr *e)
{
	struct qlease *l;

	return lease_get(q, a, u->lease, &l, e);
}

/* Brings the running SHA-256 up to the file's first len bytes. */
static int rehash(struct queue *q, struct qupload *u, int64_t len)
{
	char *p = file_path(q, u->job, u->id);
	unsigned char chunk[65536];
	int64_t done = 0;
	int r = 0, fd = open(p, O_RDONLY | O_CLOEXEC);

	free(p);
	if (fd < 0)
		return -errno;
	crypto_hash_sha256_init(&u->sha);
	while (done < len) {
		size_t want = len - done < (int64_t)sizeof(chunk) ?
		    (size_t)(len - done) : sizeof(chunk);
		ssize_t got = read(fd, chunk, want);
		if (got <= 0) {
			r = got < 0 ? -errno : -EIO;
			break;
		}
		crypto_hash_sha256_update(&u->sha, chunk, (size_t)got);
		done += got;
	}
	close(fd);
	u->hashed = r == 0 ? len : -1;
	return r;
}

/* ---- create ---- */

static cJSON *upload_answer(const struct qupload *u, int64_t offset)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "upload", u->id);
	if (u->committed)
		cJSON_AddBoolToObject(o, "complete", 1);
	else
		cJSON_AddNumberToObject(o, "offset", (double)offset);
	return o;
}

struct totals {
	int64_t count, bytes;
};

static int totals_row(sqlite3_stmt *row, void *arg)
{
	struct totals *t = arg;

	t->count = sqlite3_column_int64(row, 0);
	t->bytes = sqlite3_column_int64(row, 1);
	return 1;
}

static int check_caps(struct queue *q, const struct qlease *l, int64_t size,
    struct apierr *e)
{
	struct totals t = { 0, 0 };
	const struct qcfg *c = q->cfg;
	int r;

	if (size > c->max_artifact)
		return apierr_too_large(e, c->max_artifact, "artifact of %lld bytes "
		    "is over the per-file cap", (long long)size);
	if ((r = store_query(q->st, SQL_UPLOAD_TOTALS, totals_row, &t, "ti",
	    l->job->id, (int64_t)l->attempt)) < 0)
		return store_fail(q, r, e);
	if (t.count + 1 > c->max_artifact_count)
		return apierr_too_large(e, c->max_artifact_count, "the job already "
		    "has %lld artifacts", (long long)t.count);
	if (size > c->max_artifacts_total - t.bytes)
		return apierr_too_large(e, c->max_artifacts_total, "the job's "
		    "artifacts would pass %lld bytes in all",
		    (long long)c->max_artifacts_total);
	return 0;
}

static int create_file(struct queue *q, const struct qupload *u)
{
	char *dir = caches_is_job(u->job) ? xasprintf("%s/caches", q->dir) :
	    xasprintf("%s/artifacts/%s", q->dir, u->job);
	char *p = file_path(q, u->job, u->id);
	int fd, r = fsx_mkdir_p(dir, 0700);

	if (r == 0) {
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		r = fd < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
	}
	free(dir);
	free(p);
	return r;
}

static int new_upload(struct queue *q, const struct qlease *l,
    const struct reqj_artifact *req, struct qupload **out, struct apierr *e)
{
	struct qupload *u = xcalloc(1, sizeof(*u));
	int r;

	token_id_new("upl_", u->id);
	snprintf(u->job, sizeof(u->job), "%s", l->job->id);
	u->attempt = l->attempt;
	snprintf(u->lease, sizeof(u->lease), "%s", l->id);
	snprintf(u->name, sizeof(u->name), "%s", req->name);
	u->size = req->size;
	crypto_hash_sha256_init(&u->sha);
	if ((r = create_file(q, u)) < 0) {
		free(u);
		return io_fail(r, "create", e);
	}
	r = store_exec(q->st, SQL_UPLOAD_INSERT, "ttittii", u->id, u->job,
	    (int64_t)u->attempt, u->lease, u->name, u->size, queue_now());
	if (r < 0) {
		free(u);
		return store_fail(q, r, e);
	}
	hmap_put(q->uploads, u->id, u);
	*out = u;
	return 0;
}

struct by_name {
	char id[ID_MAX + 1];
};

static int by_name_row(sqlite3_stmt *row, void *arg)
{
	snprintf(((struct by_name *)arg)->id, ID_MAX + 1, "%s",
	    store_text(row, 0));
	return 1;
}

int art_create(struct queue *q, struct qagent *a, const char *lease_id,
    const struct reqj_artifact *req, int *status, cJSON **out,
    struct apierr *e)
{
	struct by_name bn = { "" };
	struct qlease *l;
	struct qupload *u = NULL;
	int r;

	if (lease_get(q, a, lease_id, &l, e) < 0)
		return -1;
	r = store_query(q->st, SQL_UPLOAD_BY_NAME, by_name_row, &bn, "tit",
	    l->job->id, (int64_t)l->attempt, req->name);
	if (r < 0)
		return store_fail(q, r, e);
	if (bn.id[0]) {
		/* The same name again: the existing upload and its offset. */
		if (load_upload(q, bn.id, &u, e) < 0)
			return -1;
		if (u->size != req->size)
			return apierr_conflict(e, "artifact '%s' exists with size %lld",
			    req->name, (long long)u->size);
		*status = 200;
		*out = upload_answer(u, file_size(q, u));
		return 0;
	}
	if (check_caps(q, l, req->size, e) < 0 || new_upload(q, l, req, &u, e) < 0)
		return -1;
	log_info("artifact upload created", "job=%s upload=%s name=%s size=%lld",
	    u->job, u->id, logq(u->name), (long long)u->size);
	*status = 201;
	*out = upload_answer(u, 0);
	return 0;
}

/* ---- PUT ---- */

static int usable(struct queue *q, struct qagent *a, const char *id,
    struct qupload **out, struct apierr *e)
{
	struct qupload *u = NULL;

	if (load_upload(q, id, &u, e) < 0 || check_owner(q, a, u, e) < 0)
		return -1;
	if (u->busy) {
		apierr_set(e, 429, "too_many_requests", "another PUT to upload "
		    "'%s' is in progress", id);
		e->retry_after = 1;
		return -1;
	}
	*out = u;
	return 0;
}

static int open_put(struct queue *q, struct qupload *u, int64_t cur,
    int gzip, struct art_put **out, struct apierr *e)
{
	char *p = file_path(q, u->job, u->id);
	struct art_put *put = xcalloc(1, sizeof(*put));
	int r = 0;

	put->fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	free(p);
	if (put->fd < 0)
		r = -errno;
	if (r == 0 && u->hashed != cur)
		r = rehash(q, u, cur);
	if (r == 0 && gzip)
		r = gz_new((uint64_t)(u->size - cur), &put->gz);
	if (r < 0) {
		if (put->fd >= 0)
			close(put->fd);
		free(put);
		return io_fail(r, "open", e);
	}
	put->q = q;
	put->u = u;
	put->start = put->pos = cur;
	put->sha_at_start = u->sha;
	u->busy = 1;
	*out = put;
	return 0;
}

int art_put_begin(struct queue *q, struct qagent *a, const char *id,
    int64_t offset, int gzip, int64_t content_length, struct art_put **out,
    struct apierr *e)
{
	struct qupload *u = NULL;
	int64_t cur;

	if (usable(q, a, id, &u, e) < 0)
		return -1;
	if (u->committed)
		return apierr_conflict(e, "upload '%s' is already committed", id);
	cur = file_size(q, u);
	if (offset != cur)
		return apierr_offset(e, cur, "upload offset %lld is not the "
		    "server's offset %lld", (long long)offset, (long long)cur);
	/* Refused before a byte is read, when the length says so. */
	if (!gzip && content_length > u->size - cur)
		return apierr_too_large(e, u->size, "%lld bytes at offset %lld pass "
		    "the declared size", (long long)content_length,
		    (long long)offset);
	return open_put(q, u, cur, gzip, out, e);
}

static int put_sink(void *arg, const void *data, size_t n)
{
	struct art_put *p = arg;
	int r;

	if ((int64_t)n > p->u->size - p->pos) {
		apierr_too_large(&p->err, p->u->size, "the bytes pass the declared "
		    "size of %lld", (long long)p->u->size);
		return -E2BIG;
	}
	if ((r = fsx_write_all(p->fd, data, n)) < 0) {
		io_fail(r, "write", &p->err);
		return r;
	}
	crypto_hash_sha256_update(&p->u->sha, data, n);
	p->pos += (int64_t)n;
	p->q->artifact_bytes += (int64_t)n;
	p->u->hashed = p->pos;
	return 0;
}

/* A refused PUT leaves nothing behind: back to where it started. */
static void rollback(struct art_put *p)
{
	if (ftruncate(p->fd, p->start) == 0) {
		p->q->artifact_bytes -= p->pos - p->start;
		p->u->sha = p->sha_at_start;
		p->u->hashed = p->start;
	} else {
		p->u->hashed = -1;
	}
	p->pos = p->start;
}

int art_put_data(struct art_put *p, const void *data, size_t n,
    struct apierr *e)
{
	int r = p->gz ? gz_feed(p->gz, data, n, put_sink, p) :
	    put_sink(p, data, n);

	if (r == 0)
		return 0;
	if (p->gz && r == -E2BIG && p->err.status == 0)
		apierr_too_large(&p->err, p->u->size, "the body inflates past the "
		    "declared size of %lld", (long long)p->u->size);
	else if (r == -EBADMSG)
		apierr_bad(&p->err, "the body is not one gzip member");
	rollback(p);
	*e = p->err;
	return -1;
}

int art_put_end(struct art_put *p, int64_t *offset, struct apierr *e)
{
	if (p->gz && gz_finish(p->gz) < 0) {
		rollback(p);
		return apierr_bad(e, "the body is not one complete gzip member");
	}
	if (p->q->cfg->sync_full && fdatasync(p->fd) < 0) {
		rollback(p);
		return io_fail(-errno, "sync", e);
	}
	*offset = p->pos;
	return 0;
}

void art_put_free(struct art_put *p)
{
	if (p == NULL)
		return;
	close(p->fd);
	gz_free(p->gz);
	p->u->busy = 0;
	if (p->u->orphan)
		free(p->u);
	free(p);
}

/* ---- status and commit ---- */

int art_status(struct queue *q, struct qagent *a, const char *id,
    cJSON **out, struct apierr *e)
{
	struct qupload *u = NULL;

	if (load_upload(q, id, &u, e) < 0 || check_owner(q, a, u, e) < 0)
		return -1;
	*out = cJSON_CreateObject();
	cJSON_AddNumberToObject(*out, "offset", (double)file_size(q, u));
	cJSON_AddNumberToObject(*out, "size", (double)u->size);
	cJSON_AddBoolToObject(*out, "complete", u->committed);
	return 0;
}

static cJSON *commit_answer(const struct qupload *u)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", u->name);
	cJSON_AddNumberToObject(o, "size", (double)u->size);
	cJSON_AddStringToObject(o, "sha256", u->sha256);
	return o;
}

static int digest_of(struct queue *q, struct qupload *u, char hex[65])
{
	crypto_hash_sha256_state st;
	unsigned char d[32];
	int r;

	if (u->hashed != u->size && (r = rehash(q, u, u->size)) < 0)
		return r;
	st = u->sha;
	crypto_hash_sha256_final(&st, d);
	hex_encode(d, sizeof(d), hex);
	return 0;
}

/* Digest mismatch: the bytes are discarded, the upload starts again. */
static int discard(struct queue *q, struct qupload *u, const char *want,
    const char *got, struct apierr *e)
{
	char *p = file_path(q, u->job, u->id);
	int64_t had = file_size(q, u);

	if (truncate(p, 0) == 0) {
		q->artifact_bytes -= had;
		crypto_hash_sha256_init(&u->sha);
		u->hashed = 0;
	} else {
		u->hashed = -1;
	}
	free(p);
	log_info("artifact digest mismatch", "upload=%s", u->id);
	return apierr_set(e, 422, "digest_mismatch", "the SHA-256 of the %lld "
	    "bytes stored is %s, not %s; the upload was discarded",
	    (long long)u->size, got, want);
}

static int sync_file(struct queue *q, const struct qupload *u)
{
	char *p = file_path(q, u->job, u->id);
	int r = 0, fd = open(p, O_RDONLY | O_CLOEXEC);

	free(p);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int art_commit(struct queue *q, struct qagent *a, const char *id,
    const char *sha256, cJSON **out, struct apierr *e)
{
	struct qupload *u = NULL;
	char got[65];
	int64_t cur;
	int r;

	if (usable(q, a, id, &u, e) < 0)
		return -1;
	if (u->committed && strcmp(u->sha256, sha256) == 0) {
		*out = commit_answer(u);
		return 0;
	}
	if (u->committed)
		return apierr_set(e, 422, "digest_mismatch", "upload '%s' was "
		    "committed with SHA-256 %s", id, u->sha256);
	if ((cur = file_size(q, u)) != u->size)
		return apierr_conflict(e, "upload '%s' has %lld of its %lld bytes",
		    id, (long long)cur, (long long)u->size);
	if ((r = digest_of(q, u, got)) < 0)
		return io_fail(r, "read", e);
	if (strcmp(got, sha256) != 0)
		return discard(q, u, sha256, got, e);
	if (q->cfg->sync_full && (r = sync_file(q, u)) < 0)
		return io_fail(r, "sync", e);
	if (caches_is_job(u->job)) {
		struct qlease *l = lease_find(q, u->lease);
		if (l == NULL)
			return apierr_set(e, 410, "lease_lost", "the lease of upload "
			    "'%s' is gone", id);
		if (caches_committed(q, l->job->pool->name, u->name, u->id, u->size,
		    got, e) < 0)
			return -1;
		u->committed = 1;
		memcpy(u->sha256, got, sizeof(got));
		*out = commit_answer(u);
		return 0;
	}
	if ((r = store_exec(q->st, SQL_UPLOAD_COMMIT, "tt", got, id)) < 0)
		return store_fail(q, r, e);
	u->committed = 1;
	memcpy(u->sha256, got, sizeof(got));
	log_info("artifact committed", "job=%s upload=%s name=%s size=%lld",
	    u->job, u->id, logq(u->name), (long long)u->size);
	*out = commit_answer(u);
	return 0;
}

/* ---- admin ---- */

static int list_row(sqlite3_stmt *row, void *arg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", store_text(row, 0));
	cJSON_AddNumberToObject(o, "size", (double)sqlite3_column_int64(row, 1));
	cJSON_AddStringToObject(o, "sha256", store_text(row, 2));
	cJSON_AddItemToArray(arg, o);
	return 0;
}

int art_list(struct queue *q, const char *job, int attempt, cJSON **out,
    struct apierr *e)
{
	cJSON *list;
	int r, cur;

	/* A job deleted by retention (or never submitted) is 404 whichever
	 * attempt is asked for, as its status and its log are. */
	if (jobs_current_attempt(q, job, &cur, e) < 0)
		return -1;
	if (attempt <= 0)
		attempt = cur;
	list = cJSON_CreateArray();
	r = store_query(q->st, SQL_UPLOADS_LIST, list_row, list, "ti", job,
	    (int64_t)attempt);
	if (r < 0) {
		cJSON_Delete(list);
		return store_fail(q, r, e);
	}
	*out = cJSON_CreateObject();
	cJSON_AddNumberToObject(*out, "attempt", attempt);
	cJSON_AddItemToObject(*out, "artifacts", list);
	return 0;
}

struct committed {
	int found, committed;
	char id[ID_MAX + 1];
	int64_t size;
	char sha[65];
};

static int committed_row(sqlite3_stmt *row, void *arg)
{
	struct committed *c = arg;

	c->found = 1;
	snprintf(c->id, sizeof(c->id), "%s", store_text(row, 0));
	c->size = sqlite3_column_int64(row, 2);
	c->committed = strcmp(store_text(row, 3), "committed") == 0;
	snprintf(c->sha, sizeof(c->sha), "%s", store_text(row, 4));
	return 1;
}

int art_open(struct queue *q, const char *job, int attempt, const char *name,
    int *fd, int64_t *size, char sha256[65], struct apierr *e)
{
	struct committed c = { 0 };
	char *p;
	int r;

	if (attempt <= 0 && jobs_current_attempt(q, job, &attempt, e) < 0)
		return -1;
	r = store_query(q->st, SQL_UPLOAD_BY_NAME, committed_row, &c, "tit",
	    job, (int64_t)attempt, name);
	if (r < 0)
		return store_fail(q, r, e);
	if (!c.found || !c.committed)
		return apierr_notfound(e, "job '%s' attempt %d has no artifact "
		    "'%s'", job, attempt, name);
	p = file_path(q, job, c.id);
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (*fd < 0)
		return io_fail(-errno, "open", e);
	*size = c.size;
	memcpy(sha256, c.sha, 65);
	return 0;
}
