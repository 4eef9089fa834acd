#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "apierr.h"
#include "config.h"
#include "ev.h"
#include "fsx.h"
#include "hmap.h"
#include "pgq.h"
#include "job.h"
#include "jsonx.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

int64_t queue_now(void)
{
	return (int64_t)time(NULL);
}

int64_t queue_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int queue_store_err(struct queue *q, int r, struct apierr *e)
{
	if (store_corrupt(q->st))
		q->fatal = 1;
	if (r == -ENOSPC) {
		apierr_set(e, 503, "unavailable", "the queue's disk is full");
		e->retry_after = 30;
		return -1;
	}
	return apierr_internal(e, "the queue could not write its database");
}

struct qpool *queue_pool(struct queue *q, const char *name)
{
	struct qpool *p = hmap_get(q->pools, name);

	if (p)
		return p;
	p = xcalloc(1, sizeof(*p));
	p->name = xstrdup(name);
	hmap_put(q->pools, p->name, p);
	return p;
}

char *queue_strv_json(char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	char *s;

	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	s = jsonx_print(a);
	cJSON_Delete(a);
	return s;
}

int queue_strv_parse(const char *json, size_t max, char ***out, size_t *n)
{
	int jerr;
	cJSON *a = jsonx_parse(json, strlen(json), 1 << 20, 2, &jerr), *it;
	char **v;
	size_t k = 0;

	if (a == NULL || !cJSON_IsArray(a) ||
	    (size_t)cJSON_GetArraySize(a) > max) {
		cJSON_Delete(a);
		return -EINVAL;
	}
	v = xcalloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(*v));
	cJSON_ArrayForEach(it, a)
		if (cJSON_IsString(it))
			v[k++] = xstrdup(it->valuestring);
	cJSON_Delete(a);
	*out = v;
	*n = k;
	return 0;
}

void queue_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int has_label(const struct qagent *a, const char *l)
{
	for (size_t i = 0; i < a->nlabels; i++)
		if (strcmp(a->labels[i], l) == 0)
			return 1;
	return 0;
}

int queue_labels_match(const struct qjob *j, const struct qagent *a)
{
	for (size_t i = 0; i < j->nlabels; i++)
		if (!has_label(a, j->labels[i]))
			return 0;
	return 1;
}

static int open_store(struct queue *q)
{
	char *path = xasprintf("%s/queue.db", q->dir);
	int r = store_open(path, q->cfg->sync_full, &q->st);

	free(path);
	return r;
}

int queue_open(struct queue *q, const struct qcfg *cfg, struct ev_loop *loop,
    const char *dir)
{
	int r;

	q->cfg = cfg;
	q->loop = loop;
	q->dir = xstrdup(dir);
	q->pools = hmap_new();
	q->jobs = hmap_new();
	q->leases = hmap_new();
	q->agents = hmap_new();
	q->agents_by_hash = hmap_new();
	q->uploads = hmap_new();
	if ((r = logs_start(q)) < 0 || (r = open_store(q)) < 0)
		return r;
	/* Agents first: leases point at agents and jobs. */
	if ((r = agents_load(q)) < 0 || (r = jobs_load(q)) < 0 ||
	    (r = lease_load(q)) < 0 || (r = retain_start(q)) < 0)
		return r;
	log_info("queue state loaded", "jobs=%zu leases=%zu agents=%zu "
	    "log_bytes=%lld artifact_bytes=%lld", hmap_count(q->jobs),
	    hmap_count(q->leases), hmap_count(q->agents),
	    (long long)q->log_bytes, (long long)q->artifact_bytes);
	return 0;
}

int queue_open_pg(struct queue *q, const struct qcfg *cfg,
    struct ev_loop *loop, const char *conninfo, const char *password)
{
	q->cfg = cfg;
	q->loop = loop;
	q->pools = hmap_new();
	q->jobs = hmap_new();
	q->leases = hmap_new();
	q->agents = hmap_new();
	q->agents_by_hash = hmap_new();
	q->uploads = hmap_new();
	return pgq_open(q, conninfo, password, (int)cfg->pg_connections);
}

/* Wakes every held request; they are answered by the HTTP layer. */
void queue_stop(struct queue *q)
{
	struct hmap_iter it = { 0 };
	struct qpool *p;
	struct qjob *j;

	q->stopping = 1;
	if (q->pg) {
		pgq_stop(q);
		return;
	}
	retain_stop(q);
	while ((p = hmap_next(q->pools, &it)) != NULL) {
		while (p->w_head) {
			struct qwaiter *w = p->w_head;
			lease_waiter_cancel(w);
			w->status = -ESHUTDOWN;
			w->wake(w);
		}
	}
	memset(&it, 0, sizeof(it));
	while ((j = hmap_next(q->jobs, &it)) != NULL)
		logs_wake(q, j, 1);
}

static void free_pools(struct queue *q)
{
	struct hmap_iter it = { 0 };
	struct qpool *p;

	while ((p = hmap_next(q->pools, &it)) != NULL) {
		free(p->name);
		free(p);
	}
	hmap_free(q->pools);
}

/* Frees the values of a map with fn, then the map. */
static void free_map(struct hmap *m, void (*fn)(void *))
{
	struct hmap_iter it = { 0 };
	void *v;

	if (m == NULL)
		return;
	while ((v = hmap_next(m, &it)) != NULL)
		fn(v);
	hmap_free(m);
}

static void free_lease_v(void *v) { lease_free(v); }
static void free_job_v(void *v) { jobs_free(v); }
static void free_agent_v(void *v) { agents_free(v); }

void queue_close(struct queue *q)
{
	if (q->pools == NULL)
		return;
	/* First: appends out still point at jobs and leases. */
	logs_free(q);
	pgq_close(q);
	free_map(q->leases, free_lease_v);
	free_map(q->jobs, free_job_v);
	hmap_free(q->agents_by_hash);
	free_map(q->agents, free_agent_v);
	art_close(q);
	retain_free(q);
	free_pools(q);
	store_close(q->st);
	jwks_free(&q->trusted);
	free(q->dir);
	memset(q, 0, sizeof(*q));
}
