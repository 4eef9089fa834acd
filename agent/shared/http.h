/*
 * HTTP requests for the agent's network half: libcurl's multi interface
 * driven by the event loop through curl's socket and timer callbacks, so
 * the lease long-poll, heartbeats and uploads of several jobs proceed at
 * once in one thread and the process sleeps when nothing is due.
 *
 * TLS is always verified (system store or a CA file, optionally a pinned
 * public key); there is no switch to turn verification off.
 */
#ifndef SKIFF_AGENT_HTTP_H
#define SKIFF_AGENT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

struct ev_loop;
struct http_client;
struct http_req;

struct http_tls {
	const char *ca_file;	/* NULL: the system store */
	const char *pinned;	/* NULL or sha256//... */
	const char *unix_socket;	/* talk HTTP over this unix socket instead */
	const char *ca_pem;	/* CA certificates in memory (wins over ca_file) */
};

typedef void (*http_done_fn)(struct http_req *r, void *arg);
/* Streaming body source: fill up to n bytes, return the count, 0 at the
 * end, or -1 to abort the request. */
typedef ssize_t (*http_read_fn)(char *dst, size_t n, void *arg);
/* Streaming response sink: 0 to go on, -1 to abort, HTTP_SINK_PAUSE to
 * refuse these bytes for now: the transfer stops reading and the same
 * bytes come again after http_req_resume. The sink runs inside libcurl:
 * it must not send, free or resume any request (libcurl refuses calls
 * into the multi handle from its callbacks); copy and act later. */
typedef int (*http_write_fn)(const char *data, size_t n, void *arg);
#define HTTP_SINK_PAUSE 1
/* The final response's status line and headers have arrived (after any
 * 1xx). Called once per send, from the event loop outside libcurl, before
 * done; may send other requests, and may free r (then done never comes).
 * Body bytes may already have gone to the sink by then. */
typedef void (*http_headers_fn)(struct http_req *r, long status, void *arg);

int http_client_new(struct ev_loop *loop, const struct http_tls *tls,
    const char *user_agent, struct http_client **out);
void http_client_free(struct http_client *c);
/* Requests started and not yet finished. */
size_t http_client_active(const struct http_client *c);

struct http_req *http_req_new(struct http_client *c, const char *method,
    const char *url);
/* "Name: value"; copied. */
void http_req_header(struct http_req *r, const char *line);
void http_req_bearer(struct http_req *r, const char *token);
/* Takes ownership of data (a heap block from buf_steal or xmalloc). */
void http_req_body_owned(struct http_req *r, char *data, size_t n,
    const char *content_type);
void http_req_body_json(struct http_req *r, const char *json);
void http_req_body_reader(struct http_req *r, http_read_fn fn, void *arg,
    int64_t len, const char *content_type);
/* For a streamed body: go back to its start, because libcurl must send it
 * again (a kept-alive connection that turned out dead); 0 or -1. Without
 * it such a request fails. */
void http_req_body_rewind(struct http_req *r, int (*fn)(void *arg));
void http_req_sink(struct http_req *r, http_write_fn fn, void *arg);
/* Hands bytes a sink paused on back to it (possibly at once, from inside
 * this call). Not from inside a sink. */
void http_req_resume(struct http_req *r);
void http_req_on_headers(struct http_req *r, http_headers_fn fn, void *arg);
/* Called once the connection is up (TLS done) and the request is about to
 * go out: the moment a request is really in flight. */
void http_req_on_wire(struct http_req *r, void (*fn)(void *arg), void *arg);
/* Whole-request deadline; 0 disables it in favour of a stall timeout
 * (no byte moved for stall_ms), for uploads of any size. */
void http_req_timeout(struct http_req *r, long total_ms, long stall_ms);
void http_req_max_response(struct http_req *r, size_t max);
int http_req_send(struct http_req *r, http_done_fn done, void *arg);
/* Cancels if in flight (done is not called) and frees. NULL is fine. */
void http_req_free(struct http_req *r);

/* Results, valid in and after the done callback. */
long http_req_status(const struct http_req *r);	/* 0: no HTTP answer */
const char *http_req_error(const struct http_req *r);
/* Why there was no HTTP answer, as an errno: -ECONNREFUSED (nothing
 * listening, or no such unix socket), -ETIMEDOUT, -E2BIG (response over
 * its cap), -ECANCELED (a sink or reader aborted), -EIO (anything else);
 * 0 when an answer came. */
int http_req_errno(const struct http_req *r);
const struct buf *http_req_response(const struct http_req *r);
/* Seconds from a Retry-After header, or -1. */
int http_req_retry_after(const struct http_req *r);
/* Value of a response header (case-insensitive name), or NULL. */
const char *http_req_header_value(const struct http_req *r, const char *name);
double http_req_seconds(const struct http_req *r);

#endif
