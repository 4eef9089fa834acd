#include "jws.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "job.h"
#include "jsonx.h"
#include "jwk.h"
#include "xalloc.h"

struct compact {
	const char *seg[3];
	size_t len[3];
};

static const char *const seg_names[] = { "header", "payload", "signature" };

/*
 * Splits into three non-empty segments of canonical base64url (step 2 of
 * docs/protocol.md section 3.2). All three are checked here, before the
 * header is read, so that the reason code does not depend on which later
 * check happens to look at a segment first.
 */
static int split(const char *s, size_t n, struct compact *c, struct err *e)
{
	size_t start = 0, k = 0;

	if (n > JWS_MAX_COMPACT)
		return err_set(e, JOBR_TOO_LARGE,
		    "compact JWS is %zu bytes, over the cap of %d", n,
		    JWS_MAX_COMPACT);
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (k == 3)
			return err_set(e, JOBR_MALFORMED,
			    "compact JWS has more than three segments");
		c->seg[k] = s + start;
		c->len[k] = i - start;
		if (c->len[k] == 0)
			return err_set(e, JOBR_MALFORMED,
			    "compact JWS segment %zu is empty", k + 1);
		k++;
		start = i + 1;
	}
	if (k != 3)
		return err_set(e, JOBR_MALFORMED,
		    "compact JWS has %zu segments, not three", k);
	for (k = 0; k < 3; k++)
		if (!b64url_valid(c->seg[k], c->len[k]))
			return err_set(e, JOBR_BAD_BASE64,
			    "JWS %s is not canonical base64url", seg_names[k]);
	return 0;
}

static int decode_seg(const struct compact *c, int i, unsigned char *out,
    size_t max, size_t *outlen, struct err *e)
{
	int r = b64url_decode(c->seg[i], c->len[i], out, max, outlen);

	if (r == -E2BIG)
		return err_set(e, i == 0 ? JOBR_TOO_LARGE : JOBR_BAD_SIGNATURE,
		    "JWS %s is too long", seg_names[i]);
	if (r < 0)
		return err_set(e, JOBR_BAD_BASE64,
		    "JWS %s is not canonical base64url", seg_names[i]);
	return 0;
}

/* Reads alg, kid and crit from the decoded protected header. */
static int check_header(const unsigned char *h, size_t n,
    const struct jwks *trusted, const struct jwk **key, struct err *e)
{
	const char *alg, *kid;
	int jerr, r = 0;
	cJSON *j = jsonx_parse((const char *)h, n, JWS_MAX_HEADER, 2, &jerr);

	if (j == NULL || !cJSON_IsObject(j)) {
		r = err_set(e, JOBR_BAD_HEADER, "JWS header is not a JSON object");
		goto out;
	}
	if (jsonx_string(j, "alg", 32, &alg) < 0) {
		r = err_set(e, JOBR_ALG, "JWS header has no string 'alg'");
		goto out;
	}
	if (strcmp(alg, "EdDSA") != 0) {
		r = err_set(e, JOBR_ALG, "JWS alg '%.32s' is not allowed, only EdDSA",
		    alg);
		goto out;
	}
	if (cJSON_GetObjectItemCaseSensitive(j, "crit")) {
		r = err_set(e, JOBR_BAD_HEADER,
		    "JWS header has 'crit'; no extensions are understood");
		goto out;
	}
	if (jsonx_string(j, "kid", JWK_KID_MAX, &kid) < 0) {
		r = err_set(e, JOBR_BAD_HEADER,
		    "JWS header has no string 'kid' of at most %d bytes", JWK_KID_MAX);
		goto out;
	}
	if ((*key = jwks_find(trusted, kid)) == NULL)
		r = err_set(e, JOBR_UNKNOWN_KID,
		    "JWS kid '%.128s' is not in the trusted key set", kid);
out:
	cJSON_Delete(j);
	return r;
}

/* Appends the decoded payload segment to payload. */
static int decode_payload(const struct compact *c, struct buf *payload,
    struct err *e)
{
	size_t plen, before = payload->len;
	int r;

	if (buf_reserve(payload, b64url_decoded_max(c->len[1])) < 0)
		return err_set(e, JOBR_TOO_LARGE, "JWS payload too large");
	if ((r = decode_seg(c, 1, (unsigned char *)payload->data + before,
	    payload->cap - before - 1, &plen, e)) < 0)
		return r;
	payload->len = before + plen;
	payload->data[payload->len] = '\0';
	return 0;
}

int jws_verify(const char *compact, size_t n, const struct jwks *trusted,
    struct buf *payload, const struct jwk **keyp, struct err *e)
{
	struct compact c;
	unsigned char hdr[JWS_MAX_HEADER + 3], sig[64 + 3];
	size_t hlen, slen;
	const struct jwk *key = NULL;
	int r;

	if ((r = split(compact, n, &c, e)) < 0)
		return r;
	if (c.len[0] > (JWS_MAX_HEADER / 3 + 1) * 4)
		return err_set(e, JOBR_TOO_LARGE, "JWS header is over %d bytes",
		    JWS_MAX_HEADER);
	if ((r = decode_seg(&c, 0, hdr, sizeof(hdr), &hlen, e)) < 0)
		return r;
	if (hlen > JWS_MAX_HEADER)
		return err_set(e, JOBR_TOO_LARGE, "JWS header is over %d bytes",
		    JWS_MAX_HEADER);
	if ((r = check_header(hdr, hlen, trusted, &key, e)) < 0)
		return r;
	if ((r = decode_seg(&c, 2, sig, sizeof(sig), &slen, e)) < 0)
		return r;
	if (slen != crypto_sign_BYTES)
		return err_set(e, JOBR_BAD_SIGNATURE,
		    "JWS signature is %zu bytes, not 64", slen);
	/* The signing input is the first two segments exactly as received. */
	if (crypto_sign_verify_detached(sig, (const unsigned char *)compact,
	    c.len[0] + 1 + c.len[1], key->pub) != 0)
		return err_set(e, JOBR_BAD_SIGNATURE,
		    "Ed25519 signature does not verify with key '%s'", key->kid);
	if ((r = decode_payload(&c, payload, e)) < 0)
		return r;
	if (keyp)
		*keyp = key;
	return 0;
}

int jws_peek_payload(const char *compact, size_t n, struct buf *payload,
    struct err *e)
{
	struct compact c;
	int r;

	if ((r = split(compact, n, &c, e)) < 0)
		return r;
	return decode_payload(&c, payload, e);
}

int jws_sign(const struct jwk *key, const void *payload, size_t n, char **out)
{
	unsigned char sig[crypto_sign_BYTES];
	struct buf b = BUF_INIT((size_t)JWS_MAX_COMPACT * 2);
	char *h, *p, *s, *hdr;

	if (key->type != JWK_ED25519 || !key->has_priv)
		return -EINVAL;
	if (n > JWS_MAX_COMPACT)
		return -E2BIG;
	hdr = xasprintf("{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
	    key->kid);
	h = b64url_encode(hdr, strlen(hdr));
	p = b64url_encode(payload, n);
	buf_printf(&b, "%s.%s", h, p);
	crypto_sign_detached(sig, NULL, (const unsigned char *)b.data, b.len,
	    key->priv);
	s = b64url_encode(sig, sizeof(sig));
	buf_printf(&b, ".%s", s);
	free(hdr);
	free(h);
	free(p);
	free(s);
	if (b.len > JWS_MAX_COMPACT) {
		buf_free(&b);
		return -E2BIG;
	}
	*out = buf_steal(&b, NULL);
	return 0;
}
