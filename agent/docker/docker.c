#include "docker.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "buf.h"
#include "dmux.h"
#include "ev.h"
#include "http.h"
#include "jsonx.h"
#include "log.h"
#include "pullprog.h"
#include "strnum.h"
#include "xalloc.h"

#define DOCKER_MAX_DEPTH 32		/* inspect answers nest about 6 deep */
#define DOCKER_MSG_MAX 512		/* an error message kept for the caller */
#define DOCKER_PEND_MAX (256u << 10)	/* stream bytes not yet handed on */
#define DOCKER_TIMEOUT_MS 60000L
#define DOCKER_REMOVE_TIMEOUT_MS 180000L	/* a big overlay takes a while */
#define DOCKER_PULL_STALL_MS 300000L	/* big layers extract without news */

enum op_kind {
	OP_PING, OP_VERSION, OP_IMG_INSPECT, OP_PULL, OP_IMG_LIST, OP_IMG_RM,
	OP_INFO, OP_CREATE, OP_ATTACH, OP_START, OP_WAIT, OP_INSPECT, OP_STOP,
	OP_KILL, OP_REMOVE, OP_LIST,
	OP_NET_CREATE, OP_NET_RM, OP_NET_LIST, OP_SVC_INSPECT, OP_LOGS,
	OP_EXEC_CREATE, OP_EXEC_START, OP_EXEC_INSPECT,
};

struct docker {
	struct ev_loop *loop;
	struct http_client *http;
	char version[16];	/* negotiated, "" before */
	char server[96];
	uint64_t calls;
	struct docker_op *ops;	/* in flight */
};

struct docker_op {
	struct docker *d;
	struct docker_op *next, *prev;
	enum op_kind kind;
	struct http_req *req;
	docker_done_fn done;
	docker_ready_fn ready;
	docker_output_fn output;
	docker_progress_fn progress;
	void *arg;
	int depth;		/* inside a caller's callback */
	int cancelled;		/* docker_op_cancel from such a callback */
	/* streams: bytes from libcurl, handed on from the loop */
	struct ev_timer *kick;
	struct buf pend;
	struct buf errbody;	/* the body of a failed streaming request */
	long hstatus;
	int hdr_seen;
	int stream_err;
	struct dmux dmux;
	struct pullprog pp;
	int pp_live;
	/* what a result points into, freed with the op */
	cJSON *json;
	void *arr1, *arr2;
	char msg[DOCKER_MSG_MAX];
	/* for op_send only: a request body (owned), registry credentials */
	char *body;
	const struct docker_auth *auth;
	/* docker_decode_answer: the answer, given rather than read */
	const struct buf *given;
};

/* ---- small helpers ---- */

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* Percent-encodes s; keep lists the other bytes left as they are.
 * -E2BIG when b is full. */
static int put_escaped(struct buf *b, const char *s, const char *keep)
{
	int rc = 0;

	for (; *s && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if (unreserved(c) || strchr(keep, c))
			rc = buf_putc(b, (char)c);
		else
			rc = buf_printf(b, "%%%02X", c);
	}
	return rc;
}

/* The engine's words for a person: printable, bounded. */
static void set_msg(struct docker_op *op, const char *s, size_t n)
{
	size_t i, o = 0;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	for (i = 0; i < n && o + 1 < sizeof(op->msg); i++) {
		unsigned char c = (unsigned char)s[i];
		op->msg[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	op->msg[o] = '\0';
}

/* An error answer is {"message": "..."} (Docker, Podman) or plain text. */
static void msg_from_body(struct docker_op *op, const char *s, size_t n)
{
	int jerr;
	const char *m;
	cJSON *j = jsonx_parse(s, n, DOCKER_MAX_ANSWER, DOCKER_MAX_DEPTH, &jerr);

	if (j && jsonx_string(j, "message", DOCKER_MAX_ANSWER, &m) == 0)
		set_msg(op, m, strlen(m));
	else
		set_msg(op, s, n);
	cJSON_Delete(j);
}

static int status_errno(long status)
{
	if (status == 400)
		return -EINVAL;
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	if (status == 409)
		return -EBUSY;
	if (status >= 500 && status < 600)
		return -EAGAIN;
	return -EPROTO;
}

static int is_transient(int err)
{
	return err == -ECONNREFUSED || err == -ETIMEDOUT || err == -EIO ||
	    err == -EAGAIN;
}

/* "1.41" -> 141; -1 when not of that form. */
static int api_num(const char *v)
{
	int major = 0, minor = 0, digits = 0;

	for (; *v >= '0' && *v <= '9' && digits < 3; v++, digits++)
		major = major * 10 + (*v - '0');
	if (digits == 0 || *v++ != '.')
		return -1;
	for (digits = 0; *v >= '0' && *v <= '9' && digits < 3; v++, digits++)
		minor = minor * 10 + (*v - '0');
	if (digits == 0 || *v != '\0')
		return -1;
	return major * 1000 + minor;
}

/* ---- operations: life cycle ---- */

static void op_free(struct docker_op *op)
{
	struct docker *d = op->d;

	if (op->prev)
		op->prev->next = op->next;
	else if (d->ops == op)
		d->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	http_req_free(op->req);
	ev_timer_free(op->kick);
	buf_free(&op->pend);
	buf_free(&op->errbody);
	if (op->pp_live)
		pullprog_free(&op->pp);
	cJSON_Delete(op->json);
	free(op->body);
	free(op->arr1);
	free(op->arr2);
	free(op);
}

void docker_op_cancel(struct docker_op *op)
{
	if (op == NULL)
		return;
	if (op->depth > 0)
		op->cancelled = 1;	/* freed when its callback returns */
	else
		op_free(op);
}

static struct docker_op *op_new(struct docker *d, enum op_kind kind,
    docker_done_fn done, void *arg)
{
	struct docker_op *op = xcalloc(1, sizeof(*op));

	op->d = d;
	op->kind = kind;
	op->done = done;
	op->arg = arg;
	buf_init(&op->pend, DOCKER_PEND_MAX);
	buf_init(&op->errbody, DOCKER_MSG_MAX * 4);
	return op;
}

/* Calls the caller's done once, then the op is gone. */
static void finish(struct docker_op *op, struct docker_res *r)
{
	if (r->msg == NULL)
		r->msg = op->msg;
	r->transient = r->err ? is_transient(r->err) : 0;
	if (r->err)
		log_debug("docker call failed", "err=%d status=%ld msg=%s",
		    r->err, r->status, logq(r->msg));
	op->depth++;
	if (op->done)
		op->done(op->arg, r);
	op_free(op);
}

/* X-Registry-Auth: base64url of a JSON object, with padding, as Docker's
 * decoder (Go's URLEncoding) wants; without it the last bytes fail to
 * decode and the engine silently pulls without credentials. */
static void auth_header(struct http_req *req, const struct docker_auth *a)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "username", a->username ? a->username : "");
	cJSON_AddStringToObject(o, "password", a->password ? a->password : "");
	cJSON_AddStringToObject(o, "serveraddress", a->server ? a->server : "");
	char *json = jsonx_print(o);
	char *b64 = b64url_encode(json, strlen(json));
	size_t n = strlen(b64), pad = (4 - n % 4) % 4;
	char *line = xasprintf("X-Registry-Auth: %s%.*s", b64, (int)pad, "===");
	http_req_header(req, line);
	sodium_memzero(json, strlen(json));
	sodium_memzero(b64, n);
	sodium_memzero(line, strlen(line));
	free(json);
	free(b64);
	free(line);
	cJSON_Delete(o);
}

static void on_http_done(struct http_req *req, void *arg);
static void on_headers(struct http_req *req, long status, void *arg);
static int on_sink(const char *data, size_t n, void *arg);

/* method and path (with query) relative to the API root; versioned
 * unless it is one of the two calls made before the version is known. */
static int op_send(struct docker_op *op, const char *method,
    const struct buf *path, long timeout_ms, struct docker_op **opp)
{
	struct docker *d = op->d;
	char *url;

	if (op->kind == OP_PING || op->kind == OP_VERSION)
		url = xasprintf("http://docker%s", buf_cstr(path));
	else
		url = xasprintf("http://docker/v%s%s", d->version, buf_cstr(path));
	http_req_free(op->req);
	op->req = http_req_new(d->http, method, url);
	free(url);
	http_req_timeout(op->req, timeout_ms, 0);
	if (op->kind == OP_PULL)
		http_req_timeout(op->req, 0, DOCKER_PULL_STALL_MS);
	if (op->kind == OP_LIST || op->kind == OP_IMG_LIST)
		http_req_max_response(op->req, DOCKER_MAX_LIST);
	else
		http_req_max_response(op->req, DOCKER_MAX_ANSWER);
	if (op->kind == OP_ATTACH || op->kind == OP_EXEC_START ||
	    op->kind == OP_PULL)
		http_req_sink(op->req, on_sink, op);
	if (op->kind == OP_ATTACH || op->kind == OP_EXEC_START ||
	    op->kind == OP_PULL || op->kind == OP_WAIT)
		http_req_on_headers(op->req, on_headers, op);
	if (op->body) {
		http_req_body_owned(op->req, op->body, strlen(op->body),
		    "application/json");
		op->body = NULL;
	}
	if (op->auth) {
		auth_header(op->req, op->auth);
		op->auth = NULL;
	}
	int rc = http_req_send(op->req, on_http_done, op);
	if (rc < 0)
		return rc;
	d->calls++;
	log_debug("docker call", "method=%s path=%s", method,
	    logq(buf_cstr(path)));
	if (op->prev == NULL && d->ops != op) {
		op->next = d->ops;
		if (d->ops)
			d->ops->prev = op;
		d->ops = op;
	}
	if (opp)
		*opp = op;
	return 0;
}

/* Starts op or frees it; the path buffer is consumed either way. */
static int op_start(struct docker_op *op, const char *method, struct buf *path,
    long timeout_ms, struct docker_op **opp)
{
	int rc = -ENOTCONN;

	if (op->kind == OP_PING || op->kind == OP_VERSION || op->d->version[0])
		rc = op_send(op, method, path, timeout_ms, opp);
	buf_free(path);
	if (rc < 0)
		op_free(op);
	return rc;
}

/* ---- streams (attach, pull) ---- */

/* Inside libcurl: only keep the bytes, hand them on from the loop. */
static int on_sink(const char *data, size_t n, void *arg)
{
	struct docker_op *op = arg;

	if (op->stream_err)
		return -1;
	if (buf_append(&op->pend, data, n) < 0)
		return HTTP_SINK_PAUSE;
	if (op->hdr_seen)
		ev_timer_start(op->kick, 0);
	return 0;
}

static int attach_out(void *arg, int stream, const char *data, size_t n)
{
	struct docker_op *op = arg;

	if (stream == DMUX_SYSTEMERR) {
		buf_append(&op->errbody, data, n);
		return 0;
	}
	if (stream == DMUX_STDIN || op->output == NULL)
		return 0;
	op->depth++;
	op->output(op->arg, stream, data, n);
	op->depth--;
	return op->cancelled ? -ECANCELED : 0;
}

static void pull_line(void *arg, const char *line)
{
	struct docker_op *op = arg;

	if (op->progress == NULL || op->cancelled)
		return;
	op->depth++;
	op->progress(op->arg, line);
	op->depth--;
}

static void interpret(struct docker_op *op, const char *data, size_t n)
{
	int rc = 0;

	if (op->hstatus != 200) {
		size_t room = op->errbody.max - op->errbody.len;
		buf_append(&op->errbody, data, n < room ? n : room);
	} else if (op->kind == OP_ATTACH || op->kind == OP_EXEC_START) {
		rc = dmux_feed(&op->dmux, data, n, attach_out, op);
	} else {
		rc = pullprog_feed(&op->pp, data, n);
	}
	if (rc < 0 && rc != -ECANCELED && op->stream_err == 0)
		op->stream_err = rc;
}

/* From the loop: hands pending stream bytes on. Returns 1 when the
 * caller cancelled the op meanwhile (the op must then be freed). */
static int process(struct docker_op *op)
{
	if (!op->hdr_seen)
		return 0;
	if (op->pend.len > 0) {
		interpret(op, op->pend.data, op->pend.len);
		buf_reset(&op->pend);
	}
	if (op->cancelled)
		return 1;
	http_req_resume(op->req);
	return 0;
}

static void on_kick(struct ev_timer *t, void *arg)
{
	struct docker_op *op = arg;

	(void)t;
	if (process(op))
		op_free(op);
}

static void on_headers(struct http_req *req, long status, void *arg)
{
	struct docker_op *op = arg;

	(void)req;
	op->hstatus = status;
	op->hdr_seen = 1;
	if (status == 200 && op->ready) {
		op->depth++;
		op->ready(op->arg);
		op->depth--;
	}
	if (op->cancelled || process(op))
		op_free(op);
}

static struct docker_op *stream_op(struct docker *d, enum op_kind kind,
    docker_done_fn done, void *arg)
{
	struct docker_op *op = op_new(d, kind, done, arg);

	op->kick = ev_timer_new(d->loop, on_kick, op);
	return op;
}

/* ---- answers ---- */

static const struct buf *op_body(const struct docker_op *op)
{
	return op->given ? op->given : http_req_response(op->req);
}

static int parse_json(struct docker_op *op, const struct buf *body)
{
	int jerr;

	op->json = jsonx_parse(body->data ? body->data : "", body->len,
	    body->max, DOCKER_MAX_DEPTH, &jerr);
	if (op->json == NULL) {
		set_msg(op, "malformed JSON answer", 21);
		return jerr == JSONX_TOO_BIG ? -E2BIG : -EPROTO;
	}
	return 0;
}

static const char *str_or(const cJSON *o, const char *key, const char *dflt)
{
	const char *s;

	return jsonx_string(o, key, DOCKER_MAX_LIST, &s) == 0 ? s : dflt;
}

static int64_t int_or(const cJSON *o, const char *key, int64_t dflt)
{
	int64_t v;

	return jsonx_int(o, key, INT64_MIN / 2, INT64_MAX / 2, &v) == 0 ? v : dflt;
}

static int ans_version(struct docker_op *op, struct docker_res *r);
static int ans_ping(struct docker_op *op, struct docker_res *r);

static int ans_create(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));

	if (rc < 0)
		return rc;
	r->id = str_or(op->json, "Id", NULL);
	return r->id && *r->id ? 0 : -EPROTO;
}

static int ans_img_inspect(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));

	if (rc < 0)
		return rc;
	r->present = 1;
	r->id = str_or(op->json, "Id", "");
	return 0;
}

static int ans_wait(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));
	const char *m;

	if (rc < 0)
		return rc;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(op->json, "Error");
	if (jsonx_string(e, "Message", DOCKER_MAX_ANSWER, &m) == 0 && *m) {
		set_msg(op, m, strlen(m));
		return -EIO;
	}
	if (jsonx_int(op->json, "StatusCode", INT32_MIN, INT32_MAX,
	    &r->exit_code) < 0)
		return -EPROTO;
	return 0;
}

static int ans_inspect(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));
	const cJSON *st;
	int64_t code;

	if (rc < 0)
		return rc;
	st = cJSON_GetObjectItemCaseSensitive(op->json, "State");
	if (!cJSON_IsObject(st) ||
	    jsonx_int(st, "ExitCode", INT32_MIN, INT32_MAX, &code) < 0)
		return -EPROTO;
	r->exit_code = code;
	r->state = str_or(st, "Status", "");
	if (jsonx_bool(st, "Running", &r->running) < 0 ||
	    jsonx_bool(st, "OOMKilled", &r->oom_killed) < 0)
		return -EPROTO;
	return 0;
}

/* ExitCode is null while the process runs. */
static int ans_exec_inspect(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));
	const cJSON *code;
	int64_t pid = 0;

	if (rc < 0)
		return rc;
	if (jsonx_bool(op->json, "Running", &r->running) < 0)
		return -EPROTO;
	code = cJSON_GetObjectItemCaseSensitive(op->json, "ExitCode");
	r->exit_code = -1;
	if (!r->running && jsonx_int(op->json, "ExitCode", INT32_MIN,
	    INT32_MAX, &r->exit_code) < 0 && !cJSON_IsNull(code))
		return -EPROTO;
	if (jsonx_int(op->json, "Pid", 0, INT32_MAX, &pid) == 0)
		r->pid = (int)pid;
	return 0;
}

static int ans_info(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));

	if (rc < 0)
		return rc;
	r->root_dir = str_or(op->json, "DockerRootDir", NULL);
	r->server = str_or(op->json, "ServerVersion", "");
	return r->root_dir ? 0 : -EPROTO;
}

static void read_labels(const cJSON *o, struct docker_label *out, size_t *n)
{
	const cJSON *it;

	*n = 0;
	cJSON_ArrayForEach(it, o) {
		if (cJSON_IsString(it) && it->string) {
			out[*n].key = it->string;
			out[*n].value = it->valuestring;
			(*n)++;
		}
	}
}

/* The total size of member key over the objects of arr. */
static size_t count_all(const cJSON *arr, const char *key)
{
	const cJSON *it;
	size_t n = 0;

	cJSON_ArrayForEach(it, arr)
		n += (size_t)cJSON_GetArraySize(
		    cJSON_GetObjectItemCaseSensitive(it, key));
	return n;
}

/* A list of objects with "Labels" (containers, networks): the entries
 * (size bytes each, in arr1) and all their labels (in arr2), freed with
 * the op; fill() reads one entry, given its labels. */
static int ans_labelled(struct docker_op *op, size_t size,
    void (*fill)(const cJSON *it, void *entry, const struct docker_label *l,
    size_t nl), size_t *n_out)
{
	int rc = parse_json(op, op_body(op));
	const cJSON *it;
	size_t i = 0, nl = 0, k;

	if (rc < 0)
		return rc;
	if (!cJSON_IsArray(op->json))
		return -EPROTO;
	size_t n = (size_t)cJSON_GetArraySize(op->json);
	char *v = xcalloc(n ? n : 1, size);
	struct docker_label *l = xcalloc(count_all(op->json, "Labels") + 1,
	    sizeof(*l));
	op->arr1 = v;
	op->arr2 = l;
	cJSON_ArrayForEach(it, op->json) {
		read_labels(cJSON_GetObjectItemCaseSensitive(it, "Labels"),
		    l + nl, &k);
		fill(it, v + i * size, l + nl, k);
		nl += k;
		i++;
	}
	*n_out = n;
	return 0;
}

static void fill_container(const cJSON *it, void *entry,
    const struct docker_label *l, size_t nl)
{
	struct docker_container *c = entry;
	const cJSON *n0 = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(it, "Names"), 0);

	c->id = str_or(it, "Id", "");
	c->name = cJSON_IsString(n0) ? n0->valuestring : "";
	if (c->name[0] == '/')
		c->name++;
	c->image = str_or(it, "Image", "");
	c->state = str_or(it, "State", "");
	c->created = int_or(it, "Created", 0);
	c->labels = l;
	c->n_labels = nl;
}

static int ans_list(struct docker_op *op, struct docker_res *r)
{
	int rc = ans_labelled(op, sizeof(struct docker_container),
	    fill_container, &r->n_containers);

	r->containers = rc == 0 ? op->arr1 : NULL;
	return rc;
}

static int ans_img_list(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));
	const cJSON *it, *t;
	size_t i = 0, nt = 0;

	if (rc < 0)
		return rc;
	if (!cJSON_IsArray(op->json))
		return -EPROTO;
	size_t n = (size_t)cJSON_GetArraySize(op->json);
	struct docker_image *im = xcalloc(n ? n : 1, sizeof(*im));
	const char **tags = xcalloc(count_all(op->json, "RepoTags") + 1,
	    sizeof(*tags));
	op->arr1 = im;
	op->arr2 = tags;
	cJSON_ArrayForEach(it, op->json) {
		im[i].id = str_or(it, "Id", "");
		im[i].created = int_or(it, "Created", 0);
		im[i].size = int_or(it, "Size", 0);
		im[i].tags = tags + nt;
		cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(it, "RepoTags"))
			/* "<none>:<none>" is how old engines say "untagged" */
			if (cJSON_IsString(t) && strcmp(t->valuestring,
			    "<none>:<none>") != 0)
				tags[nt + im[i].n_tags++] = t->valuestring;
		nt += im[i].n_tags;
		i++;
	}
	r->images = im;
	r->n_images = n;
	return 0;
}

static int ans_attach(struct docker_op *op, struct docker_res *r)
{
	(void)r;
	if (op->errbody.len) {	/* the engine's own error on stream 3 */
		set_msg(op, op->errbody.data, op->errbody.len);
		return -EIO;
	}
	return op->stream_err ? op->stream_err : dmux_finish(&op->dmux);
}

static int ans_pull(struct docker_op *op, struct docker_res *r)
{
	int rc = op->stream_err ? op->stream_err : pullprog_finish(&op->pp);
	const char *e = pullprog_error(&op->pp);

	(void)r;
	if (rc < 0) {
		set_msg(op, "malformed pull progress stream", 30);
		return rc;
	}
	if (e == NULL)
		return 0;
	set_msg(op, e, strlen(e));
	switch (pullprog_classify(e)) {
	case PULLPROG_AUTH:
		return -EACCES;
	case PULLPROG_NOTFOUND:
		return -ENOENT;
	default:
		return -EAGAIN;	/* a registry or network failure midway */
	}
}

/* ---- answers of the network and service calls ---- */

static int ans_net_create(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));

	if (rc < 0)
		return rc;
	r->id = str_or(op->json, "Id", NULL);
	return r->id && *r->id ? 0 : -EPROTO;
}

static void fill_network(const cJSON *it, void *entry,
    const struct docker_label *l, size_t nl)
{
	struct docker_network *v = entry;

	v->id = str_or(it, "Id", "");
	v->name = str_or(it, "Name", "");
	v->labels = l;
	v->n_labels = nl;
}

static int ans_net_list(struct docker_op *op, struct docker_res *r)
{
	int rc = ans_labelled(op, sizeof(struct docker_network), fill_network,
	    &r->n_networks);

	r->networks = rc == 0 ? op->arr1 : NULL;
	return rc;
}

/* "8080/tcp" -> 8080; -1 for another protocol or form. */
static int tcp_port_key(const char *k)
{
	int64_t v;
	const char *slash = strchr(k, '/');
	char num[8];

	if (slash == NULL || strcmp(slash, "/tcp") != 0 ||
	    (size_t)(slash - k) >= sizeof(num))
		return -1;
	memcpy(num, k, (size_t)(slash - k));
	num[slash - k] = '\0';
	if (strnum_i64(num, 1, 65535, &v, NULL) < 0)
		return -1;
	return (int)v;
}

/* NetworkSettings.Ports: {"8080/tcp": [{"HostIp": "127.0.0.1",
 * "HostPort": "32768"}], "9/tcp": null}; one entry per binding. */
static void read_ports(struct docker_op *op, const cJSON *ports,
    struct docker_service_info *si)
{
	const cJSON *it, *b;
	size_t n = 0;

	cJSON_ArrayForEach(it, ports)
		n += cJSON_IsArray(it) ? (size_t)cJSON_GetArraySize(it) : 0;
	struct docker_port *v = xcalloc(n ? n : 1, sizeof(*v));
	op->arr2 = v;
	si->ports = v;
	cJSON_ArrayForEach(it, ports) {
		int cport = it->string ? tcp_port_key(it->string) : -1;
		if (cport < 0 || !cJSON_IsArray(it))
			continue;
		cJSON_ArrayForEach(b, it) {
			int64_t hp;
			const char *hs = str_or(b, "HostPort", "");
			if (strnum_i64(hs, 1, 65535, &hp, NULL) < 0)
				continue;
			v[si->n_ports].container_port = cport;
			v[si->n_ports].host_port = (int)hp;
			v[si->n_ports++].host_ip = str_or(b, "HostIp", "");
		}
	}
}

static int ans_svc_inspect(struct docker_op *op, struct docker_res *r)
{
	int rc = ans_inspect(op, r);
	const cJSON *st, *hc, *test;

	if (rc < 0)
		return rc;
	struct docker_service_info *si = xcalloc(1, sizeof(*si));
	op->arr1 = si;
	r->svc = si;
	st = cJSON_GetObjectItemCaseSensitive(op->json, "State");
	si->health = str_or(cJSON_GetObjectItemCaseSensitive(st, "Health"),
	    "Status", "");
	hc = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(op->json, "Config"), "Healthcheck");
	test = cJSON_GetObjectItemCaseSensitive(hc, "Test");
	si->has_healthcheck = cJSON_IsArray(test) &&
	    cJSON_GetArraySize(test) > 0 && !(cJSON_IsString(
	    cJSON_GetArrayItem(test, 0)) && strcmp(cJSON_GetArrayItem(test,
	    0)->valuestring, "NONE") == 0);
	read_ports(op, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(op->json, "NetworkSettings"),
	    "Ports"), si);
	return 0;
}

static int logs_out(void *arg, int stream, const char *data, size_t n)
{
	struct buf *b = arg;

	if (stream == DMUX_STDOUT || stream == DMUX_STDERR)
		return buf_append(b, data, n);
	return 0;
}

/* A container without a TTY: its log comes multiplexed (dmux.h). */
static int ans_logs(struct docker_op *op, struct docker_res *r)
{
	const struct buf *body = op_body(op);
	struct buf *out = xcalloc(1, sizeof(*out));
	struct dmux m;
	int rc;

	buf_init(out, DOCKER_MAX_ANSWER);
	op->arr2 = out;
	dmux_init(&m);
	rc = dmux_feed(&m, body->data ? body->data : "", body->len, logs_out,
	    out);
	if (rc == 0)
		rc = dmux_finish(&m);
	/* freed with the op: the bytes in arr1, the struct in arr2 */
	op->arr1 = out->data;
	if (rc < 0) {
		set_msg(op, "malformed log stream", 20);
		return rc == -E2BIG ? rc : -EPROTO;
	}
	r->logs = out->data ? out->data : "";
	r->logs_len = out->len;
	return 0;
}

/* The answer is a success status for this kind of call. */
static int status_ok(const struct docker_op *op, long s)
{
	switch (op->kind) {
	case OP_CREATE:
	case OP_EXEC_CREATE:
		return s == 201;
	case OP_START:
	case OP_STOP:
		return s == 204 || s == 304;	/* 304: already so */
	case OP_KILL:
		return s == 204 || s == 409;	/* 409: not running */
	case OP_REMOVE:
		return s == 204;
	case OP_NET_CREATE:
		return s == 201 || s == 200;
	case OP_NET_RM:
		return s == 204 || s == 200;
	default:
		return s == 200;
	}
}

static int answer(struct docker_op *op, struct docker_res *r)
{
	switch (op->kind) {
	case OP_PING:		return ans_ping(op, r);
	case OP_VERSION:	return ans_version(op, r);
	case OP_IMG_INSPECT:	return ans_img_inspect(op, r);
	case OP_PULL:		return ans_pull(op, r);
	case OP_IMG_LIST:	return ans_img_list(op, r);
	case OP_INFO:		return ans_info(op, r);
	case OP_CREATE:		return ans_create(op, r);
	case OP_ATTACH:		return ans_attach(op, r);
	case OP_EXEC_CREATE:	return ans_create(op, r);
	case OP_EXEC_START:	return ans_attach(op, r);
	case OP_EXEC_INSPECT:	return ans_exec_inspect(op, r);
	case OP_WAIT:		return ans_wait(op, r);
	case OP_INSPECT:	return ans_inspect(op, r);
	case OP_LIST:		return ans_list(op, r);
	case OP_NET_CREATE:	return ans_net_create(op, r);
	case OP_NET_LIST:	return ans_net_list(op, r);
	case OP_SVC_INSPECT:	return ans_svc_inspect(op, r);
	case OP_LOGS:		return ans_logs(op, r);
	default:		return 0;
	}
}

static int failed_answer(struct docker_op *op, long status)
{
	const struct buf *body = op->hdr_seen && (op->kind == OP_ATTACH ||
	    op->kind == OP_EXEC_START || op->kind == OP_PULL) ? &op->errbody :
	    op_body(op);
	int err = status_errno(status);

	msg_from_body(op, body->data ? body->data : "", body->len);
	/* Docker answers a refused login with a 500 and its words only. */
	if (op->kind == OP_PULL && pullprog_classify(op->msg) == PULLPROG_AUTH)
		err = -EACCES;
	/* Podman answers a name in use with a 500. */
	if (op->kind == OP_CREATE && strstr(op->msg, "is already in use"))
		err = -EBUSY;
	/* Podman answers an exec into a stopped container with a 500. */
	if (op->kind == OP_EXEC_CREATE && (strstr(op->msg, "not running") ||
	    strstr(op->msg, "state improper")))
		err = -EBUSY;
	/* Podman's way of Docker's 409 "is not running" on a kill. */
	if (op->kind == OP_KILL && strstr(op->msg, "container state improper"))
		err = 0;
	return err;
}

static void on_http_done(struct http_req *req, void *arg)
{
	struct docker_op *op = arg;
	struct docker_res r = { 0 };

	if (process(op)) {
		op_free(op);
		return;
	}
	r.status = http_req_status(req);
	if (r.status == 0) {
		r.err = http_req_errno(req);
		set_msg(op, http_req_error(req), strlen(http_req_error(req)));
	} else if (op->kind == OP_IMG_INSPECT && r.status == 404) {
		r.present = 0;
	} else if (!status_ok(op, r.status)) {
		r.err = failed_answer(op, r.status);
	} else {
		enum op_kind kind = op->kind;
		r.err = answer(op, &r);
		if (kind == OP_PING && r.err == 0)
			return;		/* went on with /version */
	}
	finish(op, &r);
}

/* The calls whose answers are decoded from a body, by name. */
static const struct {
	const char *name;
	enum op_kind kind;
} decoded[] = {
	{ "version", OP_VERSION }, { "image-inspect", OP_IMG_INSPECT },
	{ "image-list", OP_IMG_LIST }, { "info", OP_INFO },
	{ "create", OP_CREATE }, { "exec-create", OP_EXEC_CREATE },
	{ "exec-inspect", OP_EXEC_INSPECT }, { "wait", OP_WAIT },
	{ "inspect", OP_INSPECT }, { "list", OP_LIST },
	{ "network-create", OP_NET_CREATE }, { "network-list", OP_NET_LIST },
	{ "service-inspect", OP_SVC_INSPECT }, { "logs", OP_LOGS },
	{ "kill", OP_KILL }, { "pull", OP_PULL },
};

int docker_decode_answer(const char *call, long status, const char *data,
    size_t n, void (*see)(void *arg, const struct docker_res *r), void *arg)
{
	struct docker_res r = { 0 };
	struct docker_op *op;
	struct buf body;
	size_t i;

	for (i = 0; i < sizeof(decoded) / sizeof(decoded[0]); i++)
		if (strcmp(call, decoded[i].name) == 0)
			break;
	if (i == sizeof(decoded) / sizeof(decoded[0]) || status < 100 ||
	    status > 599 || (decoded[i].kind == OP_PULL && status < 300))
		return -EINVAL;
	op = xcalloc(1, sizeof(*op));
	op->d = xcalloc(1, sizeof(*op->d));
	op->kind = decoded[i].kind;
	/* What the HTTP layer would have taken (http_req_max_response). */
	body = (struct buf){ (char *)data, n, n, op->kind == OP_LIST ||
	    op->kind == OP_IMG_LIST ? DOCKER_MAX_LIST : DOCKER_MAX_ANSWER };
	op->given = &body;
	r.status = status;
	if (n > body.max)
		r.err = -E2BIG;
	else if (op->kind == OP_IMG_INSPECT && status == 404)
		r.present = 0;
	else if (!status_ok(op, status))
		r.err = failed_answer(op, status);
	else
		r.err = answer(op, &r);
	r.msg = op->msg;
	if (see)
		see(arg, &r);
	cJSON_Delete(op->json);
	free(op->arr1);
	free(op->arr2);
	free(op->d);
	free(op);
	return r.err;
}

/* ---- the client ---- */

int docker_new(struct ev_loop *loop, const char *host, struct docker **out)
{
	struct http_tls tls = { 0 };
	struct docker *d;
	int rc;

	if (host == NULL)
		host = DOCKER_DEFAULT_HOST;
	if (strncmp(host, "unix://", 7) != 0 || host[7] != '/' ||
	    strlen(host) > 7 + 107)		/* sun_path holds 108 */
		return -EINVAL;
	tls.unix_socket = host + 7;
	d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	rc = http_client_new(loop, &tls, "skiff-agent/" SKIFF_VERSION, &d->http);
	if (rc < 0) {
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void docker_free(struct docker *d)
{
	if (d == NULL)
		return;
	while (d->ops)
		op_free(d->ops);
	http_client_free(d->http);
	free(d);
}

const char *docker_api_version(const struct docker *d)
{
	return d->version[0] ? d->version : NULL;
}

const char *docker_server(const struct docker *d)
{
	return d->server[0] ? d->server : NULL;
}

uint64_t docker_calls(const struct docker *d)
{
	return d->calls;
}

static int ans_ping(struct docker_op *op, struct docker_res *r)
{
	struct buf path = BUF_INIT(64);
	int rc;

	(void)r;
	buf_puts(&path, "/version");
	op->kind = OP_VERSION;
	rc = op_send(op, "GET", &path, DOCKER_TIMEOUT_MS, NULL);
	buf_free(&path);
	return rc;
}

/* The server's version, capped at ours; refuses what we cannot speak. */
static int settle_version(struct docker_op *op, const char *api,
    const char *min)
{
	int v = api_num(api), lo = min ? api_num(min) : -1;

	if (v < 0) {
		set_msg(op, "the engine names no API version", 31);
		return -EPROTO;
	}
	if (v < api_num(DOCKER_API_MIN) || lo > api_num(DOCKER_API_MAX)) {
		snprintf(op->msg, sizeof(op->msg), "the engine speaks API %s "
		    "(at least %s); skiff speaks %s to %s", api, min ? min : "?",
		    DOCKER_API_MIN, DOCKER_API_MAX);
		return -ENOTSUP;
	}
	snprintf(op->d->version, sizeof(op->d->version), "%s",
	    v > api_num(DOCKER_API_MAX) ? DOCKER_API_MAX : api);
	return 0;
}

static int ans_version(struct docker_op *op, struct docker_res *r)
{
	int rc = parse_json(op, op_body(op));

	(void)r;
	if (rc < 0)
		return rc;
	const char *api = str_or(op->json, "ApiVersion", "");
	rc = settle_version(op, api, str_or(op->json, "MinAPIVersion", NULL));
	if (rc < 0)
		return rc;
	const cJSON *c0 = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(op->json, "Components"), 0);
	const char *name = str_or(c0, "Name", "Engine");
	snprintf(op->d->server, sizeof(op->d->server), "%s %s",
	    strcmp(name, "Engine") == 0 ? "Docker" : name,
	    str_or(op->json, "Version", "?"));
	log_info("container engine", "server=%s api=%s", logq(op->d->server),
	    op->d->version);
	return 0;
}

int docker_negotiate(struct docker *d, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	struct buf path = BUF_INIT(64);

	buf_puts(&path, "/_ping");
	return op_start(op_new(d, OP_PING, done, arg), "GET", &path,
	    DOCKER_TIMEOUT_MS, opp);
}

struct open_wait {
	int done;
	int err;
	char msg[DOCKER_MSG_MAX];
};

static void open_done(void *arg, const struct docker_res *r)
{
	struct open_wait *w = arg;

	w->done = 1;
	w->err = r->err;
	snprintf(w->msg, sizeof(w->msg), "%s", r->msg);
}

int docker_open(struct ev_loop *loop, const char *host, long timeout_ms,
    struct docker **out, char *err, size_t errlen)
{
	struct open_wait w = { 0 };
	struct docker *d = NULL;
	struct docker_op *op = NULL;
	int rc = docker_new(loop, host, &d);

	if (rc < 0) {
		snprintf(err, errlen, "docker host must be unix:///absolute/path");
		return rc;
	}
	rc = docker_negotiate(d, open_done, &w, &op);
	int64_t end = ev_now_update(loop) + timeout_ms;
	while (rc == 0 && !w.done && ev_now_update(loop) < end)
		ev_run_once(loop, 100);
	if (rc == 0 && !w.done) {
		docker_op_cancel(op);
		rc = -ETIMEDOUT;
		snprintf(w.msg, sizeof(w.msg), "no answer within %ld ms",
		    timeout_ms);
	} else if (rc == 0) {
		rc = w.err;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", host ? host : DOCKER_DEFAULT_HOST,
		    w.msg[0] ? w.msg : strerror(-rc));
		docker_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* ---- images ---- */

static int simple(struct docker *d, enum op_kind kind, const char *method,
    struct buf *path, long timeout_ms, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	return op_start(op_new(d, kind, done, arg), method, path, timeout_ms, opp);
}

static int ref_ok(const char *ref)
{
	return ref && *ref && strlen(ref) < 512;
}

int docker_image_inspect(struct docker *d, const char *ref,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(2048);

	if (!ref_ok(ref))
		return -EINVAL;
	buf_puts(&path, "/images/");
	put_escaped(&path, ref, "/:@");
	buf_puts(&path, "/json");
	return simple(d, OP_IMG_INSPECT, "GET", &path, DOCKER_TIMEOUT_MS, done,
	    arg, opp);
}

/* "host:5000/a/b:tag" -> name and tag; "a@sha256:..." -> name and the
 * digest (the engine takes a digest in "tag" too). */
static void split_ref(const char *ref, struct buf *name, struct buf *tag)
{
	const char *slash = strrchr(ref, '/');
	const char *last = slash ? slash + 1 : ref;
	const char *at = strchr(last, '@');
	const char *colon = at ? NULL : strrchr(last, ':');
	const char *cut = at ? at : colon;

	if (cut == NULL) {
		buf_puts(name, ref);
		buf_puts(tag, "latest");
		return;
	}
	buf_append(name, ref, (size_t)(cut - ref));
	buf_puts(tag, cut + 1);
}

int docker_image_pull(struct docker *d, const char *ref,
    const struct docker_auth *auth, docker_progress_fn progress,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(4096), name = BUF_INIT(1024),
	    tag = BUF_INIT(1024);
	struct docker_op *op;

	if (!ref_ok(ref))
		return -EINVAL;
	split_ref(ref, &name, &tag);
	buf_puts(&path, "/images/create?fromImage=");
	put_escaped(&path, buf_cstr(&name), "");
	buf_puts(&path, "&tag=");
	put_escaped(&path, buf_cstr(&tag), "");
	buf_free(&name);
	buf_free(&tag);
	op = stream_op(d, OP_PULL, done, arg);
	op->progress = progress;
	pullprog_init(&op->pp, pull_line, op);
	op->pp_live = 1;
	op->auth = auth;
	return op_start(op, "POST", &path, 0, opp);
}

int docker_image_list(struct docker *d, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	struct buf path = BUF_INIT(64);

	buf_puts(&path, "/images/json");
	return simple(d, OP_IMG_LIST, "GET", &path, DOCKER_TIMEOUT_MS, done, arg,
	    opp);
}

int docker_image_remove(struct docker *d, const char *ref,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(2048);

	if (!ref_ok(ref))
		return -EINVAL;
	buf_puts(&path, "/images/");
	put_escaped(&path, ref, "/:@");
	buf_puts(&path, "?force=0&noprune=0");
	return simple(d, OP_IMG_RM, "DELETE", &path, DOCKER_REMOVE_TIMEOUT_MS,
	    done, arg, opp);
}

int docker_info(struct docker *d, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	struct buf path = BUF_INIT(64);

	buf_puts(&path, "/info");
	return simple(d, OP_INFO, "GET", &path, DOCKER_TIMEOUT_MS, done, arg, opp);
}

/* ---- containers ---- */

/* Ids and names are [a-zA-Z0-9][a-zA-Z0-9_.-]*: nothing to escape, and
 * nothing else reaches a URL path. */
static int id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 256 || !unreserved((unsigned char)id[0]) ||
	    id[0] == '.' || id[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!unreserved((unsigned char)id[i]) || id[i] == '~')
			return 0;
	return 1;
}

/* "/containers/ID" + suffix */
static int ctr_path(struct buf *path, const char *id, const char *suffix)
{
	if (!id_ok(id))
		return -EINVAL;
	buf_printf(path, "/containers/%s%s", id, suffix);
	return 0;
}

static int ctr_call(struct docker *d, enum op_kind kind, const char *method,
    const char *id, const char *suffix, long timeout_ms, docker_done_fn done,
    void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);

	if (ctr_path(&path, id, suffix) < 0) {
		buf_free(&path);
		return -EINVAL;
	}
	return simple(d, kind, method, &path, timeout_ms, done, arg, opp);
}

static cJSON *str_array(char *const *v)
{
	cJSON *a = cJSON_CreateArray();

	for (; v && *v; v++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*v));
	return a;
}

static cJSON *host_config(const struct docker_create *c)
{
	cJSON *h = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(h, "Mounts");

	for (size_t i = 0; i < c->n_mounts; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "Type", "bind");
		cJSON_AddStringToObject(o, "Source", c->mounts[i].source);
		cJSON_AddStringToObject(o, "Target", c->mounts[i].target);
		cJSON_AddBoolToObject(o, "ReadOnly", c->mounts[i].read_only != 0);
		cJSON_AddItemToArray(m, o);
	}
	if (c->memory > 0) {
		cJSON_AddNumberToObject(h, "Memory", (double)c->memory);
		cJSON_AddNumberToObject(h, "MemorySwap", (double)(c->memory_swap ?
		    c->memory_swap : c->memory));
	}
	if (c->nano_cpus > 0)
		cJSON_AddNumberToObject(h, "NanoCpus", (double)c->nano_cpus);
	if (c->pids_limit > 0)
		cJSON_AddNumberToObject(h, "PidsLimit", (double)c->pids_limit);
	/* an init as pid 1: the shell gets SIGTERM on stop (a shell as pid 1
	 * ignores it) and orphans are reaped */
	cJSON_AddBoolToObject(h, "Init", 1);
	cJSON_AddBoolToObject(h, "Privileged", 0);
	cJSON_AddBoolToObject(h, "AutoRemove", 0);
	if (c->network)
		cJSON_AddStringToObject(h, "NetworkMode", c->network);
	return h;
}

static char *create_body(const struct docker_create *c)
{
	cJSON *o = cJSON_CreateObject(), *l;

	cJSON_AddStringToObject(o, "Image", c->image);
	/* The whole argv as entrypoint and an empty Cmd: the engine then uses
	 * neither the image's ENTRYPOINT nor its CMD. */
	cJSON_AddItemToObject(o, "Entrypoint", str_array(c->argv));
	cJSON_AddItemToObject(o, "Cmd", cJSON_CreateArray());
	cJSON_AddItemToObject(o, "Env", str_array(c->env));
	if (c->workdir)
		cJSON_AddStringToObject(o, "WorkingDir", c->workdir);
	if (c->user)
		cJSON_AddStringToObject(o, "User", c->user);
	l = cJSON_AddObjectToObject(o, "Labels");
	for (size_t i = 0; i < c->n_labels; i++)
		cJSON_AddStringToObject(l, c->labels[i].key, c->labels[i].value);
	cJSON_AddBoolToObject(o, "Tty", 0);
	/* A container made ahead idles on its shell reading a stdin that
	 * stays open and silent (no one attaches it). */
	cJSON_AddBoolToObject(o, "OpenStdin", c->open_stdin != 0);
	cJSON_AddBoolToObject(o, "AttachStdin", 0);
	cJSON_AddBoolToObject(o, "AttachStdout", 1);
	cJSON_AddBoolToObject(o, "AttachStderr", 1);
	cJSON_AddItemToObject(o, "HostConfig", host_config(c));
	char *s = jsonx_print(o);
	cJSON_Delete(o);
	return s;
}

int docker_container_create(struct docker *d, const struct docker_create *c,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);
	struct docker_op *op;

	if (!ref_ok(c->image) || c->argv == NULL || c->argv[0] == NULL ||
	    (c->name && !id_ok(c->name)))
		return -EINVAL;
	buf_puts(&path, "/containers/create");
	if (c->name)
		buf_printf(&path, "?name=%s", c->name);
	op = op_new(d, OP_CREATE, done, arg);
	op->body = create_body(c);
	return op_start(op, "POST", &path, DOCKER_TIMEOUT_MS, opp);
}

int docker_container_attach(struct docker *d, const char *id,
    docker_ready_fn ready, docker_output_fn output, docker_done_fn done,
    void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);
	struct docker_op *op;

	if (ctr_path(&path, id, "/attach?stream=1&stdout=1&stderr=1") < 0) {
		buf_free(&path);
		return -EINVAL;
	}
	op = stream_op(d, OP_ATTACH, done, arg);
	op->ready = ready;
	op->output = output;
	dmux_init(&op->dmux);
	/* no deadline: a step may be silent for hours */
	return op_start(op, "POST", &path, 0, opp);
}

int docker_container_start(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	return ctr_call(d, OP_START, "POST", id, "/start", DOCKER_TIMEOUT_MS,
	    done, arg, opp);
}

static int wait_call(struct docker *d, const char *id, const char *path,
    docker_ready_fn ready, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	struct docker_op *op = NULL;
	int rc = ctr_call(d, OP_WAIT, "POST", id, path, 0, done, arg, &op);

	if (rc == 0) {
		op->ready = ready;
		if (opp)
			*opp = op;
	}
	return rc;
}

int docker_container_wait(struct docker *d, const char *id,
    docker_ready_fn ready, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	return wait_call(d, id, "/wait?condition=not-running", ready, done, arg,
	    opp);
}

int docker_container_wait_next(struct docker *d, const char *id,
    docker_ready_fn ready, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	return wait_call(d, id, "/wait?condition=next-exit", ready, done, arg,
	    opp);
}

int docker_container_inspect(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	return ctr_call(d, OP_INSPECT, "GET", id, "/json", DOCKER_TIMEOUT_MS,
	    done, arg, opp);
}

int docker_container_stop(struct docker *d, const char *id, int grace_s,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	char suffix[32];

	if (grace_s < 0 || grace_s > 86400)
		return -EINVAL;
	snprintf(suffix, sizeof(suffix), "/stop?t=%d", grace_s);
	/* the engine answers once the container is down: grace, then kill */
	return ctr_call(d, OP_STOP, "POST", id, suffix,
	    DOCKER_TIMEOUT_MS + grace_s * 1000L, done, arg, opp);
}

int docker_container_kill(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	return ctr_call(d, OP_KILL, "POST", id, "/kill?signal=KILL",
	    DOCKER_TIMEOUT_MS, done, arg, opp);
}

int docker_container_remove(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	return ctr_call(d, OP_REMOVE, "DELETE", id, "?force=1&v=1",
	    DOCKER_REMOVE_TIMEOUT_MS, done, arg, opp);
}

static char *label_filter(const char *const *labels, size_t n)
{
	cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "label");

	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(labels[i]));
	char *s = jsonx_print(o);
	cJSON_Delete(o);
	return s;
}

/* GET base, with the label filter after sep ('?' or '&') when given. */
static int labelled_list(struct docker *d, enum op_kind kind,
    const char *base, char sep, const char *const *labels, size_t n_labels,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(16384);

	buf_puts(&path, base);
	if (n_labels > 0) {
		char *f = label_filter(labels, n_labels);
		int rc = buf_printf(&path, "%cfilters=", sep);
		if (rc == 0)
			rc = put_escaped(&path, f, "");
		free(f);
		if (rc < 0) {
			buf_free(&path);
			return rc;
		}
	}
	return simple(d, kind, "GET", &path, DOCKER_TIMEOUT_MS, done, arg, opp);
}

int docker_container_list(struct docker *d, const char *const *labels,
    size_t n_labels, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	return labelled_list(d, OP_LIST, "/containers/json?all=1", '&', labels,
	    n_labels, done, arg, opp);
}

/* ---- networks and service containers (job.services) ---- */

static cJSON *label_object(const struct docker_label *labels, size_t n)
{
	cJSON *l = cJSON_CreateObject();

	for (size_t i = 0; i < n; i++)
		cJSON_AddStringToObject(l, labels[i].key, labels[i].value);
	return l;
}

int docker_network_create(struct docker *d, const char *name,
    const struct docker_label *labels, size_t n_labels, docker_done_fn done,
    void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(64);
	struct docker_op *op;
	cJSON *o;

	if (!id_ok(name))
		return -EINVAL;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "Name", name);
	cJSON_AddBoolToObject(o, "CheckDuplicate", 1);
	cJSON_AddStringToObject(o, "Driver", "bridge");
	cJSON_AddBoolToObject(o, "Internal", 0);
	cJSON_AddBoolToObject(o, "Attachable", 0);
	cJSON_AddItemToObject(o, "Labels", label_object(labels, n_labels));
	buf_puts(&path, "/networks/create");
	op = op_new(d, OP_NET_CREATE, done, arg);
	op->body = jsonx_print(o);
	cJSON_Delete(o);
	return op_start(op, "POST", &path, DOCKER_TIMEOUT_MS, opp);
}

int docker_network_remove(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);

	if (!id_ok(id))
		return -EINVAL;
	buf_printf(&path, "/networks/%s", id);
	return simple(d, OP_NET_RM, "DELETE", &path, DOCKER_TIMEOUT_MS, done, arg,
	    opp);
}

int docker_network_list(struct docker *d, const char *const *labels,
    size_t n_labels, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	return labelled_list(d, OP_NET_LIST, "/networks", '?', labels, n_labels,
	    done, arg, opp);
}

static char *service_body(const struct docker_service *sv)
{
	cJSON *o = cJSON_CreateObject(), *h, *ex, *pb, *ep, *net;
	char key[16];

	cJSON_AddStringToObject(o, "Image", sv->image);
	if (sv->cmd)
		cJSON_AddItemToObject(o, "Cmd", str_array(sv->cmd));
	cJSON_AddItemToObject(o, "Env", str_array(sv->env));
	cJSON_AddStringToObject(o, "Hostname", sv->alias);
	cJSON_AddItemToObject(o, "Labels", label_object(sv->labels,
	    sv->n_labels));
	cJSON_AddBoolToObject(o, "Tty", 0);
	cJSON_AddBoolToObject(o, "OpenStdin", 0);
	cJSON_AddBoolToObject(o, "AttachStdin", 0);
	cJSON_AddBoolToObject(o, "AttachStdout", 0);
	cJSON_AddBoolToObject(o, "AttachStderr", 0);
	ex = cJSON_AddObjectToObject(o, "ExposedPorts");
	h = cJSON_AddObjectToObject(o, "HostConfig");
	pb = cJSON_AddObjectToObject(h, "PortBindings");
	for (size_t i = 0; i < sv->n_ports; i++) {
		cJSON *arr, *b;
		snprintf(key, sizeof(key), "%d/tcp", sv->ports[i]);
		cJSON_AddItemToObject(ex, key, cJSON_CreateObject());
		arr = cJSON_AddArrayToObject(pb, key);
		b = cJSON_CreateObject();
		/* Loopback only: nothing of the job listens on the machine's
		 * other addresses. "" lets the engine pick a free port. */
		cJSON_AddStringToObject(b, "HostIp", "127.0.0.1");
		cJSON_AddStringToObject(b, "HostPort", "");
		cJSON_AddItemToArray(arr, b);
	}
	cJSON_AddStringToObject(h, "NetworkMode", sv->network);
	if (sv->memory > 0) {
		cJSON_AddNumberToObject(h, "Memory", (double)sv->memory);
		cJSON_AddNumberToObject(h, "MemorySwap", (double)sv->memory);
	}
	if (sv->nano_cpus > 0)
		cJSON_AddNumberToObject(h, "NanoCpus", (double)sv->nano_cpus);
	if (sv->pids_limit > 0)
		cJSON_AddNumberToObject(h, "PidsLimit", (double)sv->pids_limit);
	cJSON_AddBoolToObject(h, "Privileged", 0);
	cJSON_AddBoolToObject(h, "AutoRemove", 0);
	cJSON_AddBoolToObject(h, "PublishAllPorts", 0);
	net = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o,
	    "NetworkingConfig"), "EndpointsConfig");
	ep = cJSON_AddObjectToObject(net, sv->network);
	cJSON_AddItemToObject(ep, "Aliases", str_array((char *const[]){
	    (char *)sv->alias, NULL }));
	char *s = jsonx_print(o);
	cJSON_Delete(o);
	return s;
}

int docker_service_create(struct docker *d, const struct docker_service *sv,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);
	struct docker_op *op;

	if (!ref_ok(sv->image) || !id_ok(sv->network) || !id_ok(sv->alias) ||
	    (sv->name && !id_ok(sv->name)))
		return -EINVAL;
	for (size_t i = 0; i < sv->n_ports; i++)
		if (sv->ports[i] < 1 || sv->ports[i] > 65535)
			return -EINVAL;
	buf_puts(&path, "/containers/create");
	if (sv->name)
		buf_printf(&path, "?name=%s", sv->name);
	op = op_new(d, OP_CREATE, done, arg);
	op->body = service_body(sv);
	return op_start(op, "POST", &path, DOCKER_TIMEOUT_MS, opp);
}

int docker_service_inspect(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	return ctr_call(d, OP_SVC_INSPECT, "GET", id, "/json", DOCKER_TIMEOUT_MS,
	    done, arg, opp);
}

int docker_container_logs(struct docker *d, const char *id, int tail,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	char suffix[80];

	if (tail < 1 || tail > 1000)
		return -EINVAL;
	snprintf(suffix, sizeof(suffix), "/logs?stdout=1&stderr=1&tail=%d", tail);
	return ctr_call(d, OP_LOGS, "GET", id, suffix, DOCKER_TIMEOUT_MS, done,
	    arg, opp);
}

/* ---- exec: a process in a running container ---- */

int docker_exec_create(struct docker *d, const char *id,
    const struct docker_exec *e, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);
	struct docker_op *op;
	cJSON *o;

	if (e->argv == NULL || e->argv[0] == NULL)
		return -EINVAL;
	if (ctr_path(&path, id, "/exec") < 0) {
		buf_free(&path);
		return -EINVAL;
	}
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "Cmd", str_array(e->argv));
	cJSON_AddItemToObject(o, "Env", str_array(e->env));
	if (e->workdir)
		cJSON_AddStringToObject(o, "WorkingDir", e->workdir);
	if (e->user)
		cJSON_AddStringToObject(o, "User", e->user);
	cJSON_AddBoolToObject(o, "Tty", 0);
	cJSON_AddBoolToObject(o, "AttachStdin", 0);
	cJSON_AddBoolToObject(o, "AttachStdout", 1);
	cJSON_AddBoolToObject(o, "AttachStderr", 1);
	op = op_new(d, OP_EXEC_CREATE, done, arg);
	op->body = jsonx_print(o);
	cJSON_Delete(o);
	return op_start(op, "POST", &path, DOCKER_TIMEOUT_MS, opp);
}

int docker_exec_start(struct docker *d, const char *exec_id,
    docker_output_fn output, docker_done_fn done, void *arg,
    struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);
	struct docker_op *op;

	if (!id_ok(exec_id)) {
		buf_free(&path);
		return -EINVAL;
	}
	buf_printf(&path, "/exec/%s/start", exec_id);
	op = stream_op(d, OP_EXEC_START, done, arg);
	op->output = output;
	op->body = xstrdup("{\"Detach\":false,\"Tty\":false}");
	dmux_init(&op->dmux);
	/* no deadline: a step may be silent for hours */
	return op_start(op, "POST", &path, 0, opp);
}

int docker_exec_inspect(struct docker *d, const char *exec_id,
    docker_done_fn done, void *arg, struct docker_op **opp)
{
	struct buf path = BUF_INIT(512);

	if (!id_ok(exec_id)) {
		buf_free(&path);
		return -EINVAL;
	}
	buf_printf(&path, "/exec/%s/json", exec_id);
	return simple(d, OP_EXEC_INSPECT, "GET", &path, DOCKER_TIMEOUT_MS, done,
	    arg, opp);
}
