#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ev.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#define HTTP_DEFAULT_MAX_RESPONSE (1 << 20)
#define HTTP_MAX_HEADERS 16384

struct http_client {
	struct ev_loop *loop;
	CURLM *multi;
	struct ev_timer *timer;
	char *ca_file;
	char *ca_pem;
	char *pinned;
	char *unix_socket;
	char *user_agent;
	size_t active;
	struct http_req *hdr_head;	/* header notifications due */
};

struct http_req {
	struct http_client *c;
	CURL *easy;
	struct curl_slist *headers;
	char *method;
	char *url;
	char *body;
	size_t body_len;
	http_read_fn reader;
	void *reader_arg;
	int (*rewind)(void *arg);
	int64_t reader_len;
	http_write_fn sink;
	void *sink_arg;
	http_headers_fn on_headers;
	void *on_headers_arg;
	void (*on_wire)(void *arg);
	void *on_wire_arg;
	struct http_req *hdr_next, *hdr_prev;
	long hdr_status;	/* of the header block being read */
	int hdr_state;		/* HDR_WAIT, HDR_DUE, HDR_FIRED */
	int paused;
	long total_ms, stall_ms;
	size_t max_response;
	struct buf resp;
	struct buf resp_headers;
	http_done_fn done;
	void *done_arg;
	long status;
	int in_flight;
	int overflow;
	CURLcode result;
	char errbuf[CURL_ERROR_SIZE];
};

enum { HDR_WAIT, HDR_DUE, HDR_FIRED };

/* ---- libcurl <-> event loop ---- */

static void hdr_unlink(struct http_req *r)
{
	if (r->hdr_state != HDR_DUE)
		return;
	if (r->hdr_prev)
		r->hdr_prev->hdr_next = r->hdr_next;
	else
		r->c->hdr_head = r->hdr_next;
	if (r->hdr_next)
		r->hdr_next->hdr_prev = r->hdr_prev;
	r->hdr_next = r->hdr_prev = NULL;
	r->hdr_state = HDR_FIRED;
}

/* Header notifications wait for libcurl to return: their callbacks may
 * send or free requests, which libcurl forbids inside its callbacks. One
 * at a time from the head, as a callback may unlink any other. */
static void fire_headers(struct http_client *c)
{
	struct http_req *r;

	while ((r = c->hdr_head) != NULL) {
		hdr_unlink(r);
		r->on_headers(r, r->hdr_status, r->on_headers_arg);
	}
}

static void check_done(struct http_client *c)
{
	CURLMsg *m;
	int left;

	fire_headers(c);
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct http_req *r;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		CURLcode res = m->data.result;
		r->result = res;
		curl_multi_remove_handle(c->multi, r->easy);
		r->in_flight = 0;
		c->active--;
		r->status = 0;
		if (res == CURLE_OK)
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		else if (!r->errbuf[0])
			snprintf(r->errbuf, sizeof(r->errbuf), "%s",
			    curl_easy_strerror(res));
		if (r->overflow) {
			r->status = 0;
			snprintf(r->errbuf, sizeof(r->errbuf),
			    "response over %zu bytes", r->max_response);
		}
		r->done(r, r->done_arg);
	}
}

static void on_io(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct http_client *c = arg;
	int running, flags = 0;

	(void)w;
	if (events & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (events & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & EV_ERROR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	check_done(c);
}

static void on_timer(struct ev_timer *t, void *arg)
{
	struct http_client *c = arg;
	int running;

	(void)t;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp,
    void *socketp)
{
	struct http_client *c = userp;
	struct ev_io *w = socketp;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		ev_io_stop(w);
		curl_multi_assign(c->multi, s, NULL);
		return 0;
	}
	unsigned ev = (what & CURL_POLL_IN ? EV_READ : 0) |
	    (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (w == NULL) {
		w = ev_io_start(c->loop, s, ev, on_io, c);
		if (w == NULL)
			return -1;
		curl_multi_assign(c->multi, s, w);
	} else {
		ev_io_set(w, ev);
	}
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct http_client *c = userp;

	(void)m;
	if (timeout_ms < 0)
		ev_timer_stop(c->timer);
	else
		ev_timer_start(c->timer, timeout_ms);
	return 0;
}

int http_client_new(struct ev_loop *loop, const struct http_tls *tls,
    const char *user_agent, struct http_client **out)
{
	struct http_client *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->multi = curl_multi_init();
	if (c->multi == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->timer = ev_timer_new(loop, on_timer, c);
	c->ca_file = tls && tls->ca_file ? xstrdup(tls->ca_file) : NULL;
	c->ca_pem = tls && tls->ca_pem ? xstrdup(tls->ca_pem) : NULL;
	c->pinned = tls && tls->pinned ? xstrdup(tls->pinned) : NULL;
	c->unix_socket = tls && tls->unix_socket ? xstrdup(tls->unix_socket) : NULL;
	c->user_agent = xstrdup(user_agent);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	/* Few connections are ever needed: a long-poll, and per job a
	 * heartbeat and an upload; keep them open for reuse. */
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 16L);
	*out = c;
	return 0;
}

void http_client_free(struct http_client *c)
{
	if (c == NULL)
		return;
	curl_multi_cleanup(c->multi);
	ev_timer_free(c->timer);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->pinned);
	free(c->unix_socket);
	free(c->user_agent);
	free(c);
}

size_t http_client_active(const struct http_client *c)
{
	return c->active;
}

/* ---- requests ---- */

struct http_req *http_req_new(struct http_client *c, const char *method,
    const char *url)
{
	struct http_req *r = xcalloc(1, sizeof(*r));

	r->c = c;
	r->method = xstrdup(method);
	r->url = xstrdup(url);
	r->total_ms = 30000;
	r->max_response = HTTP_DEFAULT_MAX_RESPONSE;
	r->reader_len = -1;
	return r;
}

void http_req_header(struct http_req *r, const char *line)
{
	r->headers = curl_slist_append(r->headers, line);
	if (r->headers == NULL)
		abort();
}

void http_req_bearer(struct http_req *r, const char *token)
{
	char *h = xasprintf("Authorization: Bearer %s", token);
	http_req_header(r, h);
	memset(h, 0, strlen(h));
	free(h);
}

static void content_type(struct http_req *r, const char *ct)
{
	if (ct) {
		char *h = xasprintf("Content-Type: %s", ct);
		http_req_header(r, h);
		free(h);
	}
}

void http_req_body_owned(struct http_req *r, char *data, size_t n,
    const char *ct)
{
	free(r->body);
	r->body = data;
	r->body_len = n;
	content_type(r, ct);
	/* No "Expect: 100-continue" round trip before the body. */
	http_req_header(r, "Expect:");
}

void http_req_body_json(struct http_req *r, const char *json)
{
	http_req_body_owned(r, xstrdup(json), strlen(json), "application/json");
}

void http_req_body_reader(struct http_req *r, http_read_fn fn, void *arg,
    int64_t len, const char *ct)
{
	r->reader = fn;
	r->reader_arg = arg;
	r->reader_len = len;
	content_type(r, ct);
	http_req_header(r, "Expect:");
}

void http_req_sink(struct http_req *r, http_write_fn fn, void *arg)
{
	r->sink = fn;
	r->sink_arg = arg;
}

static int prereq_cb(void *arg, char *ip, char *lip, int port, int lport)
{
	struct http_req *r = arg;

	(void)ip;
	(void)lip;
	(void)port;
	(void)lport;
	r->on_wire(r->on_wire_arg);
	return CURL_PREREQFUNC_OK;
}

void http_req_on_wire(struct http_req *r, void (*fn)(void *arg), void *arg)
{
	r->on_wire = fn;
	r->on_wire_arg = arg;
}

void http_req_on_headers(struct http_req *r, http_headers_fn fn, void *arg)
{
	r->on_headers = fn;
	r->on_headers_arg = arg;
}

void http_req_resume(struct http_req *r)
{
	if (r->paused && r->in_flight) {
		r->paused = 0;
		curl_easy_pause(r->easy, CURLPAUSE_CONT);
	}
}

void http_req_timeout(struct http_req *r, long total_ms, long stall_ms)
{
	r->total_ms = total_ms;
	r->stall_ms = stall_ms;
}

void http_req_max_response(struct http_req *r, size_t max)
{
	r->max_response = max;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * n;

	if (r->sink) {
		int rc = r->sink(p, len, r->sink_arg);
		if (rc == HTTP_SINK_PAUSE) {
			r->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		return rc < 0 ? 0 : len;
	}
	if (buf_append(&r->resp, p, len) < 0) {
		r->overflow = 1;
		return 0;
	}
	return len;
}

/* "HTTP/1.1 200 OK" -> 200; 0 when unreadable. */
static long status_of(const char *p, size_t len)
{
	const char *sp = memchr(p, ' ', len);

	if (sp == NULL || (size_t)(sp - p) + 4 > len)
		return 0;
	long v = 0;
	for (int i = 1; i <= 3; i++) {
		if (sp[i] < '0' || sp[i] > '9')
			return 0;
		v = v * 10 + (sp[i] - '0');
	}
	return v;
}

/* Once per send, for the first header block that is not 1xx (chunked
 * trailers end with a blank line too). */
static void end_of_headers(struct http_req *r)
{
	struct http_client *c = r->c;

	if (r->on_headers == NULL || r->hdr_state != HDR_WAIT ||
	    (r->hdr_status >= 100 && r->hdr_status < 200))
		return;
	r->hdr_state = HDR_DUE;
	r->hdr_prev = NULL;
	r->hdr_next = c->hdr_head;
	if (c->hdr_head)
		c->hdr_head->hdr_prev = r;
	c->hdr_head = r;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * n;

	/* A new response (after a 100 Continue) replaces the old headers. */
	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		buf_reset(&r->resp_headers);
		r->hdr_status = status_of(p, len);
	}
	if (buf_append(&r->resp_headers, p, len) < 0)
		return 0;
	if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n'))
		end_of_headers(r);
	return len;
}

static int seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct http_req *r = arg;

	if (r->rewind == NULL || offset != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	return r->rewind(r->reader_arg) == 0 ? CURL_SEEKFUNC_OK :
	    CURL_SEEKFUNC_FAIL;
}

void http_req_body_rewind(struct http_req *r, int (*fn)(void *arg))
{
	r->rewind = fn;
}

static size_t read_cb(char *dst, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	ssize_t got = r->reader(dst, size * n, r->reader_arg);

	return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

static void setup_easy(struct http_req *r)
{
	struct http_client *c = r->c;
	CURL *e = r->easy;

	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_pem) {
		struct curl_blob blob = { c->ca_pem, strlen(c->ca_pem),
		    CURL_BLOB_NOCOPY };
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	} else if (c->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	}
	if (c->pinned)
		curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, c->pinned);
	if (c->unix_socket)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	if (r->on_wire) {
		curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
		curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
	}
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	if (r->total_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->total_ms);
	if (r->stall_ms > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
		    (r->stall_ms + 999) / 1000);
	}
}

static void setup_body(struct http_req *r)
{
	CURL *e = r->easy;

	if (r->reader) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(e, CURLOPT_READDATA, r);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
		if (r->reader_len >= 0)
			curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
			    (curl_off_t)r->reader_len);
	} else if (r->body || strcmp(r->method, "POST") == 0 ||
	    strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->body_len);
	}
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	else if (strcmp(r->method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	if (strcmp(r->method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
}

int http_req_send(struct http_req *r, http_done_fn done, void *arg)
{
	if (r->in_flight)
		return -EBUSY;
	if (r->easy == NULL && (r->easy = curl_easy_init()) == NULL)
		return -ENOMEM;
	buf_free(&r->resp);
	buf_free(&r->resp_headers);
	buf_init(&r->resp, r->max_response);
	buf_init(&r->resp_headers, HTTP_MAX_HEADERS);
	r->errbuf[0] = '\0';
	r->overflow = 0;
	r->result = CURLE_OK;
	r->status = 0;
	hdr_unlink(r);
	r->hdr_state = HDR_WAIT;
	r->hdr_status = 0;
	r->paused = 0;
	r->done = done;
	r->done_arg = arg;
	setup_easy(r);
	setup_body(r);
	if (curl_multi_add_handle(r->c->multi, r->easy) != CURLM_OK)
		return -EIO;
	r->in_flight = 1;
	r->c->active++;
	return 0;
}

void http_req_free(struct http_req *r)
{
	if (r == NULL)
		return;
	hdr_unlink(r);
	if (r->in_flight) {
		curl_multi_remove_handle(r->c->multi, r->easy);
		r->c->active--;
	}
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->method);
	free(r->url);
	free(r->body);
	buf_free(&r->resp);
	buf_free(&r->resp_headers);
	free(r);
}

long http_req_status(const struct http_req *r)
{
	return r->status;
}

const char *http_req_error(const struct http_req *r)
{
	return r->errbuf[0] ? r->errbuf : "no error";
}

int http_req_errno(const struct http_req *r)
{
	if (r->overflow)
		return -E2BIG;
	switch (r->result) {
	case CURLE_OK:
		return r->status ? 0 : -EIO;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_WRITE_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_READ_ERROR:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

const struct buf *http_req_response(const struct http_req *r)
{
	return &r->resp;
}

const char *http_req_header_value(const struct http_req *r, const char *name)
{
	static _Thread_local char value[256];
	size_t nlen = strlen(name);
	const char *p = buf_cstr(&r->resp_headers);

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = (size_t)(p + len - v);
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
				vl--;
			snprintf(value, sizeof(value), "%.*s", (int)vl, v);
			return value;
		}
		p += len + (eol ? 1 : 0);
	}
	return NULL;
}

int http_req_retry_after(const struct http_req *r)
{
	const char *v = http_req_header_value(r, "Retry-After");
	int64_t s;

	/* Only the delta-seconds form; an HTTP date is ignored. */
	if (v == NULL || strnum_i64(v, 0, 3600, &s, NULL) < 0)
		return -1;
	return (int)s;
}

double http_req_seconds(const struct http_req *r)
{
	double t = 0;

	if (r->easy)
		curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &t);
	return t;
}
