/*
 * JSON Web Keys for skiff (RFC 7517, RFC 8037): OKP keys on Ed25519 (job
 * signing) and X25519 (the pool key that seals secrets), and JWK sets of
 * trusted signing keys.
 */
#ifndef SKIFF_JWK_H
#define SKIFF_JWK_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct err;

#define JWK_KID_MAX 128
#define JWKS_MAX_KEYS 64
#define JWKS_MAX_FILE (64 * 1024)

enum jwk_type { JWK_ED25519, JWK_X25519 };

struct jwk {
	enum jwk_type type;
	int has_priv;
	char kid[JWK_KID_MAX + 1];
	unsigned char pub[32];
	/* Ed25519: libsodium's 64-byte secret key (seed || pub);
	 * X25519: the 32-byte scalar. */
	unsigned char priv[64];
};

struct jwks {
	struct jwk *keys;
	size_t n;
};

int jwk_from_json(const cJSON *j, struct jwk *out, struct err *e);
/* A JWK file with one key, public or private. */
int jwk_load(const char *path, struct jwk *out, struct err *e);
/* Trusted signing keys: Ed25519 public keys only; private keys refused. */
int jwks_parse(const char *text, size_t n, struct jwks *out, struct err *e);
int jwks_load(const char *path, struct jwks *out, struct err *e);
const struct jwk *jwks_find(const struct jwks *set, const char *kid);
void jwks_free(struct jwks *set);
void jwk_wipe(struct jwk *k);

/* kid may be NULL for the RFC 7638 thumbprint. */
int jwk_generate(enum jwk_type type, const char *kid, struct jwk *out);
/* base64url SHA-256 thumbprint (RFC 7638), 43 characters + NUL. */
void jwk_thumbprint(const struct jwk *k, char out[44]);
cJSON *jwk_to_json(const struct jwk *k, int with_private);
int jwk_kid_valid(const char *kid);

#endif
