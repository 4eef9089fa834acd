#include "jwk.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "fsx.h"
#include "jsonx.h"
#include "xalloc.h"

static const char *const crv_names[] = { "Ed25519", "X25519" };

int jwk_kid_valid(const char *kid)
{
	size_t n = strlen(kid);

	if (n == 0 || n > JWK_KID_MAX)
		return 0;
	return strspn(kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_.:-") == n;
}

/* Decodes a base64url member into exactly 32 bytes. */
static int get_key32(const cJSON *j, const char *member, unsigned char out[32],
    struct err *e)
{
	const char *s;
	size_t n;

	if (jsonx_string(j, member, 64, &s) < 0)
		return err_set(e, 0, "JWK member '%s' missing or not a string",
		    member);
	if (b64url_decode(s, strlen(s), out, 32, &n) < 0 || n != 32)
		return err_set(e, 0, "JWK member '%s' is not 32 bytes of base64url",
		    member);
	return 0;
}

/* Derives the public half from d and checks it against x. */
static int load_private(const cJSON *j, struct jwk *k, struct err *e)
{
	unsigned char d[32], pub[32];
	int r = 0;

	if (get_key32(j, "d", d, e) < 0)
		return -EINVAL;
	if (k->type == JWK_ED25519) {
		crypto_sign_seed_keypair(pub, k->priv, d);
	} else {
		memcpy(k->priv, d, 32);
		crypto_scalarmult_base(pub, d);
	}
	if (sodium_memcmp(pub, k->pub, 32) != 0)
		r = err_set(e, 0, "JWK 'x' does not match its private key 'd'");
	else
		k->has_priv = 1;
	sodium_memzero(d, sizeof(d));
	return r;
}

int jwk_from_json(const cJSON *j, struct jwk *out, struct err *e)
{
	const char *kty, *crv, *kid;
	struct jwk k;

	memset(&k, 0, sizeof(k));
	if (!cJSON_IsObject(j))
		return err_set(e, 0, "JWK is not a JSON object");
	if (jsonx_string(j, "kty", 16, &kty) < 0 || strcmp(kty, "OKP") != 0)
		return err_set(e, 0, "JWK 'kty' must be \"OKP\"");
	if (jsonx_string(j, "crv", 16, &crv) < 0)
		return err_set(e, 0, "JWK 'crv' missing");
	if (strcmp(crv, "Ed25519") == 0)
		k.type = JWK_ED25519;
	else if (strcmp(crv, "X25519") == 0)
		k.type = JWK_X25519;
	else
		return err_set(e, 0, "JWK 'crv' %s is not Ed25519 or X25519", crv);
	if (jsonx_string(j, "kid", JWK_KID_MAX, &kid) < 0 || !jwk_kid_valid(kid))
		return err_set(e, 0, "JWK 'kid' missing or not of [A-Za-z0-9_.:-]{1,128}");
	memcpy(k.kid, kid, strlen(kid) + 1);
	if (get_key32(j, "x", k.pub, e) < 0)
		return -EINVAL;
	if (cJSON_GetObjectItemCaseSensitive(j, "d") &&
	    load_private(j, &k, e) < 0) {
		sodium_memzero(&k, sizeof(k));
		return -EINVAL;
	}
	*out = k;
	sodium_memzero(&k, sizeof(k));
	return 0;
}

static cJSON *parse_file(const char *path, struct err *e)
{
	struct buf b = BUF_INIT(JWKS_MAX_FILE);
	int jerr, r = fsx_read_file(path, JWKS_MAX_FILE, &b);
	cJSON *j = NULL;

	if (r < 0) {
		err_set(e, 0, "%s: %s", path, r == -E2BIG ? "file too large" :
		    strerror(-r));
	} else if ((j = jsonx_parse(b.data, b.len, JWKS_MAX_FILE, 8, &jerr)) == NULL) {
		err_set(e, 0, "%s: not valid JSON", path);
	}
	sodium_memzero(b.data, b.cap);
	buf_free(&b);
	return j;
}

int jwk_load(const char *path, struct jwk *out, struct err *e)
{
	cJSON *j = parse_file(path, e);
	int r;

	if (j == NULL)
		return -EINVAL;
	r = jwk_from_json(j, out, e);
	cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "d");
	if (cJSON_IsString(d) && d->valuestring)
		sodium_memzero(d->valuestring, strlen(d->valuestring));
	if (r < 0 && e) {
		char msg[sizeof(e->msg)];
		memcpy(msg, e->msg, sizeof(msg));
		err_set(e, 0, "%s: %s", path, msg);
	}
	cJSON_Delete(j);
	return r;
}

/* 1 when the optional member is absent or exactly want. */
static int absent_or(const cJSON *item, const char *key, const char *want)
{
	const char *v;
	int r = jsonx_string(item, key, 16, &v);

	return r == -ENOENT || (r == 0 && strcmp(v, want) == 0);
}

static int add_trusted(struct jwks *set, const cJSON *item, size_t i,
    struct err *e)
{
	const char *kty, *crv;
	struct jwk k;

	if (!cJSON_IsObject(item))
		return err_set(e, 0, "key %zu is not a JSON object", i);
	if (cJSON_GetObjectItemCaseSensitive(item, "d"))
		return err_set(e, 0, "key %zu: a private key (member 'd') does not "
		    "belong in a trusted key set", i);
	/* Only OKP Ed25519 keys verify jobs (docs/protocol.md section 2);
	 * a set that also holds, say, an RSA key for another purpose is
	 * fine, the other keys are just not used. */
	if (jsonx_string(item, "kty", 16, &kty) == 0 && strcmp(kty, "OKP") != 0)
		return 0;
	if (jsonx_string(item, "crv", 16, &crv) == 0 &&
	    strcmp(crv, "Ed25519") != 0 && strcmp(crv, "X25519") != 0)
		return 0;
	if (jwk_from_json(item, &k, e) < 0) {
		if (e) {
			char msg[sizeof(e->msg)];
			memcpy(msg, e->msg, sizeof(msg));
			err_set(e, 0, "key %zu: %s", i, msg);
		}
		return -EINVAL;
	}
	if (k.type != JWK_ED25519)
		return 0;	/* other key types are not for signatures */
	if (!absent_or(item, "use", "sig") || !absent_or(item, "alg", "EdDSA"))
		return 0;
	if (jwks_find(set, k.kid))
		return err_set(e, 0, "key %zu: kid '%s' appears twice", i, k.kid);
	set->keys = xreallocarray(set->keys, set->n + 1, sizeof(*set->keys));
	set->keys[set->n++] = k;
	return 0;
}

int jwks_parse(const char *text, size_t n, struct jwks *out, struct err *e)
{
	struct jwks set = { NULL, 0 };
	const cJSON *keys, *item;
	int jerr, r = 0;
	size_t i = 0;
	cJSON *j = jsonx_parse(text, n, JWKS_MAX_FILE, 8, &jerr);

	if (j == NULL)
		return err_set(e, 0, "key set is not valid JSON");
	keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
	if (!cJSON_IsArray(keys)) {
		r = err_set(e, 0, "key set has no 'keys' array");
		goto out;
	}
	if (cJSON_GetArraySize(keys) > JWKS_MAX_KEYS) {
		r = err_set(e, 0, "key set has more than %d keys", JWKS_MAX_KEYS);
		goto out;
	}
	cJSON_ArrayForEach(item, keys) {
		if ((r = add_trusted(&set, item, i++, e)) < 0)
			goto out;
	}
	if (set.n == 0) {
		r = err_set(e, 0, "key set holds no Ed25519 signing key");
		goto out;
	}
	*out = set;
	set.keys = NULL;
out:
	jwks_free(&set);
	cJSON_Delete(j);
	return r;
}

int jwks_load(const char *path, struct jwks *out, struct err *e)
{
	struct buf b = BUF_INIT(JWKS_MAX_FILE);
	int r = fsx_read_file(path, JWKS_MAX_FILE, &b);

	if (r < 0) {
		r = err_set(e, 0, "%s: %s", path,
		    r == -E2BIG ? "file too large" : strerror(-r));
	} else if ((r = jwks_parse(buf_cstr(&b), b.len, out, e)) < 0 && e) {
		char msg[sizeof(e->msg)];
		memcpy(msg, e->msg, sizeof(msg));
		err_set(e, 0, "%s: %s", path, msg);
	}
	buf_free(&b);
	return r;
}

const struct jwk *jwks_find(const struct jwks *set, const char *kid)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->keys[i].kid, kid) == 0)
			return &set->keys[i];
	return NULL;
}

void jwks_free(struct jwks *set)
{
	if (set == NULL || set->keys == NULL)
		return;
	sodium_memzero(set->keys, set->n * sizeof(*set->keys));
	free(set->keys);
	set->keys = NULL;
	set->n = 0;
}

void jwk_wipe(struct jwk *k)
{
	if (k)
		sodium_memzero(k, sizeof(*k));
}

void jwk_thumbprint(const struct jwk *k, char out[44])
{
	unsigned char digest[32];
	char *x = b64url_encode(k->pub, 32);
	char *canon = xasprintf("{\"crv\":\"%s\",\"kty\":\"OKP\",\"x\":\"%s\"}",
	    crv_names[k->type], x);
	char *t;

	crypto_hash_sha256(digest, (const unsigned char *)canon, strlen(canon));
	t = b64url_encode(digest, sizeof(digest));
	memcpy(out, t, 44);
	free(t);
	free(canon);
	free(x);
}

int jwk_generate(enum jwk_type type, const char *kid, struct jwk *out)
{
	struct jwk k;

	memset(&k, 0, sizeof(k));
	k.type = type;
	k.has_priv = 1;
	if (type == JWK_ED25519) {
		crypto_sign_keypair(k.pub, k.priv);
	} else {
		randombytes_buf(k.priv, 32);
		crypto_scalarmult_base(k.pub, k.priv);
	}
	if (kid) {
		if (!jwk_kid_valid(kid)) {
			sodium_memzero(&k, sizeof(k));
			return -EINVAL;
		}
		memcpy(k.kid, kid, strlen(kid) + 1);
	} else {
		jwk_thumbprint(&k, k.kid);
	}
	*out = k;
	sodium_memzero(&k, sizeof(k));
	return 0;
}

static void add_b64(cJSON *j, const char *name, const unsigned char *p)
{
	char *s = b64url_encode(p, 32);
	cJSON_AddStringToObject(j, name, s);
	sodium_memzero(s, strlen(s));
	free(s);
}

cJSON *jwk_to_json(const struct jwk *k, int with_private)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "kty", "OKP");
	cJSON_AddStringToObject(j, "crv", crv_names[k->type]);
	cJSON_AddStringToObject(j, "kid", k->kid);
	if (k->type == JWK_ED25519) {
		cJSON_AddStringToObject(j, "use", "sig");
		cJSON_AddStringToObject(j, "alg", "EdDSA");
	} else {
		cJSON_AddStringToObject(j, "use", "enc");
	}
	add_b64(j, "x", k->pub);
	if (with_private && k->has_priv)
		add_b64(j, "d", k->priv);	/* Ed25519: the seed is the first 32 bytes */
	return j;
}
