/*
 * One lease: acknowledgement and heartbeats, the log from the spool to the
 * queue at explicit offsets, and completion once everything is delivered.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "fsx.h"
#include "jsonx.h"
#include "log.h"
#include "net_int.h"
#include "xalloc.h"

static void hb_send(struct net_job *j);
static void log_kick(struct net_job *j);
static void complete_send(struct net_job *j);
/* Sends complete once the runner is done, uploads have caught up and no
 * artifact is outstanding. */
static void netjob_maybe_complete(struct net_job *j);

/* The lease is gone (expired, reassigned, canceled elsewhere). */
static void lease_lost(struct net_job *j, const char *why)
{
	if (j->lost)
		return;
	log_warn("lease lost; stopping the job", "job=%s lease=%s why=%s",
	    j->job_id, j->lease, logq(why));
	j->lost = 1;
	http_req_free(j->hb_req);
	j->hb_req = NULL;
	http_req_free(j->log_req);
	j->log_req = NULL;
	http_req_free(j->complete_req);
	j->complete_req = NULL;
	ev_timer_stop(j->hb_timer);
	ev_timer_stop(j->flush_timer);
	ev_timer_stop(j->log_retry);
	ev_timer_stop(j->complete_retry);
	netartifact_abort_all(j);
	if (j->started && !j->runner_done)
		j->n->runner->stop(j->n->runner->ctx, j->jh, SEAM_STOP_LOST);
	else
		j->n->up.job_finished(j->n, j);
}

/* Common handling of lease-scoped answers; 1 when the caller is done. */
static int lease_answer_fatal(struct net_job *j, long st, const char *what)
{
	if (st == 401) {
		j->n->up.revoked(j->n, what);
		return 1;
	}
	if (st == 403 || st == 404 || st == 410) {
		lease_lost(j, st == 410 ? "lease_lost" : st == 404 ? "unknown lease" :
		    "lease of another agent");
		return 1;
	}
	return 0;
}

/* ---- acknowledgement and heartbeats ---- */

static void hb_apply(struct net_job *j, cJSON *body)
{
	int64_t v;
	int cancel = 0;

	if (jsonx_int(body, "lease_ttl", 1, 86400, &v) == 0)
		j->lease_ttl_ms = v * 1000;
	if (jsonx_int(body, "heartbeat_interval", 1, 3600, &v) == 0 &&
	    v * 3000 <= j->lease_ttl_ms)
		j->hb_interval_ms = v * 1000;
	if (jsonx_bool(body, "cancel", &cancel) == 0 && cancel &&
	    !j->cancel_sent && j->started && !j->runner_done) {
		const char *why = "canceled";
		jsonx_string(body, "cancel_reason", 256, &why);
		log_info("job canceled by the queue", "job=%s reason=%s",
		    j->job_id, logq(why));
		j->cancel_sent = 1;
		j->n->runner->stop(j->n->runner->ctx, j->jh, SEAM_STOP_CANCEL);
	}
}

static void start_runner(struct net_job *j)
{
	j->started = 1;
	j->n->runner->start(j->n->runner->ctx, j->jh, j->job_id, j->attempt,
	    j->jws, j->jws_len);
	free(j->jws);
	j->jws = NULL;
}

static void hb_failed(struct net_job *j, struct http_req *r)
{
	int64_t now = ev_now(j->n->loop);
	int64_t d = backoff_next(&j->hb_bo, http_req_retry_after(r));

	if (!j->acked && now - j->leased_ms > j->ack_window_ms) {
		lease_lost(j, "not acknowledged within the ack window");
		return;
	}
	if (j->acked && now - j->last_hb_ok_ms > j->lease_ttl_ms) {
		lease_lost(j, "no heartbeat got through for a whole lease TTL");
		return;
	}
	/* Unacknowledged: retry fast, the ack window is short. */
	if (!j->acked && d > 1000)
		d = 1000;
	if (d > j->hb_interval_ms)
		d = j->hb_interval_ms;
	log_warn("heartbeat failed", "job=%s status=%ld error=%s retry_in_ms=%lld",
	    j->job_id, http_req_status(r), logq(http_req_error(r)), (long long)d);
	ev_timer_start(j->hb_timer, d);
	j->n->up.failed(j->n, j->hb_gen, r, "heartbeat");
}

static void hb_done(struct http_req *r, void *arg)
{
	struct net_job *j = arg;
	long st = http_req_status(r);
	cJSON *body;

	j->hb_req = NULL;
	if (lease_answer_fatal(j, st, "heartbeat")) {
		http_req_free(r);
		return;
	}
	if (st != 200 || (body = net_json(r)) == NULL) {
		hb_failed(j, r);
		http_req_free(r);
		return;
	}
	http_req_free(r);
	j->last_hb_ok_ms = ev_now(j->n->loop);
	backoff_reset(&j->hb_bo);
	if (!j->acked) {
		j->acked = 1;
		log_debug("lease acknowledged", "job=%s ms=%lld", j->job_id,
		    (long long)(j->last_hb_ok_ms - j->leased_ms));
	}
	hb_apply(j, body);
	cJSON_Delete(body);
	if (!j->started && j->spool_failed) {
		/* Nowhere to keep the log: fail the job without running it. */
		j->started = 1;
		struct seam_done d = { SEAM_FAILED, "spool_failed",
		    "the agent cannot create the job's log spool", NULL, 0, NULL, 0 };
		netjob_runner_done(j, &d);
	} else if (!j->started) {
		start_runner(j);
	}
	ev_timer_start(j->hb_timer, j->hb_interval_ms);
}

static void hb_send(struct net_job *j)
{
	char body[160];
	char *url;
	struct http_req *r;

	if (j->lost || j->hb_req)
		return;
	url = net_url(j->n, &j->hb_gen, "/v1/leases/%s/heartbeat", j->lease);
	r = net_request(j->n, "POST", url, 10000);
	snprintf(body, sizeof(body), "{\"state\":\"%s\",\"step\":%d,"
	    "\"log_length\":%llu}", j->runner_done ? "finishing" : "running",
	    j->step, (unsigned long long)j->acked_len);
	http_req_body_json(r, body);
	j->hb_req = r;
	free(url);
	if (http_req_send(r, hb_done, j) < 0) {
		j->hb_req = NULL;
		http_req_free(r);
		ev_timer_start(j->hb_timer, 1000);
	}
}

static void on_hb_timer(struct ev_timer *t, void *arg)
{
	(void)t;
	hb_send(arg);
}

/* ---- the log ---- */

static void spool_fail(struct net_job *j, const char *why, int err)
{
	if (j->spool_failed)
		return;
	j->spool_failed = 1;
	log_error("cannot read the job's log spool; failing the job", "job=%s "
	    "why=%s error=%s", j->job_id, logq(why),
	    logq(err ? strerror(err) : "-"));
	if (j->started && !j->runner_done)
		j->n->runner->stop(j->n->runner->ctx, j->jh, SEAM_STOP_SPOOL);
}

void netjob_spool(struct net_job *j, int fd)
{
	if (j->spool_fd >= 0) {
		/* one per job: a second is the runner's mistake */
		close(fd);
		return;
	}
	j->spool_fd = fd;
}

void netjob_logged(struct net_job *j, uint64_t total)
{
	if (j->lost || j->spool_failed || j->log_refused || total <= j->spooled)
		return;
	if (j->spool_fd < 0) {
		spool_fail(j, "log bytes without a spool", 0);
		return;
	}
	j->spooled = total;
	log_kick(j);
}

static int gzip_chunk(struct net_job *j, size_t n, char **out, size_t *outlen)
{
	if (!j->zs_ready) {
		memset(&j->zs, 0, sizeof(j->zs));
		/* Level 1: logs compress well even so, and the pipeline must
		 * keep up with a step writing 100 MB/s. */
		if (deflateInit2(&j->zs, 1, Z_DEFLATED, 15 + 16, 8,
		    Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		j->zs_ready = 1;
	} else {
		deflateReset(&j->zs);
	}
	size_t cap = deflateBound(&j->zs, (uLong)n);
	char *z = xmalloc(cap);
	j->zs.next_in = (Bytef *)j->raw;
	j->zs.avail_in = (uInt)n;
	j->zs.next_out = (Bytef *)z;
	j->zs.avail_out = (uInt)cap;
	if (deflate(&j->zs, Z_FINISH) != Z_STREAM_END) {
		free(z);
		return -EIO;
	}
	*out = z;
	*outlen = cap - j->zs.avail_out;
	return 0;
}

/* The queue's length after an append or in a 409; 0 when usable. */
static int take_length(struct net_job *j, cJSON *body)
{
	int64_t len;

	if (body == NULL || jsonx_int(body, "length", 0, INT64_MAX, &len) < 0)
		return -EINVAL;
	if ((uint64_t)len > j->spooled) {
		/* The queue claims bytes we never wrote: its log is not ours. */
		log_error("the queue's log is longer than ours", "job=%s "
		    "queue=%lld ours=%llu", j->job_id, (long long)len,
		    (unsigned long long)j->spooled);
		lease_lost(j, "log diverged");
		return -ESTALE;
	}
	j->acked_len = (uint64_t)len;
	return 0;
}

static void log_retry_later(struct net_job *j, struct http_req *r)
{
	int64_t d = backoff_next(&j->log_bo, http_req_retry_after(r));

	log_warn("log upload failed", "job=%s status=%ld error=%s offset=%llu "
	    "retry_in_ms=%lld", j->job_id, http_req_status(r),
	    logq(http_req_error(r)), (unsigned long long)j->acked_len,
	    (long long)d);
	ev_timer_start(j->log_retry, d);
	j->n->up.failed(j->n, j->log_gen, r, "log upload");
}

static void log_done(struct http_req *r, void *arg)
{
	struct net_job *j = arg;
	long st = http_req_status(r);
	cJSON *body = NULL;

	j->log_req = NULL;
	if (lease_answer_fatal(j, st, "log upload"))
		goto out;
	if (st == 200 || st == 409) {
		body = net_json(r);
		int t = take_length(j, body);
		if (t == -ESTALE)
			goto out;
		if (t < 0) {
			log_retry_later(j, r);
			goto out;
		}
		backoff_reset(&j->log_bo);
		j->flush_due = 0;
		log_kick(j);
	} else if (st == 413) {
		log_warn("the queue refuses more log for this job; the rest is "
		    "dropped", "job=%s length=%llu", j->job_id,
		    (unsigned long long)j->acked_len);
		j->log_refused = 1;
		log_kick(j);
	} else {
		log_retry_later(j, r);
	}
out:
	cJSON_Delete(body);
	http_req_free(r);
}

/* Reads and compresses [off, off + n) of the spool into a heap block. */
static int compress_range(struct net_job *j, uint64_t off, size_t n,
    char **z, size_t *zlen)
{
	ssize_t got;

	if (j->raw == NULL)
		j->raw = xmalloc(LOG_CHUNK_MAX);
	got = pread(j->spool_fd, j->raw, n, (off_t)off);
	if (got != (ssize_t)n) {
		spool_fail(j, "read back failed", got < 0 ? errno : EIO);
		return -EIO;
	}
	if (gzip_chunk(j, n, z, zlen) < 0) {
		spool_fail(j, "compression failed", 0);
		return -EIO;
	}
	return 0;
}

static void drop_prepared(struct net_job *j)
{
	free(j->next_z);
	j->next_z = NULL;
	j->next_len = 0;
}

static size_t chunk_len(uint64_t pending)
{
	return pending > LOG_CHUNK_MAX ? LOG_CHUNK_MAX : (size_t)pending;
}

static void log_send(struct net_job *j)
{
	size_t n = chunk_len(j->spooled - j->acked_len), zlen;
	char *z, *url;

	/* The prepared chunk serves when it starts where the queue stands
	 * and is as long as what there is to send now (up to a chunk). */
	if (j->next_z && j->next_off == j->acked_len && j->next_len == n) {
		z = j->next_z;
		zlen = j->next_zlen;
		j->next_z = NULL;
	} else {
		drop_prepared(j);
		if (compress_range(j, j->acked_len, n, &z, &zlen) < 0) {
			j->log_refused = 1;
			log_kick(j);
			return;
		}
	}
	url = net_url(j->n, &j->log_gen, "/v1/leases/%s/log?offset=%llu",
	    j->lease, (unsigned long long)j->acked_len);
	struct http_req *r = net_request(j->n, "PUT", url, 60000);
	free(url);
	http_req_header(r, "Content-Encoding: gzip");
	http_req_body_owned(r, z, zlen, "application/octet-stream");
	j->log_req = r;
	j->log_req_end = j->acked_len + n;
	if (http_req_send(r, log_done, j) < 0) {
		j->log_req = NULL;
		http_req_free(r);
		ev_timer_start(j->log_retry, 1000);
		return;
	}
	/* After curl has had its turn to put this request on the wire. */
	if (j->spooled - j->log_req_end >= LOG_CHUNK_MIN || j->runner_done)
		ev_timer_start(j->prepare, 1);
}

static void on_prepare(struct ev_timer *t, void *arg)
{
	struct net_job *j = arg;
	uint64_t off = j->log_req_end;
	size_t n;

	(void)t;
	if (!j->log_req || j->lost || j->spool_failed || off >= j->spooled)
		return;
	n = chunk_len(j->spooled - off);
	drop_prepared(j);
	if (compress_range(j, off, n, &j->next_z, &j->next_zlen) == 0) {
		j->next_off = off;
		j->next_len = n;
	}
}

static int log_settled(const struct net_job *j)
{
	return j->acked_len == j->spooled || j->log_refused;
}

/* Decides whether the log needs an upload now, later, or not at all. */
static void log_kick(struct net_job *j)
{
	if (j->lost || j->log_req || ev_timer_active(j->log_retry))
		return;
	if (log_settled(j)) {
		ev_timer_stop(j->flush_timer);
		netjob_maybe_complete(j);
		return;
	}
	uint64_t pending = j->spooled - j->acked_len;
	if (pending >= LOG_CHUNK_MIN || j->runner_done || j->flush_due) {
		ev_timer_stop(j->flush_timer);
		log_send(j);
	} else if (!ev_timer_active(j->flush_timer)) {
		ev_timer_start(j->flush_timer, LOG_FLUSH_MS);
	}
}

static void on_flush(struct ev_timer *t, void *arg)
{
	struct net_job *j = arg;

	(void)t;
	j->flush_due = 1;
	log_kick(j);
}

static void on_log_retry(struct ev_timer *t, void *arg)
{
	(void)t;
	log_kick(arg);
}

/* ---- completion ---- */

static void complete_done(struct http_req *r, void *arg)
{
	struct net_job *j = arg;
	long st = http_req_status(r);
	cJSON *body = NULL;

	j->complete_req = NULL;
	if (st == 401) {
		http_req_free(r);
		j->n->up.revoked(j->n, "complete");
		return;
	}
	if (st == 403 || st == 404 || st == 410) {
		log_warn("completion refused: the lease is gone", "job=%s status=%ld",
		    j->job_id, st);
		http_req_free(r);
		j->n->up.job_finished(j->n, j);
		return;
	}
	if (st == 200) {
		log_info("job completed", "job=%s result=%s log_bytes=%llu",
		    j->job_id, seam_result_name(j->result),
		    (unsigned long long)j->acked_len);
		http_req_free(r);
		j->n->up.job_finished(j->n, j);
		return;
	}
	if (st == 409 && (body = net_json(r)) != NULL) {
		/* The queue has less log than we thought: upload the rest. */
		int t = take_length(j, body);
		cJSON_Delete(body);
		if (t == -ESTALE) {
			http_req_free(r);
			return;
		}
		if (t == 0) {
			http_req_free(r);
			log_kick(j);
			return;
		}
	}
	if (!net_status_is_retryable(st) && st != 409) {
		log_error("completion refused", "job=%s status=%ld body=%s", j->job_id,
		    st, logq(buf_cstr(http_req_response(r))));
		http_req_free(r);
		j->n->up.job_finished(j->n, j);
		return;
	}
	int64_t d = backoff_next(&j->complete_bo, http_req_retry_after(r));
	log_warn("completion failed", "job=%s status=%ld error=%s retry_in_ms=%lld",
	    j->job_id, st, logq(http_req_error(r)), (long long)d);
	ev_timer_start(j->complete_retry, d);
	j->n->up.failed(j->n, j->complete_gen, r, "complete");
	http_req_free(r);
}

static void complete_send(struct net_job *j)
{
	cJSON *o = cJSON_CreateObject(), *codes;
	char *url, *body;

	cJSON_AddStringToObject(o, "result", seam_result_name(j->result));
	codes = cJSON_AddArrayToObject(o, "exit_codes");
	for (size_t i = 0; i < j->nexit; i++)
		cJSON_AddItemToArray(codes, cJSON_CreateNumber(j->exit_codes[i]));
	cJSON_AddNumberToObject(o, "log_length", (double)j->acked_len);
	if (j->reason_code)
		cJSON_AddStringToObject(o, "reason_code", j->reason_code);
	if (j->reason)
		cJSON_AddStringToObject(o, "reason", j->reason);
	if (j->outputs)
		cJSON_AddItemReferenceToObject(o, "outputs", j->outputs);
	body = jsonx_print(o);
	url = net_url(j->n, &j->complete_gen, "/v1/leases/%s/complete",
	    j->lease);
	struct http_req *r = net_request(j->n, "POST", url, 30000);
	http_req_body_json(r, body);
	j->complete_req = r;
	if (http_req_send(r, complete_done, j) < 0) {
		j->complete_req = NULL;
		http_req_free(r);
		ev_timer_start(j->complete_retry, 1000);
	}
	free(url);
	cJSON_free(body);
	cJSON_Delete(o);
}

static void on_complete_retry(struct ev_timer *t, void *arg)
{
	(void)t;
	netjob_maybe_complete(arg);
}

static void netjob_maybe_complete(struct net_job *j)
{
	if (!j->runner_done || j->lost || j->complete_req ||
	    ev_timer_active(j->complete_retry) || !log_settled(j) ||
	    netartifact_busy(j))
		return;
	complete_send(j);
}

/*
 * The queue takes a reason of at most 1 KiB of strict UTF-8. A reason may
 * quote what a job chose (an archive entry's name, any bytes): a byte
 * that is not UTF-8 becomes '?', and the cut falls between characters,
 * so the completion is never refused for its reason.
 */
static char *reason_copy(const char *s)
{
	size_t n = strnlen(s, 4096), bad;
	char *c = xstrndup(s, n);

	while (!jsonx_utf8_valid(c, n, &bad))
		c[bad] = '?';
	c[jsonx_utf8_cut(c, n, 1024)] = '\0';
	return c;
}

void netjob_runner_done(struct net_job *j, const struct seam_done *d)
{
	j->runner_done = 1;
	if (j->lost) {
		j->n->up.job_finished(j->n, j);
		return;
	}
	j->result = d->result;
	j->reason_code = d->reason_code ? xstrdup(d->reason_code) : NULL;
	j->reason = d->reason ? reason_copy(d->reason) : NULL;
	j->exit_codes = xcalloc(d->nexit ? d->nexit : 1, sizeof(int));
	if (d->nexit)
		memcpy(j->exit_codes, d->exit_codes, d->nexit * sizeof(int));
	j->nexit = d->nexit;
	if (d->noutputs) {
		j->outputs = cJSON_CreateObject();
		for (size_t i = 0; i < d->noutputs; i++)
			cJSON_AddStringToObject(j->outputs, d->outputs[i].name,
			    d->outputs[i].value);
	}
	log_kick(j);
}

void netjob_stop(struct net_job *j, enum seam_stop why)
{
	if (why == SEAM_STOP_LOST || why == SEAM_STOP_QUIT) {
		lease_lost(j, why == SEAM_STOP_QUIT ? "agent quit" : "token revoked");
		return;
	}
	if (j->started && !j->runner_done)
		j->n->runner->stop(j->n->runner->ctx, j->jh, why);
}

/* ---- life ---- */

struct net_job *netjob_new(struct net *n, const char *lease,
    const char *job_id, int attempt, const char *jws, size_t jws_len,
    int64_t ack_window, int64_t lease_ttl, int64_t hb_interval)
{
	struct net_job *j = xcalloc(1, sizeof(*j));

	j->n = n;
	j->jh = ++n->next_jh;
	snprintf(j->job_id, sizeof(j->job_id), "%s", job_id);
	snprintf(j->lease, sizeof(j->lease), "%s", lease);
	j->attempt = attempt;
	j->jws = xmemdup(jws, jws_len + 1);
	j->jws_len = jws_len;
	j->leased_ms = ev_now(n->loop);
	j->last_hb_ok_ms = j->leased_ms;
	j->ack_window_ms = ack_window * 1000;
	j->lease_ttl_ms = lease_ttl * 1000;
	j->hb_interval_ms = hb_interval * 1000;
	j->hb_timer = ev_timer_new(n->loop, on_hb_timer, j);
	j->flush_timer = ev_timer_new(n->loop, on_flush, j);
	j->log_retry = ev_timer_new(n->loop, on_log_retry, j);
	j->complete_retry = ev_timer_new(n->loop, on_complete_retry, j);
	j->prepare = ev_timer_new(n->loop, on_prepare, j);
	backoff_init(&j->hb_bo, 250, 10000);
	backoff_init(&j->log_bo, 1000, 30000);
	backoff_init(&j->complete_bo, 1000, 60000);
	j->spool_fd = -1;
	j->artifact_settled = netjob_maybe_complete;
	hb_send(j);
	return j;
}

void netjob_free(struct net_job *j)
{
	if (j == NULL)
		return;
	http_req_free(j->hb_req);
	http_req_free(j->log_req);
	http_req_free(j->complete_req);
	ev_timer_free(j->hb_timer);
	ev_timer_free(j->flush_timer);
	ev_timer_free(j->log_retry);
	ev_timer_free(j->complete_retry);
	ev_timer_free(j->prepare);
	free(j->next_z);
	netartifact_abort_all(j);
	if (j->spool_fd >= 0)
		close(j->spool_fd);
	/* The runner may remove the spool now. */
	if (j->started)
		j->n->runner->release(j->n->runner->ctx, j->jh);
	if (j->zs_ready)
		deflateEnd(&j->zs);
	free(j->raw);
	free(j->jws);
	free(j->reason_code);
	free(j->reason);
	free(j->exit_codes);
	cJSON_Delete(j->outputs);
	free(j);
}
