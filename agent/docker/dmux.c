#include "dmux.h"

#include <errno.h>
#include <string.h>

void dmux_init(struct dmux *m)
{
	memset(m, 0, sizeof(*m));
}

/* The header is complete: check it and start its payload. */
static int take_header(struct dmux *m)
{
	const unsigned char *h = m->hdr;

	if (h[0] > DMUX_SYSTEMERR || h[1] || h[2] || h[3])
		return -EPROTO;
	m->stream = h[0];
	m->left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
	    (uint32_t)h[6] << 8 | (uint32_t)h[7];
	m->hlen = 0;
	m->frames++;
	return 0;
}

int dmux_feed(struct dmux *m, const char *data, size_t n, dmux_fn fn,
    void *arg)
{
	while (n > 0 && m->err == 0) {
		if (m->left == 0) {
			size_t take = sizeof(m->hdr) - m->hlen;
			if (take > n)
				take = n;
			memcpy(m->hdr + m->hlen, data, take);
			m->hlen += take;
			data += take;
			n -= take;
			if (m->hlen == sizeof(m->hdr))
				m->err = take_header(m);
			continue;
		}
		size_t chunk = n < m->left ? n : m->left;
		int rc = fn(arg, m->stream, data, chunk);
		if (rc < 0)
			m->err = rc;
		m->left -= (uint32_t)chunk;
		data += chunk;
		n -= chunk;
	}
	return m->err;
}

int dmux_finish(const struct dmux *m)
{
	if (m->err)
		return m->err;
	return m->hlen || m->left ? -EPROTO : 0;
}
