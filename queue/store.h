/*
 * The queue's durable state in SQLite (WAL): jobs, leases, agents,
 * registration and viewer tokens, and uploads. Log bytes and artifact data live in
 * files beside the database (logs.c, artifacts.c).
 *
 * The store is a catalogue of prepared statements run with bound
 * arguments; callers group them into transactions. One connection, one
 * thread: every call runs to completion before the event loop goes on.
 * With sync_full the WAL is fsync'd at every commit (synchronous=FULL), so
 * a committed change survives a power loss; otherwise (NORMAL) it survives
 * a crash of the process.
 */
#ifndef SKIFF_QUEUE_STORE_H
#define SKIFF_QUEUE_STORE_H

#include <sqlite3.h>
#include <stdint.h>

struct store;

enum store_sql {
	SQL_BEGIN, SQL_COMMIT, SQL_ROLLBACK,
	SQL_JOB_INSERT, SQL_JOB_GET, SQL_JOB_LIST, SQL_JOB_JWS,
	SQL_JOB_SET_LEASED, SQL_JOB_SET_RUNNING, SQL_JOB_REQUEUE, SQL_JOB_END,
	SQL_JOB_CANCEL_REQ, SQL_JOBS_ACTIVE, SQL_JOB_STATE,
	SQL_LEASE_INSERT, SQL_LEASE_ACK, SQL_LEASE_END, SQL_LEASE_GET,
	SQL_LEASES_ACTIVE,
	SQL_AGENT_INSERT, SQL_AGENT_SET_STATE, SQL_AGENT_SEEN,
	SQL_AGENTS_ACTIVE, SQL_AGENTS_LIST, SQL_AGENT_GET, SQL_AGENTS_OF_TOKEN,
	SQL_TOKEN_INSERT, SQL_TOKEN_BY_HASH, SQL_TOKEN_LIST, SQL_TOKEN_REVOKE,
	SQL_TOKEN_GET,
	SQL_VIEWER_INSERT, SQL_VIEWER_BY_HASH, SQL_VIEWER_LIST,
	SQL_VIEWER_REVOKE, SQL_VIEWER_GET,
	SQL_UPLOAD_INSERT, SQL_UPLOAD_BY_NAME, SQL_UPLOAD_GET, SQL_UPLOAD_COMMIT,
	SQL_UPLOAD_TOTALS, SQL_UPLOADS_LIST, SQL_UPLOADS_OF_JOB,
	SQL_RETAIN_DUE, SQL_RETAIN_DEL_UPLOADS, SQL_RETAIN_DEL_LEASES,
	SQL_RETAIN_DEL_JOB,
	SQL_JOB_SET_OUTPUTS,
	/* caches (caches.c) */
	SQL_CACHE_GET, SQL_CACHE_PREFIX, SQL_CACHE_TOUCH, SQL_CACHE_INSERT,
	SQL_CACHE_BY_ID, SQL_CACHE_TOTAL, SQL_CACHE_LRU, SQL_CACHE_DELETE,
	SQL_CACHE_LIST, SQL_UPLOAD_DELETE, SQL_CACHE_OPEN_OF_LEASE, SQL_CACHES_BYTES,
	SQL_COUNT
};

/* Columns of SQL_JOB_GET and SQL_JOB_LIST rows. */
enum {
	JC_ID, JC_NAME, JC_POOL, JC_LABELS, JC_STATE, JC_ATTEMPT,
	JC_MAX_ATTEMPTS, JC_AGENT, JC_CREATED, JC_LEASED, JC_COMPLETED, JC_EXP,
	JC_CANCEL_REQUESTED, JC_RESULT, JC_EXIT_CODES, JC_REASON_CODE,
	JC_REASON, JC_CANCEL_REASON,
	JC_OUTPUTS,	/* SQL_JOB_GET only */
};

/* Called once per result row; return 0 to go on, 1 to stop, <0 to fail. */
typedef int (*store_row_cb)(sqlite3_stmt *row, void *arg);

/* Opens (creating) the database file and its schema. */
int store_open(const char *path, int sync_full, struct store **out);
void store_close(struct store *s);
/*
 * Runs statement id with arguments bound by types: 't' const char *
 * (NULL binds NULL), 'i' int64_t, 'b' const void * then size_t. 0, or
 * -EEXIST (constraint), -ENOSPC (disk full), -EIO.
 */
int store_exec(struct store *s, enum store_sql id, const char *types, ...);
int store_query(struct store *s, enum store_sql id, store_row_cb row,
    void *arg, const char *types, ...);
/* Rows changed by the last store_exec. */
int store_changes(struct store *s);
int64_t store_last_rowid(struct store *s);
const char *store_errmsg(struct store *s);
/* 1 once the database reported corruption: the queue must stop. */
int store_corrupt(const struct store *s);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Column helpers that never return NULL for text. */
const char *store_text(sqlite3_stmt *row, int col);
int store_null(sqlite3_stmt *row, int col);

#endif
