/*
 * The queue on PostgreSQL (--postgres): every endpoint is one call of a
 * function of queue/pgschema.sql, sent from the event loop (pg.c), and
 * the request is parked until its answer comes back. A replica keeps in
 * memory only what is its own: the long-polls and log follows it holds,
 * and its histograms. Held polls are woken by NOTIFY skiff_pool (a job
 * submitted or requeued on any replica), follows by NOTIFY skiff_log;
 * the ack window, the TTL and exp are enforced by skiff.op_sweep, which
 * every replica runs and which ends each due row exactly once.
 */
#ifndef SKIFF_QUEUE_PGQ_H
#define SKIFF_QUEUE_PGQ_H

#include <microhttpd.h>
#include <stddef.h>

struct queue;
struct req;

/*
 * Creates or migrates the schema (a blocking connection, at start, before
 * anything is served), then opens the pool of asynchronous connections
 * and waits until they are up. password: NULL to leave it to libpq
 * (PGPASSFILE, ~/.pgpass).
 */
int pgq_open(struct queue *q, const char *conninfo, const char *password,
    int nconn);
/* Wakes every held request with 503 (the queue stops). */
void pgq_stop(struct queue *q);
void pgq_close(struct queue *q);
/* The schema version this binary creates and runs on. */
int pgq_schema_version(void);

/* ---- from api.c, for every request when q->pg is set ---- */
/* After the headers of an upload PUT: 1 when the request was parked. */
enum MHD_Result pgq_begin(struct req *r);
/* Upload bytes: how many were taken in *used (the rest comes again once
 * the request is resumed). */
enum MHD_Result pgq_body(struct req *r, const char *data, size_t n,
    size_t *used);
enum MHD_Result pgq_finish(struct req *r);
enum MHD_Result pgq_woken(struct req *r);
void pgq_done(struct req *r, int completed_ok);

#endif
