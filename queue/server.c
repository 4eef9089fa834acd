#include "server.h"
#include "srvint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "ev.h"
#include "jsonx.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

/*
 * libmicrohttpd keeps each connection's request line, headers and read
 * buffer in one pool of this size. It is twice the header cap, so that a
 * request with up to 16 KiB of headers reaches us and gets our JSON 413;
 * past the pool, libmicrohttpd answers 431 itself. Pages of the pool that
 * are never touched cost no memory, which is what keeps ten thousand idle
 * long-polls cheap.
 */
#define SRV_CONN_MEMORY (32 * 1024)

/*
 * How long the loop waits before running libmicrohttpd again when it
 * asks for "at once" but no request is in progress. libmicrohttpd 0.9.75
 * lets GnuTLS read the socket during the handshake and never learns of
 * its EAGAIN, so a connection that sent part of a handshake stays "ready
 * to read" and MHD_get_timeout() answers 0 until it goes: one such
 * connection would spin the loop at 100% CPU. Progress of every real
 * connection comes with an epoll event, which runs MHD at once anyway.
 */
#define SRV_SPIN_DELAY_MS 10

/*
 * A connection until its first request head is complete: the deadline
 * of --handshake-timeout. libmicrohttpd's own timeout restarts with
 * every byte of a request and does not see the TLS handshake at all
 * after its first read; this one runs from accept and is never renewed.
 */
struct sconn {
	struct srv *s;
	struct MHD_Connection *c;
	struct ev_timer *deadline;	/* NULL once a request has begun */
};

/* ---- answers ---- */

static void common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	/* No answer is ever to be read as anything but its Content-Type. */
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
}

static enum MHD_Result queue_resp(struct req *r, unsigned status,
    struct MHD_Response *resp)
{
	enum MHD_Result ok;

	common_headers(resp);
	ok = MHD_queue_response(r->c, status, resp);
	MHD_destroy_response(resp);
	r->responded = 1;
	r->status = status;
	return ok;
}

static struct MHD_Response *json_response(cJSON *body)
{
	char *s = jsonx_print(body);
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
	    strlen(s), s, cJSON_free);

	MHD_add_response_header(resp, "Content-Type", "application/json");
	return resp;
}

enum MHD_Result srv_reply_json(struct req *r, unsigned status, cJSON *body)
{
	struct MHD_Response *resp = json_response(body);

	cJSON_Delete(body);
	return queue_resp(r, status, resp);
}

static void log_refusal(struct req *r, const struct apierr *e)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->c,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char addr[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)
		    ->sin_addr, addr, sizeof(addr));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_addr, addr, sizeof(addr));
	if (e->status >= 500)
		log_warn("request failed", "route=%s status=%d error=%s client=%s "
		    "message=%s", route_name(r->rm.id), e->status, e->code, addr,
		    logq(e->msg));
	else
		log_info("request refused", "route=%s status=%d error=%s client=%s "
		    "message=%s", route_name(r->rm.id), e->status, e->code, addr,
		    logq(e->msg));
}

/*
 * Whether the client will send its body whatever we answer: most clients
 * write the whole body before they read, so a refusal sent (and the
 * connection closed) before the body is read would reach them as a broken
 * pipe instead of an answer. Only a client that asked for 100-continue
 * waits; a body larger than we are willing to drain is refused at once.
 */
static int body_follows(struct req *r)
{
	const char *cl = srv_header(r, "Content-Length");
	const char *te = srv_header(r, "Transfer-Encoding");
	const char *ex = srv_header(r, "Expect");
	int64_t n = 0;

	if (ex && strcasecmp(ex, "100-continue") == 0)
		return 0;
	if (te && strcasecmp(te, "identity") != 0)
		return 1;
	return cl && strnum_i64(cl, 1, (int64_t)SRV_DISCARD_MAX, &n, NULL) == 0;
}

enum MHD_Result srv_reply_error(struct req *r, const struct apierr *e)
{
	cJSON *o = cJSON_CreateObject();
	struct MHD_Response *resp;
	char ra[16];

	if (r->in_headers && body_follows(r)) {
		cJSON_Delete(o);
		return srv_fail_body(r, e);
	}
	cJSON_AddStringToObject(o, "error", e->code ? e->code : "internal");
	cJSON_AddStringToObject(o, "message", e->msg);
	if (e->has_length)
		cJSON_AddNumberToObject(o, "length", (double)e->length);
	if (e->has_limit)
		cJSON_AddNumberToObject(o, "limit", (double)e->limit);
	if (e->reason)
		cJSON_AddStringToObject(o, "reason", e->reason);
	resp = json_response(o);
	cJSON_Delete(o);
	if (e->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", e->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	if (e->status == 405 && r->rm.allow[0])
		MHD_add_response_header(resp, "Allow", r->rm.allow);
	log_refusal(r, e);
	return queue_resp(r, (unsigned)(e->status ? e->status : 500), resp);
}

enum MHD_Result srv_reply_empty(struct req *r, unsigned status)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
	    MHD_RESPMEM_PERSISTENT);

	return queue_resp(r, status, resp);
}

enum MHD_Result srv_reply_text(struct req *r, unsigned status,
    const char *type, struct buf *body)
{
	size_t n;
	char *p = buf_steal(body, &n);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer_with_free_callback(n, p, free);

	MHD_add_response_header(resp, "Content-Type", type);
	return queue_resp(r, status, resp);
}

enum MHD_Result srv_reply_fd(struct req *r, unsigned status, int fd,
    int64_t offset, int64_t count, const char *const *headers)
{
	struct MHD_Response *resp;

	if (fd < 0 || count == 0) {
		if (fd >= 0)
			close(fd);
		resp = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_fd_at_offset64((uint64_t)count, fd,
		    (uint64_t)offset);
	}
	MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
	for (; headers && headers[0]; headers += 2)
		MHD_add_response_header(resp, headers[0], headers[1]);
	return queue_resp(r, status, resp);
}

enum MHD_Result srv_reply_bytes(struct req *r, unsigned status,
    const char *data, size_t n, const char *const *headers)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(n,
	    (void *)(data ? data : ""), MHD_RESPMEM_MUST_COPY);

	MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
	for (; headers && headers[0]; headers += 2)
		MHD_add_response_header(resp, headers[0], headers[1]);
	return queue_resp(r, status, resp);
}

enum MHD_Result srv_reply_response(struct req *r, unsigned status,
    struct MHD_Response *resp)
{
	return queue_resp(r, status, resp);
}

enum MHD_Result srv_fail_body(struct req *r, const struct apierr *e)
{
	r->failed = 1;
	r->deferred = *e;
	return MHD_YES;
}

enum MHD_Result srv_suspend(struct req *r)
{
	r->suspended = 1;
	r->s->nsuspended++;
	MHD_suspend_connection(r->c);
	return MHD_YES;
}

void srv_wake(struct req *r)
{
	r->woken = 1;
	if (!r->suspended)
		return;
	r->suspended = 0;
	r->s->nsuspended--;
	MHD_resume_connection(r->c);
	r->s->kick = 1;
	/* Outside MHD_run (a timer fired): make the loop run MHD soon. */
	ev_timer_start(r->s->timer, 0);
}

void srv_resume_conn(struct srv *s, struct MHD_Connection *c)
{
	MHD_resume_connection(c);
	s->kick = 1;
	ev_timer_start(s->timer, 0);
}

void srv_resume(struct req *r)
{
	srv_resume_conn(r->s, r->c);
}

const char *srv_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

const char *srv_query(struct req *r, const char *name, char *out,
    size_t outsz, int *bad)
{
	const char *raw = MHD_lookup_connection_value(r->c,
	    MHD_GET_ARGUMENT_KIND, name);
	size_t n;

	*bad = 0;
	if (raw == NULL)
		return NULL;
	if (route_pct_decode(raw, strlen(raw), out, outsz, &n) < 0 || n == 0) {
		*bad = 1;
		return NULL;
	}
	return out;
}

/* ---- connections ---- */

/*
 * The deadline passed before a whole request head arrived: shut the
 * socket down. libmicrohttpd then reads end-of-file (in the handshake
 * or in the head), closes the connection and tells on_connection; the
 * descriptor stays its own to close. The next run is due at once.
 */
static void on_deadline(struct ev_timer *t, void *arg)
{
	struct sconn *sc = arg;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(sc->c,
	    MHD_CONNECTION_INFO_CONNECTION_FD);

	(void)t;
	sc->s->nexpired++;
	log_debug("connection closed: no whole request head in time "
	    "(--handshake-timeout, or --client-timeout after an answer)", "fd=%d",
	    ci ? (int)ci->connect_fd : -1);
	if (ci && shutdown(ci->connect_fd, SHUT_RDWR) < 0)
		log_debug("shutdown failed", "error=%s", logq(strerror(errno)));
	ev_timer_start(sc->s->timer, 0);
}

static void conn_began(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct sconn *sc = ci ? ci->socket_context : NULL;

	if (sc == NULL || sc->deadline == NULL)
		return;
	ev_timer_free(sc->deadline);
	sc->deadline = NULL;
	sc->s->npending--;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **sock,
    enum MHD_ConnectionNotificationCode toe)
{
	struct srv *s = cls;
	struct sconn *sc = *sock;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		s->nconn++;
		sc = xcalloc(1, sizeof(*sc));
		sc->s = s;
		sc->c = c;
		sc->deadline = ev_timer_new(s->loop, on_deadline, sc);
		ev_timer_start(sc->deadline, s->cfg->handshake_timeout * 1000);
		s->npending++;
		*sock = sc;
		return;
	}
	if (s->nconn > 0)
		s->nconn--;
	if (sc && sc->deadline) {
		ev_timer_free(sc->deadline);
		s->npending--;
	}
	free(sc);
	*sock = NULL;
}

/* ---- the access handler ---- */

static struct req *req_new(struct srv *s, struct MHD_Connection *c)
{
	struct req *r = xcalloc(1, sizeof(*r));

	r->s = s;
	r->c = c;
	r->attempt = 0;
	r->start_ms = ev_now(s->loop);
	buf_init(&r->body, 0);
	s->nreq++;
	return r;
}

static enum MHD_Result route(struct req *r, const char *url,
    const char *method)
{
	struct apierr e;
	int rc = route_match(method, url, &r->rm);

	if (rc == -ENOENT)
		return srv_reply_error(r, (apierr_notfound(&e, "no endpoint %.64s",
		    url), &e));
	if (rc == -EOPNOTSUPP) {
		apierr_set(&e, 405, "method_not_allowed", "%s is not allowed here; "
		    "allowed: %s", method, r->rm.allow);
		return srv_reply_error(r, &e);
	}
	if (rc < 0)
		return srv_reply_error(r, (apierr_bad(&e, "%s", r->rm.why), &e));
	return api_begin(r);
}

/* Refusals that need neither the route nor the body. */
static enum MHD_Result gatekeep(struct req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->c,
	    MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct apierr e;

	if (r->s->nconn > (size_t)r->s->cfg->max_connections) {
		apierr_set(&e, 429, "too_many_requests", "the queue holds %zu "
		    "connections, over its limit of %lld", r->s->nconn,
		    (long long)r->s->cfg->max_connections);
		e.retry_after = 5;
		return srv_reply_error(r, &e);
	}
	if (ci && ci->header_size > SRV_MAX_HEADERS) {
		apierr_too_large(&e, SRV_MAX_HEADERS, "request headers are %zu "
		    "bytes", ci->header_size);
		return srv_reply_error(r, &e);
	}
	return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **ctx)
{
	struct req *r = *ctx;
	enum MHD_Result ok;

	(void)version;
	if (r == NULL) {
		conn_began(c);
		*ctx = r = req_new(cls, c);
		r->in_headers = 1;
		ok = gatekeep(r);
		if (!r->responded && !r->failed)
			ok = route(r, url, method);
		r->in_headers = 0;
		return ok;
	}
	/* A request parked in its first call (an upload PUT on PostgreSQL
	 * asks the database before it takes a byte) is called once more,
	 * without a body, when it resumes: that call is not the body's end. */
	if (r->parked_in_head && !r->suspended) {
		r->parked_in_head = 0;
		if (*upload_size == 0)
			return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size, used = n;
		*upload_size = 0;
		/* After an early answer libmicrohttpd drops the body itself. */
		if (r->responded)
			return MHD_YES;
		if (r->failed)
			return (r->discarded += n) > SRV_DISCARD_MAX ? MHD_NO : MHD_YES;
		if (r->suspended) {
			*upload_size = n;	/* parked: this comes again */
			return MHD_YES;
		}
		ok = api_body(r, upload, n, &used);
		*upload_size = n - used;
		return ok;
	}
	if (r->responded)
		return MHD_YES;
	if (r->failed)
		return srv_reply_error(r, &r->deferred);
	if (r->woken)
		return api_woken(r);
	if (r->suspended)
		return MHD_YES;
	return api_finish(r);
}

/*
 * A request is done and the connection waits for the next head: that head
 * too must be whole within a deadline that no byte renews (the client
 * timeout; an idle connection is closed at it anyway), or a client could
 * hold a connection for days by trickling one byte a minute.
 */
static void conn_idle(struct srv *s, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct sconn *sc = ci ? ci->socket_context : NULL;

	if (sc == NULL || sc->deadline != NULL)
		return;
	sc->deadline = ev_timer_new(s->loop, on_deadline, sc);
	ev_timer_start(sc->deadline, s->cfg->client_timeout * 1000);
	s->npending++;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
	struct srv *s = cls;
	struct req *r = *ctx;

	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		conn_idle(s, c);
	/*
	 * One more run at once: a connection that was suspended is on
	 * libmicrohttpd's "ready" list, outside its epoll set, until a read
	 * of it finds nothing; until then MHD_get_timeout() answers 0 with
	 * no request in flight, which run_mhd takes for the handshake spin
	 * and waits SRV_SPIN_DELAY_MS: the next request on that connection
	 * (an agent's next poll, the next submit) waited up to 10 ms.
	 */
	s->kick = 1;
	if (r == NULL)
		return;
	if (r->responded)
		qmetrics_http(s->q, r->status);
	api_done(r, toe);
	if (r->suspended)
		s->nsuspended--;
	s->buffered -= r->counted;
	s->nreq--;
	buf_free(&r->body);
	free(r);
	*ctx = NULL;
}

/* The path exactly as sent: route.c decodes it strictly itself. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("libmicrohttpd", "detail=%s", logq(msg));
}

/* ---- the event loop ---- */

static void run_mhd(struct srv *s)
{
	MHD_UNSIGNED_LONG_LONG to;

	/* Connections resumed while MHD ran are processed by one more run;
	 * bounded, the loop comes back anyway. */
	for (int i = 0; i < 4; i++) {
		s->kick = 0;
		MHD_run(s->d);
		if (!s->kick)
			break;
	}
	if (s->kick)
		ev_timer_start(s->timer, 0);
	else if (MHD_get_timeout(s->d, &to) == MHD_YES)
		ev_timer_start(s->timer, to == 0 && s->nreq == s->nsuspended ?
		    SRV_SPIN_DELAY_MS : to > INT32_MAX ? INT32_MAX : (int64_t)to);
	else
		ev_timer_stop(s->timer);
}

static void on_io(struct ev_io *w, int fd, unsigned events, void *arg)
{
	(void)w;
	(void)fd;
	(void)events;
	run_mhd(arg);
}

static void on_timer(struct ev_timer *t, void *arg)
{
	(void)t;
	run_mhd(arg);
}

/* ---- listening ---- */

int srv_parse_listen(const char *s, struct sockaddr_storage *ss,
    unsigned *len)
{
	char host[64];
	const char *colon, *port;
	int p;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - s - 1);
		memcpy(host, s + 1, hl < sizeof(host) ? hl : 0);
		port = rb + 2;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -EINVAL;
		hl = (size_t)(colon - s);
		memcpy(host, s, hl < sizeof(host) ? hl : 0);
		port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host) ||
	    strnum_int(port, 0, 65535, &p, NULL) < 0)
		return -EINVAL;
	host[hl] = '\0';
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		*len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*v6);
		return 0;
	}
	return -EINVAL;
}

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int open_listener(const char *listen_on, int reuse_port, int *port)
{
	struct sockaddr_storage ss;
	unsigned len;
	int one = 1, fd, r;

	if (srv_parse_listen(listen_on, &ss, &len) < 0) {
		log_error("bad --listen address; want ADDR:PORT or [ADDR]:PORT",
		    "listen=%s", logq(listen_on));
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Restarting on the same port must not wait for TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Replicas on one host share the port; the kernel spreads new
	 * connections over them. */
	if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
	    sizeof(one)) < 0)
		log_warn("SO_REUSEPORT refused", "error=%s", logq(strerror(errno)));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, 4096) < 0) {
		r = -errno;
		log_error("cannot listen", "listen=%s error=%s", logq(listen_on),
		    logq(strerror(-r)));
		close(fd);
		return r;
	}
	*port = port_of(fd);
	return fd;
}

static struct MHD_Daemon *start_daemon(struct srv *s, const char *cert,
    const char *key)
{
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | (cert ? MHD_USE_TLS : 0);
	unsigned limit = (unsigned)(s->cfg->max_connections +
	    s->cfg->max_connections / 16 + 16);
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)key },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0,
		  (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_OptionItem none[] = { { MHD_OPTION_END, 0, NULL } };

	return MHD_start_daemon(flags, 0, NULL, NULL, on_access, s,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
	    MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
	    MHD_OPTION_CONNECTION_LIMIT, limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)s->cfg->max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg->client_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	    MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, s,
	    MHD_OPTION_ARRAY, cert ? tls : none,
	    MHD_OPTION_END);
}

static int watch(struct srv *s)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d,
	    MHD_DAEMON_INFO_EPOLL_FD);

	if (di == NULL)
		return -EINVAL;
	s->io = ev_io_start(s->loop, di->epoll_fd, EV_READ, on_io, s);
	if (s->io == NULL)
		return -errno;
	s->timer = ev_timer_new(s->loop, on_timer, s);
	ev_timer_start(s->timer, 0);
	return 0;
}

int srv_start(struct queue *q, const struct qcfg *cfg, struct ev_loop *loop,
    const char *cert_pem, const char *key_pem, struct srv **out)
{
	struct srv *s = xcalloc(1, sizeof(*s));
	int r;

	s->q = q;
	s->cfg = cfg;
	s->loop = loop;
	if ((s->listen_fd = open_listener(cfg->listen, cfg->reuse_port, &s->port)) < 0) {
		r = s->listen_fd;
		free(s);
		return r;
	}
	s->d = start_daemon(s, cert_pem, key_pem);
	if (s->d == NULL) {
		log_error("libmicrohttpd did not start (bad TLS certificate or "
		    "key?)", NULL);
		close(s->listen_fd);
		free(s);
		return -EINVAL;
	}
	/* libmicrohttpd owns the listening socket from here on. */
	s->listen_fd = -1;
	if ((r = watch(s)) < 0) {
		srv_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int srv_port(const struct srv *s)
{
	return s->port;
}

size_t srv_connections(const struct srv *s)
{
	return s->nconn;
}

size_t srv_requests(const struct srv *s)
{
	return s->nreq;
}

void srv_quiesce(struct srv *s)
{
	MHD_socket fd = MHD_quiesce_daemon(s->d);

	/* After quiescing, the socket is ours again to close. */
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void srv_free(struct srv *s)
{
	if (s == NULL)
		return;
	ev_io_stop(s->io);
	ev_timer_free(s->timer);
	if (s->d)
		MHD_stop_daemon(s->d);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s);
}
