/*
 * Helpers for the queue's unit tests: cmocka, temporary directories, and
 * a job JWS signed by a fixed key. Static inline, so that each test takes
 * what it uses.
 */
#ifndef SKIFF_QTEST_H
#define SKIFF_QTEST_H

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <sodium.h>

#include "fsx.h"
#include "jwk.h"
#include "jws.h"
#include "xalloc.h"

static inline void qt_tmpdir(char out[PATH_MAX])
{
	const char *base = getenv("TMPDIR");

	snprintf(out, PATH_MAX, "%s/skiff-qunit-XXXXXX",
	    base && *base ? base : "/tmp");
	if (mkdtemp(out) == NULL)
		fail_msg("mkdtemp %s failed", out);
}

static inline void qt_rmdir(const char *path)
{
	assert_int_equal(fsx_remove_tree(path), 0);
}

/* A job for pool with labels (a JSON array text), signed by a fixed
 * key; jti given. Heap string. */
static inline char *qt_job(const char *jti, const char *pool,
    const char *labels, int64_t ttl)
{
	unsigned char seed[32];
	struct jwk k;
	int64_t now = (int64_t)time(NULL);
	char *payload, *jws = NULL;

	memset(seed, 7, sizeof(seed));
	memset(&k, 0, sizeof(k));
	k.type = JWK_ED25519;
	k.has_priv = 1;
	crypto_sign_seed_keypair(k.pub, k.priv, seed);
	snprintf(k.kid, sizeof(k.kid), "unit");
	payload = xasprintf("{\"iss\":\"unit\",\"aud\":\"%s\",\"jti\":\"%s\","
	    "\"iat\":%lld,\"exp\":%lld,\"job\":{\"name\":\"n\",\"labels\":%s,"
	    "\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}}", pool, jti,
	    (long long)now, (long long)(now + ttl), labels);
	if (jws_sign(&k, payload, strlen(payload), &jws) < 0)
		fail_msg("jws_sign failed");
	free(payload);
	return jws;
}

#endif
