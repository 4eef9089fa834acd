#include "outputs.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "xalloc.h"

struct output {
	char *name;
	char *value;
	size_t vlen;
};

struct outputs {
	struct output *v;
	size_t n;
	size_t total;	/* bytes of names and values */
};

struct outputs *outputs_new(void)
{
	return xcalloc(1, sizeof(struct outputs));
}

void outputs_free(struct outputs *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].name);
		/* A value may be a secret a step obtained. */
		sodium_memzero(o->v[i].value, o->v[i].vlen);
		free(o->v[i].value);
	}
	free(o->v);
	free(o);
}

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > OUTPUTS_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

static int value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return jsonx_utf8_valid(s, n, NULL);
}

int outputs_set(struct outputs *o, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	size_t old = 0, i;

	if (!name_ok(name, nlen))
		return -EINVAL;
	if (vlen > OUTPUTS_MAX_VALUE)
		return -EMSGSIZE;
	if (!value_ok(value, vlen))
		return -EILSEQ;
	for (i = 0; i < o->n; i++)
		if (strlen(o->v[i].name) == nlen &&
		    memcmp(o->v[i].name, name, nlen) == 0)
			break;
	if (i < o->n)
		old = nlen + o->v[i].vlen;
	else if (o->n >= OUTPUTS_MAX_COUNT)
		return -E2BIG;
	if (o->total - old + nlen + vlen > OUTPUTS_MAX_TOTAL)
		return -E2BIG;
	if (i == o->n) {
		o->v = xreallocarray(o->v, o->n + 1, sizeof(*o->v));
		o->v[i].name = xstrndup(name, nlen);
		o->v[i].value = NULL;
		o->v[i].vlen = 0;
		o->n++;
	} else {
		sodium_memzero(o->v[i].value, o->v[i].vlen);
		free(o->v[i].value);
	}
	o->v[i].value = xstrndup(value, vlen);
	o->v[i].vlen = vlen;
	o->total = o->total - old + nlen + vlen;
	return 0;
}

const char *outputs_strerror(int err)
{
	switch (err) {
	case -EINVAL:
		return "not a valid name ([A-Za-z_][A-Za-z0-9_]*, at most 64 "
		    "bytes)";
	case -EILSEQ:
		return "the value is not UTF-8 or holds a control character";
	case -EMSGSIZE:
		return "the value is over 4096 bytes";
	case -E2BIG:
		return "the job's outputs are at their cap (64 outputs, 16 KiB "
		    "in all)";
	default:
		return "refused";
	}
}

size_t outputs_parse(struct outputs *o, const char *data, size_t n,
    outputs_note_fn note, void *arg)
{
	size_t set = 0, lineno = 0;
	const char *p = data, *end = data + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *eq;
		int r;

		lineno++;
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p) {
			p = nl ? nl + 1 : end;
			continue;
		}
		eq = memchr(p, '=', (size_t)(le - p));
		if (eq == NULL) {
			if (note)
				note(arg, lineno, "no '=' (expected NAME=VALUE)");
		} else if ((r = outputs_set(o, p, (size_t)(eq - p), eq + 1,
		    (size_t)(le - eq - 1))) < 0) {
			if (note)
				note(arg, lineno, outputs_strerror(r));
		} else {
			set++;
		}
		p = nl ? nl + 1 : end;
	}
	return set;
}

size_t outputs_count(const struct outputs *o)
{
	return o ? o->n : 0;
}

const char *outputs_name(const struct outputs *o, size_t i)
{
	return i < o->n ? o->v[i].name : NULL;
}

const char *outputs_value(const struct outputs *o, size_t i)
{
	return i < o->n ? o->v[i].value : NULL;
}
