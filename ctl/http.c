#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "b64.h"
#include "ctl.h"
#include "fsx.h"
#include "jsonx.h"
#include "strnum.h"
#include "urlpolicy.h"
#include "xalloc.h"

/* Tokens are opaque strings of [A-Za-z0-9_.-]{1,128} (protocol.md 1). */
static int token_ok(const char *t)
{
	size_t n = strlen(t);

	return n >= 1 && n <= 128 && strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static void set(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? xstrdup(v) : NULL;
}

/* The first line of a token file; src says who named it. */
static int read_token(const char *path, const char *src, char **out)
{
	struct buf b = BUF_INIT(4096);
	int r = fsx_read_file(path, 4096, &b);

	if (r < 0) {
		buf_free(&b);
		ctl_fail("%s %s: %s", src, path, r == -E2BIG ? "file too large" :
		    strerror(-r));
		return -1;
	}
	free(*out);
	*out = xstrndup(buf_cstr(&b), strcspn(buf_cstr(&b), "\r\n"));
	sodium_memzero(b.data, b.cap);
	buf_free(&b);
	return 0;
}

int ctl_conn_option(struct ctl_conn *c, int opt, const char *arg)
{
	switch (opt) {
	case CTL_OPT_URL:
		set(&c->url, arg);
		c->url_src = "--url";
		return 1;
	case CTL_OPT_CA:
		set(&c->ca_file, arg);
		c->ca_src = "--ca";
		return 1;
	case CTL_OPT_JSON: c->json = 1; return 1;
	case CTL_OPT_TOKEN_FILE:
		return read_token(arg, "--token-file", &c->token) < 0 ? -1 : 1;
	default: return 0;
	}
}

/* An empty variable counts as unset, as in a shell's ${VAR:-default}. */
static int from_env(struct ctl_conn *c)
{
	const char *v;

	if (!c->url && (v = getenv("SKIFF_QUEUE_URL")) && *v) {
		set(&c->url, v);
		c->url_src = "SKIFF_QUEUE_URL";
	}
	if (!c->ca_file && (v = getenv("SKIFF_CA_FILE")) && *v) {
		set(&c->ca_file, v);
		c->ca_src = "SKIFF_CA_FILE";
	}
	if (!c->token && (v = getenv("SKIFF_ADMIN_TOKEN")) && *v)
		set(&c->token, v);
	if (!c->token && (v = getenv("SKIFF_ADMIN_TOKEN_FILE")) && *v &&
	    read_token(v, "SKIFF_ADMIN_TOKEN_FILE", &c->token) < 0)
		return -1;
	return 0;
}

/* libcurl reads the CA file only when it connects, and says "problem
 * with the SSL CA cert": the typo is found here instead, named. */
static int check_ca_file(const struct ctl_conn *c)
{
	int r = fsx_check_regular(c->ca_file);

	if (r < 0)
		ctl_fail("%s %s: %s", c->ca_src, c->ca_file, r == -EINVAL ?
		    "not a regular file" : strerror(-r));
	return r;
}

/* The URL as libcurl reads it (urlpolicy.h): the admin token goes in
 * clear only to loopback. */
static int check_url(struct ctl_conn *c)
{
	const char *why;
	char *norm;

	if (urlpolicy_base(c->url, &norm, &why) < 0) {
		ctl_fail("%s %s: %s", c->url_src, c->url, why);
		return -1;
	}
	if (urlpolicy_cleartext_ok(norm) < 0) {
		ctl_fail("%s %s: plain http:// is only allowed to a loopback "
		    "address (127.0.0.0/8, [::1] or localhost), or the admin token "
		    "would cross the network in clear; use https://", c->url_src,
		    c->url);
		free(norm);
		return -1;
	}
	free(c->url);
	c->url = norm;
	return 0;
}

int ctl_conn_ready(struct ctl_conn *c)
{
	if (from_env(c) < 0)
		return CTL_EX_FAIL;
	if (c->url == NULL) {
		ctl_fail("no queue URL: use --url or set SKIFF_QUEUE_URL");
		return CTL_EX_USAGE;
	}
	if (check_url(c) < 0)
		return CTL_EX_USAGE;
	if (c->token == NULL) {
		ctl_fail("no admin token: use --token-file or set SKIFF_ADMIN_TOKEN "
		    "or SKIFF_ADMIN_TOKEN_FILE");
		return CTL_EX_USAGE;
	}
	if (!token_ok(c->token)) {
		ctl_fail("the admin token is not 1 to 128 characters of "
		    "[A-Za-z0-9_.-]");
		return CTL_EX_USAGE;
	}
	if (c->ca_file && check_ca_file(c) < 0)
		return CTL_EX_FAIL;
	return CTL_EX_OK;
}

void ctl_conn_free(struct ctl_conn *c)
{
	if (c->token)
		sodium_memzero(c->token, strlen(c->token));
	free(c->token);
	free(c->url);
	free(c->ca_file);
	memset(c, 0, sizeof(*c));
}

void ctl_resp_init(struct ctl_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, CTL_RESP_MAX);
	r->log_length = -1;
}

void ctl_resp_free(struct ctl_resp *r)
{
	buf_free(&r->body);
}

/* ---- libcurl callbacks ---- */

struct sink {
	struct ctl_resp *resp;
	int fd;				/* -1: into resp->body */
	crypto_hash_sha256_state sha;
	int failed;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;

	if (s->fd < 0)
		return buf_append(&s->resp->body, p, n) < 0 ? 0 : n;
	/* Error answers of a download are JSON: keep them for the message. */
	if (s->resp->status != 200)
		return buf_append(&s->resp->body, p, n) < 0 ? 0 : n;
	if (fsx_write_all(s->fd, p, n) < 0) {
		s->failed = 1;
		return 0;
	}
	crypto_hash_sha256_update(&s->sha, (const unsigned char *)p, n);
	return n;
}

/* "Name: value\r\n" -> value (trimmed) when the name matches. */
static const char *header_value(const char *line, size_t n, const char *name,
    char *out, size_t outsz)
{
	size_t k = strlen(name), vl;
	const char *v;

	if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return NULL;
	v = line + k + 1;
	vl = n - k - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl >= outsz)
		return NULL;
	memcpy(out, v, vl);
	out[vl] = '\0';
	return out;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	struct ctl_resp *r = s->resp;
	size_t n = size * nmemb;
	char v[80];
	int64_t x;

	if (n > 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new answer (after a 100 Continue): forget the last one. */
		const char *sp = memchr(p, ' ', n);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	if (header_value(p, n, "Skiff-Log-Length", v, sizeof(v)) &&
	    strnum_i64(v, 0, INT64_MAX, &x, NULL) == 0)
		r->log_length = x;
	else if (header_value(p, n, "Skiff-Log-Complete", v, sizeof(v)))
		r->log_complete = strcmp(v, "1") == 0;
	else if (header_value(p, n, "Skiff-Log-Attempt", v, sizeof(v)) &&
	    strnum_i64(v, 1, 100000, &x, NULL) == 0)
		r->log_attempt = (int)x;
	else if (header_value(p, n, "Skiff-Sha256", v, sizeof(v)) &&
	    strlen(v) == 64)
		memcpy(r->sha256, v, 65);
	else if (header_value(p, n, "Retry-After", v, sizeof(v)) &&
	    strnum_i64(v, 0, 86400, &x, NULL) == 0)
		r->retry_after = (int)x;
	return n;
}

static struct curl_slist *headers_for(const struct ctl_conn *c,
    const char *ctype)
{
	struct curl_slist *h = NULL;
	char *auth = xasprintf("Authorization: Bearer %s", c->token);

	h = curl_slist_append(h, auth);
	sodium_memzero(auth, strlen(auth));
	free(auth);
	if (ctype) {
		char *ct = xasprintf("Content-Type: %s", ctype);
		h = curl_slist_append(h, ct);
		free(ct);
	}
	/* The queue answers at once or refuses; no 100-continue round trip. */
	return curl_slist_append(h, "Expect:");
}

static CURL *easy_for(struct ctl_conn *c, const char *method, const char *url,
    long timeout, struct curl_slist *h, struct sink *s)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	return e;
}

static int perform(struct ctl_conn *c, const char *method, const char *path,
    const char *ctype, const void *body, size_t n, long timeout,
    struct sink *s)
{
	char *url = xasprintf("%s%s", c->url, path);
	struct curl_slist *h = headers_for(c, ctype);
	CURL *e = easy_for(c, method, url, timeout, h, s);
	CURLcode rc = CURLE_FAILED_INIT;

	if (e && body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
	}
	if (e)
		rc = curl_easy_perform(e);
	if (e && rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &s->resp->status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	if (rc != CURLE_OK && !s->failed)
		ctl_fail("%s %s: %s", method, url, curl_easy_strerror(rc));
	else if (s->failed)
		ctl_fail("%s %s: cannot write the download", method, url);
	free(url);
	return rc == CURLE_OK && !s->failed ? 0 : -1;
}

int ctl_http(struct ctl_conn *c, const char *method, const char *path,
    const char *ctype, const void *body, size_t n, long timeout,
    struct ctl_resp *out)
{
	struct sink s;

	memset(&s, 0, sizeof(s));
	s.resp = out;
	s.fd = -1;
	return perform(c, method, path, ctype, body, n, timeout, &s);
}

int ctl_http_download(struct ctl_conn *c, const char *path, int fd,
    long timeout, struct ctl_resp *out, char sha256[65])
{
	struct sink s;
	unsigned char d[32];
	int r;

	memset(&s, 0, sizeof(s));
	s.resp = out;
	s.fd = fd;
	crypto_hash_sha256_init(&s.sha);
	r = perform(c, "GET", path, NULL, NULL, 0, timeout, &s);
	crypto_hash_sha256_final(&s.sha, d);
	hex_encode(d, sizeof(d), sha256);
	return r;
}

cJSON *ctl_http_json(const struct ctl_resp *r)
{
	int jerr;
	cJSON *j;

	if (r->status < 200 || r->status > 299) {
		ctl_http_fail(r);
		return NULL;
	}
	j = jsonx_parse(buf_cstr(&r->body), r->body.len, CTL_RESP_MAX, 64, &jerr);
	if (j == NULL)
		ctl_fail("the queue's answer is not JSON");
	return j;
}

int ctl_http_fail(const struct ctl_resp *r)
{
	int jerr;
	cJSON *j = jsonx_parse(buf_cstr(&r->body), r->body.len, 1 << 20, 16, &jerr);
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
	const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(j, "reason"));

	fprintf(stderr, "skiffctl: the queue answered %ld %s: %s%s%s%s\n",
	    r->status, code ? code : "(no error code)", msg ? msg : "",
	    reason ? " (reason: " : "", reason ? reason : "", reason ? ")" : "");
	cJSON_Delete(j);
	return CTL_EX_SERVER;
}

int ctl_revoke(struct ctl_conn *c, const char *prefix, const char *id,
    const char *what)
{
	char *path = ctl_path(prefix, id, NULL);
	struct ctl_resp resp;
	int rc = CTL_EX_SERVER;

	ctl_resp_init(&resp);
	if (ctl_http(c, "DELETE", path, NULL, NULL, 0, 60, &resp) == 0) {
		if (resp.status == 204) {
			printf("%s %s revoked\n", what, id);
			rc = CTL_EX_OK;
		} else {
			rc = ctl_http_fail(&resp);
		}
	}
	ctl_resp_free(&resp);
	free(path);
	return rc;
}

char *ctl_escape(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT((size_t)1 << 20);

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) ||
		    (keep_slash && ch == '/')) {
			buf_putc(&b, (char)ch);
		} else {
			buf_putc(&b, '%');
			buf_putc(&b, hex[ch >> 4]);
			buf_putc(&b, hex[ch & 15]);
		}
	}
	return buf_steal(&b, NULL);
}

char *ctl_path(const char *prefix, const char *id, const char *suffix)
{
	char *e = ctl_escape(id, 0), *p = xasprintf("%s%s%s", prefix, e,
	    suffix ? suffix : "");

	free(e);
	return p;
}

void ctl_print_json(const cJSON *j)
{
	char *s = cJSON_Print(j);

	printf("%s\n", s);
	cJSON_free(s);
}

const char *ctl_fmt_time(const cJSON *t, char out[32])
{
	time_t v;
	struct tm tm;

	if (!cJSON_IsNumber(t)) {
		snprintf(out, 32, "-");
		return out;
	}
	v = (time_t)t->valuedouble;
	gmtime_r(&v, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%SZ", &tm);
	return out;
}

cJSON *ctl_get_json(struct ctl_conn *c, const char *path, int *rc)
{
	struct ctl_resp resp;
	cJSON *j = NULL;

	ctl_resp_init(&resp);
	*rc = CTL_EX_SERVER;
	if (ctl_http(c, "GET", path, NULL, NULL, 0, 60, &resp) == 0)
		j = ctl_http_json(&resp);
	ctl_resp_free(&resp);
	if (j)
		*rc = CTL_EX_OK;
	return j;
}
