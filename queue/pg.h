/*
 * PostgreSQL from the event loop: a small fixed pool of libpq connections
 * in pipeline mode, driven through PQsocket watchers on the queue's loop,
 * plus one connection that LISTENs. Nothing here blocks: connections are
 * made with PQconnectStart/PQconnectPoll, queries go out with
 * PQsendQueryParams and come back through PQconsumeInput/PQgetResult.
 *
 * A query is "alone" (followed by its own Sync: its own implicit
 * transaction) or "batched": batched queries sent in the same loop round
 * on one connection share one Sync, so one commit (one WAL flush) makes
 * all of them durable. That is the group commit of log appends. Batched
 * queries must not raise errors for bad input (an error aborts every
 * query up to the Sync): skiff's SQL functions answer errors as values.
 *
 * Queries are answered in order on a connection, so a lease request sent
 * behind megabytes of log bytes would wait for them. Bulk queries (log
 * bytes, artifact chunks, batched or not) therefore go to their own
 * connections, the second half of the pool, and control queries (leases,
 * submits, the sweep) to the first half; with one connection both share
 * it.
 *
 * When a connection breaks, every query in flight on it fails (the
 * callback gets err set), and the connection is made again with backoff.
 * With no connection up, a query fails at once: the caller answers 503.
 */
#ifndef SKIFF_QUEUE_PG_H
#define SKIFF_QUEUE_PG_H

#include <libpq-fe.h>
#include <stddef.h>

struct ev_loop;
struct pg;
struct pg_query;

#define PG_MAX_PARAMS 16

struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];		/* 0 text, 1 binary */
	char num[PG_MAX_PARAMS][24];	/* storage for numbers */
};

void pg_params_init(struct pg_params *p);
void pg_param_text(struct pg_params *p, const char *s);	/* NULL: SQL NULL */
void pg_param_int(struct pg_params *p, long long v);
void pg_param_bin(struct pg_params *p, const void *data, size_t n);

/* res is the query's result (binary format; freed after the call), or
 * NULL with err saying why the query did not run. */
typedef void (*pg_cb)(void *arg, PGresult *res, const char *err);
/* A notification; chan NULL means "the listener (re)connected: any
 * notification may have been missed". */
typedef void (*pg_notify_cb)(void *arg, const char *chan,
    const char *payload);

struct pg_stats {
	unsigned long long queries, failed, batches, reconnects;
	int up;				/* connections ready */
	int listening;
};

/*
 * Starts nconn connections and the listener on loop (asynchronously: the
 * first queries may fail until they are up; pg_wait_ready runs the loop
 * until they are). channels: NULL-terminated names to LISTEN to.
 */
int pg_open(struct ev_loop *loop, const char *conninfo, const char *password,
    int nconn,
    const char *const *channels, pg_notify_cb on_notify, void *arg,
    struct pg **out);
/* Runs the loop until every connection is up, or timeout_ms passed. */
int pg_wait_ready(struct pg *p, int timeout_ms);
void pg_close(struct pg *p);

#define PG_BATCH 0x1	/* share a transaction with the round's others */
#define PG_BULK  0x2	/* megabytes: on the bulk connections */

/*
 * Sends sql with params (may be NULL); flags are PG_BATCH (which implies
 * PG_BULK) and PG_BULK. cb is called exactly once unless pg_forget is
 * called first. The returned handle is valid until then.
 */
struct pg_query *pg_send(struct pg *p, const char *sql,
    const struct pg_params *params, int flags, pg_cb cb, void *arg);
/* The caller went away: the result will be dropped. */
void pg_forget(struct pg_query *q);
void pg_get_stats(const struct pg *p, struct pg_stats *st);

/* Result helpers (binary format). */
/* A jsonb column as text (binary jsonb is a version byte, then text). */
const char *pg_jsonb(const PGresult *r, int row, int col, size_t *len);
const char *pg_bytea(const PGresult *r, int row, int col, size_t *len);

#endif
