/*
 * Artifact uploads (docs/protocol.md section 4.5): create, stream the file
 * from its fd in constant memory while hashing it (SHA-256) and, when the
 * file compresses, gzip-encoding it; after a network error ask the queue
 * for its offset and resume from there; commit with the digest. One
 * artifact of a job uploads at a time; the retry time of each is bounded.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "b64.h"
#include "buf.h"
#include "ev.h"
#include "jsonx.h"
#include "log.h"
#include "net_int.h"
#include "xalloc.h"

#define ART_BUF (256 * 1024)
#define ART_SAMPLE (64 * 1024)
#define ART_RETRY_BUDGET_MS (10 * 60 * 1000)
#define ART_MAX_DIGEST_RETRIES 1

enum art_stage { ART_CREATE, ART_PUT, ART_STATUS, ART_COMMIT };

struct net_artifact {
	struct net_job *j;
	struct net_artifact *next;
	uint64_t id;
	int fd;
	char *name;		/* a cache's: its key */
	int cache;		/* a cache's archive (docs/protocol.md 4.9) */
	uint64_t size;
	char upload[NET_ID_MAX + 1];
	enum art_stage stage;
	uint64_t pos;		/* next byte of the file to send */
	uint64_t put_from;	/* where the PUT in flight started */
	uint64_t hashed;	/* bytes in sha, always a prefix of the file */
	crypto_hash_sha256_state sha;
	int gzip;
	z_stream zs;
	int zs_ready;
	int zs_finished;
	char *in;		/* ART_BUF of file bytes for the deflater */
	int digest_retries;
	int64_t first_error_ms;
	struct http_req *req;
	uint64_t gen;		/* of the URL req went to (qurls.h) */
	struct ev_timer *retry;
	struct backoff bo;
};

static void art_step(struct net_artifact *a);

static void art_free(struct net_artifact *a)
{
	http_req_free(a->req);
	ev_timer_free(a->retry);
	if (a->zs_ready)
		deflateEnd(&a->zs);
	if (a->fd >= 0)
		close(a->fd);
	free(a->in);
	free(a->name);
	free(a);
}

/* Starts the first queued artifact unless it is already under way. */
static void art_kick(struct net_job *j)
{
	struct net_artifact *a = j->artifacts;

	if (a && a->req == NULL && !ev_timer_active(a->retry) && !j->lost)
		art_step(a);
}

static void art_finish(struct net_artifact *a, int ok, const char *error)
{
	struct net_job *j = a->j;
	struct net_artifact **pp;
	uint64_t id = a->id;

	for (pp = &j->artifacts; *pp && *pp != a; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = a->next;
	if (ok)
		log_info("artifact uploaded", "job=%s name=%s bytes=%llu gzip=%d",
		    j->job_id, logq(a->name), (unsigned long long)a->size, a->gzip);
	else
		log_warn("artifact not uploaded", "job=%s name=%s error=%s",
		    j->job_id, logq(a->name), logq(error));
	int cache = a->cache;
	art_free(a);
	art_kick(j);
	/* Last: the runner may answer by handing over the next artifact. */
	if (cache)
		j->n->runner->cache_put_done(j->n->runner->ctx, j->jh, id, ok, error);
	else
		j->n->runner->artifact_done(j->n->runner->ctx, j->jh, id, ok, error);
	if (j->artifacts == NULL)
		j->artifact_settled(j);
}

/* A transient failure: retry within the budget, else give up. */
static void art_retry(struct net_artifact *a, struct http_req *r,
    enum art_stage stage)
{
	int64_t now = ev_now(a->j->n->loop);

	if (a->first_error_ms == 0)
		a->first_error_ms = now;
	if (now - a->first_error_ms > ART_RETRY_BUDGET_MS) {
		art_finish(a, 0, "gave up after 10 minutes of retries");
		return;
	}
	int64_t d = backoff_next(&a->bo, r ? http_req_retry_after(r) : -1);
	if (r)
		log_warn("artifact upload failed", "job=%s name=%s status=%ld "
		    "error=%s retry_in_ms=%lld", a->j->job_id, logq(a->name),
		    http_req_status(r), logq(http_req_error(r)), (long long)d);
	a->stage = stage;
	ev_timer_start(a->retry, d);
	a->j->n->up.failed(a->j->n, a->gen, r, "artifact upload");
}

/* Rehashes the first n bytes of the file, after the queue told us its
 * offset is below what we had hashed. */
static int rehash_to(struct net_artifact *a, uint64_t n)
{
	char buf[65536];

	crypto_hash_sha256_init(&a->sha);
	a->hashed = 0;
	while (a->hashed < n) {
		size_t want = n - a->hashed > sizeof(buf) ? sizeof(buf) :
		    (size_t)(n - a->hashed);
		ssize_t got = pread(a->fd, buf, want, (off_t)a->hashed);
		if (got <= 0)
			return -EIO;
		crypto_hash_sha256_update(&a->sha, (unsigned char *)buf, (size_t)got);
		a->hashed += (uint64_t)got;
	}
	return 0;
}

/* Reads file bytes at a->pos, hashing them on the way. */
static ssize_t read_file(struct net_artifact *a, char *dst, size_t n)
{
	if (a->pos >= a->size)
		return 0;
	if (n > a->size - a->pos)
		n = (size_t)(a->size - a->pos);
	ssize_t got = pread(a->fd, dst, n, (off_t)a->pos);
	if (got <= 0)
		return -1;	/* the file shrank or broke under us */
	if (a->hashed == a->pos) {
		crypto_hash_sha256_update(&a->sha, (unsigned char *)dst,
		    (size_t)got);
		a->hashed += (uint64_t)got;
	}
	a->pos += (uint64_t)got;
	return got;
}

static ssize_t read_identity(char *dst, size_t n, void *arg)
{
	return read_file(arg, dst, n);
}

static ssize_t read_gzip(char *dst, size_t n, void *arg)
{
	struct net_artifact *a = arg;

	a->zs.next_out = (Bytef *)dst;
	a->zs.avail_out = (uInt)n;
	while (a->zs.avail_out > 0 && !a->zs_finished) {
		if (a->zs.avail_in == 0 && a->pos < a->size) {
			ssize_t got = read_file(a, a->in, ART_BUF);
			if (got < 0)
				return -1;
			a->zs.next_in = (Bytef *)a->in;
			a->zs.avail_in = (uInt)got;
		}
		int flush = a->pos >= a->size && a->zs.avail_in == 0 ? Z_FINISH :
		    Z_NO_FLUSH;
		int r = deflate(&a->zs, flush);
		if (r == Z_STREAM_END)
			a->zs_finished = 1;
		else if (r != Z_OK && r != Z_BUF_ERROR)
			return -1;
	}
	return (ssize_t)(n - a->zs.avail_out);
}

/* Compresses a sample of the file: gzip only when it saves a tenth. */
static int worth_gzip(struct net_artifact *a)
{
	size_t n = a->size < ART_SAMPLE ? (size_t)a->size : ART_SAMPLE;
	char *in, *out;
	uLongf outlen;
	int r = 0;

	if (n < 512)
		return 0;
	in = xmalloc(n);
	outlen = compressBound((uLong)n);
	out = xmalloc(outlen);
	if (pread(a->fd, in, n, 0) == (ssize_t)n &&
	    compress2((Bytef *)out, &outlen, (Bytef *)in, (uLong)n, 1) == Z_OK)
		r = outlen < n - n / 10;
	free(in);
	free(out);
	return r;
}

/* libcurl sends the body again on a fresh connection: from the top. */
static int rewind_put(void *arg)
{
	struct net_artifact *a = arg;

	a->pos = a->put_from;
	if (a->gzip && a->zs_ready) {
		deflateReset(&a->zs);
		a->zs.avail_in = 0;
		a->zs_finished = 0;
	}
	return 0;
}

static void put_done(struct http_req *r, void *arg);
static void status_done(struct http_req *r, void *arg);
static void commit_done(struct http_req *r, void *arg);
static void create_done(struct http_req *r, void *arg);

static void send_req(struct net_artifact *a, struct http_req *r,
    http_done_fn fn, enum art_stage stage)
{
	a->req = r;
	a->stage = stage;
	if (http_req_send(r, fn, a) < 0) {
		a->req = NULL;
		http_req_free(r);
		art_retry(a, NULL, stage);
	}
}

static void put_send(struct net_artifact *a)
{
	char *url = net_url(a->j->n, &a->gen, "/v1/uploads/%s?offset=%llu",
	    a->upload, (unsigned long long)a->pos);
	struct http_req *r = net_request(a->j->n, "PUT", url, 0);

	free(url);
	/* No deadline for the whole body, whatever its size; a stall of a
	 * minute aborts it and the upload resumes. */
	http_req_timeout(r, 0, 60000);
	a->put_from = a->pos;
	http_req_body_rewind(r, rewind_put);
	if (a->gzip && a->pos < a->size) {
		if (!a->zs_ready) {
			memset(&a->zs, 0, sizeof(a->zs));
			if (deflateInit2(&a->zs, 1, Z_DEFLATED, 15 + 16, 8,
			    Z_DEFAULT_STRATEGY) != Z_OK)
				abort();
			a->zs_ready = 1;
			a->in = xmalloc(ART_BUF);
		} else {
			deflateReset(&a->zs);
		}
		a->zs.avail_in = 0;
		a->zs_finished = 0;
		http_req_header(r, "Content-Encoding: gzip");
		http_req_body_reader(r, read_gzip, a, -1, "application/octet-stream");
	} else {
		http_req_body_reader(r, read_identity, a,
		    (int64_t)(a->size - a->pos), "application/octet-stream");
	}
	send_req(a, r, put_done, ART_PUT);
}

static void commit_send(struct net_artifact *a)
{
	unsigned char digest[32];
	char hex[65], body[96];
	crypto_hash_sha256_state copy;

	if (a->hashed != a->size && rehash_to(a, a->size) < 0) {
		art_finish(a, 0, "cannot read the file");
		return;
	}
	copy = a->sha;
	crypto_hash_sha256_final(&copy, digest);
	hex_encode(digest, 32, hex);
	snprintf(body, sizeof(body), "{\"sha256\":\"%s\"}", hex);
	char *url = net_url(a->j->n, &a->gen, "/v1/uploads/%s/commit",
	    a->upload);
	struct http_req *r = net_request(a->j->n, "POST", url, 60000);
	free(url);
	http_req_body_json(r, body);
	send_req(a, r, commit_done, ART_COMMIT);
}

static void status_send(struct net_artifact *a)
{
	char *url = net_url(a->j->n, &a->gen, "/v1/uploads/%s", a->upload);
	struct http_req *r = net_request(a->j->n, "GET", url, 30000);

	free(url);
	send_req(a, r, status_done, ART_STATUS);
}

static void create_send(struct net_artifact *a)
{
	cJSON *o = cJSON_CreateObject();
	char *body, *url;

	cJSON_AddStringToObject(o, a->cache ? "key" : "name", a->name);
	cJSON_AddNumberToObject(o, "size", (double)a->size);
	body = jsonx_print(o);
	url = net_url(a->j->n, &a->gen, a->cache ? "/v1/leases/%s/caches" :
	    "/v1/leases/%s/artifacts", a->j->lease);
	struct http_req *r = net_request(a->j->n, "POST", url, 30000);
	http_req_body_json(r, body);
	free(url);
	cJSON_free(body);
	cJSON_Delete(o);
	send_req(a, r, create_done, ART_CREATE);
}

/* Answers that end the job's lease or the artifact; 1 when handled. */
static int art_fatal(struct net_artifact *a, struct http_req *r)
{
	long st = http_req_status(r);
	char why[160];

	if (st == 401 || st == 403 || st == 410) {
		http_req_free(r);
		art_finish(a, 0, "the lease is gone");
		return 1;
	}
	if (st == 413 || (st >= 400 && st < 500 && st != 409 && st != 429 &&
	    st != 422 && st != 404)) {
		const char *msg = "refused";
		cJSON *j = net_json(r);
		if (j)
			jsonx_string(j, "message", 120, &msg);
		snprintf(why, sizeof(why), "the queue refused it (%ld: %s)", st, msg);
		cJSON_Delete(j);
		http_req_free(r);
		art_finish(a, 0, why);
		return 1;
	}
	return 0;
}

/* The queue's offset for our upload; resumes from there. */
static int take_offset(struct net_artifact *a, cJSON *body, const char *key)
{
	int64_t off;

	if (body == NULL || jsonx_int(body, key, 0, (int64_t)a->size, &off) < 0)
		return -EINVAL;
	if ((uint64_t)off < a->hashed && rehash_to(a, (uint64_t)off) < 0)
		return -EIO;
	if ((uint64_t)off > a->hashed && rehash_to(a, (uint64_t)off) < 0)
		return -EIO;
	a->pos = (uint64_t)off;
	return 0;
}

static void continue_upload(struct net_artifact *a)
{
	if (a->pos >= a->size)
		commit_send(a);
	else
		put_send(a);
}

static void create_done(struct http_req *r, void *arg)
{
	struct net_artifact *a = arg;
	long st = http_req_status(r);
	cJSON *body = NULL;
	const char *id;
	int complete = 0;

	a->req = NULL;
	if (art_fatal(a, r))
		return;
	if (a->cache && st == 200 && (body = net_json(r)) != NULL &&
	    jsonx_bool(body, "exists", &complete) == 0 && complete) {
		/* The pool has the key (or another job is saving it). */
		cJSON_Delete(body);
		http_req_free(r);
		art_finish(a, 1, "exists");
		return;
	}
	cJSON_Delete(body);
	body = NULL;
	if ((st != 200 && st != 201) || (body = net_json(r)) == NULL ||
	    jsonx_string(body, "upload", NET_ID_MAX, &id) < 0 || !net_valid_id(id)) {
		cJSON_Delete(body);
		art_retry(a, r, ART_CREATE);
		http_req_free(r);
		return;
	}
	snprintf(a->upload, sizeof(a->upload), "%s", id);
	jsonx_bool(body, "complete", &complete);
	int t = complete ? 0 : take_offset(a, body, "offset");
	cJSON_Delete(body);
	http_req_free(r);
	backoff_reset(&a->bo);
	if (complete)
		art_finish(a, 1, NULL);
	else if (t < 0)
		art_finish(a, 0, "cannot read the file");
	else
		continue_upload(a);
}

static void put_done(struct http_req *r, void *arg)
{
	struct net_artifact *a = arg;
	long st = http_req_status(r);
	cJSON *body = NULL;

	a->req = NULL;
	if (art_fatal(a, r))
		return;
	if (st == 200 || st == 409) {
		body = net_json(r);
		int t = take_offset(a, body, st == 200 ? "offset" : "length");
		cJSON_Delete(body);
		if (t == 0) {
			http_req_free(r);
			a->first_error_ms = 0;
			backoff_reset(&a->bo);
			continue_upload(a);
			return;
		}
	}
	/* Where the queue stands is unknown: ask it, then resume. */
	art_retry(a, r, ART_STATUS);
	http_req_free(r);
}

static void status_done(struct http_req *r, void *arg)
{
	struct net_artifact *a = arg;
	cJSON *body = NULL;

	a->req = NULL;
	if (art_fatal(a, r))
		return;
	if (http_req_status(r) == 200 && (body = net_json(r)) &&
	    take_offset(a, body, "offset") == 0) {
		cJSON_Delete(body);
		http_req_free(r);
		continue_upload(a);
		return;
	}
	cJSON_Delete(body);
	art_retry(a, r, ART_STATUS);
	http_req_free(r);
}

static void commit_done(struct http_req *r, void *arg)
{
	struct net_artifact *a = arg;
	long st = http_req_status(r);

	a->req = NULL;
	if (st == 200) {
		http_req_free(r);
		art_finish(a, 1, NULL);
		return;
	}
	if (st == 422 && a->digest_retries++ < ART_MAX_DIGEST_RETRIES) {
		/* The queue discarded the upload: send the whole file again. */
		http_req_free(r);
		log_warn("artifact digest mismatch; uploading again", "job=%s name=%s",
		    a->j->job_id, logq(a->name));
		crypto_hash_sha256_init(&a->sha);
		a->hashed = a->pos = 0;
		create_send(a);
		return;
	}
	if (st == 422) {
		http_req_free(r);
		art_finish(a, 0, "digest mismatch: the file changed while uploading");
		return;
	}
	if (art_fatal(a, r))
		return;
	art_retry(a, r, st == 409 ? ART_STATUS : ART_COMMIT);
	http_req_free(r);
}

static void art_step(struct net_artifact *a)
{
	switch (a->stage) {
	case ART_CREATE: create_send(a); break;
	case ART_PUT: put_send(a); break;
	case ART_STATUS: status_send(a); break;
	case ART_COMMIT: commit_send(a); break;
	}
}

static void on_retry(struct ev_timer *t, void *arg)
{
	(void)t;
	art_step(arg);
}

static void add(struct net_job *j, uint64_t id, int fd, const char *name,
    uint64_t size, int cache)
{
	struct net_artifact *a = xcalloc(1, sizeof(*a)), **pp;

	a->cache = cache;
	a->j = j;
	a->id = id;
	a->fd = fd;
	a->name = xstrdup(name);
	a->size = size;
	a->retry = ev_timer_new(j->n->loop, on_retry, a);
	backoff_init(&a->bo, 1000, 30000);
	crypto_hash_sha256_init(&a->sha);
	a->gzip = worth_gzip(a);
	for (pp = &j->artifacts; *pp; pp = &(*pp)->next)
		;
	*pp = a;
	if (j->lost) {
		art_finish(a, 0, "the lease is gone");
		return;
	}
	art_kick(j);
}

void netartifact_add(struct net_job *j, uint64_t id, int fd, const char *name,
    uint64_t size)
{
	add(j, id, fd, name, size, 0);
}

void netartifact_add_cache(struct net_job *j, uint64_t id, int fd,
    const char *key, uint64_t size)
{
	add(j, id, fd, key, size, 1);
}

int netartifact_busy(const struct net_job *j)
{
	return j->artifacts != NULL;
}

void netartifact_abort_all(struct net_job *j)
{
	while (j->artifacts) {
		struct net_artifact *a = j->artifacts;
		uint64_t id = a->id;
		int cache = a->cache;
		j->artifacts = a->next;
		art_free(a);
		if (cache)
			j->n->runner->cache_put_done(j->n->runner->ctx, j->jh, id, 0,
			    "the lease is gone");
		else
			j->n->runner->artifact_done(j->n->runner->ctx, j->jh, id, 0,
			    "the lease is gone");
	}
}
