/*
 * Cache restores (docs/protocol.md 4.9): ask the queue which of the
 * pool's caches matches the job's keys, then download it into the
 * descriptor the runner opened. The runner checks the bytes against the
 * SHA-256 the queue named before it unpacks them. A cache is only a
 * speed-up: one failed try is reported, not retried, and the job goes on
 * without it. Saving is an upload like an artifact's (netartifact.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "jsonx.h"
#include "log.h"
#include "net_int.h"
#include "xalloc.h"

struct net_cache {
	struct net *n;
	struct net_cache *next;
	uint64_t jh, id;
	struct net_fdsink out;
	char sha[65];
	char key[256];
	char lease[NET_ID_MAX + 1];
	struct http_req *req;
	uint64_t gen;
};

static void unlink_cache(struct net_cache *c)
{
	struct net_cache **pp = &c->n->caches;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
}

static void cache_free(struct net_cache *c)
{
	http_req_free(c->req);
	if (c->out.fd >= 0)
		close(c->out.fd);
	free(c);
}

/* sha and text may point into c: copied before c goes. */
static void answer(struct net_cache *c, int ok, const char *sha,
    const char *text)
{
	struct net *n = c->n;
	uint64_t jh = c->jh, id = c->id, got = c->out.got;
	char t[256], s[65];

	snprintf(t, sizeof(t), "%s", text ? text : "");
	snprintf(s, sizeof(s), "%s", sha ? sha : "");
	unlink_cache(c);
	if (!ok)
		log_warn("cache not restored", "job_handle=%llu error=%s",
		    (unsigned long long)jh, logq(t));
	cache_free(c);
	n->runner->cache_get_done(n->runner->ctx, jh, id, ok, got,
	    s[0] ? s : NULL, t);
}

/* Why a request failed, for the log line the runner writes. */
static void failure(struct net_cache *c, struct http_req *r, const char *what)
{
	char why[200];
	long st = http_req_status(r);

	if (st == 0 || st >= 500)
		c->n->up.failed(c->n, c->gen, r, what);
	if (st == 401)
		c->n->up.revoked(c->n, what);
	if (st == 0)
		snprintf(why, sizeof(why), "%s: %s", what, http_req_error(r));
	else
		snprintf(why, sizeof(why), "%s: HTTP %ld", what, st);
	http_req_free(r);
	answer(c, 0, NULL, why);
}

static void get_done(struct http_req *r, void *arg)
{
	struct net_cache *c = arg;
	char why[200];

	c->req = NULL;
	if (c->out.too_big || c->out.write_err) {
		snprintf(why, sizeof(why), "the cache is over %llu bytes",
		    (unsigned long long)c->out.max);
		if (c->out.write_err)
			snprintf(why, sizeof(why), "cannot write it: %s",
			    strerror(c->out.write_err));
		http_req_free(r);
		answer(c, 0, NULL, why);
		return;
	}
	if (http_req_status(r) != 200) {
		failure(c, r, "download");
		return;
	}
	http_req_free(r);
	answer(c, 1, c->sha, c->key);
}

static void find_done(struct http_req *r, void *arg)
{
	struct net_cache *c = arg;
	const char *id, *sha, *key;
	cJSON *b;
	char *url;
	int64_t size;

	c->req = NULL;
	if (http_req_status(r) != 200) {
		failure(c, r, "lookup");
		return;
	}
	b = net_json(r);
	http_req_free(r);
	if (b && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(b, "cache"))) {
		cJSON_Delete(b);
		answer(c, 1, NULL, NULL);
		return;
	}
	if (b == NULL || jsonx_string(b, "cache", NET_ID_MAX, &id) < 0 ||
	    !net_valid_id(id) || jsonx_string(b, "sha256", 64, &sha) < 0 ||
	    strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64 ||
	    jsonx_string(b, "key", 255, &key) < 0 ||
	    jsonx_int(b, "size", 0, INT64_MAX, &size) < 0) {
		cJSON_Delete(b);
		answer(c, 0, NULL, "the queue's answer is not a cache");
		return;
	}
	if ((uint64_t)size > c->out.max) {
		cJSON_Delete(b);
		answer(c, 0, NULL, "the cache is over the agent's cap");
		return;
	}
	snprintf(c->sha, sizeof(c->sha), "%s", sha);
	snprintf(c->key, sizeof(c->key), "%s", key);
	url = net_url(c->n, &c->gen, "/v1/leases/%s/caches/%s", c->lease, id);
	cJSON_Delete(b);
	c->req = net_request(c->n, "GET", url, 0);
	free(url);
	http_req_sink(c->req, net_fdsink_write, &c->out);
	/* Any size: no deadline for the whole body, a stall aborts. */
	http_req_timeout(c->req, 0, 60000);
	if (http_req_send(c->req, get_done, c) < 0) {
		http_req_free(c->req);
		c->req = NULL;
		answer(c, 0, NULL, "cannot start the download");
	}
}

void netcache_get(struct net_job *j, uint64_t id, const char *keys, int fd,
    uint64_t max)
{
	struct net *n = j->n;
	struct net_cache *c = xcalloc(1, sizeof(*c));
	cJSON *o = cJSON_CreateObject(), *rk = cJSON_CreateArray();
	char *body, *url, *copy = xstrdup(keys), *nl;

	c->n = n;
	c->jh = j->jh;
	c->id = id;
	c->out.fd = fd;
	c->out.max = max;
	snprintf(c->lease, sizeof(c->lease), "%s", j->lease);
	c->next = n->caches;
	n->caches = c;
	nl = strchr(copy, '\n');
	if (nl)
		*nl++ = '\0';
	cJSON_AddStringToObject(o, "key", copy);
	while (nl && *nl) {
		char *k = nl;
		nl = strchr(k, '\n');
		if (nl)
			*nl++ = '\0';
		cJSON_AddItemToArray(rk, cJSON_CreateString(k));
	}
	cJSON_AddItemToObject(o, "restore_keys", rk);
	free(copy);
	body = jsonx_print(o);
	cJSON_Delete(o);
	if (j->lost) {
		cJSON_free(body);
		answer(c, 0, NULL, "the lease is gone");
		return;
	}
	url = net_url(n, &c->gen, "/v1/leases/%s/caches/restore", j->lease);
	c->req = net_request(n, "POST", url, 30000);
	free(url);
	http_req_body_json(c->req, body);
	cJSON_free(body);
	if (http_req_send(c->req, find_done, c) < 0) {
		http_req_free(c->req);
		c->req = NULL;
		answer(c, 0, NULL, "cannot start the lookup");
	}
}

void netcache_abort(struct net *n, uint64_t jh)
{
	struct net_cache **pp = &n->caches;

	while (*pp) {
		struct net_cache *c = *pp;
		if (jh == 0 || c->jh == jh) {
			*pp = c->next;
			cache_free(c);
		} else {
			pp = &c->next;
		}
	}
}
