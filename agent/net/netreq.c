/*
 * What the network half's parts below net.c share (net_int.h): building a
 * request to the queue's current URL, reading its answer, the URL list
 * (qurls.h). No lifecycle here: what must reach net.c goes through
 * struct net_up, so that the calls run one way, net.c -> netjob.c ->
 * netartifact.c -> this.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "jsonx.h"
#include "log.h"
#include "net_int.h"
#include "xalloc.h"

int net_valid_id(const char *s)
{
	size_t len = strlen(s);

	return len >= 1 && len <= NET_ID_MAX && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
	    len;
}

/* ---- the queue's URLs (qurls.h) ---- */

void qurls_init(struct qurls *q, char *const *v, size_t n)
{
	q->v = v;
	q->n = n;
	q->cur = 0;
	q->gen = 0;
}

const char *qurls_current(const struct qurls *q, uint64_t *gen)
{
	if (gen)
		*gen = q->gen;
	return q->v[q->cur];
}

int qurls_moves_on(long status)
{
	return status == 0 || (status >= 500 && status <= 599);
}

int qurls_failed(struct qurls *q, uint64_t gen, long status)
{
	if (q->n < 2 || gen != q->gen || !qurls_moves_on(status))
		return 0;
	q->cur = (q->cur + 1) % q->n;
	q->gen++;
	return 1;
}

static int has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i], s) == 0)
			return 1;
	return 0;
}

int qurls_compare(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t common = 0, b_in_a = 0;

	for (size_t i = 0; i < na; i++)
		common += has(b, nb, a[i]);
	for (size_t i = 0; i < nb; i++)
		b_in_a += has(a, na, b[i]);
	if (common == na && b_in_a == nb)
		return QURLS_SAME;
	return common ? QURLS_OVERLAP : QURLS_DISJOINT;
}

char *net_url(const struct net *n, uint64_t *gen, const char *fmt, ...)
{
	struct buf b = BUF_INIT(8192);
	va_list ap;

	buf_puts(&b, qurls_current(&n->urls, gen));
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return buf_steal(&b, NULL);
}

struct http_req *net_request(struct net *n, const char *method,
    const char *url, long timeout_ms)
{
	struct http_req *r = http_req_new(n->http, method, url);

	if (n->token)
		http_req_bearer(r, n->token);
	http_req_header(r, "Accept: application/json");
	http_req_timeout(r, timeout_ms, 0);
	http_req_max_response(r, 512 * 1024);
	return r;
}

int net_status_is_retryable(long status)
{
	return status == 0 || status == 429 || status >= 500;
}

/* JSON body of a response; NULL if it is not a JSON object. The body is
 * already capped by net_request's response limit. */
cJSON *net_json(const struct http_req *r)
{
	const struct buf *b = http_req_response(r);
	int err;
	cJSON *j = jsonx_parse(buf_cstr(b), b->len, 512 * 1024, 8, &err);

	if (j && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

void net_log_http_error(const char *what, const struct http_req *r,
    int64_t delay_ms)
{
	const struct buf *b = http_req_response(r);

	if (http_req_status(r) == 0)
		log_warn(what, "error=%s retry_in_ms=%lld", logq(http_req_error(r)),
		    (long long)delay_ms);
	else
		log_warn(what, "status=%ld body=%s retry_in_ms=%lld",
		    http_req_status(r), logq(b->len > 200 ? "(long body)" :
		    buf_cstr(b)), (long long)delay_ms);
}

