/*
 * Helpers for the unit tests of common/: real temporary directories, fixed
 * keys made from known seeds, and JWS built by hand so that a test can
 * sign any header and payload, also ones skiff itself would never make.
 *
 * Everything is static inline so that each test program takes what it
 * uses and -Wunused-function stays quiet about the rest.
 */
#ifndef SKIFF_TESTKIT_H
#define SKIFF_TESTKIT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <cmocka.h>
#include <sodium.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "fsx.h"
#include "job.h"
#include "jwk.h"
#include "jws.h"
#include "xalloc.h"

/* A fixed "now" for claim checks: 2025-11-25T04:00:00Z. */
#define TK_NOW 1764043200LL
#define TK_POOL "linux-x64"

/* Asserts that a call failed with the reason code named (section 11). */
#define assert_reason(rc, errp, want) do {				\
	int rc_ = (rc);							\
	const struct err *ep_ = (errp);					\
	if (rc_ >= 0)							\
		fail_msg("expected rejection '%s', got success", (want));	\
	const char *got_ = job_reason_code((enum job_reason)ep_->code);	\
	if (strcmp(got_, (want)) != 0)					\
		fail_msg("expected rejection '%s', got '%s': %s", (want),	\
		    got_, ep_->msg);					\
} while (0)

#define assert_ok(rc, errp) do {					\
	int rc_ = (rc);							\
	const struct err *ep_ = (errp);					\
	if (rc_ < 0)							\
		fail_msg("expected success, got %d (%s): %s", rc_,		\
		    job_reason_code((enum job_reason)ep_->code), ep_->msg);	\
} while (0)

static inline void tk_init(void)
{
	if (sodium_init() < 0)
		fail_msg("sodium_init failed");
}

/* A fresh directory under $TMPDIR (or /tmp); remove with tk_rmdir. */
static inline void tk_tmpdir(char out[PATH_MAX])
{
	const char *base = getenv("TMPDIR");

	snprintf(out, PATH_MAX, "%s/skiff-unit-XXXXXX",
	    base && *base ? base : "/tmp");
	if (mkdtemp(out) == NULL)
		fail_msg("mkdtemp %s failed", out);
}

static inline void tk_rmdir(const char *path)
{
	assert_int_equal(fsx_remove_tree(path), 0);
}

/* An Ed25519 key from a seed of 32 equal bytes, so tests are repeatable. */
static inline void tk_ed25519(struct jwk *k, unsigned char seedbyte,
    const char *kid)
{
	unsigned char seed[32];

	memset(seed, seedbyte, sizeof(seed));
	memset(k, 0, sizeof(*k));
	k->type = JWK_ED25519;
	k->has_priv = 1;
	crypto_sign_seed_keypair(k->pub, k->priv, seed);
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
}

static inline void tk_x25519(struct jwk *k, unsigned char seedbyte,
    const char *kid)
{
	memset(k, 0, sizeof(*k));
	k->type = JWK_X25519;
	k->has_priv = 1;
	memset(k->priv, seedbyte, 32);
	crypto_scalarmult_base(k->pub, k->priv);
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
}

/* A trusted set holding the public halves of the n keys given. */
static inline void tk_jwks(struct jwks *set, const struct jwk *keys, size_t n)
{
	set->keys = xcalloc(n, sizeof(*set->keys));
	set->n = n;
	for (size_t i = 0; i < n; i++) {
		set->keys[i] = keys[i];
		set->keys[i].has_priv = 0;
		memset(set->keys[i].priv, 0, sizeof(set->keys[i].priv));
	}
}

static inline char *tk_b64(const void *p, size_t n)
{
	return b64url_encode(p, n);
}

/* "a.b.c" from three raw strings; heap. */
static inline char *tk_join(const char *a, const char *b, const char *c)
{
	return xasprintf("%s.%s.%s", a, b, c);
}

/* A compact JWS of header and payload exactly as given, signed by k. */
static inline char *tk_sign_raw(const struct jwk *k, const char *header,
    const void *payload, size_t plen)
{
	unsigned char sig[crypto_sign_BYTES];
	char *h = tk_b64(header, strlen(header));
	char *p = tk_b64(payload, plen);
	char *input = xasprintf("%s.%s", h, p);
	crypto_sign_detached(sig, NULL, (const unsigned char *)input,
	    strlen(input), k->priv);
	char *s = tk_b64(sig, sizeof(sig));
	char *out = tk_join(h, p, s);

	free(h);
	free(p);
	free(input);
	free(s);
	return out;
}

/* The usual header for key k. */
static inline char *tk_header(const struct jwk *k)
{
	return xasprintf("{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
	    k->kid);
}

/* Signs payload with k under the usual header. */
static inline char *tk_sign(const struct jwk *k, const char *payload)
{
	char *h = tk_header(k);
	char *out = tk_sign_raw(k, h, payload, strlen(payload));

	free(h);
	return out;
}

/* Claims around a job object (JSON text), times relative to TK_NOW. */
static inline char *tk_claims(const char *aud_json, const char *jti,
    int64_t iat, int64_t exp, const char *job_json)
{
	return xasprintf("{\"iss\":\"unit@test\",\"aud\":%s,\"jti\":\"%s\","
	    "\"iat\":%lld,\"exp\":%lld,\"job\":%s}", aud_json, jti,
	    (long long)iat, (long long)exp, job_json);
}

#define TK_JOB_MIN "{\"name\":\"unit\",\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}"

/* Valid claims (pool TK_POOL, an hour from TK_NOW) around job_json. */
static inline char *tk_payload(const char *job_json)
{
	return tk_claims("\"" TK_POOL "\"", "jobid-0001", TK_NOW - 10,
	    TK_NOW + 3600, job_json);
}

/* Reads a whole small file into a heap string. */
static inline char *tk_slurp(const char *path, size_t *len)
{
	struct buf b = BUF_INIT(16 << 20);

	if (fsx_read_file(path, b.max, &b) < 0)
		fail_msg("cannot read %s", path);
	return buf_steal(&b, len);
}

#endif
