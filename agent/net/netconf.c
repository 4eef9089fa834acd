#include "netconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonx.h"
#include "xalloc.h"

#define PEM_MAX (480 * 1024)

static const char *const known[] = {
	"queue_urls", "pool", "registration_token", "name", "labels",
	"capacity", "lease_wait", "idle_timeout", "max_jobs", "drain_grace",
	"ca_pem", "pinned_pubkey", "inputs_ca_pem", "log_level", "log_format",
	"selftest",
};

static void strv_free(struct net_strv *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int strv(const cJSON *o, const char *key, size_t max, size_t maxlen,
    int need, struct net_strv *out)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *e;
	size_t n;

	if (a == NULL)
		return need ? -EINVAL : 0;
	if (!cJSON_IsArray(a) || (n = (size_t)cJSON_GetArraySize(a)) > max ||
	    (need && n == 0))
		return -EINVAL;
	out->v = xcalloc(n + 1, sizeof(char *));
	cJSON_ArrayForEach(e, a) {
		if (!cJSON_IsString(e) || strlen(e->valuestring) > maxlen ||
		    !e->valuestring[0]) {
			strv_free(out);
			return -EINVAL;
		}
		out->v[out->n++] = xstrdup(e->valuestring);
	}
	return 0;
}

static int str(const cJSON *o, const char *key, size_t maxlen, int need,
    char **out)
{
	const char *s;
	int r = jsonx_string(o, key, maxlen, &s);

	if (r == -ENOENT && !need)
		return 0;
	if (r < 0)
		return -EINVAL;
	*out = xstrdup(s);
	return 0;
}

int netconf_parse(const char *json, size_t n, struct net_config *c,
    const char **why)
{
	int err;
	cJSON *o = jsonx_parse(json, n, 1024 * 1024, 3, &err), *e;
	const char *lv = NULL, *fmt = NULL;
	struct buf b = BUF_INIT(16 * 1024);

	memset(c, 0, sizeof(*c));
	c->state_fd = -1;
	*why = "not a JSON object";
	if (o == NULL || !cJSON_IsObject(o))
		goto bad;
	*why = "an unknown setting";
	cJSON_ArrayForEach(e, o) {
		size_t i;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(e->string, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0]))
			goto bad;
	}
	*why = "a bad setting";
	if (strv(o, "queue_urls", NETCONF_URLS_MAX, 4096, 1, &c->queue_urls) < 0 ||
	    strv(o, "labels", NETCONF_LABELS_MAX, 256, 0, &c->labels) < 0 ||
	    str(o, "pool", 128, 1, &c->pool) < 0 ||
	    str(o, "registration_token", 4096, 0, &c->registration_token) < 0 ||
	    str(o, "name", 128, 0, &c->name) < 0 ||
	    str(o, "ca_pem", PEM_MAX, 0, &c->ca_pem) < 0 ||
	    str(o, "inputs_ca_pem", PEM_MAX, 0, &c->inputs_ca_pem) < 0 ||
	    str(o, "pinned_pubkey", 1024, 0, &c->pinned_pubkey) < 0 ||
	    str(o, "selftest", 16, 0, &c->selftest) < 0 ||
	    jsonx_int(o, "capacity", 1, 256, &c->capacity) < 0 ||
	    jsonx_int(o, "lease_wait", 1, 60, &c->lease_wait) < 0 ||
	    jsonx_int(o, "idle_timeout", 0, INT32_MAX, &c->idle_timeout) < 0 ||
	    jsonx_int(o, "max_jobs", 0, INT32_MAX, &c->max_jobs) < 0 ||
	    jsonx_int(o, "drain_grace", 0, INT32_MAX, &c->drain_grace) < 0 ||
	    jsonx_string(o, "log_level", 16, &lv) < 0 ||
	    jsonx_string(o, "log_format", 16, &fmt) < 0 ||
	    log_level_parse(lv, &c->log_level) < 0 ||
	    log_format_parse(fmt, &c->log_format) < 0)
		goto bad;
	for (size_t i = 0; i < c->queue_urls.n; i++) {
		if (strchr(c->queue_urls.v[i], ',') ||
		    (i && buf_putc(&b, ',') < 0) ||
		    buf_puts(&b, c->queue_urls.v[i]) < 0)
			goto bad;
	}
	c->queue_url = buf_steal(&b, NULL);
	cJSON_Delete(o);
	return 0;
bad:
	buf_free(&b);
	cJSON_Delete(o);
	netconf_free(c);
	return -EINVAL;
}

void netconf_free(struct net_config *c)
{
	if (c->registration_token)
		memset(c->registration_token, 0, strlen(c->registration_token));
	free(c->registration_token);
	free(c->queue_url);
	strv_free(&c->queue_urls);
	strv_free(&c->labels);
	free(c->pool);
	free(c->name);
	free(c->ca_pem);
	free(c->pinned_pubkey);
	free(c->inputs_ca_pem);
	free(c->selftest);
	c->selftest = NULL;
	c->queue_url = c->pool = c->name = c->ca_pem = NULL;
	c->pinned_pubkey = c->inputs_ca_pem = c->registration_token = NULL;
}
