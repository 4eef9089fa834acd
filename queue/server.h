/*
 * The HTTP side of the queue: libmicrohttpd in external-epoll mode driven
 * by the event loop (common/ev.h), so the whole queue runs in one thread
 * and a held long-poll is a suspended connection plus a timer: nothing
 * polls. Every request is routed (route.c), capped (headers, body,
 * connections, slow clients), authenticated, and answered with JSON,
 * errors included (docs/protocol.md section 1).
 */
#ifndef SKIFF_QUEUE_SERVER_H
#define SKIFF_QUEUE_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct queue;
struct qcfg;
struct srv;

/* Request headers, in all (docs/protocol.md section 8). */
#define SRV_MAX_HEADERS (16 * 1024)
/* Request bodies held in memory at once, over all connections; past it
 * the queue answers 503 rather than run out of memory. */
#define SRV_BODY_BUDGET ((size_t)256 << 20)
/* Body bytes read and dropped after a refusal before the connection is
 * closed instead. */
#define SRV_DISCARD_MAX ((uint64_t)64 << 20)

/*
 * Binds listen (ADDR:PORT, [ADDR]:PORT; port 0 picks one) and starts
 * serving, with TLS when cert_pem and key_pem are given (they must stay
 * valid until srv_free). Returns 0, or -errno with a message logged.
 */
int srv_start(struct queue *q, const struct qcfg *cfg, struct ev_loop *loop,
    const char *cert_pem, const char *key_pem, struct srv **out);
int srv_port(const struct srv *s);
/* Stops accepting connections (the first step of a shutdown). */
void srv_quiesce(struct srv *s);
size_t srv_connections(const struct srv *s);
/* Requests being read, processed, held or answered. */
size_t srv_requests(const struct srv *s);
/* Stops the daemon (all held requests must have been woken) and frees. */
void srv_free(struct srv *s);
/* Parses ADDR:PORT or [ADDR]:PORT into a socket address. */
struct sockaddr_storage;
int srv_parse_listen(const char *s, struct sockaddr_storage *ss,
    unsigned *len);

#endif
