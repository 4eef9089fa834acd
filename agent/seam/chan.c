#include "chan.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev.h"
#include "xalloc.h"

#define LOGGED_SLOTS 64

struct pendfd {
	uint64_t at;	/* absolute offset of its message's first byte */
	int fd;
};

struct seamchan {
	struct ev_loop *loop;
	int fd;
	struct ev_io *w;
	enum seamwire_from peer;
	seamchan_msg_fn msg;
	seamchan_bad_fn bad;
	seamchan_end_fn end;
	void *arg;
	int ended;
	int in_cb;
	int free_later;
	/* in */
	unsigned char *in;
	size_t in_len;
	int infds[SEAMCHAN_FDS_MAX];
	size_t n_infds;
	/* out: out.data[0] is absolute offset base */
	struct buf out;
	uint64_t base;
	struct pendfd outfds[SEAMCHAN_FDS_MAX];
	size_t n_outfds;
	struct { uint64_t jh, at; } logged[LOGGED_SLOTS];
	size_t n_logged;
};

static void update_watch(struct seamchan *c);

static void end(struct seamchan *c, int err, const char *why)
{
	if (c->ended)
		return;
	c->ended = 1;
	ev_io_stop(c->w);
	c->w = NULL;
	if (c->end)
		c->end(c->arg, err, why);
}

/* ---- receiving ---- */

static int take_fds(struct seamchan *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(cm);
		for (size_t i = 0; i < n; i++) {
			if (c->n_infds == SEAMCHAN_FDS_MAX) {
				for (; i < n; i++)
					close(fds[i]);
				return -EPROTO;
			}
			c->infds[c->n_infds++] = fds[i];
		}
	}
	return 0;
}

static int pop_fd(struct seamchan *c)
{
	int fd;

	if (c->n_infds == 0)
		return -1;
	fd = c->infds[0];
	memmove(c->infds, c->infds + 1, --c->n_infds * sizeof(int));
	return fd;
}

/* Hands every whole message in the buffer to the handler. */
static void parse(struct seamchan *c)
{
	size_t off = 0;
	const char *why = NULL;

	while (!c->ended && c->in_len - off >= SEAMWIRE_HDR) {
		struct seamwire_hdr h;
		struct seamwire_msg m;
		int fd = -1, ok;

		memcpy(&h, c->in + off, sizeof(h));
		if (h.len > SEAMWIRE_MAX) {
			why = "a message longer than any message may be";
			goto fatal;
		}
		if (c->in_len - off - SEAMWIRE_HDR < h.len)
			break;
		/* A descriptor came with it when its type says so: a known type
		 * with a descriptor takes one, whatever else is wrong with it. */
		if (seamwire_has_fd(h.type) && (fd = pop_fd(c)) < 0) {
			why = "the message's descriptor is missing";
			goto fatal;
		}
		ok = seamwire_check_hdr(c->peer, &h, &why) == 0 &&
		    seamwire_decode(c->peer, &h, c->in + off + SEAMWIRE_HDR, fd, &m,
		    &why) == 0;
		off += SEAMWIRE_HDR + h.len;
		if (!ok) {
			if (fd >= 0)
				close(fd);
			if (c->bad)
				c->bad(c->arg, &h, why);
			continue;
		}
		c->msg(c->arg, &m);
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return;
fatal:
	c->in_len = 0;
	end(c, -EPROTO, why);
}

static void on_read(struct seamchan *c)
{
	for (int rounds = 0; rounds < 16 && !c->ended; rounds++) {
		size_t room = SEAMWIRE_HDR + SEAMWIRE_MAX - c->in_len;
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 8)];
		} ctl;
		struct iovec iov = { c->in + c->in_len, room };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		    .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				end(c, -errno, "cannot read from the other half");
			return;
		}
		if (take_fds(c, &mh) < 0 || (mh.msg_flags & MSG_CTRUNC)) {
			end(c, -EPROTO, "too many descriptors at once");
			return;
		}
		if (n == 0) {
			end(c, 0, c->in_len ? "the other half went away mid-message" :
			    "the other half went away");
			return;
		}
		c->in_len += (size_t)n;
		parse(c);
	}
}

/* ---- sending ---- */

static void drop_sent(struct seamchan *c, size_t n)
{
	buf_consume(&c->out, n);
	c->base += n;
	for (size_t i = 0; i < c->n_logged;) {
		if (c->logged[i].at < c->base)
			c->logged[i] = c->logged[--c->n_logged];
		else
			i++;
	}
}

/* Writes what the kernel takes; a descriptor goes with its message's
 * first byte, so a write stops short of the next one's message. */
static int do_write(struct seamchan *c)
{
	while (c->out.len) {
		size_t len = c->out.len;
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} ctl;
		struct iovec iov = { c->out.data, len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		int with_fd = 0;

		if (c->n_outfds) {
			if (c->outfds[0].at == c->base) {
				memset(&ctl, 0, sizeof(ctl));
				mh.msg_control = ctl.b;
				mh.msg_controllen = sizeof(ctl.b);
				struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
				cm->cmsg_level = SOL_SOCKET;
				cm->cmsg_type = SCM_RIGHTS;
				cm->cmsg_len = CMSG_LEN(sizeof(int));
				memcpy(CMSG_DATA(cm), &c->outfds[0].fd, sizeof(int));
				with_fd = 1;
				/* only this message: the next fd needs its own send */
				if (c->n_outfds > 1)
					len = (size_t)(c->outfds[1].at - c->base);
			} else {
				len = (size_t)(c->outfds[0].at - c->base);
			}
			iov.iov_len = len;
		}
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		if (with_fd) {
			close(c->outfds[0].fd);
			memmove(c->outfds, c->outfds + 1,
			    --c->n_outfds * sizeof(c->outfds[0]));
		}
		drop_sent(c, (size_t)n);
	}
	return 0;
}

static void update_watch(struct seamchan *c)
{
	if (c->w)
		ev_io_set(c->w, EV_READ | (c->out.len ? EV_WRITE : 0));
}

static void flush_now(struct seamchan *c)
{
	int r = do_write(c);

	if (r < 0) {
		end(c, r, r == -EPIPE || r == -ECONNRESET ?
		    "the other half went away" : "cannot write to the other half");
		return;
	}
	update_watch(c);
}

static void on_io(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct seamchan *c = arg;

	(void)w;
	(void)fd;
	c->in_cb++;
	if (events & EV_WRITE)
		flush_now(c);
	if (!c->ended && (events & EV_READ))
		on_read(c);
	c->in_cb--;
	if (c->free_later && c->in_cb == 0)
		seamchan_free(c);
}

int seamchan_send(struct seamchan *c, const struct buf *m, int fd)
{
	if (c->ended) {
		if (fd >= 0)
			close(fd);
		return -EPIPE;
	}
	if (c->out.len + m->len > SEAMCHAN_OUT_MAX ||
	    (fd >= 0 && c->n_outfds == SEAMCHAN_FDS_MAX)) {
		if (fd >= 0)
			close(fd);
		return -ENOBUFS;
	}
	if (fd >= 0) {
		c->outfds[c->n_outfds].at = c->base + c->out.len;
		c->outfds[c->n_outfds++].fd = fd;
	}
	if (buf_append(&c->out, m->data, m->len) < 0)
		return -ENOBUFS;	/* cannot be: the cap is checked above */
	if (c->in_cb) {
		update_watch(c);
		return 0;
	}
	c->in_cb++;
	flush_now(c);
	c->in_cb--;
	if (c->free_later)
		seamchan_free(c);
	return 0;
}

int seamchan_send_logged(struct seamchan *c, uint64_t jh, uint64_t total)
{
	struct buf m = BUF_INIT(64);
	int r;

	for (size_t i = 0; i < c->n_logged; i++) {
		/* Still wholly unsent: the newer total replaces it. */
		if (c->logged[i].jh == jh && c->logged[i].at >= c->base) {
			size_t at = (size_t)(c->logged[i].at - c->base);
			memcpy(c->out.data + at + SEAMWIRE_HDR, &total, 8);
			return 0;
		}
	}
	if ((r = seamwire_put_u64(&m, SW_LOGGED, jh, total)) == 0) {
		uint64_t at = c->base + c->out.len;
		r = seamchan_send(c, &m, -1);
		/* what flush_now did not send waits, and may be replaced */
		if (r == 0 && at >= c->base && c->n_logged < LOGGED_SLOTS) {
			c->logged[c->n_logged].jh = jh;
			c->logged[c->n_logged++].at = at;
		}
	}
	buf_free(&m);
	return r;
}

size_t seamchan_pending(const struct seamchan *c)
{
	return c->out.len;
}

int seamchan_ended(const struct seamchan *c)
{
	return c->ended;
}

void seamchan_flush(struct seamchan *c, int ms)
{
	for (int i = 0; i < ms / 10 + 1 && c->out.len && !c->ended; i++) {
		struct pollfd p = { c->fd, POLLOUT, 0 };
		if (do_write(c) < 0)
			return;
		if (c->out.len)
			poll(&p, 1, 10);
	}
}

int seamchan_new(struct ev_loop *loop, int fd, enum seamwire_from peer,
    seamchan_msg_fn msg, seamchan_bad_fn bad, seamchan_end_fn endfn,
    void *arg, struct seamchan **out)
{
	struct seamchan *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->fd = fd;
	c->peer = peer;
	c->msg = msg;
	c->bad = bad;
	c->end = endfn;
	c->arg = arg;
	c->in = xmalloc(SEAMWIRE_HDR + SEAMWIRE_MAX);
	buf_init(&c->out, SEAMCHAN_OUT_MAX);
	c->w = ev_io_start(loop, fd, EV_READ, on_io, c);
	if (c->w == NULL) {
		free(c->in);
		free(c);
		return -EIO;
	}
	*out = c;
	return 0;
}

void seamchan_free(struct seamchan *c)
{
	if (c == NULL)
		return;
	if (c->in_cb) {
		c->free_later = 1;
		c->end = NULL;
		c->ended = 1;
		ev_io_stop(c->w);
		c->w = NULL;
		return;
	}
	ev_io_stop(c->w);
	for (size_t i = 0; i < c->n_infds; i++)
		close(c->infds[i]);
	for (size_t i = 0; i < c->n_outfds; i++)
		close(c->outfds[i].fd);
	buf_free(&c->out);
	free(c->in);
	close(c->fd);
	free(c);
}
