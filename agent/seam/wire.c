#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jws.h"
#include "xalloc.h"

#define CODE_MAX 64	/* a reason code */

struct rule {
	const char *name;
	uint32_t min, max;
	unsigned fd : 1;	/* carries exactly one descriptor */
	unsigned job : 1;	/* names a job (jh != 0) */
};

static const struct rule r2n[] = {
	[SW_INIT] = { "init", 2, SEAMWIRE_INIT_MAX, 1, 0 },
	[SW_SPOOL] = { "spool", 0, 0, 1, 1 },
	[SW_LOGGED] = { "logged", 8, 8, 0, 1 },
	[SW_STEP] = { "step", 4, 4, 0, 1 },
	[SW_ARTIFACT] = { "artifact", 17, 16 + SEAMWIRE_NAME_MAX, 1, 1 },
	[SW_FETCH] = { "fetch", 17, 16 + SEAMWIRE_URL_MAX, 1, 1 },
	[SW_DONE] = { "done", 16, 16 + 4 * SEAMWIRE_EXITS_MAX + CODE_MAX +
	    SEAMWIRE_REASON_MAX + 4 + 8 * SEAMWIRE_OUTPUTS_MAX +
	    SEAMWIRE_OUTPUTS_BYTES, 0, 1 },
	[SW_DRAIN] = { "drain", 0, 0, 0, 0 },
	[SW_QUIT] = { "quit", 0, 0, 0, 0 },
	[SW_CACHE_GET] = { "cache_get", 17, 16 + SEAMWIRE_KEYS_MAX, 1, 1 },
	[SW_CACHE_PUT] = { "cache_put", 17, 16 + SEAMWIRE_KEYS_MAX, 1, 1 },
};

static const struct rule n2r[] = {
	[SW_START - SW_START] = { "start", 10, 8 + SEAMWIRE_ID_MAX +
	    JWS_MAX_COMPACT, 0, 1 },
	[SW_STOP - SW_START] = { "stop", 4, 4, 0, 1 },
	[SW_ARTIFACT_DONE - SW_START] = { "artifact_done", 12,
	    12 + SEAMWIRE_ERR_MAX, 0, 1 },
	[SW_FETCH_DONE - SW_START] = { "fetch_done", 24, 24 + SEAMWIRE_ERR_MAX,
	    0, 1 },
	[SW_RELEASE - SW_START] = { "release", 0, 0, 0, 1 },
	[SW_EXIT - SW_START] = { "exit", 4, 4, 0, 0 },
	[SW_CACHE_GET_DONE - SW_START] = { "cache_get_done", 24,
	    24 + 64 + SEAMWIRE_ERR_MAX, 0, 1 },
	[SW_CACHE_PUT_DONE - SW_START] = { "cache_put_done", 12,
	    12 + SEAMWIRE_ERR_MAX, 0, 1 },
};

static const struct rule *rule_of(uint32_t type)
{
	if (type >= SW_INIT && type < SW_R2N_END)
		return &r2n[type];
	if (type >= SW_START && type < SW_N2R_END)
		return &n2r[type - SW_START];
	return NULL;
}

const char *seamwire_type_name(uint32_t type)
{
	const struct rule *r = rule_of(type);

	return r ? r->name : "unknown";
}

int seamwire_has_fd(uint32_t type)
{
	const struct rule *r = rule_of(type);

	return r ? r->fd : 0;
}

int seamwire_check_hdr(enum seamwire_from from, const struct seamwire_hdr *h,
    const char **why)
{
	const struct rule *r = rule_of(h->type);
	int ours = from == SEAMWIRE_FROM_RUNNER ? h->type < SW_R2N_END :
	    h->type >= SW_START;

	if (r == NULL || !ours) {
		*why = "unknown message type";
		return -EPROTO;
	}
	if (h->len < r->min || h->len > r->max) {
		*why = "payload size wrong for the message type";
		return -EPROTO;
	}
	if (r->job != (h->jh != 0)) {
		*why = r->job ? "no job handle" : "a job handle where none belongs";
		return -EPROTO;
	}
	return 0;
}

/* ---- reading a payload ---- */

struct rd {
	const unsigned char *p;
	size_t left;
	int bad;
};

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v = 0;

	if (r->left < 4) {
		r->bad = 1;
		return 0;
	}
	memcpy(&v, r->p, 4);
	r->p += 4;
	r->left -= 4;
	return v;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t v = 0;

	if (r->left < 8) {
		r->bad = 1;
		return 0;
	}
	memcpy(&v, r->p, 8);
	r->p += 8;
	r->left -= 8;
	return v;
}

/* n bytes as a string: no NUL inside, at most max; min 1 unless empty_ok. */
static char *rd_str(struct rd *r, size_t n, size_t max, int empty_ok)
{
	char *s;

	if (r->bad || n > r->left || n > max || (n == 0 && !empty_ok) ||
	    memchr(r->p, '\0', n) != NULL) {
		r->bad = 1;
		return NULL;
	}
	s = xmalloc(n + 1);
	memcpy(s, r->p, n);
	s[n] = '\0';
	r->p += n;
	r->left -= n;
	return s;
}

static char *rd_rest(struct rd *r, size_t max, int empty_ok)
{
	return rd_str(r, r->left, max, empty_ok);
}

void seamwire_msg_clear(struct seamwire_msg *m)
{
	free(m->s1);
	if (m->s2)
		memset(m->s2, 0, m->s2len);
	free(m->s2);
	free(m->exits);
	for (size_t i = 0; i < m->noutputs; i++) {
		free((char *)m->outputs[i].name);
		if (m->outputs[i].value)
			memset((char *)m->outputs[i].value, 0,
			    strlen(m->outputs[i].value));
		free((char *)m->outputs[i].value);
	}
	free(m->outputs);
	if (m->fd >= 0)
		close(m->fd);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

/* DONE's outputs, when any bytes are left after the reason. */
static void rd_outputs(struct rd *r, struct seamwire_msg *m)
{
	uint32_t n, nl, vl;
	size_t total = 0;

	if (r->bad || r->left == 0)
		return;
	n = rd_u32(r);
	if (r->bad || n == 0 || n > SEAMWIRE_OUTPUTS_MAX || n > r->left / 8) {
		r->bad = 1;
		return;
	}
	m->outputs = xcalloc(n, sizeof(*m->outputs));
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		nl = rd_u32(r);
		vl = rd_u32(r);
		if (r->bad || nl > SEAMWIRE_OUTPUT_NAME_MAX ||
		    vl > SEAMWIRE_OUTPUT_VALUE_MAX ||
		    (total += nl + vl) > SEAMWIRE_OUTPUTS_BYTES) {
			r->bad = 1;
			break;
		}
		m->outputs[i].name = rd_str(r, nl, SEAMWIRE_OUTPUT_NAME_MAX, 0);
		m->outputs[i].value = rd_str(r, vl, SEAMWIRE_OUTPUT_VALUE_MAX, 1);
		m->noutputs = i + 1;
	}
}

int seamwire_decode(enum seamwire_from from, const struct seamwire_hdr *h,
    const unsigned char *payload, int fd, struct seamwire_msg *m,
    const char **why)
{
	struct rd r = { payload, h->len, 0 };
	uint32_t a, b, c;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (seamwire_check_hdr(from, h, why) < 0)
		return -EPROTO;
	if (seamwire_has_fd(h->type) != (fd >= 0)) {
		*why = fd >= 0 ? "a descriptor where none belongs" :
		    "the message's descriptor is missing";
		return -EPROTO;
	}
	m->type = h->type;
	m->jh = h->jh;
	switch (h->type) {
	case SW_INIT:
		m->s1 = rd_rest(&r, SEAMWIRE_INIT_MAX, 0);
		break;
	case SW_SPOOL:
	case SW_DRAIN:
	case SW_QUIT:
	case SW_RELEASE:
		break;
	case SW_LOGGED:
		m->n = rd_u64(&r);
		break;
	case SW_STEP:
	case SW_STOP:
	case SW_EXIT:
		m->u = rd_u32(&r);
		if (h->type == SW_EXIT && m->u > 255)
			r.bad = 1;
		break;
	case SW_CACHE_GET:
	case SW_CACHE_PUT:
		m->id = rd_u64(&r);
		m->n = rd_u64(&r);
		m->s1 = rd_rest(&r, SEAMWIRE_KEYS_MAX, 0);
		break;
	case SW_CACHE_GET_DONE:
		m->id = rd_u64(&r);
		m->n = rd_u64(&r);
		m->u = rd_u32(&r);
		a = rd_u32(&r);
		if (a != 0 && a != 64)
			r.bad = 1;
		m->s1 = rd_str(&r, a, 64, 1);
		if (m->s1 && strspn(m->s1, "0123456789abcdef") != a)
			r.bad = 1;
		m->s2len = r.left;
		m->s2 = rd_rest(&r, SEAMWIRE_ERR_MAX, 1);
		break;
	case SW_CACHE_PUT_DONE:
		m->id = rd_u64(&r);
		m->u = rd_u32(&r);
		m->s1 = rd_rest(&r, SEAMWIRE_ERR_MAX, 1);
		break;
	case SW_ARTIFACT:
	case SW_FETCH:
		m->id = rd_u64(&r);
		m->n = rd_u64(&r);
		m->s1 = rd_rest(&r, h->type == SW_FETCH ? SEAMWIRE_URL_MAX :
		    SEAMWIRE_NAME_MAX, 0);
		break;
	case SW_DONE:
		m->u = rd_u32(&r);
		a = rd_u32(&r);		/* exit codes */
		b = rd_u32(&r);		/* reason code length */
		c = rd_u32(&r);		/* reason length */
		if (r.bad || a > SEAMWIRE_EXITS_MAX || a > r.left / 4) {
			r.bad = 1;
			break;
		}
		m->nexit = a;
		m->exits = xcalloc(a ? a : 1, sizeof(*m->exits));
		for (uint32_t i = 0; i < a; i++)
			m->exits[i] = (int32_t)rd_u32(&r);
		m->s1 = rd_str(&r, b, CODE_MAX, 1);
		m->s2 = rd_str(&r, c, SEAMWIRE_REASON_MAX, 1);
		m->s2len = c;
		rd_outputs(&r, m);
		break;
	case SW_START:
		m->u = rd_u32(&r);
		a = rd_u32(&r);
		m->s1 = rd_str(&r, a, SEAMWIRE_ID_MAX, 0);
		m->s2len = r.left;
		m->s2 = rd_rest(&r, JWS_MAX_COMPACT, 0);
		break;
	case SW_ARTIFACT_DONE:
		m->id = rd_u64(&r);
		m->u = rd_u32(&r);
		m->s1 = rd_rest(&r, SEAMWIRE_ERR_MAX, 1);
		break;
	case SW_FETCH_DONE:
		m->id = rd_u64(&r);
		m->n = rd_u64(&r);
		m->status = rd_u32(&r);
		m->u = rd_u32(&r);
		m->s1 = rd_rest(&r, SEAMWIRE_ERR_MAX, 1);
		break;
	default:
		r.bad = 1;
	}
	if (r.bad || r.left != 0 || ((h->type == SW_ARTIFACT_DONE ||
	    h->type == SW_FETCH_DONE || h->type == SW_CACHE_GET_DONE ||
	    h->type == SW_CACHE_PUT_DONE) && m->u > 1)) {
		seamwire_msg_clear(m);
		*why = "malformed payload";
		return -EPROTO;
	}
	m->fd = fd;
	return 0;
}

/* ---- writing ---- */

static int put_hdr(struct buf *out, uint32_t type, uint64_t jh, size_t n)
{
	struct seamwire_hdr h = { type, (uint32_t)n, jh };
	const struct rule *r = rule_of(type);

	if (r == NULL || n < r->min || n > r->max)
		return -EINVAL;
	return buf_append(out, &h, sizeof(h));
}

int seamwire_put(struct buf *out, uint32_t type, uint64_t jh,
    const void *payload, size_t n)
{
	size_t mark = out->len;
	int r;

	if ((r = put_hdr(out, type, jh, n)) < 0)
		return r;
	if (n && (r = buf_append(out, payload, n)) < 0)
		out->len = mark;
	return r;
}

int seamwire_put_u32(struct buf *out, uint32_t type, uint64_t jh, uint32_t v)
{
	return seamwire_put(out, type, jh, &v, 4);
}

int seamwire_put_u64(struct buf *out, uint32_t type, uint64_t jh, uint64_t v)
{
	return seamwire_put(out, type, jh, &v, 8);
}

/* Appends the pieces as one message, or nothing. */
static int put_parts(struct buf *out, uint32_t type, uint64_t jh,
    const void *const *p, const size_t *n, size_t parts)
{
	size_t total = 0, mark = out->len;
	int r;

	for (size_t i = 0; i < parts; i++)
		total += n[i];
	if ((r = put_hdr(out, type, jh, total)) < 0)
		return r;
	for (size_t i = 0; i < parts && r == 0; i++)
		if (n[i])
			r = buf_append(out, p[i], n[i]);
	if (r < 0)
		out->len = mark;
	return r;
}

int seamwire_put_u64s_str(struct buf *out, uint32_t type, uint64_t jh,
    uint64_t a, uint64_t b, const char *s)
{
	const void *p[] = { &a, &b, s };
	size_t n[] = { 8, 8, strlen(s) };

	return put_parts(out, type, jh, p, n, 3);
}

int seamwire_put_start(struct buf *out, uint64_t jh, uint32_t attempt,
    const char *job_id, const char *jws, size_t len)
{
	uint32_t idlen = (uint32_t)strlen(job_id);
	const void *p[] = { &attempt, &idlen, job_id, jws };
	size_t n[] = { 4, 4, idlen, len };

	return put_parts(out, SW_START, jh, p, n, 4);
}

int seamwire_put_done(struct buf *out, uint64_t jh, uint32_t result,
    const char *code, const char *reason, const int *exits, size_t nexit,
    const struct seam_output *outputs, size_t noutputs)
{
	uint32_t hdr[4];
	int32_t ex[SEAMWIRE_EXITS_MAX];
	size_t cl = code ? strlen(code) : 0, rl = reason ? strlen(reason) : 0;
	struct buf ob = BUF_INIT(4 + 8 * SEAMWIRE_OUTPUTS_MAX +
	    SEAMWIRE_OUTPUTS_BYTES);
	size_t total = 0;
	uint32_t k = 0;
	int r;

	/* Within the decoder's caps, or left out (the runner keeps to the
	 * same caps, so nothing is left out in practice). */
	if (noutputs)
		(void)buf_append(&ob, &k, 4);
	for (size_t i = 0; i < noutputs && k < SEAMWIRE_OUTPUTS_MAX; i++) {
		uint32_t l[2] = { (uint32_t)strlen(outputs[i].name),
		    (uint32_t)strlen(outputs[i].value) };
		if (l[0] == 0 || l[0] > SEAMWIRE_OUTPUT_NAME_MAX ||
		    l[1] > SEAMWIRE_OUTPUT_VALUE_MAX ||
		    total + l[0] + l[1] > SEAMWIRE_OUTPUTS_BYTES)
			continue;
		total += l[0] + l[1];
		if (buf_append(&ob, l, 8) < 0 ||
		    buf_append(&ob, outputs[i].name, l[0]) < 0 ||
		    buf_append(&ob, outputs[i].value, l[1]) < 0)
			abort();
		k++;
	}
	if (k)
		memcpy(ob.data, &k, 4);
	else
		ob.len = 0;

	if (nexit > SEAMWIRE_EXITS_MAX)
		nexit = SEAMWIRE_EXITS_MAX;
	if (cl > CODE_MAX)
		cl = CODE_MAX;
	if (rl > SEAMWIRE_REASON_MAX)
		rl = SEAMWIRE_REASON_MAX;
	for (size_t i = 0; i < nexit; i++)
		ex[i] = exits[i];
	hdr[0] = result;
	hdr[1] = (uint32_t)nexit;
	hdr[2] = (uint32_t)cl;
	hdr[3] = (uint32_t)rl;
	const void *p[] = { hdr, ex, code, reason, ob.data };
	size_t n[] = { sizeof(hdr), nexit * 4, cl, rl, ob.len };
	r = put_parts(out, SW_DONE, jh, p, n, 5);
	if (ob.data)
		memset(ob.data, 0, ob.len);
	buf_free(&ob);
	return r;
}

static int put_id_tail(struct buf *out, uint32_t type, uint64_t jh,
    uint64_t id, const uint64_t *n2, uint32_t status, int ok,
    const char *error)
{
	uint32_t okv = ok ? 1 : 0;
	size_t el = error ? strnlen(error, SEAMWIRE_ERR_MAX) : 0;
	const void *p[] = { &id, n2, &status, &okv, error };
	size_t n[] = { 8, n2 ? 8 : 0, n2 ? 4 : 0, 4, el };

	return put_parts(out, type, jh, p, n, 5);
}

int seamwire_put_artifact_done(struct buf *out, uint64_t jh, uint64_t id,
    int ok, const char *error)
{
	return put_id_tail(out, SW_ARTIFACT_DONE, jh, id, NULL, 0, ok, error);
}

int seamwire_put_fetch_done(struct buf *out, uint64_t jh, uint64_t id,
    uint64_t bytes, uint32_t status, int ok, const char *error)
{
	return put_id_tail(out, SW_FETCH_DONE, jh, id, &bytes, status, ok, error);
}

int seamwire_put_cache_get_done(struct buf *out, uint64_t jh, uint64_t id,
    uint64_t bytes, int ok, const char *sha256, const char *text)
{
	uint32_t okv = ok ? 1 : 0, shalen = sha256 ? 64 : 0;
	size_t tl = text ? strnlen(text, SEAMWIRE_ERR_MAX) : 0;
	const void *p[] = { &id, &bytes, &okv, &shalen, sha256, text };
	size_t n[] = { 8, 8, 4, 4, shalen, tl };

	if (sha256 && strnlen(sha256, 65) != 64)
		return -EINVAL;
	return put_parts(out, SW_CACHE_GET_DONE, jh, p, n, 6);
}

int seamwire_put_cache_put_done(struct buf *out, uint64_t jh, uint64_t id,
    int ok, const char *text)
{
	return put_id_tail(out, SW_CACHE_PUT_DONE, jh, id, NULL, 0, ok, text);
}
