#include "svcmsg.h"

#include <errno.h>
#include <string.h>

static int is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Reads a word into out (at most cap - 1 bytes) at *p. */
static int word(const char **p, const char *end, char *out, size_t cap)
{
	size_t n = 0;

	while (*p < end && is_word(**p)) {
		if (n + 1 >= cap)
			return -EINVAL;
		out[n++] = *(*p)++;
	}
	out[n] = '\0';
	return n ? 0 : -EINVAL;
}

/* Reads '...' with |' and || escapes at *p. */
static int quoted(const char **p, const char *end, char *out)
{
	size_t n = 0;

	if (*p >= end || **p != '\'')
		return -EINVAL;
	for ((*p)++; *p < end; (*p)++) {
		char c = **p;
		if (c == '\'') {
			(*p)++;
			out[n] = '\0';
			return 0;
		}
		if (c == '|') {
			if (*p + 1 >= end || ((*p)[1] != '\'' && (*p)[1] != '|'))
				return -EINVAL;
			c = *++(*p);
		}
		if (c == '\0' || n >= SVCMSG_MAX_VALUE)
			return -EINVAL;
		out[n++] = c;
	}
	return -EINVAL;
}

int svcmsg_parse(const char *line, size_t n, struct svcmsg *m)
{
	const size_t plen = sizeof(SVCMSG_PREFIX) - 1;
	const char *p = line + plen, *end = line + n;

	if (n < plen || memcmp(line, SVCMSG_PREFIX, plen) != 0)
		return 0;
	while (end > p && (end[-1] == '\r' || end[-1] == ' '))
		end--;
	if (end == p || end[-1] != ']')
		return -EINVAL;
	end--;
	memset(m, 0, sizeof(*m));
	if (word(&p, end, m->type, sizeof(m->type)) < 0)
		return -EINVAL;
	while (p < end) {
		if (*p != ' ')
			return -EINVAL;
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		if (m->nattrs == SVCMSG_MAX_ATTRS)
			return -EINVAL;
		if (word(&p, end, m->attrs[m->nattrs].key,
		    sizeof(m->attrs[0].key)) < 0 || p >= end || *p++ != '=' ||
		    quoted(&p, end, m->attrs[m->nattrs].value) < 0)
			return -EINVAL;
		m->nattrs++;
	}
	return 1;
}

const char *svcmsg_get(const struct svcmsg *m, const char *key)
{
	for (size_t i = 0; i < m->nattrs; i++)
		if (strcmp(m->attrs[i].key, key) == 0)
			return m->attrs[i].value;
	return NULL;
}
