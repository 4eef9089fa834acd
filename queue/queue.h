/*
 * The queue's state: what lives in memory on top of the store, and the
 * operations every endpoint calls. SQLite (store.c) is the source of
 * truth; memory holds the hot indices rebuilt from it at start: the
 * queued jobs of each pool in FIFO order, the active leases with their
 * deadline timers, the active agents by token hash, and the long-polls
 * being held.
 *
 * Every change is written to the store first, in one transaction, and
 * only then applied to memory, so a failed write leaves both as they
 * were and the request is answered with an error.
 *
 * Modules: queue.c (start, load, pools, shared helpers), jobs.c (submit,
 * status, cancel, ends), leases.c (matching, long-polls, heartbeats,
 * expiry, complete), agents.c (registration, tokens, authentication),
 * logs.c (log files, followers), artifacts.c (uploads), retain.c
 * (deleting ended jobs, the bytes stored), qmetrics.c (/metrics).
 */
#ifndef SKIFF_QUEUE_QUEUE_H
#define SKIFF_QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jstate.h"
#include "jwk.h"
#include "metrics.h"
#include "token.h"

struct apierr;
struct ev_loop;
struct ev_timer;
struct hmap;
struct qcfg;
struct store;
struct cJSON;
struct reqj_complete;
struct reqj_artifact;
struct retain;
struct pgq;
struct logs;
struct logs_put;
struct qlogf;

enum lease_kind { LK_ACK, LK_TTL, LK_COUNT };

struct qpool {
	char *name;
	struct qjob *head, *tail;		/* queued, by seq */
	size_t nqueued, nleased;
	struct qwaiter *w_head, *w_tail;	/* held lease requests, oldest first */
	size_t nwaiters;
	struct histo lease_wait, pickup;
	uint64_t completed[JS_COUNT];
	uint64_t expired[LK_COUNT];
	size_t pg_idle, pg_busy;		/* on PostgreSQL: agents */
};

struct qagent {
	char id[ID_MAX + 1];
	char hash_hex[2 * TOKEN_HASH_BYTES + 1];
	unsigned char hash[TOKEN_HASH_BYTES];
	char *name;
	struct qpool *pool;
	char **labels;
	size_t nlabels;
	int capacity;
	int64_t last_seen, last_seen_saved;	/* unix seconds */
	char reg_token[ID_MAX + 1];
	size_t nleases;
	size_t nwaiters;
	int gone;	/* deregistered or revoked; freed once unused */
	int pinned;	/* being dropped: not freed yet */
};

/* A job that has not ended. Ended jobs live only in the store. */
struct qjob {
	char id[ID_MAX + 1];
	struct qpool *pool;
	char **labels;
	size_t nlabels;
	int64_t exp;				/* unix seconds */
	int64_t seq;
	enum jstate state;			/* queued, leased or running */
	int attempt, max_attempts;
	char **excluded;			/* agents that held an attempt */
	size_t nexcluded;
	int cancel_requested;
	char *cancel_reason;
	int64_t queued_ms;			/* monotonic, for pickup time */
	int64_t log_len;			/* of the current attempt */
	struct qlease *lease;
	struct qjob *prev, *next;		/* in the pool's queue */
	struct ev_timer *exp_timer;
	struct qfollower *followers;
	struct qlogf *log;			/* the attempt's open file */
	struct queue *q;
};

struct qlease {
	char id[ID_MAX + 1];
	struct qjob *job;
	struct qagent *agent;
	int attempt;
	int acked;
	struct ev_timer *timer;
	struct queue *q;
};

/*
 * A held lease request. The HTTP layer embeds one per suspended request;
 * the queue calls wake exactly once, after unlinking it: with status 1 and
 * lease set when a job was handed out, 0 when the wait passed, -ESHUTDOWN
 * when the queue stops, -EPERM when the agent was revoked or left.
 */
struct qwaiter {
	struct qagent *agent;
	struct qpool *pool;
	struct qwaiter *prev, *next;
	struct ev_timer *timer;
	int64_t start_ms;
	int linked;
	int status;
	struct qlease *lease;
	void (*wake)(struct qwaiter *w);
	void *arg;
	struct queue *q;
};

/* A held log read (GET .../log?wait=S); woken like a waiter, status 1
 * when bytes arrived or the attempt ended, 0 when the wait passed. */
struct qfollower {
	struct qjob *job;
	int attempt;
	int64_t offset;
	struct qfollower *prev, *next;
	struct ev_timer *timer;
	int linked;
	int status;
	void (*wake)(struct qfollower *f);
	void *arg;
	struct queue *q;
};

struct queue {
	const struct qcfg *cfg;
	struct ev_loop *loop;
	struct store *st;
	char *dir;				/* data directory */
	struct hmap *pools, *jobs, *leases, *agents, *agents_by_hash;
	struct hmap *uploads;
	struct jwks trusted;
	int have_trusted;
	unsigned char admin_hash[TOKEN_HASH_BYTES];
	unsigned char metrics_hash[TOKEN_HASH_BYTES];
	int have_metrics_token;
	int stopping;
	uint64_t http_codes[6];			/* by status class */
	struct logs *logs;			/* the log pools (logs.c) */
	int fatal;				/* the store is corrupt */
	/* Bytes of the files under logs/ and artifacts/: counted at start,
	 * then kept by every write, truncation and deletion. */
	int64_t log_bytes, artifact_bytes;
	int64_t cache_bytes;			/* of the committed caches */
	uint64_t jobs_deleted;			/* by retention */
	struct retain *retain;
	struct pgq *pg;				/* --postgres: the store (pgq.c) */
};

/* ---- queue.c ---- */
int queue_open(struct queue *q, const struct qcfg *cfg, struct ev_loop *loop,
    const char *dir);
/* The PostgreSQL store (pgq.c) instead of a data directory. */
int queue_open_pg(struct queue *q, const struct qcfg *cfg,
    struct ev_loop *loop, const char *conninfo, const char *password);
void queue_close(struct queue *q);
/* Wakes every held request with -ESHUTDOWN; new ones are refused. */
void queue_stop(struct queue *q);
struct qpool *queue_pool(struct queue *q, const char *name);
int64_t queue_now(void);		/* unix seconds */
int64_t queue_now_ms(void);		/* unix milliseconds */
/* Store failures as an API error (503 disk full, 500 otherwise). */
int queue_store_err(struct queue *q, int r, struct apierr *e);
char *queue_strv_json(char *const *v, size_t n);
/* A JSON array of strings (at most max, each label-valid) into a vector. */
int queue_strv_parse(const char *json, size_t max, char ***out, size_t *n);
void queue_strv_free(char **v, size_t n);
int queue_labels_match(const struct qjob *j, const struct qagent *a);

/* ---- jobs.c ---- */
/* What the queue needs to know of a submitted job. */
struct jobs_sub {
	char id[ID_MAX + 1];
	char pool[129];
	char name[256];
	int64_t exp;
	char **labels;
	size_t nlabels;
};

/* The checks of a submit (JWS, payload fields, --trusted-keys, exp)
 * into s; jobs_sub_free releases it in every case. */
int jobs_take_submit(struct queue *q, const char *jws, size_t n,
    struct jobs_sub *s, struct apierr *e);
void jobs_sub_free(struct jobs_sub *s);
int jobs_submit(struct queue *q, const char *jws, size_t n,
    struct cJSON **status, struct apierr *e);
/* The status object of section 5.2; -1 with 404 when unknown. */
int jobs_status(struct queue *q, const char *id, struct cJSON **out,
    struct apierr *e);
/* GET /v1/jobs/{id}/steps: name, image (null: the host) and
 * continue_on_error of each step of the stored payload, at most
 * JOB_MAX_STEPS of them; read leniently (the agents check the schema). */
#define JOBS_STEP_IMAGE_MAX 512
int jobs_steps(struct queue *q, const char *id, struct cJSON **out,
    struct apierr *e);
int jobs_steps_json(const char *jws, size_t n, struct cJSON **out,
    struct apierr *e);
int jobs_list(struct queue *q, const char *pool, const char *state,
    const char *name, int limit, int offset, struct cJSON **out, struct apierr *e);
int jobs_cancel(struct queue *q, const char *id, const char *reason,
    struct cJSON **status, struct apierr *e);
/* The job's current attempt (memory or store); 404 when unknown. */
int jobs_current_attempt(struct queue *q, const char *id, int *attempt,
    struct apierr *e);
/* Loads the jobs that have not ended, at start. */
int jobs_load(struct queue *q);
/* Puts j at its place (by seq) in its pool's queue, arms its exp timer. */
void jobs_enqueue(struct queue *q, struct qjob *j);
void jobs_unqueue(struct queue *q, struct qjob *j);
/* Ends an in-memory job (already written to the store) and frees it. */
void jobs_forget(struct queue *q, struct qjob *j, enum jstate end);
void jobs_free(struct qjob *j);
/* Writes the end of a job without a result from an agent (canceled,
 * expired, lost) inside the caller's transaction. */
int jobs_store_end(struct queue *q, const char *id, enum jstate state,
    const char *reason_code, const char *reason);

/* ---- leases.c ---- */
/*
 * A lease request: 0 with *out set (answer now) or *out NULL (204 when
 * wait is 0); 1 when w was linked to wait up to wait_s seconds.
 */
int lease_request(struct queue *q, struct qagent *a, int wait_s,
    struct qwaiter *w, struct qlease **out, struct apierr *e);
/* The active lease with this id, or NULL. */
struct qlease *lease_find(struct queue *q, const char *id);
/* Unlinks a waiter that is still held (its request went away). */
void lease_waiter_cancel(struct qwaiter *w);
/* The answer body of a lease handed out. */
struct cJSON *lease_json(struct queue *q, const struct qlease *l);
/* Finds the caller's active lease: 404, 403 or 410 otherwise. Any
 * lease-scoped request acknowledges the lease (the heartbeat first). */
int lease_get(struct queue *q, struct qagent *a, const char *id,
    struct qlease **out, struct apierr *e);
int lease_heartbeat(struct queue *q, struct qagent *a, const char *id,
    struct cJSON **out, struct apierr *e);
int lease_complete(struct queue *q, struct qagent *a, const char *id,
    const struct reqj_complete *c, struct cJSON **out, struct apierr *e);
/* The answer of a lease handed out never reached its agent. */
void lease_undelivered(struct queue *q, const char *lease_id);
/* Ends a lease early: LK_ACK requeues the same attempt, LK_TTL counts it. */
int lease_expire(struct queue *q, struct qlease *l, enum lease_kind kind);
/* Hands queued jobs to held requests that match (after a job was queued
 * or an agent freed a slot). */
void lease_dispatch_job(struct queue *q, struct qjob *j);
void lease_dispatch_agent(struct queue *q, struct qagent *a);
int lease_load(struct queue *q);
void lease_free(struct qlease *l);

/* ---- agents.c ---- */
int agents_register(struct queue *q, const char *reg_token, size_t n,
    const char *body, size_t blen, struct cJSON **out, struct apierr *e);
/* The active agent holding this token; -1 with 401 otherwise. */
int agents_auth(struct queue *q, const char *token, size_t n,
    struct qagent **out, struct apierr *e);
int agents_deregister(struct queue *q, struct qagent *a, struct apierr *e);
int agents_revoke(struct queue *q, const char *id, struct apierr *e);
int agents_list(struct queue *q, const char *pool, struct cJSON **out,
    struct apierr *e);
/* pool NULL: a viewer token. */
int agents_token_create(struct queue *q, const char *pool,
    const char *description, struct cJSON **out, struct apierr *e);
int agents_token_list(struct queue *q, const char *pool, struct cJSON **out,
    struct apierr *e);
int agents_token_revoke(struct queue *q, const char *id, struct apierr *e);
/* Creates a token with a given value (dev mode). */
int agents_token_add(struct queue *q, const char *pool, const char *token,
    const char *description);
int agents_load(struct queue *q);
void agents_free(struct qagent *a);
int agents_seen_within(const struct queue *q, const struct qagent *a,
    int64_t now);
/* Frees a gone agent once no lease or waiter refers to it. */
void agents_release(struct queue *q, struct qagent *a);

/* ---- viewers.c: viewer tokens (the SQLite store; agents_token_create
 * and agents_token_list with pool NULL make and list them) ---- */
/* 0 for a viewer token that is not revoked; -1 with 401 otherwise. */
int viewers_check(struct queue *q, const char *tok, size_t n,
    struct apierr *e);
/* 1 revoked (now or before), 0 no such viewer token, -1 with e set. */
int viewers_revoke(struct queue *q, const char *id, struct apierr *e);

/* ---- logs.c ---- */
#define LOG_CHUNK_MAX (1024 * 1024)
/* The worker pools of the log path; logs_free finishes what is out
 * (blocking: the loop no longer runs), closes the files, joins. */
int logs_start(struct queue *q);
void logs_free(struct queue *q);
/*
 * Begins an append of body (taken: body is left empty) at offset, gzip
 * when gzip is set. 0 with *out set: the append is out, and wake(*out)
 * is called on the loop thread once it is durable or failed (then
 * logs_put_result); -1 with e set when refused at once.
 */
int logs_put_begin(struct queue *q, struct qagent *a, const char *lease_id,
    int64_t offset, struct buf *body, int gzip,
    void (*wake)(struct logs_put *p), void *arg, struct logs_put **out,
    struct apierr *e);
/* 0 with the server's length after the append, or -1 with e. */
int logs_put_result(const struct logs_put *p, int64_t *length,
    struct apierr *e);
void *logs_put_arg(const struct logs_put *p);
/* Releases p: answered, or its request went away (an append out still
 * finishes, unanswered). NULL is fine. */
void logs_put_free(struct logs_put *p);
/* The same append run to its end on the caller's thread, blocking: for
 * callers without a loop (unit tests), never the HTTP layer. */
int logs_append(struct queue *q, struct qagent *a, const char *lease_id,
    int64_t offset, const void *body, size_t n, int gzip, int64_t *length,
    struct apierr *e);
int64_t logs_length(struct queue *q, const char *job, int attempt);
char *logs_path(struct queue *q, const char *job, int attempt);

struct logs_read {
	int attempt;
	int64_t length;
	int complete;
	int fd;			/* -1 when there is nothing to send */
	int64_t offset, count;
};
/*
 * An admin log read. 0 with r filled (r->fd owned by the caller); 1 when
 * f was linked to wait for bytes (wait_s > 0, none yet).
 */
int logs_read(struct queue *q, const char *job, int attempt, int64_t offset,
    int wait_s, struct qfollower *f, struct logs_read *r, struct apierr *e);
void logs_follower_cancel(struct qfollower *f);
/* Wakes the followers of j (bytes arrived, attempt or state changed). */
void logs_wake(struct queue *q, struct qjob *j, int all);

/* ---- artifacts.c ---- */
struct art_put;
int art_create(struct queue *q, struct qagent *a, const char *lease_id,
    const struct reqj_artifact *req, int *status, struct cJSON **out,
    struct apierr *e);
/* Begins a PUT of upload bytes at offset; gzip says how they come. */
int art_put_begin(struct queue *q, struct qagent *a, const char *upload,
    int64_t offset, int gzip, int64_t content_length, struct art_put **out,
    struct apierr *e);
int art_put_data(struct art_put *p, const void *data, size_t n,
    struct apierr *e);
/* The end of the body: 0 and the upload's offset in *offset. */
int art_put_end(struct art_put *p, int64_t *offset, struct apierr *e);
/* Releases a PUT (ended, failed or abandoned by the client). */
void art_put_free(struct art_put *p);
int art_status(struct queue *q, struct qagent *a, const char *upload,
    struct cJSON **out, struct apierr *e);
int art_commit(struct queue *q, struct qagent *a, const char *upload,
    const char *sha256, struct cJSON **out, struct apierr *e);
int art_list(struct queue *q, const char *job, int attempt,
    struct cJSON **out, struct apierr *e);
/* Opens a committed artifact for download: fd, size and digest. */
int art_open(struct queue *q, const char *job, int attempt, const char *name,
    int *fd, int64_t *size, char sha256[65], struct apierr *e);
/* Drops the in-memory state of one upload (caches.c removed it). */
void art_forget_upload(struct queue *q, const char *id);
/* Drops the in-memory state of a job's uploads (the job ended). */
void art_forget_job(struct queue *q, const char *job);
/* Frees the in-memory state of every upload. */
void art_close(struct queue *q);

/* ---- caches.c: caches that outlive the VM (docs/protocol.md 4.9) ---- */
/* A cache's upload is an upload row whose job is "cache:<pool digest>",
 * which no job id can be; its bytes are <data>/caches/<upload id>. */
int caches_is_job(const char *job);
char *caches_file(struct queue *q, const char *id);
struct reqj_cache;
int caches_create(struct queue *q, struct qagent *a, const char *lease_id,
    const struct reqj_cache *req, int *status, struct cJSON **out,
    struct apierr *e);
/* The newest cache for the key, else for each restore key by prefix. */
int caches_find(struct queue *q, struct qagent *a, const char *lease_id,
    const struct reqj_cache *req, struct cJSON **out, struct apierr *e);
int caches_open(struct queue *q, struct qagent *a, const char *lease_id,
    const char *id, int *fd, int64_t *size, char sha256[65],
    struct apierr *e);
/* art_commit of a cache's upload: the cache exists, LRU eviction runs. */
int caches_committed(struct queue *q, const char *pool, const char *key,
    const char *id, int64_t size, const char *sha256, struct apierr *e);
int caches_list(struct queue *q, const char *pool, struct cJSON **out,
    struct apierr *e);
int caches_delete(struct queue *q, const char *pool, const char *id,
    struct apierr *e);
/* q->cache_bytes from the SQLite store (for /metrics). */
void caches_count_bytes(struct queue *q);

/* ---- retain.c ---- */
/*
 * At start, after the state is loaded: counts the bytes stored; with
 * --retain, also queues the job directories that have no job (a deletion
 * cut short by a crash) and arms the timer that runs retain_round.
 */
int retain_start(struct queue *q);
/*
 * One round of retention at unix time now: first at most max_files files
 * of jobs already deleted are removed; only when none are left are at
 * most max_jobs due jobs (ended before now - --retain, exp passed) deleted
 * from the store in one transaction, and their files started on. *more
 * is set when work is left for another round.
 */
int retain_round(struct queue *q, int64_t now, size_t max_jobs,
    size_t max_files, int *more);
/* Stops the timer (the queue is stopping); retain_free frees the rest. */
void retain_stop(struct queue *q);
void retain_free(struct queue *q);

/* ---- qmetrics.c ---- */
void qmetrics_render(struct queue *q, struct buf *out);
/* GET /v1/pools: per pool what the web view shows (docs/protocol.md 5.10). */
struct cJSON *qmetrics_pools(struct queue *q);
void qmetrics_http(struct queue *q, unsigned status);

#endif
