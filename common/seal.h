/*
 * Sealed secrets: libsodium sealed boxes (X25519, XSalsa20-Poly1305) to
 * the pool's public key, in base64url. The queue stores only ciphertext;
 * agents open with the pool's private key (job_open_secrets).
 */
#ifndef SKIFF_SEAL_H
#define SKIFF_SEAL_H

#include <stddef.h>

struct jwk;

/* Seals value to the X25519 public key; *out is a heap string. */
int seal_value(const struct jwk *pool_key, const void *value, size_t n,
    char **out);
/* Opens a base64url sealed box; *out is NUL-terminated, wipe after use.
 * -EINVAL: not base64url of a sealed box; -EBADMSG: does not open. */
int seal_open(const struct jwk *pool_key, const char *sealed, char **out,
    size_t *outlen);

#endif
