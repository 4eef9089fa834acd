/*
 * Viewer tokens on the SQLite store (docs/protocol.md section 5.9): made
 * by an operator for the web view and for anyone who may look but not
 * touch. Like registration tokens (agents.c, which also creates and lists
 * these) they are kept as SHA-256 hashes only; one indexed lookup by hash
 * authenticates a request.
 */
#include "queue.h"

#include <errno.h>

#include "apierr.h"
#include "log.h"
#include "store.h"
#include "token.h"

static int one_row(sqlite3_stmt *row, void *arg)
{
	(void)row;
	*(int *)arg = 1;
	return 1;
}

int viewers_check(struct queue *q, const char *tok, size_t n,
    struct apierr *e)
{
	unsigned char h[TOKEN_HASH_BYTES];
	int found = 0;
	int r;

	token_hash(tok, n, h);
	r = store_query(q->st, SQL_VIEWER_BY_HASH, one_row, &found, "b", h,
	    sizeof(h));
	if (r < 0)
		return queue_store_err(q, r, e);
	if (!found)
		return apierr_set(e, 401, "unauthorized", "viewer token is not "
		    "valid");
	return 0;
}

int viewers_revoke(struct queue *q, const char *id, struct apierr *e)
{
	int found = 0;
	int r = store_exec(q->st, SQL_VIEWER_REVOKE, "it", queue_now(), id);

	if (r == 0 && store_changes(q->st) > 0)
		found = 1;
	else if (r == 0)
		r = store_query(q->st, SQL_VIEWER_GET, one_row, &found, "t", id);
	if (r < 0)
		return queue_store_err(q, r, e);
	if (found)
		log_info("viewer token revoked", "id=%s", id);
	return found;
}
