/*
 * Input downloads (docs/agent.md, "The two halves"). The runner opens the
 * file each download goes into and hands this half the descriptor; the
 * bytes the server sends go there and nowhere else. They are untrusted
 * until the runner has checked them against the SHA-256 the signed job
 * gives, so the half that parses what the network says (TLS, HTTP) is
 * the one that fetches, and the runner speaks HTTP to nobody but dockerd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsx.h"
#include "log.h"
#include "net_int.h"
#include "xalloc.h"

struct net_fetch {
	struct net *n;
	struct net_fetch *next;
	uint64_t jh, id;
	struct net_fdsink out;
	struct http_req *req;
};

static void unlink_fetch(struct net_fetch *f)
{
	struct net_fetch **pp = &f->n->fetches;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
}

static void fetch_free(struct net_fetch *f)
{
	http_req_free(f->req);
	if (f->out.fd >= 0)
		close(f->out.fd);
	free(f);
}

static void answer(struct net_fetch *f, int ok, long status,
    const char *error)
{
	struct net *n = f->n;
	uint64_t jh = f->jh, id = f->id, got = f->out.got;

	unlink_fetch(f);
	f->req = NULL;
	fetch_free(f);
	n->runner->fetch_done(n->runner->ctx, jh, id, ok, status, got, error);
}

int net_fdsink_write(const char *data, size_t len, void *arg)
{
	struct net_fdsink *o = arg;
	int r;

	if (o->got + len > o->max) {
		o->too_big = 1;
		return -1;
	}
	if ((r = fsx_write_all(o->fd, data, len)) < 0) {
		o->write_err = -r;
		return -1;
	}
	o->got += len;
	return 0;
}

static void on_done(struct http_req *r, void *arg)
{
	struct net_fetch *f = arg;
	long st = http_req_status(r);
	char err[256];

	if (f->out.too_big)
		snprintf(err, sizeof(err), "larger than %llu bytes",
		    (unsigned long long)f->out.max);
	else if (f->out.write_err)
		snprintf(err, sizeof(err), "cannot write it: %s",
		    strerror(f->out.write_err));
	else if (st == 0)
		snprintf(err, sizeof(err), "%s", http_req_error(r));
	else
		err[0] = '\0';
	http_req_free(r);
	f->req = NULL;
	answer(f, st == 200 && !err[0], st, err[0] ? err : NULL);
}

void netfetch_start(struct net *n, uint64_t jh, uint64_t id, const char *url,
    int fd, uint64_t max)
{
	struct net_fetch *f = xcalloc(1, sizeof(*f));

	f->n = n;
	f->jh = jh;
	f->id = id;
	f->out.fd = fd;
	f->out.max = max;
	f->next = n->fetches;
	n->fetches = f;
	/* The runner checked the URL with the job; this half does not take
	 * its word for it. */
	if ((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7)) ||
	    strpbrk(url, " \t\r\n") != NULL) {
		answer(f, 0, 0, "not an http:// or https:// URL");
		return;
	}
	f->req = http_req_new(n->inputs_http, "GET", url);
	http_req_sink(f->req, net_fdsink_write, &f->out);
	/* Any size: no deadline for the whole body, a stall aborts. */
	http_req_timeout(f->req, 0, 60000);
	if (http_req_send(f->req, on_done, f) < 0) {
		http_req_free(f->req);
		f->req = NULL;
		answer(f, 0, 0, "cannot start the download");
	}
}

void netfetch_abort(struct net *n, uint64_t jh)
{
	struct net_fetch **pp = &n->fetches;

	while (*pp) {
		struct net_fetch *f = *pp;
		if (jh == 0 || f->jh == jh) {
			*pp = f->next;
			fetch_free(f);
		} else {
			pp = &f->next;
		}
	}
}
