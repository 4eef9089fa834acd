#include "seal.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "job.h"
#include "jwk.h"
#include "xalloc.h"

int seal_value(const struct jwk *pool_key, const void *value, size_t n,
    char **out)
{
	if (pool_key->type != JWK_X25519)
		return -EINVAL;
	if (n == 0 || n > JOB_MAX_SECRET)
		return -E2BIG;
	unsigned char *ct = xmalloc(n + crypto_box_SEALBYTES);
	if (crypto_box_seal(ct, value, n, pool_key->pub) != 0) {
		free(ct);
		return -EIO;
	}
	*out = b64url_encode(ct, n + crypto_box_SEALBYTES);
	free(ct);
	return 0;
}

int seal_open(const struct jwk *pool_key, const char *sealed, char **out,
    size_t *outlen)
{
	size_t len = strlen(sealed), n;
	size_t max = b64url_decoded_max(len);
	int r = -EINVAL;

	if (pool_key->type != JWK_X25519 || !pool_key->has_priv)
		return -EINVAL;
	unsigned char *ct = xmalloc(max);
	if (b64url_decode(sealed, len, ct, max, &n) < 0 ||
	    n <= crypto_box_SEALBYTES)
		goto out;
	char *v = xmalloc(n - crypto_box_SEALBYTES + 1);
	if (crypto_box_seal_open((unsigned char *)v, ct, n, pool_key->pub,
	    pool_key->priv) != 0) {
		free(v);
		r = -EBADMSG;
		goto out;
	}
	v[n - crypto_box_SEALBYTES] = '\0';
	*out = v;
	*outlen = n - crypto_box_SEALBYTES;
	r = 0;
out:
	free(ct);
	return r;
}
