#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "fsx.h"
#include "jsonx.h"
#include "log.h"
#include "net_int.h"
#include "netconf.h"
#include "xalloc.h"

#define CREDS_FILE "agent.json"
#define DEREG_TRIES 3

static void lease_maybe(struct net *n);
static void leave(struct net *n, int code);
static void net_failed(struct net *n, uint64_t gen, const struct http_req *r,
    const char *during);
static void net_revoked(struct net *n, const char *what);
static void net_job_finished(struct net *n, struct net_job *j);

static void net_failed(struct net *n, uint64_t gen, const struct http_req *r,
    const char *during)
{
	size_t from = n->urls.cur;
	long st = r ? http_req_status(r) : -1;
	char msg[96];

	if (r == NULL || !qurls_failed(&n->urls, gen, st))
		return;
	if (st == 0)
		snprintf(msg, sizeof(msg), "queue unreachable, moving to URL %zu "
		    "of %zu", n->urls.cur + 1, n->urls.n);
	else
		snprintf(msg, sizeof(msg), "queue unavailable (HTTP %ld), moving "
		    "to URL %zu of %zu", st, n->urls.cur + 1, n->urls.n);
	log_warn(msg, "during=%s from=%s to=%s status=%ld error=%s",
	    logq(during), logq(n->urls.v[from]),
	    logq(qurls_current(&n->urls, NULL)), st, logq(http_req_error(r)));
	/*
	 * A lease long-poll still held through the URL we left would keep
	 * the agent from leasing until it times out (wait + 15 s) if that
	 * replica is silently gone: ask the new one instead. A lease the old
	 * one handed out meanwhile is never acknowledged and goes back to
	 * the queue after the ack window.
	 */
	if (n->state == NET_LEASING && n->req && n->req_gen != n->urls.gen) {
		http_req_free(n->req);
		n->req = NULL;
		lease_maybe(n);
	}
}

static void retry_later(struct net *n, const char *what,
    const struct http_req *r, uint64_t gen)
{
	int64_t d = backoff_next(&n->bo, r ? http_req_retry_after(r) : -1);

	if (r)
		net_log_http_error(what, r, d);
	ev_timer_start(n->retry, d);
	net_failed(n, gen, r, what);
}

/* ---- credentials in the state directory ---- */

static int creds_save(struct net *n);

/* The stored list, as this half wrote it (comma-joined): only compared. */
static int split_urls(const char *s, struct net_strv *out)
{
	const char *p = s;

	if (!*s)
		return -EINVAL;
	for (;;) {
		size_t len = strcspn(p, ",");
		if (len == 0 || out->n == NETCONF_URLS_MAX)
			return -EINVAL;
		out->v = xreallocarray(out->v, out->n + 1, sizeof(char *));
		out->v[out->n++] = xstrndup(p, len);
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
}

/*
 * The stored token is for the queue of the stored URL list. The same set
 * of URLs in any order is the same queue; a list that shares at least one
 * URL with it is the same queue with replicas added or removed: the token
 * is kept and the file rewritten with the new list. A list with no URL in
 * common is another queue, whose credentials are worth nothing here: the
 * agent registers again.
 */
static int creds_load(struct net *n)
{
	const char *path = CREDS_FILE;
	struct buf b = BUF_INIT(16384);
	const char *url, *id, *tok, *pool;
	struct net_strv stored = { NULL, 0 };
	int err, r = -ENOENT, rel;
	cJSON *j = NULL;

	if (fsx_read_fileat(n->cfg->state_fd, CREDS_FILE, 16384, O_NOFOLLOW,
	    &b) < 0)
		goto out;
	j = jsonx_parse(buf_cstr(&b), b.len, 16384, 4, &err);
	if (j == NULL || jsonx_string(j, "queue_url", 8192, &url) < 0 ||
	    split_urls(url, &stored) < 0 ||
	    jsonx_string(j, "agent_id", NET_ID_MAX, &id) < 0 ||
	    jsonx_string(j, "agent_token", 128, &tok) < 0 ||
	    jsonx_string(j, "pool", 128, &pool) < 0 || !net_valid_id(id)) {
		log_warn("ignoring unreadable agent credentials", "path=%s",
		    logq(path));
		goto out;
	}
	rel = qurls_compare(stored.v, stored.n, n->cfg->queue_urls.v,
	    n->cfg->queue_urls.n);
	if (rel == QURLS_DISJOINT) {
		log_info("the stored agent token is for other queue URLs; "
		    "registering again", "stored=%s", logq(url));
		goto out;
	}
	snprintf(n->agent_id, sizeof(n->agent_id), "%s", id);
	n->token = xstrdup(tok);
	n->pool = xstrdup(pool);
	r = 0;
	if (rel == QURLS_OVERLAP) {
		log_info("the queue URL list changed; keeping the agent token "
		    "(the lists share a URL)", "stored=%s now=%s", logq(url),
		    logq(n->cfg->queue_url));
		if (creds_save(n) < 0)
			log_warn("cannot rewrite the agent credentials", "path=%s",
			    logq(path));
	}
out:
	if (b.data)
		memset(b.data, 0, b.len);
	buf_free(&b);
	for (size_t i = 0; i < stored.n; i++)
		free(stored.v[i]);
	free(stored.v);
	cJSON_Delete(j);
	return r;
}

static int creds_save(struct net *n)
{
	cJSON *j = cJSON_CreateObject();
	int r;

	cJSON_AddStringToObject(j, "queue_url", n->cfg->queue_url);
	cJSON_AddStringToObject(j, "agent_id", n->agent_id);
	cJSON_AddStringToObject(j, "agent_token", n->token);
	cJSON_AddStringToObject(j, "pool", n->pool);
	char *s = jsonx_print(j);
	r = fsx_write_fileat(n->cfg->state_fd, CREDS_FILE, s, strlen(s), 0600);
	memset(s, 0, strlen(s));
	cJSON_free(s);
	cJSON_Delete(j);
	return r;
}

static void creds_forget(struct net *n)
{
	unlinkat(n->cfg->state_fd, CREDS_FILE, 0);
}

/* ---- registration ---- */

static void register_send(struct net *n);

static int register_accept(struct net *n, cJSON *j)
{
	const char *id, *tok, *pool;
	int64_t wait;

	if (jsonx_string(j, "agent_id", NET_ID_MAX, &id) < 0 ||
	    jsonx_string(j, "agent_token", 128, &tok) < 0 ||
	    jsonx_string(j, "pool", 128, &pool) < 0 || !net_valid_id(id))
		return -EINVAL;
	snprintf(n->agent_id, sizeof(n->agent_id), "%s", id);
	free(n->token);
	n->token = xstrdup(tok);
	free(n->pool);
	n->pool = xstrdup(pool);
	if (jsonx_int(j, "lease_wait", 1, 60, &wait) == 0 &&
	    wait < n->cfg->lease_wait)
		n->lease_wait = wait;
	return 0;
}

static int pool_matches(struct net *n)
{
	if (n->cfg->pool == NULL || strcmp(n->cfg->pool, n->pool) == 0)
		return 1;
	log_error("the registration token belongs to another pool", "pool=%s "
	    "configured=%s", logq(n->pool), logq(n->cfg->pool));
	leave(n, AGENT_EX_CONFIG);
	return 0;
}

static void start_leasing(struct net *n)
{
	n->state = NET_LEASING;
	backoff_reset(&n->bo);
	if (n->cfg->idle_timeout > 0)
		ev_timer_start(n->idle, n->cfg->idle_timeout * 1000);
	lease_maybe(n);
}

static void register_done(struct http_req *r, void *arg)
{
	struct net *n = arg;
	long st = http_req_status(r);
	cJSON *j = NULL;

	n->req = NULL;
	if (st == 401 || st == 403) {
		log_error("the queue refused the registration token", "status=%ld",
		    st);
		leave(n, AGENT_EX_REVOKED);
	} else if ((st == 200 || st == 201) && (j = net_json(r)) &&
	    register_accept(n, j) == 0) {
		int w = creds_save(n);
		if (w < 0)
			log_warn("cannot save the agent token; it will register "
			    "again after a restart", "error=%s", logq(strerror(-w)));
		log_info("registered", "agent=%s pool=%s", n->agent_id,
		    logq(n->pool));
		if (pool_matches(n))
			start_leasing(n);
	} else if (net_status_is_retryable(st) || st == 200 || st == 201) {
		retry_later(n, "registration failed", r, n->req_gen);
	} else {
		net_log_http_error("registration refused", r, 0);
		leave(n, AGENT_EX_FAILURE);
	}
	cJSON_Delete(j);
	http_req_free(r);
}

static void register_send(struct net *n)
{
	uint64_t gen;
	char *url = net_url(n, &gen, "/v1/agents/register");
	const char *tok = n->cfg->registration_token;
	char hostname[256];

	if (tok == NULL) {
		log_error("no agent token stored and no registration token "
		    "configured (SKIFF_REGISTRATION_TOKEN)", NULL);
		free(url);
		leave(n, AGENT_EX_CONFIG);
		return;
	}
	cJSON *j = cJSON_CreateObject(), *labels;
	if (n->cfg->name)
		snprintf(hostname, sizeof(hostname), "%s", n->cfg->name);
	else if (gethostname(hostname, sizeof(hostname)) < 0 || !hostname[0])
		snprintf(hostname, sizeof(hostname), "skiff-agent");
	hostname[128] = '\0';
	cJSON_AddStringToObject(j, "name", hostname);
	labels = cJSON_AddArrayToObject(j, "labels");
	for (size_t i = 0; i < n->cfg->labels.n; i++)
		cJSON_AddItemToArray(labels, cJSON_CreateString(n->cfg->labels.v[i]));
	cJSON_AddNumberToObject(j, "capacity", (double)n->cfg->capacity);
	cJSON_AddStringToObject(j, "version", SKIFF_VERSION);
	char *body = jsonx_print(j);
	struct http_req *r = http_req_new(n->http, "POST", url);
	http_req_bearer(r, tok);
	http_req_body_json(r, body);
	http_req_timeout(r, 30000, 0);
	n->req = r;
	n->req_gen = gen;
	if (http_req_send(r, register_done, n) < 0) {
		n->req = NULL;
		http_req_free(r);
		retry_later(n, "registration failed", NULL, gen);
	}
	cJSON_free(body);
	cJSON_Delete(j);
	free(url);
}

/* ---- the lease long-poll ---- */

static void lease_done(struct http_req *r, void *arg);

static void lease_on_wire(void *arg)
{
	struct net *n = arg;

	log_debug("lease request in flight", "wait_s=%lld",
	    (long long)n->lease_wait);
}

static int can_lease(const struct net *n)
{
	if (n->state != NET_LEASING || n->req || ev_timer_active(n->retry))
		return 0;
	if (n->active >= (size_t)n->cfg->capacity)
		return 0;
	return n->cfg->max_jobs == 0 || n->leases_taken < n->cfg->max_jobs;
}

static void lease_maybe(struct net *n)
{
	if (!can_lease(n))
		return;
	uint64_t gen;
	char *url = net_url(n, &gen, "/v1/agent/lease");
	char body[64];
	/* The client gives up a little after the server's deadline, so a
	 * connection the network dropped silently costs one wait at most. */
	struct http_req *r = net_request(n, "POST", url,
	    (n->lease_wait + 15) * 1000);

	snprintf(body, sizeof(body), "{\"wait\":%lld,\"free\":%zu}",
	    (long long)n->lease_wait, (size_t)n->cfg->capacity - n->active);
	http_req_body_json(r, body);
	if (log_enabled(LOGL_DEBUG))
		http_req_on_wire(r, lease_on_wire, n);
	n->req = r;
	n->req_gen = gen;
	if (http_req_send(r, lease_done, n) < 0) {
		n->req = NULL;
		http_req_free(r);
		retry_later(n, "lease request failed", NULL, gen);
	}
	free(url);
}

static int slot_free(struct net *n)
{
	for (size_t i = 0; i < (size_t)n->cfg->capacity; i++)
		if (n->jobs[i] == NULL)
			return (int)i;
	return -1;
}

/* A lease answer: a job for us. */
static int lease_accept(struct net *n, cJSON *j)
{
	const char *lease, *job, *jws;
	int64_t attempt = 1, ack = 15, ttl = 120, hb = 10;
	int slot = slot_free(n);

	if (jsonx_string(j, "lease", NET_ID_MAX, &lease) < 0 ||
	    jsonx_string(j, "job", NET_ID_MAX, &job) < 0 ||
	    jsonx_string(j, "jws", 512 * 1024, &jws) < 0 ||
	    !net_valid_id(lease) || !net_valid_id(job) || slot < 0)
		return -EINVAL;
	jsonx_int(j, "attempt", 1, 1000, &attempt);
	jsonx_int(j, "ack_window", 1, 3600, &ack);
	jsonx_int(j, "lease_ttl", 1, 86400, &ttl);
	jsonx_int(j, "heartbeat_interval", 1, 3600, &hb);
	if (hb * 3 > ttl)
		hb = ttl / 3 > 0 ? ttl / 3 : 1;
	n->leases_taken++;
	n->active++;
	ev_timer_stop(n->idle);
	log_info("leased job", "job=%s lease=%s attempt=%lld", job, lease,
	    (long long)attempt);
	n->jobs[slot] = netjob_new(n, lease, job, (int)attempt, jws, strlen(jws),
	    ack, ttl, hb);
	return 0;
}

static void lease_done(struct http_req *r, void *arg)
{
	struct net *n = arg;
	long st = http_req_status(r);
	cJSON *j = NULL;

	n->req = NULL;
	if (st == 204) {
		backoff_reset(&n->bo);
	} else if (st == 200 && (j = net_json(r)) && lease_accept(n, j) == 0) {
		backoff_reset(&n->bo);
	} else if (st == 401) {
		net_revoked(n, "lease");
	} else if (net_status_is_retryable(st) || st == 200) {
		retry_later(n, "lease request failed", r, n->req_gen);
	} else {
		/* A 4xx we did not expect: our bug or the queue's; wait and
		 * try again rather than spin. */
		retry_later(n, "lease request refused", r, n->req_gen);
	}
	cJSON_Delete(j);
	http_req_free(r);
	lease_maybe(n);
}

static void on_retry(struct ev_timer *t, void *arg)
{
	struct net *n = arg;

	(void)t;
	if (n->state == NET_REGISTERING)
		register_send(n);
	else if (n->state == NET_LEASING)
		lease_maybe(n);
	else if (n->state == NET_LEAVING)
		leave(n, n->exit_code);
}

/* ---- leaving ---- */

static void stop_leasing(struct net *n)
{
	/* A lease the queue handed to this request in the meantime is never
	 * acknowledged and goes back to the queue after the ack window. */
	http_req_free(n->req);
	n->req = NULL;
	ev_timer_stop(n->retry);
	ev_timer_stop(n->idle);
}

static void finish(struct net *n)
{
	n->state = NET_EXITED;
	n->exit(n->exit_ctx, n->exit_code);
}

static void deregister_done(struct http_req *r, void *arg)
{
	struct net *n = arg;
	long st = http_req_status(r);

	n->req = NULL;
	if (st == 200 || st == 204 || st == 401 || st == 404 ||
	    ++n->dereg_tries >= DEREG_TRIES) {
		if (st == 200 || st == 204)
			log_info("deregistered", "agent=%s", n->agent_id);
		else
			log_warn("leaving without deregistering", "status=%ld "
			    "error=%s", st, logq(http_req_error(r)));
		creds_forget(n);
		http_req_free(r);
		finish(n);
		return;
	}
	net_failed(n, n->req_gen, r, "deregistration");
	http_req_free(r);
	retry_later(n, "deregistration failed", NULL, 0);
}

/*
 * Leaves with code: stop leasing, then deregister (except when our token
 * is revoked or we never registered), then exit. Called only once no job
 * is running, or for codes that abandon jobs (revoked, quit).
 */
static void leave(struct net *n, int code)
{
	if (n->state != NET_LEAVING) {
		n->state = NET_LEAVING;
		n->exit_code = code;
		stop_leasing(n);
	}
	if (n->req)
		return;
	if (code == AGENT_EX_REVOKED || code == AGENT_EX_CONFIG ||
	    n->token == NULL || code == AGENT_EX_FAILURE) {
		if (code == AGENT_EX_REVOKED)
			creds_forget(n);
		finish(n);
		return;
	}
	uint64_t gen;
	char *url = net_url(n, &gen, "/v1/agent/deregister");
	struct http_req *r = net_request(n, "POST", url, 10000);
	http_req_body_json(r, code == AGENT_EX_DONE ? "{\"reason\":\"idle\"}" :
	    "{\"reason\":\"shutdown\"}");
	n->req = r;
	n->req_gen = gen;
	free(url);
	if (http_req_send(r, deregister_done, n) < 0) {
		n->req = NULL;
		http_req_free(r);
		finish(n);
	}
}

static void net_revoked(struct net *n, const char *what)
{
	if (n->state == NET_EXITED)
		return;
	log_error("the queue revoked this agent's token; stopping every job",
	    "during=%s agent=%s", what, n->agent_id);
	/* Mark the exit first: jobs finishing below must not start another
	 * way out. */
	n->state = NET_LEAVING;
	n->exit_code = AGENT_EX_REVOKED;
	stop_leasing(n);
	for (size_t i = 0; i < (size_t)n->cfg->capacity; i++)
		if (n->jobs[i])
			netjob_stop(n->jobs[i], SEAM_STOP_LOST);
	leave(n, AGENT_EX_REVOKED);
}

static void on_idle(struct ev_timer *t, void *arg)
{
	struct net *n = arg;

	(void)t;
	if (n->active || n->state != NET_LEASING)
		return;
	log_info("idle timeout reached; leaving", "idle_s=%lld",
	    (long long)n->cfg->idle_timeout);
	leave(n, AGENT_EX_DONE);
}

/* After a job's lease ended (completed or lost). */
static void net_job_finished(struct net *n, struct net_job *j)
{
	for (size_t i = 0; i < (size_t)n->cfg->capacity; i++)
		if (n->jobs[i] == j)
			n->jobs[i] = NULL;
	netjob_free(j);
	n->active--;
	if (n->state == NET_DRAINING && n->active == 0) {
		ev_timer_stop(n->drain);
		leave(n, AGENT_EX_SIGNAL);
	} else if (n->state == NET_LEASING && n->cfg->max_jobs &&
	    n->leases_taken >= n->cfg->max_jobs && n->active == 0) {
		log_info("max jobs reached; leaving", "jobs=%lld",
		    (long long)n->leases_taken);
		leave(n, AGENT_EX_DONE);
	} else if (n->state == NET_LEASING) {
		if (n->active == 0 && n->cfg->idle_timeout > 0)
			ev_timer_start(n->idle, n->cfg->idle_timeout * 1000);
		lease_maybe(n);
	}
}

static void stop_all(struct net *n, enum seam_stop why)
{
	for (size_t i = 0; i < (size_t)n->cfg->capacity; i++)
		if (n->jobs[i])
			netjob_stop(n->jobs[i], why);
}

static void on_drain_timeout(struct ev_timer *t, void *arg)
{
	struct net *n = arg;

	(void)t;
	log_warn("drain grace over; canceling running jobs", "jobs=%zu",
	    n->active);
	stop_all(n, SEAM_STOP_SHUTDOWN);
}

void net_drain(struct net *n)
{
	if (n->state == NET_LEAVING || n->state == NET_EXITED)
		return;
	if (++n->drain_signals > 1) {
		log_warn("second stop signal; canceling running jobs now",
		    "jobs=%zu", n->active);
		ev_timer_stop(n->drain);
		stop_all(n, SEAM_STOP_SHUTDOWN);
		return;
	}
	log_info("draining: no new jobs", "jobs=%zu grace_s=%lld", n->active,
	    (long long)n->cfg->drain_grace);
	n->state = NET_DRAINING;
	stop_leasing(n);
	if (n->active == 0) {
		leave(n, AGENT_EX_SIGNAL);
		return;
	}
	ev_timer_start(n->drain, n->cfg->drain_grace * 1000);
}

void net_quit(struct net *n)
{
	if (n->state == NET_EXITED)
		return;
	log_warn("quit: stopping every job and leaving now", "jobs=%zu",
	    n->active);
	n->state = NET_LEAVING;
	n->exit_code = AGENT_EX_SIGNAL;
	stop_leasing(n);
	stop_all(n, SEAM_STOP_QUIT);
	finish(n);
}

/* ---- the seam, runner -> network ---- */

static struct net_job *find_job(struct net *n, uint64_t jh)
{
	for (size_t i = 0; i < (size_t)n->cfg->capacity; i++)
		if (n->jobs[i] && n->jobs[i]->jh == jh)
			return n->jobs[i];
	return NULL;
}

static void seam_spool(void *ctx, uint64_t jh, int fd)
{
	struct net_job *j = find_job(ctx, jh);

	if (j)
		netjob_spool(j, fd);
	else
		close(fd);
}

static void seam_logged(void *ctx, uint64_t jh, uint64_t total)
{
	struct net_job *j = find_job(ctx, jh);

	if (j)
		netjob_logged(j, total);
}

static void seam_step(void *ctx, uint64_t jh, int index)
{
	struct net_job *j = find_job(ctx, jh);

	if (j)
		j->step = index;
}

static void seam_artifact(void *ctx, uint64_t jh, uint64_t id, int fd,
    const char *name, uint64_t size)
{
	struct net *n = ctx;
	struct net_job *j = find_job(n, jh);

	if (j == NULL) {
		close(fd);
		n->runner->artifact_done(n->runner->ctx, jh, id, 0, "job gone");
		return;
	}
	netartifact_add(j, id, fd, name, size);
}

static void seam_fetch(void *ctx, uint64_t jh, uint64_t id, const char *url,
    int fd, uint64_t max)
{
	struct net *n = ctx;

	if (find_job(n, jh) == NULL) {
		close(fd);
		n->runner->fetch_done(n->runner->ctx, jh, id, 0, 0, 0, "job gone");
		return;
	}
	netfetch_start(n, jh, id, url, fd, max);
}

static void seam_cache_get(void *ctx, uint64_t jh, uint64_t id,
    const char *keys, int fd, uint64_t max)
{
	struct net *n = ctx;
	struct net_job *j = find_job(n, jh);

	if (j == NULL) {
		close(fd);
		n->runner->cache_get_done(n->runner->ctx, jh, id, 0, 0, NULL,
		    "job gone");
		return;
	}
	netcache_get(j, id, keys, fd, max);
}

static void seam_cache_put(void *ctx, uint64_t jh, uint64_t id, int fd,
    const char *key, uint64_t size)
{
	struct net *n = ctx;
	struct net_job *j = find_job(n, jh);

	if (j == NULL) {
		close(fd);
		n->runner->cache_put_done(n->runner->ctx, jh, id, 0, "job gone");
		return;
	}
	netartifact_add_cache(j, id, fd, key, size);
}

static void seam_done(void *ctx, uint64_t jh, const struct seam_done *d)
{
	struct net *n = ctx;
	struct net_job *j = find_job(n, jh);

	netfetch_abort(n, jh);
	netcache_abort(n, jh);
	if (j)
		netjob_runner_done(j, d);
}

static void seam_drain(void *ctx)
{
	net_drain(ctx);
}

static void seam_quit(void *ctx)
{
	net_quit(ctx);
}

/* ---- life ---- */

int net_new(const struct net_params *p, struct net **out)
{
	struct net *n = xcalloc(1, sizeof(*n));
	struct http_tls tls = { NULL, p->cfg->pinned_pubkey, NULL,
	    p->cfg->ca_pem };
	struct http_tls itls = { NULL, NULL, NULL, p->cfg->inputs_ca_pem };
	char ua[64];
	int r;

	n->cfg = p->cfg;
	n->loop = p->loop;
	n->runner = p->runner;
	n->exit = p->exit;
	n->exit_ctx = p->exit_ctx;
	n->lease_wait = p->cfg->lease_wait;
	qurls_init(&n->urls, p->cfg->queue_urls.v, p->cfg->queue_urls.n);
	n->jobs = xcalloc((size_t)p->cfg->capacity, sizeof(*n->jobs));
	n->up = (struct net_up){ net_failed, net_revoked, net_job_finished };
	n->seam = (struct seam_net_in){ n, NULL, seam_spool, seam_logged,
	    seam_step, seam_artifact, seam_fetch, seam_done, seam_drain,
	    seam_quit, seam_cache_get, seam_cache_put };
	snprintf(ua, sizeof(ua), "skiff-agent/%s", SKIFF_VERSION);
	if ((r = http_client_new(p->loop, &tls, ua, &n->http)) < 0 ||
	    (r = http_client_new(p->loop, p->cfg->inputs_ca_pem ? &itls : NULL,
	    ua, &n->inputs_http)) < 0) {
		http_client_free(n->http);
		free(n->jobs);
		free(n);
		return r;
	}
	n->retry = ev_timer_new(p->loop, on_retry, n);
	n->idle = ev_timer_new(p->loop, on_idle, n);
	n->drain = ev_timer_new(p->loop, on_drain_timeout, n);
	backoff_init(&n->bo, 1000, 60000);
	*out = n;
	return 0;
}

int net_start(struct net *n)
{
	if (creds_load(n) == 0) {
		log_info("using stored agent token", "agent=%s pool=%s",
		    n->agent_id, logq(n->pool));
		if (pool_matches(n))
			start_leasing(n);
		return 0;
	}
	n->state = NET_REGISTERING;
	register_send(n);
	return 0;
}

const struct seam_net_in *net_seam(struct net *n)
{
	return &n->seam;
}

void net_free(struct net *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < (size_t)n->cfg->capacity; i++)
		netjob_free(n->jobs[i]);
	free(n->jobs);
	netfetch_abort(n, 0);
	netcache_abort(n, 0);
	http_req_free(n->req);
	ev_timer_free(n->retry);
	ev_timer_free(n->idle);
	ev_timer_free(n->drain);
	http_client_free(n->http);
	http_client_free(n->inputs_http);
	if (n->token)
		memset(n->token, 0, strlen(n->token));
	free(n->token);
	free(n->pool);
	free(n);
}
