#include "mask.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "svcmsg.h"
#include "xalloc.h"

/* Depths are 16 bits: the longest form is a fully percent-encoded value. */
#define MAX_PATTERN (3 * MASK_MAX_SECRET)
/* The full transition table covers the states that fit in this much (the
 * root, and the shallow states where ordinary text moves). */
#define DENSE_BYTES (256 * 1024)
/* In a transition: see code_of(). */
#define SLOW 0x80000000u

struct pattern {
	char *s;
	size_t len;
};

struct mask {
	struct pattern *p;
	size_t n;
	size_t bytes;		/* of derived forms and run-time values */
	size_t nruntime;
	unsigned long gen;	/* bumped by every rebuild */
	mask_line_fn line_fn;
	void *line_arg;
	mask_msg_fn out_fn;
	void *out_arg;

	/* The automaton: states in breadth-first order, so a state's
	 * children are consecutive ids and its failure state comes before
	 * it. */
	uint32_t nstates, ndense, k;
	uint16_t cls[256];	/* byte -> class; 0: in no pattern */
	uint32_t *dense;	/* [state * k + class]: next, code_of() */
	uint32_t *fail, *child0;
	uint16_t *nchild, *depth;
	uint16_t *out;		/* longest pattern ending in this state */
	uint8_t *label;		/* the byte that leads into this state */
};

struct mask *mask_new(void)
{
	struct mask *m = xcalloc(1, sizeof(struct mask));

	m->nstates = 1;
	m->k = 1;
	m->ndense = 1;
	m->dense = xcalloc(1, sizeof(uint32_t));
	m->fail = xcalloc(1, sizeof(uint32_t));
	m->child0 = xcalloc(1, sizeof(uint32_t));
	m->nchild = xcalloc(1, sizeof(uint16_t));
	m->depth = xcalloc(1, sizeof(uint16_t));
	m->out = xcalloc(1, sizeof(uint16_t));
	m->label = xcalloc(1, 1);
	return m;
}

/* ---- the automaton ---- */

static void wipe_free(void *p, size_t n)
{
	if (p) {
		sodium_memzero(p, n);
		free(p);
	}
}

/* The automaton spells the secrets out: wiped, not just freed. */
static void free_automaton(struct mask *m)
{
	wipe_free(m->dense, (size_t)m->ndense * m->k * sizeof(uint32_t));
	wipe_free(m->fail, m->nstates * sizeof(uint32_t));
	wipe_free(m->child0, m->nstates * sizeof(uint32_t));
	wipe_free(m->nchild, m->nstates * sizeof(uint16_t));
	wipe_free(m->depth, m->nstates * sizeof(uint16_t));
	wipe_free(m->out, m->nstates * sizeof(uint16_t));
	wipe_free(m->label, m->nstates);
}

static uint32_t child(const struct mask *m, uint32_t u, uint8_t c)
{
	uint32_t lo = m->child0[u], hi = lo + m->nchild[u];

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->label[mid] < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->child0[u] + m->nchild[u] && m->label[lo] == c ? lo : 0;
}

/* The trie as it is built: children in sibling lists. */
struct trie {
	uint32_t *first, *next, n;
	uint8_t *lab, *term;
	uint16_t *dep;
	uint32_t root[256];
};

static void trie_insert(struct trie *t, const unsigned char *s, size_t len)
{
	uint32_t u = 0;

	for (size_t i = 0; i < len; i++) {
		uint32_t v = u ? t->first[u] : t->root[s[i]];
		if (u)
			while (v && t->lab[v] != s[i])
				v = t->next[v];
		if (v == 0) {
			v = t->n++;
			t->lab[v] = s[i];
			t->dep[v] = (uint16_t)(t->dep[u] + 1);
			if (u) {
				t->next[v] = t->first[u];
				t->first[u] = v;
			} else {
				t->root[s[i]] = v;
			}
		}
		u = v;
	}
	t->term[u] = 1;
}

/* Renumbers the trie breadth-first into m, children sorted by byte. */
static void number_states(struct mask *m, struct trie *t, uint8_t *term)
{
	uint32_t *order = xcalloc(t->n, sizeof(uint32_t));
	uint32_t *kids = xcalloc(256, sizeof(uint32_t));
	uint32_t tail = 1;

	order[0] = 0;
	for (uint32_t q = 0; q < t->n; q++) {
		uint32_t old = order[q], nk = 0;
		if (q == 0) {
			for (int c = 0; c < 256; c++)
				if (t->root[c])
					kids[nk++] = t->root[c];
		} else {
			for (uint32_t v = t->first[old]; v; v = t->next[v]) {
				uint32_t x = nk++;
				for (; x > 0 && t->lab[kids[x - 1]] > t->lab[v]; x--)
					kids[x] = kids[x - 1];
				kids[x] = v;
			}
		}
		m->child0[q] = tail;
		m->nchild[q] = (uint16_t)nk;
		for (uint32_t i = 0; i < nk; i++, tail++) {
			order[tail] = kids[i];
			m->label[tail] = t->lab[kids[i]];
			m->depth[tail] = t->dep[kids[i]];
			term[tail] = t->term[kids[i]];
		}
	}
	free(order);
	free(kids);
}

static uint32_t code_of(const struct mask *m, uint32_t x);
static uint32_t sparse_next(const struct mask *m, uint32_t u, uint8_t c);

static void make_classes(struct mask *m)
{
	uint32_t k = 1;

	memset(m->cls, 0, sizeof(m->cls));
	for (uint32_t v = 1; v < m->nstates; v++)
		m->cls[m->label[v]] = 1;
	for (int c = 0; c < 256; c++)
		if (m->cls[c])
			m->cls[c] = (uint16_t)k++;
	m->k = k;
	m->ndense = DENSE_BYTES / (k * sizeof(uint32_t));
	if (m->ndense > m->nstates)
		m->ndense = m->nstates;
}

/*
 * In breadth-first order, so that what a state needs is done before it:
 * a child's failure state is where the parent's failure state goes on
 * the child's byte (a table row, or the links below the table), and a
 * table row is its failure state's row but for its own children.
 */
static void link_states(struct mask *m, const uint8_t *term)
{
	const uint32_t k = m->k;

	m->dense = xcalloc((size_t)m->ndense * k, sizeof(uint32_t));
	for (uint32_t u = 0; u < m->nstates; u++) {
		uint32_t end = m->child0[u] + m->nchild[u];
		for (uint32_t x = m->child0[u]; x < end; x++) {
			uint32_t f = 0;
			if (u) {
				f = sparse_next(m, m->fail[u], m->label[x]);
				f = f & SLOW ? f & ~SLOW : f / k;
			}
			m->fail[x] = f;
			m->out[x] = term[x] ? m->depth[x] : m->out[f];
		}
		if (u >= m->ndense)
			continue;
		uint32_t *row = m->dense + (size_t)u * k;
		if (u)
			memcpy(row, m->dense + (size_t)m->fail[u] * k,
			    k * sizeof(uint32_t));
		for (uint32_t x = m->child0[u]; x < end; x++)
			row[m->cls[m->label[x]]] = code_of(m, x);
	}
}

static void rebuild(struct mask *m)
{
	size_t total = 1;
	struct trie t;

	for (size_t i = 0; i < m->n; i++)
		total += m->p[i].len;
	memset(&t, 0, sizeof(t));
	t.first = xcalloc(total, sizeof(uint32_t));
	t.next = xcalloc(total, sizeof(uint32_t));
	t.lab = xcalloc(total, 1);
	t.term = xcalloc(total, 1);
	t.dep = xcalloc(total, sizeof(uint16_t));
	t.n = 1;
	for (size_t i = 0; i < m->n; i++)
		trie_insert(&t, (const unsigned char *)m->p[i].s, m->p[i].len);

	free_automaton(m);
	m->nstates = t.n;
	m->fail = xcalloc(t.n, sizeof(uint32_t));
	m->child0 = xcalloc(t.n, sizeof(uint32_t));
	m->nchild = xcalloc(t.n, sizeof(uint16_t));
	m->depth = xcalloc(t.n, sizeof(uint16_t));
	m->out = xcalloc(t.n, sizeof(uint16_t));
	m->label = xcalloc(t.n, 1);
	uint8_t *term = xcalloc(t.n, 1);
	number_states(m, &t, term);
	make_classes(m);
	link_states(m, term);
	m->gen++;

	free(term);
	wipe_free(t.lab, total);
	free(t.first);
	free(t.next);
	free(t.term);
	free(t.dep);
}

/* ---- patterns and the forms of a value ---- */

static int have_pattern(const struct mask *m, const char *s, size_t len)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->p[i].len == len && memcmp(m->p[i].s, s, len) == 0)
			return 1;
	return 0;
}

/* A sealed value is always masked; a form is only when long enough to
 * mean something; forms and run-time values count in the budget. */
enum { PAT_SEALED, PAT_FORM, PAT_RUNTIME };

static int add_pattern(struct mask *m, const char *s, size_t len, int kind)
{
	if (len == 0 || len > MAX_PATTERN ||
	    (kind == PAT_FORM && len < MASK_MIN_FORM) || have_pattern(m, s, len))
		return 0;
	if (kind != PAT_SEALED) {
		if (m->bytes + len > MASK_MAX_BYTES)
			return -E2BIG;
		m->bytes += len;
	}
	m->p = xreallocarray(m->p, m->n + 1, sizeof(*m->p));
	m->p[m->n].s = xmemdup(s, len);
	m->p[m->n].len = len;
	m->n++;
	return 0;
}

static int add_buf(struct mask *m, struct buf *b)
{
	int r = add_pattern(m, b->data ? b->data : "", b->len, PAT_FORM);

	if (b->data)
		sodium_memzero(b->data, b->len);
	buf_reset(b);
	return r;
}

static int add_lines(struct mask *m, const char *v, size_t n)
{
	int r = 0;

	if (!memchr(v, '\n', n))
		return 0;
	for (const char *p = v, *end = v + n; p < end; ) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t l = len && p[len - 1] == '\r' ? len - 1 : len;
		if (add_pattern(m, p, l, PAT_FORM) < 0)
			r = -E2BIG;
		p += len + 1;
	}
	return r;
}

/*
 * Inside a longer base64 text the value starts at byte offset 0, 1 or 2
 * of a 3-byte group. For each, the characters that depend on the value's
 * bits alone (the edges mix in its neighbours'), and the same run with
 * the last character the encoder makes when the value ends the input (its
 * missing bits are zero), as in base64("ci-bot:" + token).
 */
static int add_base64(struct mask *m, const char *v, size_t n, int variant)
{
	size_t tlen = n + 4;
	size_t elen = sodium_base64_ENCODED_LEN(tlen, variant);
	unsigned char *tmp = xmalloc(tlen);
	char *enc = xmalloc(elen);
	int r = 0;

	for (size_t a = 0; a < 3; a++) {
		size_t len = a + n, padded = (len + 2) / 3 * 3;
		size_t lo = (8 * a + 5) / 6, hi = 8 * len / 6,
		    hi_end = (8 * len + 5) / 6;
		memset(tmp, 0, tlen);
		memcpy(tmp + a, v, n);
		sodium_bin2base64(enc, elen, tmp, padded, variant);
		if ((hi > lo && add_pattern(m, enc + lo, hi - lo, PAT_FORM) < 0) ||
		    (hi_end > lo &&
		    add_pattern(m, enc + lo, hi_end - lo, PAT_FORM) < 0))
			r = -E2BIG;
	}
	sodium_memzero(tmp, tlen);
	sodium_memzero(enc, elen);
	free(tmp);
	free(enc);
	return r;
}

static int add_hex(struct mask *m, const char *v, size_t n, struct buf *b)
{
	static const char up[] = "0123456789ABCDEF", low[] = "0123456789abcdef";
	int r = 0;

	for (int pass = 0; pass < 2; pass++) {
		const char *digits = pass ? up : low;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)v[i];
			buf_putc(b, digits[c >> 4]);
			buf_putc(b, digits[c & 15]);
		}
		if (add_buf(m, b) < 0)
			r = -E2BIG;
	}
	return r;
}

enum { PCT_ALL, PCT_RFC3986, PCT_URICOMPONENT };

/* RFC 3986 unreserved characters; encodeURIComponent also keeps !*'(). */
static int pct_keeps(unsigned char c, int set)
{
	if (set == PCT_ALL)
		return 0;
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~')
		return 1;
	return set == PCT_URICOMPONENT && c && strchr("!*'()", c) != NULL;
}

/*
 * Every byte as %XX and %xx (what a hex-minded encoder does), only what
 * RFC 3986 reserves (curl --data-urlencode, Python's quote), only what
 * encodeURIComponent encodes, and form encoding (a space as '+').
 */
static int add_percent(struct mask *m, const char *v, size_t n, struct buf *b)
{
	static const struct { int set, upper, plus; } forms[] = {
		{ PCT_ALL, 1, 0 }, { PCT_ALL, 0, 0 }, { PCT_RFC3986, 1, 0 },
		{ PCT_RFC3986, 0, 0 }, { PCT_URICOMPONENT, 1, 0 },
		{ PCT_RFC3986, 1, 1 },
	};
	int r = 0;

	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		const char *digits = forms[f].upper ? "0123456789ABCDEF" :
		    "0123456789abcdef";
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)v[i];
			if (forms[f].plus && c == ' ') {
				buf_putc(b, '+');
			} else if (pct_keeps(c, forms[f].set)) {
				buf_putc(b, (char)c);
			} else {
				buf_putc(b, '%');
				buf_putc(b, digits[c >> 4]);
				buf_putc(b, digits[c & 15]);
			}
		}
		if (add_buf(m, b) < 0)
			r = -E2BIG;
	}
	return r;
}

enum { JSON_ASCII = 1, JSON_HTML = 2, JSON_SLASH = 4 };

/* The code point of a valid UTF-8 sequence at v, or -1. */
static long utf8_at(const unsigned char *v, size_t n, size_t *len)
{
	static const long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t l = v[0] >= 0xf0 && v[0] < 0xf5 ? 4 : v[0] >= 0xe0 ? 3 :
	    v[0] >= 0xc2 && v[0] < 0xe0 ? 2 : 0;
	long cp;

	if (l == 0 || l > n || (v[0] >= 0xf5))
		return -1;
	cp = v[0] & (0x7f >> l);
	for (size_t i = 1; i < l; i++) {
		if ((v[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (v[i] & 0x3f);
	}
	if (cp < min[l] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*len = l;
	return cp;
}

static void json_escape(struct buf *b, const char *v, size_t n, int flags)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" :
		    c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" :
		    c == '\r' ? "\\r" : c == '\t' ? "\\t" :
		    c == '/' && (flags & JSON_SLASH) ? "\\/" : NULL;
		size_t l;
		long cp;
		if (esc) {
			buf_puts(b, esc);
		} else if (c < 0x20 ||
		    ((flags & JSON_HTML) && (c == '<' || c == '>' || c == '&'))) {
			buf_printf(b, "\\u%04x", c);
		} else if (c >= 0x80 && (flags & JSON_ASCII) &&
		    (cp = utf8_at((const unsigned char *)v + i, n - i, &l)) >= 0) {
			if (cp >= 0x10000)
				buf_printf(b, "\\u%04lx\\u%04lx",
				    0xd800 + ((cp - 0x10000) >> 10),
				    0xdc00 + ((cp - 0x10000) & 0x3ff));
			else
				buf_printf(b, "\\u%04lx", cp);
			i += l - 1;
		} else {
			buf_putc(b, (char)c);
		}
	}
}

/* As JSON encoders write it: plain, ASCII-only (Python's default),
 * HTML-safe (Go's default), with "\/" (PHP's default). */
static int add_json(struct mask *m, const char *v, size_t n, struct buf *b)
{
	static const int variants[] = { 0, JSON_ASCII, JSON_HTML, JSON_SLASH };
	int r = 0;

	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		json_escape(b, v, n, variants[i]);
		if (add_buf(m, b) < 0)
			r = -E2BIG;
	}
	return r;
}

/* In the order they are likeliest to matter, should the budget run out. */
static int add_forms(struct mask *m, const char *v, size_t n)
{
	struct buf b = BUF_INIT(MAX_PATTERN * 2 + 16);
	int r = 0;

	if (add_lines(m, v, n) < 0)
		r = -E2BIG;
	if (add_base64(m, v, n, sodium_base64_VARIANT_ORIGINAL) < 0 ||
	    add_base64(m, v, n, sodium_base64_VARIANT_URLSAFE) < 0)
		r = -E2BIG;
	if (add_hex(m, v, n, &b) < 0 || add_percent(m, v, n, &b) < 0 ||
	    add_json(m, v, n, &b) < 0)
		r = -E2BIG;
	if (b.data)
		sodium_memzero(b.data, b.cap);
	buf_free(&b);
	return r;
}

static int add_sealed(struct mask *m, const char *v, size_t n)
{
	if (n == 0 || n > MASK_MAX_SECRET)
		return 0;
	add_pattern(m, v, n, PAT_SEALED);
	return add_forms(m, v, n);
}

int mask_add(struct mask *m, const char *v, size_t n)
{
	int r = add_sealed(m, v, n);

	rebuild(m);
	return r;
}

int mask_add_values(struct mask *m, const char *const *v, const size_t *len,
    size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n; i++)
		if (add_sealed(m, v[i], len[i]) < 0)
			r = -E2BIG;
	rebuild(m);
	return r;
}

int mask_add_runtime(struct mask *m, const char *v, size_t n)
{
	if (n < MASK_MIN_RUNTIME || n > MASK_MAX_SECRET)
		return -EINVAL;
	if (m->nruntime >= MASK_MAX_RUNTIME)
		return -E2BIG;
	if (have_pattern(m, v, n))
		return 0;
	if (add_pattern(m, v, n, PAT_RUNTIME) < 0)
		return -ENOSPC;
	m->nruntime++;
	(void)add_forms(m, v, n);	/* the value itself is in: enough */
	rebuild(m);
	return 0;
}

void mask_on_add_line(struct mask *m, mask_line_fn fn, void *arg)
{
	m->line_fn = fn;
	m->line_arg = arg;
}

void mask_on_output_line(struct mask *m, mask_msg_fn fn, void *arg)
{
	m->out_fn = fn;
	m->out_arg = arg;
}

size_t mask_count(const struct mask *m)
{
	return m ? m->n : 0;
}

void mask_free(struct mask *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		wipe_free(m->p[i].s, m->p[i].len);
	free(m->p);
	free_automaton(m);
	free(m);
}

/* ---- streams ---- */

void mask_stream_init(struct mask_stream *s, const struct mask *m)
{
	memset(s, 0, sizeof(*s));
	s->m = m;
	s->gen = m ? m->gen : 0;
	s->bol = 1;
	buf_init(&s->hold, MAX_PATTERN + 16);
	buf_init(&s->line, MASK_LINE_MAX + 1);
	buf_init(&s->work, (size_t)1 << 30);
}

void mask_stream_no_add(struct mask_stream *s)
{
	s->nocap = 1;
}

size_t mask_held(const struct mask_stream *s)
{
	return s->hold.len + s->npend + s->line.len;
}

static void wipe_buf(struct buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->cap);
	buf_free(b);
}

void mask_stream_free(struct mask_stream *s)
{
	wipe_buf(&s->hold);
	wipe_buf(&s->line);
	wipe_buf(&s->work);
	free(s->span);
	s->span = NULL;
	sodium_memzero(s->pend, sizeof(s->pend));
}

/* One piece being fed: stream offsets below off are in s->hold. */
struct feed {
	struct mask_stream *s;
	const char *d;
	size_t n;
	uint64_t off;
	mask_out_fn out;
	void *arg;
};

static void out_bytes(struct feed *f, uint64_t a, uint64_t b)
{
	struct mask_stream *s = f->s;

	if (a < f->off) {
		uint64_t e = b < f->off ? b : f->off;
		f->out(f->arg, s->hold.data + (a - s->hold_off), (size_t)(e - a));
		a = e;
	}
	if (a < b)
		f->out(f->arg, f->d + (a - f->off), (size_t)(b - a));
}

static void pop_front(struct mask_stream *s)
{
	s->star = 0;
	if (++s->sp0 == s->nspan)
		s->sp0 = s->nspan = 0;
}

/* Everything before d is decided: out it goes, each span as one "***". */
static void emit_to(struct feed *f, uint64_t d)
{
	struct mask_stream *s = f->s;

	while (s->done < d) {
		struct mask_span *sp = s->nspan > s->sp0 ? &s->span[s->sp0] :
		    NULL;
		if (sp && sp->start <= s->done) {
			if (!s->star)
				f->out(f->arg, MASK_REPLACEMENT,
				    sizeof(MASK_REPLACEMENT) - 1);
			s->star = 1;
			s->done = sp->end < d ? sp->end : d;
			if (sp->end <= d)
				pop_front(s);
		} else {
			uint64_t e = sp && sp->start < d ? sp->start : d;
			out_bytes(f, s->done, e);
			s->done = e;
		}
	}
}

/* An occurrence [a, b): merged with those it overlaps. */
static void add_span(struct mask_stream *s, uint64_t a, uint64_t b)
{
	while (s->nspan > s->sp0 && s->span[s->nspan - 1].end > a) {
		struct mask_span *t = &s->span[--s->nspan];
		if (t->start < a)
			a = t->start;
		if (t->end > b)
			b = t->end;
	}
	if (s->nspan == s->capspan) {
		if (s->sp0) {
			memmove(s->span, s->span + s->sp0,
			    (s->nspan - s->sp0) * sizeof(*s->span));
			s->nspan -= s->sp0;
			s->sp0 = 0;
		} else {
			s->capspan = s->capspan ? s->capspan * 2 : 16;
			s->span = xreallocarray(s->span, s->capspan,
			    sizeof(*s->span));
		}
	}
	s->span[s->nspan].start = a;
	s->span[s->nspan].end = b;
	s->nspan++;
}

/* What the hot loop keeps for a state: a plain state of the table as its
 * row offset; a state below the table, or one that ends an occurrence,
 * as SLOW | its id. */
static uint32_t code_of(const struct mask *m, uint32_t x)
{
	return x < m->ndense && !m->out[x] ? x * m->k : SLOW | x;
}

static uint32_t sparse_next(const struct mask *m, uint32_t u, uint8_t c)
{
	if (u < m->ndense)
		return m->dense[(size_t)u * m->k + m->cls[c]];
	for (;;) {
		uint32_t x = child(m, u, c);
		if (x)
			return code_of(m, x);
		u = m->fail[u];
		if (u < m->ndense)
			return m->dense[(size_t)u * m->k + m->cls[c]];
	}
}

/* Out of the hot loop: state x (coded v) was reached before f->d[*xp];
 * handles an occurrence, then steps below the table until back in it or
 * at j. Returns the row offset to go on with, or SLOW | state at j. */
static __attribute__((noinline)) uint32_t slow(struct feed *f, uint32_t v,
    size_t *xp, size_t j)
{
	struct mask_stream *s = f->s;
	const struct mask *m = s->m;
	size_t x = *xp;

	for (;;) {
		uint32_t u = v & ~SLOW;
		if (m->out[u]) {
			s->pos = f->off + x;
			emit_to(f, s->pos - m->depth[u]);
			add_span(s, s->pos - m->out[u], s->pos);
		}
		if (u < m->ndense || x == j) {
			*xp = x;
			return u < m->ndense ? u * m->k : v;
		}
		v = sparse_next(m, u, (uint8_t)f->d[x++]);
		if (!(v & SLOW)) {
			*xp = x;
			return v;
		}
	}
}

/* The automaton over f->d[i..j): the hot loop. */
static void run(struct feed *f, size_t i, size_t j)
{
	struct mask_stream *s = f->s;
	const struct mask *m = s->m;
	const unsigned char *d = (const unsigned char *)f->d;
	const uint32_t *dense = m->dense;
	const uint16_t *cls = m->cls;
	size_t x = i;
	uint32_t u = s->state * m->k;

	/* A state that ended an occurrence was dealt with when reached. */
	if (s->state >= m->ndense || m->out[s->state])
		u = SLOW | s->state;
	if ((u & SLOW) && x < j) {
		u = sparse_next(m, u & ~SLOW, d[x++]);
		if (u & SLOW)
			u = slow(f, u, &x, j);
	}
	while (x < j) {
		uint32_t v;
		if (u == 0) {
			/* At the root the next state does not depend on the
			 * last: the loads overlap. */
			while ((v = dense[cls[d[x]]]) == 0)
				if (++x == j)
					goto out;
			x++;
		} else {
			v = dense[u + cls[d[x++]]];
		}
		u = v & SLOW ? slow(f, v, &x, j) : v;
	}
out:
	s->state = u & SLOW ? u & ~SLOW : u / m->k;
	s->pos = f->off + j;
}

/* End of a piece: what is decided goes out, the rest is kept in hold. */
static void settle(struct feed *f, int final)
{
	struct mask_stream *s = f->s;

	emit_to(f, final ? s->pos : s->pos - s->m->depth[s->state]);
	if (s->done > s->hold_off)
		buf_consume(&s->hold, (size_t)(s->done < f->off ? s->done -
		    s->hold_off : s->hold.len));
	if (s->pos > f->off) {
		uint64_t a = s->done > f->off ? s->done : f->off;
		if (buf_append(&s->hold, f->d + (a - f->off),
		    (size_t)(s->pos - a)) < 0)
			abort();	/* at most the longest pattern: a bug */
	}
	s->hold_off = s->done;
	if (final) {
		s->state = 0;
		s->bol = 1;
	}
}

/* The mask changed under the stream: what it holds is scanned again. */
static void resync(struct mask_stream *s, mask_out_fn out, void *arg)
{
	if (s->nspan > s->sp0 && s->star) {
		s->span[0] = s->span[s->sp0];
		s->sp0 = 0;
		s->nspan = 1;
	} else {
		s->sp0 = s->nspan = 0;
		s->star = 0;
	}
	s->state = 0;
	s->gen = s->m->gen;
	if (s->hold.len == 0)
		return;
	buf_reset(&s->work);
	if (buf_append(&s->work, s->hold.data, s->hold.len) < 0)
		abort();
	sodium_memzero(s->hold.data, s->hold.len);
	buf_reset(&s->hold);
	struct feed f = { s, s->work.data, s->work.len, s->done, out, arg };
	s->pos = s->hold_off = s->done;
	run(&f, 0, f.n);
	settle(&f, 0);
}

static int capture_on(const struct mask_stream *s)
{
	return !s->nocap && s->m->line_fn;
}

/* What a held line is (s->capturing). */
enum { CAP_NONE, CAP_ADD, CAP_SECRET, CAP_OUTPUT };
static const char *const cap_prefix[] = { NULL, MASK_ADD_PREFIX,
    MASK_SECRET_PREFIX, MASK_OUTPUT_PREFIX };
static const char *const cap_type[] = { NULL, "add-mask", "set-secret",
    "set-output" };

/* A set-output line goes to the log masked as a whole (it is one line, so
 * nothing before it can begin an occurrence in it). */
static void emit_output_line(struct feed *f)
{
	struct mask_stream *s = f->s, t;

	if (s->cap_over) {
		f->out(f->arg, MASK_OUTPUT_OVER, sizeof(MASK_OUTPUT_OVER) - 1);
		return;
	}
	mask_stream_init(&t, s->m);
	mask_stream_no_add(&t);
	mask_feed(&t, s->line.data ? s->line.data : "", s->line.len, 1, f->out,
	    f->arg);
	mask_stream_free(&t);
}

/* The held line is over: an add-mask (set-secret) value goes to the
 * owner and the log gets MASK_ADD_SHOWN (MASK_SECRET_SHOWN); a set-output
 * message goes to the owner and the log gets the line masked. */
static void end_capture(struct feed *f, int newline)
{
	struct mask_stream *s = f->s;
	const struct mask *m = s->m;
	struct svcmsg msg;
	const char *v = NULL;
	int kind = s->capturing, parsed;

	s->capturing = CAP_NONE;
	parsed = !s->cap_over && svcmsg_parse(buf_cstr(&s->line), s->line.len,
	    &msg) == 1 && strcmp(msg.type, cap_type[kind]) == 0;
	if (kind == CAP_OUTPUT) {
		m->out_fn(m->out_arg, parsed ? &msg : NULL);
		emit_output_line(f);
		if (newline)
			f->out(f->arg, "\n", 1);
	} else {
		if (parsed)
			v = svcmsg_get(&msg, "value");
		m->line_fn(m->line_arg, v, v ? strlen(v) : 0);
		if (kind == CAP_SECRET)
			f->out(f->arg, MASK_SECRET_SHOWN "\n",
			    sizeof(MASK_SECRET_SHOWN) - !newline);
		else
			f->out(f->arg, MASK_ADD_SHOWN "\n",
			    sizeof(MASK_ADD_SHOWN) - !newline);
	}
	sodium_memzero(&msg, sizeof(msg));
	sodium_memzero(s->line.data, s->line.len);
	buf_reset(&s->line);
	s->cap_over = 0;
	/* Nothing is held: the stream can start afresh on the new mask. */
	s->state = 0;
	s->gen = m->gen;
	s->bol = newline;
}

static size_t capture(struct feed *f, size_t i, int final)
{
	struct mask_stream *s = f->s;
	const char *nl = memchr(f->d + i, '\n', f->n - i);
	size_t take = nl ? (size_t)(nl - (f->d + i)) : f->n - i;

	if (!s->cap_over && buf_append(&s->line, f->d + i, take) < 0)
		s->cap_over = 1;
	s->pos += take + (nl != NULL);
	s->done = s->pos;
	if (nl || final)
		end_capture(f, nl != NULL);
	return i + take + (nl != NULL);
}

/* At a line start: the kind of held line that begins (CAP_*), 0 none,
 * -1 the piece ends before that is known. */
static int starts_capture(const struct feed *f, size_t i, int final)
{
	size_t avail = f->n - i;
	int partial = 0;

	for (int k = CAP_ADD; k <= CAP_OUTPUT; k++) {
		size_t plen = strlen(cap_prefix[k]);
		size_t c = avail < plen ? avail : plen;

		if (k == CAP_OUTPUT && f->s->m->out_fn == NULL)
			continue;
		if (memcmp(f->d + i, cap_prefix[k], c) != 0)
			continue;
		if (c == plen)
			return k;
		partial = 1;
	}
	return partial && !final ? -1 : 0;
}

static void scan(struct feed *f, int final)
{
	struct mask_stream *s = f->s;
	size_t i = 0;

	while (i < f->n) {
		if (s->capturing) {
			i = capture(f, i, final);
			continue;
		}
		if (!capture_on(s)) {
			run(f, i, f->n);
			s->bol = f->d[f->n - 1] == '\n';
			break;
		}
		if (s->bol && f->d[i] == '#') {
			int r = starts_capture(f, i, final);
			if (r < 0) {
				s->npend = f->n - i;
				memcpy(s->pend, f->d + i, s->npend);
				f->n = i;
				break;
			}
			if (r > 0) {
				/* The line is never shown: what came before is
				 * decided now, the automaton restarts after it. */
				emit_to(f, s->pos);
				s->sp0 = s->nspan = 0;
				s->star = 0;
				s->state = 0;
				s->capturing = r;
				continue;
			}
		}
		const char *nl = memchr(f->d + i, '\n', f->n - i);
		size_t j = nl ? (size_t)(nl - f->d) + 1 : f->n;
		run(f, i, j);
		s->bol = nl != NULL;
		i = j;
	}
	if (final && s->capturing)
		end_capture(f, 0);
}

void mask_feed(struct mask_stream *s, const char *data, size_t n, int final,
    mask_out_fn out, void *arg)
{
	const struct mask *m = s->m;

	if (m == NULL || (m->n == 0 && (s->nocap || !m->line_fn))) {
		if (n)
			out(arg, data, n);
		return;
	}
	if (s->gen != m->gen)
		resync(s, out, arg);
	if (s->npend) {
		buf_reset(&s->work);
		if (buf_append(&s->work, s->pend, s->npend) < 0 ||
		    buf_append(&s->work, data, n) < 0)
			abort();
		s->npend = 0;
		data = s->work.data;
		n = s->work.len;
	}
	struct feed f = { s, data, n, s->pos, out, arg };
	s->hold_off = s->done;
	scan(&f, final);
	settle(&f, final);
}

static void to_buf(void *arg, const char *d, size_t n)
{
	buf_append(arg, d, n);
}

char *mask_string(const struct mask *m, const char *str)
{
	struct mask_stream s;
	struct buf b = BUF_INIT((size_t)1 << 30);

	mask_stream_init(&s, m);
	mask_stream_no_add(&s);
	mask_feed(&s, str, strlen(str), 1, to_buf, &b);
	mask_stream_free(&s);
	return buf_steal(&b, NULL);
}
