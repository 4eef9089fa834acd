#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[SQL_COUNT];
	int corrupt;
};

/* Schema version 1. Times are unix seconds; labels, exit codes and the
 * excluded agents are JSON arrays. The indexes on jobs(completed) and
 * leases(job) were added with retention (retain.c), which finds ended
 * jobs by their end and deletes a job's leases; CREATE INDEX IF NOT EXISTS
 * adds them to an older database at its next start, so the version stays;
 * so does CREATE TABLE IF NOT EXISTS the viewer tokens (the web view),
 * which nothing older reads. */
static const char schema[] =
"CREATE TABLE IF NOT EXISTS jobs ("
"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
"  id TEXT NOT NULL UNIQUE,"
"  pool TEXT NOT NULL, name TEXT NOT NULL, labels TEXT NOT NULL,"
"  jws TEXT NOT NULL, exp INTEGER NOT NULL,"
"  state TEXT NOT NULL, attempt INTEGER NOT NULL,"
"  max_attempts INTEGER NOT NULL, agent TEXT,"
"  created INTEGER NOT NULL, leased INTEGER, completed INTEGER,"
"  cancel_requested INTEGER NOT NULL DEFAULT 0, cancel_reason TEXT,"
"  result TEXT, exit_codes TEXT NOT NULL DEFAULT '[]',"
"  reason_code TEXT, reason TEXT,"
"  excluded TEXT NOT NULL DEFAULT '[]');"
"CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);"
"CREATE INDEX IF NOT EXISTS jobs_pool ON jobs(pool, seq);"
"CREATE INDEX IF NOT EXISTS jobs_completed ON jobs(completed);"
"CREATE TABLE IF NOT EXISTS leases ("
"  id TEXT PRIMARY KEY, job TEXT NOT NULL, attempt INTEGER NOT NULL,"
"  agent TEXT NOT NULL, created INTEGER NOT NULL,"
"  acked INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,"
"  ended INTEGER);"
"CREATE INDEX IF NOT EXISTS leases_state ON leases(state);"
"CREATE INDEX IF NOT EXISTS leases_job ON leases(job);"
"CREATE TABLE IF NOT EXISTS agents ("
"  id TEXT PRIMARY KEY, token_hash BLOB NOT NULL UNIQUE,"
"  name TEXT NOT NULL, pool TEXT NOT NULL, labels TEXT NOT NULL,"
"  capacity INTEGER NOT NULL, version TEXT NOT NULL,"
"  registered INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
"  state TEXT NOT NULL, reg_token TEXT NOT NULL);"
"CREATE INDEX IF NOT EXISTS agents_token ON agents(reg_token);"
"CREATE TABLE IF NOT EXISTS reg_tokens ("
"  id TEXT PRIMARY KEY, pool TEXT NOT NULL, hash BLOB NOT NULL UNIQUE,"
"  description TEXT NOT NULL, created INTEGER NOT NULL, revoked INTEGER);"
"CREATE INDEX IF NOT EXISTS reg_tokens_pool ON reg_tokens(pool);"
"CREATE TABLE IF NOT EXISTS uploads ("
"  id TEXT PRIMARY KEY, job TEXT NOT NULL, attempt INTEGER NOT NULL,"
"  lease TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,"
"  state TEXT NOT NULL, sha256 TEXT, created INTEGER NOT NULL,"
"  UNIQUE (job, attempt, name));"
"CREATE TABLE IF NOT EXISTS viewer_tokens ("
"  id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
"  description TEXT NOT NULL, created INTEGER NOT NULL, revoked INTEGER);"
/* Caches (issue 13): per pool, a key once; times in milliseconds, and
 * last_used strictly increasing within a pool so that LRU is exact. */
"CREATE TABLE IF NOT EXISTS caches ("
"  id TEXT PRIMARY KEY, pool TEXT NOT NULL, key TEXT NOT NULL,"
"  size INTEGER NOT NULL, sha256 TEXT NOT NULL, created INTEGER NOT NULL,"
"  last_used INTEGER NOT NULL, UNIQUE (pool, key));"
"PRAGMA user_version = 1;";

#define JOB_COLS "id, name, pool, labels, state, attempt, max_attempts, " \
	"agent, created, leased, completed, exp, cancel_requested, result, " \
	"exit_codes, reason_code, reason, cancel_reason"

static const char *const sql[SQL_COUNT] = {
	[SQL_BEGIN] = "BEGIN IMMEDIATE",
	[SQL_COMMIT] = "COMMIT",
	[SQL_ROLLBACK] = "ROLLBACK",
	[SQL_JOB_INSERT] = "INSERT INTO jobs (id, pool, name, labels, jws, exp, "
	    "state, attempt, max_attempts, created) "
	    "VALUES (?, ?, ?, ?, ?, ?, 'queued', 1, ?, ?)",
	[SQL_JOB_GET] = "SELECT " JOB_COLS ", outputs FROM jobs WHERE id = ?",
	[SQL_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs "
	    "WHERE (?1 IS NULL OR pool = ?1) AND (?2 IS NULL OR state = ?2) "
	    "AND (?3 IS NULL OR instr(name, ?3) > 0) "
	    "ORDER BY seq DESC LIMIT ?4 OFFSET ?5",
	[SQL_JOB_JWS] = "SELECT jws FROM jobs WHERE id = ?",
	[SQL_JOB_SET_LEASED] = "UPDATE jobs SET state = 'leased', agent = ?, "
	    "leased = ? WHERE id = ?",
	[SQL_JOB_SET_RUNNING] = "UPDATE jobs SET state = 'running', "
	    "excluded = ? WHERE id = ?",
	[SQL_JOB_REQUEUE] = "UPDATE jobs SET state = 'queued', agent = NULL, "
	    "attempt = ? WHERE id = ?",
	[SQL_JOB_END] = "UPDATE jobs SET state = ?, completed = ?, result = ?, "
	    "exit_codes = ?, reason_code = ?, reason = ? WHERE id = ?",
	[SQL_JOB_CANCEL_REQ] = "UPDATE jobs SET cancel_requested = 1, "
	    "cancel_reason = ? WHERE id = ?",
	[SQL_JOBS_ACTIVE] = "SELECT id, pool, labels, exp, seq, state, attempt, "
	    "max_attempts, excluded, cancel_requested, cancel_reason FROM jobs "
	    "WHERE state IN ('queued', 'leased', 'running') ORDER BY seq",
	[SQL_JOB_STATE] = "SELECT state, attempt FROM jobs WHERE id = ?",
	[SQL_LEASE_INSERT] = "INSERT INTO leases (id, job, attempt, agent, "
	    "created, state) VALUES (?, ?, ?, ?, ?, 'active')",
	[SQL_LEASE_ACK] = "UPDATE leases SET acked = 1 WHERE id = ?",
	[SQL_LEASE_END] = "UPDATE leases SET state = ?, ended = ? WHERE id = ?",
	[SQL_LEASE_GET] = "SELECT job, attempt, agent, state FROM leases "
	    "WHERE id = ?",
	[SQL_LEASES_ACTIVE] = "SELECT id, job, attempt, agent, acked FROM leases "
	    "WHERE state = 'active'",
	[SQL_AGENT_INSERT] = "INSERT INTO agents (id, token_hash, name, pool, "
	    "labels, capacity, version, registered, last_seen, state, reg_token) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
	[SQL_AGENT_SET_STATE] = "UPDATE agents SET state = ? WHERE id = ? "
	    "AND state = 'active'",
	[SQL_AGENT_SEEN] = "UPDATE agents SET last_seen = ? WHERE id = ?",
	[SQL_AGENTS_ACTIVE] = "SELECT id, token_hash, name, pool, labels, "
	    "capacity, version, registered, last_seen, reg_token FROM agents "
	    "WHERE state = 'active'",
	[SQL_AGENTS_LIST] = "SELECT id, name, pool, labels, capacity, version, "
	    "registered, last_seen, state FROM agents "
	    "WHERE (?1 IS NULL OR pool = ?1) ORDER BY registered DESC, id "
	    "LIMIT 10000",
	[SQL_AGENT_GET] = "SELECT state FROM agents WHERE id = ?",
	[SQL_AGENTS_OF_TOKEN] = "SELECT id FROM agents WHERE reg_token = ? "
	    "AND state = 'active'",
	[SQL_TOKEN_INSERT] = "INSERT INTO reg_tokens (id, pool, hash, "
	    "description, created) VALUES (?, ?, ?, ?, ?)",
	[SQL_TOKEN_BY_HASH] = "SELECT id, pool, hash, revoked FROM reg_tokens "
	    "WHERE hash = ?",
	[SQL_TOKEN_LIST] = "SELECT id, pool, description, created, revoked "
	    "FROM reg_tokens WHERE pool = ? ORDER BY created, id",
	[SQL_TOKEN_REVOKE] = "UPDATE reg_tokens SET revoked = ? WHERE id = ? "
	    "AND revoked IS NULL",
	[SQL_TOKEN_GET] = "SELECT revoked FROM reg_tokens WHERE id = ?",
	[SQL_VIEWER_INSERT] = "INSERT INTO viewer_tokens (id, hash, "
	    "description, created) VALUES (?, ?, ?, ?)",
	[SQL_VIEWER_BY_HASH] = "SELECT id FROM viewer_tokens WHERE hash = ? "
	    "AND revoked IS NULL",
	[SQL_VIEWER_LIST] = "SELECT id, NULL, description, created, revoked "
	    "FROM viewer_tokens ORDER BY created, id LIMIT 10000",
	[SQL_VIEWER_REVOKE] = "UPDATE viewer_tokens SET revoked = ? "
	    "WHERE id = ? AND revoked IS NULL",
	[SQL_VIEWER_GET] = "SELECT revoked FROM viewer_tokens WHERE id = ?",
	[SQL_UPLOAD_INSERT] = "INSERT INTO uploads (id, job, attempt, lease, "
	    "name, size, state, created) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
	[SQL_UPLOAD_BY_NAME] = "SELECT id, lease, size, state, sha256 FROM "
	    "uploads WHERE job = ? AND attempt = ? AND name = ?",
	[SQL_UPLOAD_GET] = "SELECT id, job, attempt, lease, name, size, state, "
	    "sha256 FROM uploads WHERE id = ?",
	[SQL_UPLOAD_COMMIT] = "UPDATE uploads SET state = 'committed', "
	    "sha256 = ? WHERE id = ?",
	[SQL_UPLOAD_TOTALS] = "SELECT count(*), coalesce(sum(size), 0) FROM "
	    "uploads WHERE job = ? AND attempt = ?",
	[SQL_UPLOADS_LIST] = "SELECT name, size, sha256 FROM uploads WHERE "
	    "job = ? AND attempt = ? AND state = 'committed' ORDER BY name",
	[SQL_UPLOADS_OF_JOB] = "SELECT id FROM uploads WHERE job = ?",
	/*
	 * Retention. A job is due when it ended before ?1 and its exp is at
	 * or before ?2 (now minus the clock skew): the queue then refuses the
	 * same JWS as expired, so deleting its row never lets it run again.
	 * The state test is a second guard: active jobs have no end.
	 */
	[SQL_RETAIN_DUE] = "SELECT id FROM jobs WHERE completed < ?1 AND "
	    "exp <= ?2 AND state NOT IN ('queued', 'leased', 'running') "
	    "ORDER BY completed, seq LIMIT ?3",
	[SQL_RETAIN_DEL_UPLOADS] = "DELETE FROM uploads WHERE job = ?",
	[SQL_RETAIN_DEL_LEASES] = "DELETE FROM leases WHERE job = ?",
	[SQL_RETAIN_DEL_JOB] = "DELETE FROM jobs WHERE id = ? AND "
	    "state NOT IN ('queued', 'leased', 'running')",
	[SQL_JOB_SET_OUTPUTS] = "UPDATE jobs SET outputs = ? WHERE id = ?",
	[SQL_CACHE_GET] = "SELECT id, key, size, sha256 FROM caches WHERE "
	    "pool = ?1 AND key = ?2",
	[SQL_CACHE_PREFIX] = "SELECT id, key, size, sha256 FROM caches WHERE "
	    "pool = ?1 AND substr(key, 1, length(?2)) = ?2 "
	    "ORDER BY created DESC, rowid DESC LIMIT 1",
	[SQL_CACHE_TOUCH] = "UPDATE caches SET last_used = max(?3, (SELECT "
	    "max(last_used) + 1 FROM caches WHERE pool = ?2)) WHERE id = ?1",
	[SQL_CACHE_INSERT] = "INSERT INTO caches (id, pool, key, size, sha256, "
	    "created, last_used) VALUES (?1, ?2, ?3, ?4, ?5, ?6, max(?6, "
	    "coalesce((SELECT max(last_used) + 1 FROM caches WHERE pool = ?2), "
	    "0)))",
	[SQL_CACHE_BY_ID] = "SELECT id, key, size, sha256, pool, created, "
	    "last_used FROM caches WHERE id = ?",
	[SQL_CACHE_TOTAL] = "SELECT coalesce(sum(size), 0) FROM caches WHERE "
	    "pool = ?",
	[SQL_CACHE_LRU] = "SELECT id, key, size, sha256 FROM caches WHERE "
	    "pool = ? ORDER BY last_used, rowid LIMIT 1",
	[SQL_CACHE_DELETE] = "DELETE FROM caches WHERE id = ?",
	[SQL_CACHE_LIST] = "SELECT id, key, size, sha256, created, last_used "
	    "FROM caches WHERE pool = ? ORDER BY last_used DESC LIMIT 10000",
	[SQL_UPLOAD_DELETE] = "DELETE FROM uploads WHERE id = ?",
	[SQL_CACHE_OPEN_OF_LEASE] = "SELECT count(*) FROM uploads WHERE "
	    "job = ?1 AND lease = ?2 AND state <> 'committed'",
	[SQL_CACHES_BYTES] = "SELECT coalesce(sum(size), 0) FROM caches",
};

static int map_rc(struct store *s, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT: case SQLITE_NOTADB:
		s->corrupt = 1;
		return -EIO;
	default:
		return -EIO;
	}
}

static int has_column(void *arg, int n, char **v, char **names)
{
	(void)n;
	(void)v;
	(void)names;
	*(int *)arg = 1;
	return 0;
}

/* A job's output variables (issue 13): a column added to a database made
 * before them, which nothing older reads, so the version stays. */
static int add_outputs_column(struct store *s, char **msg)
{
	int have = 0;
	int rc = sqlite3_exec(s->db, "SELECT 1 FROM pragma_table_info('jobs') "
	    "WHERE name = 'outputs'", has_column, &have, msg);

	if (rc == SQLITE_OK && !have)
		rc = sqlite3_exec(s->db, "ALTER TABLE jobs ADD COLUMN outputs TEXT "
		    "NOT NULL DEFAULT '{}'", NULL, NULL, msg);
	return rc;
}

static int setup(struct store *s, int sync_full)
{
	char *msg = NULL;
	const char *pragmas = sync_full ?
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;" :
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
	int rc = sqlite3_exec(s->db, pragmas, NULL, NULL, &msg);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "PRAGMA foreign_keys = OFF;"
		    "PRAGMA temp_store = MEMORY;", NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, schema, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = add_outputs_column(s, &msg);
	if (rc != SQLITE_OK) {
		log_error("database setup failed", "error=%s",
		    logq(msg ? msg : sqlite3_errstr(rc)));
		sqlite3_free(msg);
		return map_rc(s, rc) ? map_rc(s, rc) : -EIO;
	}
	for (int i = 0; i < SQL_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			log_error("database statement failed to prepare", "n=%d "
			    "error=%s", i, logq(sqlite3_errmsg(s->db)));
			return -EIO;
		}
	}
	return 0;
}

int store_open(const char *path, int sync_full, struct store **out)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	int r;

	if (rc != SQLITE_OK) {
		log_error("cannot open the database", "path=%s error=%s",
		    logq(path), logq(s->db ? sqlite3_errmsg(s->db) :
		    sqlite3_errstr(rc)));
		store_close(s);
		return -EIO;
	}
	sqlite3_extended_result_codes(s->db, 1);
	if ((r = setup(s, sync_full)) < 0) {
		store_close(s);
		return r;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < SQL_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}

static int bind_all(sqlite3_stmt *st, const char *types, va_list ap)
{
	int rc = SQLITE_OK;

	for (int i = 1; types && *types && rc == SQLITE_OK; types++, i++) {
		if (*types == 't') {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) :
			    sqlite3_bind_null(st, i);
		} else if (*types == 'i') {
			rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
		} else if (*types == 'b') {
			const void *p = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			rc = sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC);
		} else {
			rc = SQLITE_MISUSE;
		}
	}
	return rc;
}

static int run(struct store *s, enum store_sql id, store_row_cb row,
    void *arg, const char *types, va_list ap)
{
	sqlite3_stmt *st = s->stmt[id];
	int rc, r = 0;

	/* A wrong argument list is a bug here, not a database error. */
	if ((int)(types ? strlen(types) : 0) != sqlite3_bind_parameter_count(st)) {
		log_error("database statement called with the wrong arguments",
		    "n=%d", (int)id);
		abort();
	}
	rc = bind_all(st, types, ap);

	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		if (row && (r = row(st, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = map_rc(s, rc);
		if (r == 0)
			r = -EIO;
		if (r != -EEXIST)
			log_error("database statement failed", "n=%d error=%s",
			    (int)id, logq(sqlite3_errmsg(s->db)));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r < 0 ? r : 0;
}

int store_exec(struct store *s, enum store_sql id, const char *types, ...)
{
	va_list ap;

	va_start(ap, types);
	int r = run(s, id, NULL, NULL, types, ap);
	va_end(ap);
	return r;
}

int store_query(struct store *s, enum store_sql id, store_row_cb row,
    void *arg, const char *types, ...)
{
	va_list ap;

	va_start(ap, types);
	int r = run(s, id, row, arg, types, ap);
	va_end(ap);
	return r;
}

int store_changes(struct store *s)
{
	return sqlite3_changes(s->db);
}

int64_t store_last_rowid(struct store *s)
{
	return (int64_t)sqlite3_last_insert_rowid(s->db);
}

const char *store_errmsg(struct store *s)
{
	return sqlite3_errmsg(s->db);
}

int store_corrupt(const struct store *s)
{
	return s->corrupt;
}

int store_begin(struct store *s)
{
	return store_exec(s, SQL_BEGIN, NULL);
}

int store_commit(struct store *s)
{
	int r = store_exec(s, SQL_COMMIT, NULL);

	if (r < 0)
		store_rollback(s);
	return r;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)store_exec(s, SQL_ROLLBACK, NULL);
}

const char *store_text(sqlite3_stmt *row, int col)
{
	const unsigned char *t = sqlite3_column_text(row, col);
	return t ? (const char *)t : "";
}

int store_null(sqlite3_stmt *row, int col)
{
	return sqlite3_column_type(row, col) == SQLITE_NULL;
}
