/*
 * The answers of the PostgreSQL store's functions (queue/pgschema.sql):
 *   {"s": status, "b": body}                  success
 *   {"s": status, "code": c, "msg": m, ...}   error, with the optional
 *                                             "length" and "limit" of
 *                                             docs/protocol.md section 1
 * decoded into a status, a body and an API error. Whatever the bytes, an
 * answer that is not of this form is refused, never half read: the
 * request is then answered 500, never with a made-up error.
 */
#ifndef SKIFF_QUEUE_PGANS_H
#define SKIFF_QUEUE_PGANS_H

#include <stddef.h>

#include "apierr.h"

struct cJSON;

struct pgans {
	int status;		/* 100-599 */
	int is_error;
	struct apierr err;	/* when is_error */
	struct cJSON *root;	/* the whole answer, owned */
	struct cJSON *body;	/* "b" within root, or NULL */
};

/* 0, or -EINVAL when text is not an answer (a is then empty). */
int pgans_decode(const char *text, size_t n, struct pgans *a);
/* Takes the body out of the answer (the caller owns it; NULL for none or
 * JSON null). */
struct cJSON *pgans_take_body(struct pgans *a);
void pgans_free(struct pgans *a);

#endif
