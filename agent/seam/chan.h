/*
 * One end of the socketpair between the agent's two processes: framed
 * seam messages (wire.h) in and out on the event loop, descriptors passed
 * with SCM_RIGHTS on the first byte of the message they belong to.
 *
 * Every message received is checked (header against its type, then the
 * whole payload) before the handler sees it. A message that fails a check
 * but whose length can be skipped (at most SEAMWIRE_MAX) is refused on
 * its own: the bad callback hears why, and the next message is read. A
 * length past that, or descriptors that do not match the messages, leave
 * no way to find the next message: the channel ends. What is sent waits in a bounded queue; a LOGGED for a
 * job replaces the one still waiting for that job, so a slow peer costs
 * the sender one number per job, whatever the step writes.
 */
#ifndef SKIFF_AGENT_SEAMCHAN_H
#define SKIFF_AGENT_SEAMCHAN_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct ev_loop;
struct seamchan;

/* The handler owns m's strings and fd: seamwire_msg_clear when done. */
typedef void (*seamchan_msg_fn)(void *arg, struct seamwire_msg *m);
/* A message refused (h as it came, why static text); its bytes and its
 * descriptor are gone. */
typedef void (*seamchan_bad_fn)(void *arg, const struct seamwire_hdr *h,
    const char *why);
/* The channel is dead (peer gone, or it broke the protocol): called once;
 * nothing is read or sent after. why is static text. */
typedef void (*seamchan_end_fn)(void *arg, int err, const char *why);

/* Messages and descriptors waiting to be sent, at most. */
#define SEAMCHAN_OUT_MAX	(8u << 20)
#define SEAMCHAN_FDS_MAX	64

int seamchan_new(struct ev_loop *loop, int fd, enum seamwire_from peer,
    seamchan_msg_fn msg, seamchan_bad_fn bad, seamchan_end_fn end, void *arg,
    struct seamchan **out);
/* The encoded message(s) in m (a buf filled by seamwire_put_*) are queued
 * with fd (-1: none; the channel owns it from here, also on failure).
 * Returns 0, or -ENOBUFS when the queue is full (the peer does not read),
 * -EPIPE when the channel has ended. */
int seamchan_send(struct seamchan *c, const struct buf *m, int fd);
int seamchan_send_logged(struct seamchan *c, uint64_t jh, uint64_t total);
/* Bytes queued and not yet taken by the kernel. */
size_t seamchan_pending(const struct seamchan *c);
/* Writes what is queued, blocking up to ms (at exit: the last messages). */
void seamchan_flush(struct seamchan *c, int ms);
int seamchan_ended(const struct seamchan *c);
void seamchan_free(struct seamchan *c);

#endif
