#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "jsonx.h"
#include "strnum.h"
#include "xalloc.h"

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	return buf_append(arg, p, size * nmemb) < 0 ? 0 : size * nmemb;
}

CURL *bench_easy(const struct bench_conn *c)
{
	CURL *e = curl_easy_init();

	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	if (c->ca)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
	return e;
}

struct curl_slist *bench_prepare(CURL *e, const struct bench_conn *c,
    const char *method, const char *path, const char *ctype,
    const char *body, size_t n, const char *token, struct buf *out)
{
	struct curl_slist *h = NULL;
	char *url = xasprintf("%s%s", c->url, path);
	char *auth = xasprintf("Authorization: Bearer %s", token);
	char *ct = xasprintf("Content-Type: %s", ctype ? ctype :
	    "application/json");

	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, ct);
	h = curl_slist_append(h, "Expect:");
	buf_reset(out);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)n);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	free(url);
	free(auth);
	free(ct);
	return h;
}

long bench_request(CURL *e, const struct bench_conn *c, const char *method,
    const char *path, const char *ctype, const char *body, size_t n,
    const char *token, struct buf *out)
{
	struct curl_slist *h = bench_prepare(e, c, method, path, ctype, body, n,
	    token, out);
	long status = -1;

	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	return status;
}

char *bench_register(const struct bench_conn *c, int cap)
{
	CURL *e = bench_easy(c);
	struct buf out = BUF_INIT(1 << 22);
	char *body = xasprintf("{\"name\":\"bench\",\"capacity\":%d}", cap);
	char *tok = NULL;
	int jerr;
	long st = bench_request(e, c, "POST", "/v1/agents/register", NULL, body,
	    strlen(body), c->regtok, &out);
	cJSON *j = st == 201 ? jsonx_parse(out.data, out.len, out.len, 4, &jerr) :
	    NULL;

	if (j)
		tok = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItem(j,
		    "agent_token")));
	else
		fprintf(stderr, "bench: register answered %ld: %s\n", st,
		    buf_cstr(&out));
	cJSON_Delete(j);
	free(body);
	buf_free(&out);
	curl_easy_cleanup(e);
	return tok;
}

double bench_metric(CURL *e, const struct bench_conn *c, const char *prefix)
{
	struct buf out = BUF_INIT(1 << 22);
	double v = -1;
	size_t pl = strlen(prefix);

	if (bench_request(e, c, "GET", "/metrics", NULL, NULL, 0, c->admin,
	    &out) == 200) {
		for (const char *l = out.data; l && *l; ) {
			const char *nl = strchr(l, '\n');
			if (strncmp(l, prefix, pl) == 0 && l[pl] == ' ')
				v = strtod(l + pl + 1, NULL);
			l = nl ? nl + 1 : NULL;
		}
	}
	buf_free(&out);
	return v;
}

long bench_rss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

double bench_cpu_seconds(long pid)
{
	char path[64], text[4096];
	unsigned long ut = 0, st = 0;
	size_t n;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* Fields 14 and 15 (utime, stime) follow the ")" of the name. */
	if ((p = strrchr(text, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static const char *env_or(const char *v, const char *name)
{
	const char *e = getenv(name);
	return v ? v : (e && *e ? e : NULL);
}

int bench_parse(int argc, char **argv, struct bench_conn *c,
    const char *usage)
{
	int i;
	int64_t pid = 0;

	memset(c, 0, sizeof(*c));
	c->pool = "dev";
	for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *k = argv[i] + 2, *v = argv[i + 1];
		if (strcmp(k, "url") == 0) c->url = v;
		else if (strcmp(k, "ca") == 0) c->ca = v;
		else if (strcmp(k, "admin-token") == 0) c->admin = v;
		else if (strcmp(k, "registration-token") == 0) c->regtok = v;
		else if (strcmp(k, "pool") == 0) c->pool = v;
		else if (strcmp(k, "pid") == 0 &&
		    strnum_i64(v, 1, INT32_MAX, &pid, NULL) == 0) c->pid = (long)pid;
		else
			break;
	}
	c->url = env_or(c->url, "SKIFF_QUEUE_URL");
	c->ca = env_or(c->ca, "SKIFF_CA_FILE");
	c->admin = env_or(c->admin, "SKIFF_ADMIN_TOKEN");
	c->regtok = env_or(c->regtok, "SKIFF_REGISTRATION_TOKEN");
	if (!c->url || !c->admin || !c->regtok) {
		fputs(usage, stderr);
		return -1;
	}
	return i;
}
