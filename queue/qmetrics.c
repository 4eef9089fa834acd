/*
 * /metrics: the series of docs/protocol.md section 6, from the queue's
 * in-memory state. Gauges are computed when scraped; counters and
 * histograms count since the queue started (Prometheus handles resets).
 */
#include "queue.h"

#include <cjson/cJSON.h>

#include "buf.h"
#include "hmap.h"
#include "metrics.h"

static const char *const results[] = {
	"succeeded", "failed", "canceled", "timed_out", "rejected", "expired",
	"lost",
};

static const enum jstate result_states[] = {
	JS_SUCCEEDED, JS_FAILED, JS_CANCELED, JS_TIMED_OUT, JS_REJECTED,
	JS_EXPIRED, JS_LOST,
};

typedef void (*pool_fn)(struct queue *q, struct qpool *p, struct buf *b);

static void each_pool(struct queue *q, struct buf *b, pool_fn fn)
{
	struct hmap_iter it = { 0 };
	struct qpool *p;

	while ((p = hmap_next(q->pools, &it)) != NULL)
		fn(q, p, b);
}

static void queued(struct queue *q, struct qpool *p, struct buf *b)
{
	const char *l[] = { "pool", p->name, NULL };
	(void)q;
	metrics_sample(b, "skiff_jobs_queued", l, (double)p->nqueued);
}

static void leased(struct queue *q, struct qpool *p, struct buf *b)
{
	const char *l[] = { "pool", p->name, NULL };
	(void)q;
	metrics_sample(b, "skiff_jobs_leased", l, (double)p->nleased);
}

static void waiters(struct queue *q, struct qpool *p, struct buf *b)
{
	const char *l[] = { "pool", p->name, NULL };
	(void)q;
	metrics_sample(b, "skiff_lease_waiters", l, (double)p->nwaiters);
}

static void count_agents(struct queue *q, struct qpool *p, size_t *idle,
    size_t *busy)
{
	struct hmap_iter it = { 0 };
	struct qagent *a;
	int64_t now = queue_now();

	*idle = q->pg ? p->pg_idle : 0;
	*busy = q->pg ? p->pg_busy : 0;
	while ((a = hmap_next(q->agents, &it)) != NULL) {
		if (a->pool != p || a->gone)
			continue;
		if (a->nleases)
			(*busy)++;
		else if (agents_seen_within(q, a, now))
			(*idle)++;
	}
}

static void agents(struct queue *q, struct qpool *p, struct buf *b)
{
	size_t idle, busy;
	const char *li[] = { "pool", p->name, "state", "idle", NULL };
	const char *lb[] = { "pool", p->name, "state", "busy", NULL };

	count_agents(q, p, &idle, &busy);
	metrics_sample(b, "skiff_agents", li, (double)idle);
	metrics_sample(b, "skiff_agents", lb, (double)busy);
}

static void lease_wait(struct queue *q, struct qpool *p, struct buf *b)
{
	const char *l[] = { "pool", p->name, NULL };
	(void)q;
	metrics_histo(b, "skiff_lease_wait_seconds", l, &p->lease_wait);
}

static void pickup(struct queue *q, struct qpool *p, struct buf *b)
{
	const char *l[] = { "pool", p->name, NULL };
	(void)q;
	metrics_histo(b, "skiff_pickup_seconds", l, &p->pickup);
}

static void completed(struct queue *q, struct qpool *p, struct buf *b)
{
	(void)q;
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		const char *l[] = { "pool", p->name, "result", results[i], NULL };
		metrics_sample(b, "skiff_jobs_completed_total", l,
		    (double)p->completed[result_states[i]]);
	}
}

static void expired(struct queue *q, struct qpool *p, struct buf *b)
{
	const char *la[] = { "pool", p->name, "kind", "ack", NULL };
	const char *lt[] = { "pool", p->name, "kind", "ttl", NULL };
	(void)q;
	metrics_sample(b, "skiff_leases_expired_total", la,
	    (double)p->expired[LK_ACK]);
	metrics_sample(b, "skiff_leases_expired_total", lt,
	    (double)p->expired[LK_TTL]);
}

static void http(struct queue *q, struct buf *b)
{
	static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx",
	    "5xx" };

	metrics_header(b, "skiff_http_requests_total", "counter",
	    "HTTP answers by status class.");
	for (int i = 1; i <= 5; i++) {
		const char *l[] = { "code", classes[i - 1], NULL };
		if (i == 1 || i == 3)
			continue;
		metrics_sample(b, "skiff_http_requests_total", l,
		    (double)q->http_codes[i]);
	}
}

void qmetrics_http(struct queue *q, unsigned status)
{
	unsigned c = status / 100;

	if (c >= 1 && c <= 5)
		q->http_codes[c]++;
}

static void stored(struct queue *q, struct buf *b)
{
	const char *ll[] = { "kind", "logs", NULL };
	const char *la[] = { "kind", "artifacts", NULL };
	const char *lc[] = { "kind", "caches", NULL };

	if (q->pg == NULL)
		caches_count_bytes(q);
	metrics_header(b, "skiff_stored_bytes", "gauge",
	    "Bytes of log, artifact and cache files in the data directory.");
	metrics_sample(b, "skiff_stored_bytes", ll, (double)q->log_bytes);
	metrics_sample(b, "skiff_stored_bytes", la, (double)q->artifact_bytes);
	metrics_sample(b, "skiff_stored_bytes", lc, (double)q->cache_bytes);
	metrics_header(b, "skiff_jobs_deleted_total", "counter",
	    "Ended jobs deleted by retention (--retain), with their files.");
	metrics_sample(b, "skiff_jobs_deleted_total", NULL,
	    (double)q->jobs_deleted);
}

void qmetrics_render(struct queue *q, struct buf *b)
{
	metrics_header(b, "skiff_jobs_queued", "gauge",
	    "Jobs waiting for an agent.");
	each_pool(q, b, queued);
	metrics_header(b, "skiff_jobs_leased", "gauge",
	    "Jobs held by an agent, acknowledged or not.");
	each_pool(q, b, leased);
	metrics_header(b, "skiff_agents", "gauge",
	    "Registered agents seen in the last three lease waits.");
	each_pool(q, b, agents);
	metrics_header(b, "skiff_lease_waiters", "gauge",
	    "Lease requests being held right now.");
	each_pool(q, b, waiters);
	metrics_header(b, "skiff_lease_wait_seconds", "histogram",
	    "How long a lease request was held before its answer.");
	each_pool(q, b, lease_wait);
	metrics_header(b, "skiff_pickup_seconds", "histogram",
	    "From submit or requeue to the lease being handed out.");
	each_pool(q, b, pickup);
	metrics_header(b, "skiff_jobs_completed_total", "counter",
	    "Jobs that ended, by result.");
	each_pool(q, b, completed);
	metrics_header(b, "skiff_leases_expired_total", "counter",
	    "Leases that went back to the queue: ack window or TTL.");
	each_pool(q, b, expired);
	stored(q, b);
	http(q, b);
}

/* The bucket bound under which a fraction f of the observations fell
 * (so a p50 of 0.25 reads "half were picked up within 250 ms"); -1 with
 * none, and past the last bucket its bound. */
static double quantile(const struct histo *h, double f)
{
	uint64_t want = (uint64_t)((double)h->count * f + 0.999999), seen = 0;

	if (h->count == 0)
		return -1;
	for (int i = 0; i < METRICS_NBUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want)
			return metrics_bounds[i];
	}
	return metrics_bounds[METRICS_NBUCKETS - 1];
}

static void add_seconds(cJSON *o, const char *k, double v)
{
	if (v < 0)
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

cJSON *qmetrics_pools(struct queue *q)
{
	struct hmap_iter it = { 0 };
	struct qpool *p;
	cJSON *out = cJSON_CreateObject(), *list = cJSON_CreateArray();

	while ((p = hmap_next(q->pools, &it)) != NULL) {
		cJSON *o = cJSON_CreateObject(), *pk = cJSON_CreateObject();
		size_t idle, busy;
		uint64_t done = 0;

		count_agents(q, p, &idle, &busy);
		for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
			done += p->completed[result_states[i]];
		cJSON_AddStringToObject(o, "pool", p->name);
		cJSON_AddNumberToObject(o, "queued", (double)p->nqueued);
		cJSON_AddNumberToObject(o, "leased", (double)p->nleased);
		cJSON_AddNumberToObject(o, "agents_idle", (double)idle);
		cJSON_AddNumberToObject(o, "agents_busy", (double)busy);
		cJSON_AddNumberToObject(o, "lease_waiters", (double)p->nwaiters);
		cJSON_AddNumberToObject(o, "completed", (double)done);
		cJSON_AddNumberToObject(pk, "count", (double)p->pickup.count);
		add_seconds(pk, "mean", p->pickup.count ?
		    p->pickup.sum / (double)p->pickup.count : -1);
		add_seconds(pk, "p50", quantile(&p->pickup, 0.5));
		add_seconds(pk, "p90", quantile(&p->pickup, 0.9));
		cJSON_AddItemToObject(o, "pickup_seconds", pk);
		cJSON_AddItemToArray(list, o);
	}
	cJSON_AddItemToObject(out, "pools", list);
	return out;
}
