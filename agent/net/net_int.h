/* Internals shared by net.c (agent lifecycle) and netjob.c (one lease). */
#ifndef SKIFF_AGENT_NET_INT_H
#define SKIFF_AGENT_NET_INT_H

#include <stdint.h>
#include <zlib.h>
#include <cjson/cJSON.h>

#include "backoff.h"
#include "http.h"
#include "net.h"
#include "qurls.h"

#define NET_ID_MAX 64
#define LOG_CHUNK_MIN (256 * 1024)	/* upload at once past this */
#define LOG_CHUNK_MAX (1024 * 1024)	/* the queue's inflate cap */
#define LOG_FLUSH_MS 1000

enum net_state {
	NET_REGISTERING,
	NET_LEASING,
	NET_DRAINING,
	NET_LEAVING,
	NET_EXITED,
};

struct net_artifact;

struct net_job {
	struct net *n;
	uint64_t jh;
	char job_id[NET_ID_MAX + 1];
	char lease[NET_ID_MAX + 1];
	int attempt;
	char *jws;		/* held until the lease is acknowledged */
	size_t jws_len;

	/* lease */
	int acked;
	int started;		/* handed to the runner */
	int lost;		/* lease gone: no more requests */
	int cancel_sent;
	int step;
	int64_t leased_ms;
	int64_t last_hb_ok_ms;
	int64_t ack_window_ms, lease_ttl_ms, hb_interval_ms;
	struct http_req *hb_req;
	uint64_t hb_gen;	/* of the URL each request went to (qurls.h) */
	struct ev_timer *hb_timer;
	struct backoff hb_bo;

	/* log: the runner writes the spool, we read it (read-only fd) */
	int spool_fd;
	uint64_t spooled;	/* bytes the runner says the spool holds */
	uint64_t acked_len;	/* bytes the queue has */
	int spool_failed;
	int log_refused;	/* the queue's log cap: the rest is dropped */
	int flush_due;
	struct http_req *log_req;
	uint64_t log_gen;
	uint64_t log_req_end;
	struct ev_timer *flush_timer;
	struct ev_timer *log_retry;
	struct backoff log_bo;
	char *raw;		/* LOG_CHUNK_MAX bytes while the job lives */
	z_stream zs;
	int zs_ready;
	/* The next chunk, compressed while the current one is in flight so
	 * that the queue's work and ours overlap. */
	char *next_z;
	size_t next_zlen;
	uint64_t next_off, next_len;
	struct ev_timer *prepare;

	/* artifacts (netartifact.c), which report a finished one here */
	struct net_artifact *artifacts;
	void (*artifact_settled)(struct net_job *j);

	/* completion */
	int runner_done;
	enum seam_result result;
	char *reason_code;
	char *reason;
	int *exit_codes;
	size_t nexit;
	cJSON *outputs;		/* {"NAME": "value"}, masked; or NULL */
	struct http_req *complete_req;
	uint64_t complete_gen;
	struct ev_timer *complete_retry;
	struct backoff complete_bo;
};

struct net_fetch;
struct net_cache;

/* What the parts below net.c report up to it (set by net_new). */
struct net_up {
	/* A request to generation gen failed with r: maybe the next URL. */
	void (*failed)(struct net *n, uint64_t gen, const struct http_req *r,
	    const char *during);
	/* The queue refused our token: leave with 77. */
	void (*revoked)(struct net *n, const char *what);
	/* Nothing more of j: free its slot. */
	void (*job_finished)(struct net *n, struct net_job *j);
};

struct net {
	const struct net_config *cfg;
	struct ev_loop *loop;
	const struct seam_to_runner *runner;
	struct seam_net_in seam;
	struct net_up up;
	void (*exit)(void *ctx, int code);
	void *exit_ctx;
	struct http_client *http;
	struct http_client *inputs_http;	/* input downloads (netfetch.c) */
	struct net_fetch *fetches;
	struct net_cache *caches;	/* cache restores (netcache.c) */
	struct qurls urls;		/* the queue's URLs, the one in use */

	enum net_state state;
	char agent_id[NET_ID_MAX + 1];
	char *token;
	char *pool;
	int64_t lease_wait;

	struct http_req *req;		/* register, lease or deregister */
	uint64_t req_gen;
	struct ev_timer *retry;
	struct backoff bo;
	struct ev_timer *idle;
	struct ev_timer *drain;
	int drain_signals;
	int exit_code;
	int dereg_tries;

	struct net_job **jobs;		/* capacity slots */
	size_t active;
	int64_t leases_taken;
	uint64_t next_jh;
};

/* netreq.c */
/* The current queue URL followed by the path; *gen is the URL's
 * generation, for net_failed. */
char *net_url(const struct net *n, uint64_t *gen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct http_req *net_request(struct net *n, const char *method,
    const char *url, long timeout_ms);
void net_log_http_error(const char *what, const struct http_req *r,
    int64_t delay_ms);
int net_status_is_retryable(long status);
cJSON *net_json(const struct http_req *r);
int net_valid_id(const char *s);

/* A download into a descriptor the runner handed over, at most max bytes:
 * an input (netfetch.c) or a cache (netcache.c). */
struct net_fdsink {
	int fd;
	uint64_t max, got;
	int too_big, write_err;
};
/* http_req_sink()'s callback for one (arg): -1 past max or on a failed
 * write, which too_big or write_err then tells. */
int net_fdsink_write(const char *data, size_t len, void *arg);

/* netfetch.c: input downloads into descriptors the runner hands over */
void netfetch_start(struct net *n, uint64_t jh, uint64_t id, const char *url,
    int fd, uint64_t max);
/* Ends every fetch of jh (0: all) without answering. */
void netfetch_abort(struct net *n, uint64_t jh);

/* netjob.c */
struct net_job *netjob_new(struct net *n, const char *lease,
    const char *job_id, int attempt, const char *jws, size_t jws_len,
    int64_t ack_window, int64_t lease_ttl, int64_t hb_interval);
void netjob_spool(struct net_job *j, int fd);
void netjob_logged(struct net_job *j, uint64_t total);
void netjob_runner_done(struct net_job *j, const struct seam_done *d);
void netjob_stop(struct net_job *j, enum seam_stop why);
void netjob_free(struct net_job *j);

/* netartifact.c */
void netartifact_add(struct net_job *j, uint64_t id, int fd,
    const char *name, uint64_t size);
/* A cache's archive: the same upload, created as the cache of key. */
void netartifact_add_cache(struct net_job *j, uint64_t id, int fd,
    const char *key, uint64_t size);
int netartifact_busy(const struct net_job *j);
void netartifact_abort_all(struct net_job *j);


/* netcache.c: cache restores (keys: the key, then restore keys, '\n') */
void netcache_get(struct net_job *j, uint64_t id, const char *keys, int fd,
    uint64_t max);
/* Ends every restore of jh (0: all) without answering. */
void netcache_abort(struct net *n, uint64_t jh);

#endif
