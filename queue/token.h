/*
 * Tokens and identifiers (docs/protocol.md section 1). Tokens are 256
 * random bits in base64url behind a prefix that says what they are for
 * (srt_, sat_, sadm_); the queue keeps only their SHA-256 and compares
 * hashes in constant time. Identifiers are 128 random bits behind their
 * prefix (agt_, lse_, upl_, tok_). The random part never starts with '-',
 * so that neither an id nor a token looks like an option, whatever the
 * prefix.
 */
#ifndef SKIFF_QUEUE_TOKEN_H
#define SKIFF_QUEUE_TOKEN_H

#include <stddef.h>

#define TOKEN_MAX 128
#define TOKEN_HASH_BYTES 32
#define ID_MAX 64

/* [A-Za-z0-9_.-]{1,128} */
int token_valid(const char *s, size_t n);
/* [A-Za-z0-9_-]{1,64} */
int token_id_valid(const char *s);
/* A new token: prefix then 43 base64url characters; heap string. */
char *token_new(const char *prefix);
/* A new identifier: prefix then 22 base64url characters, into out. */
void token_id_new(const char *prefix, char out[ID_MAX + 1]);
void token_hash(const char *tok, size_t n, unsigned char out[TOKEN_HASH_BYTES]);
void token_hash_hex(const char *tok, size_t n, char out[2 * TOKEN_HASH_BYTES + 1]);
/* 1 when equal; constant time in the contents. */
int token_hash_equal(const unsigned char *a, const unsigned char *b);
/*
 * The token of an "Authorization: Bearer <token>" header value. 0 and
 * *tok, *n set; -ENOENT when the header is absent or not Bearer; -EINVAL
 * when the token is not of the token form.
 */
int token_from_authorization(const char *header, const char **tok, size_t *n);

#endif
