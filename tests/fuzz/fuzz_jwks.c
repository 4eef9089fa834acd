/*
 * Trusted key sets and single keys: jwks_parse as an agent reads its
 * trusted JWKS, and the one-key path of jwk_load (a private signing key
 * for skiffctl, the pool key for an agent). These files are local and
 * written by operators, but they come from many tools, and a bad one must
 * be refused with a message, never crash the agent at start.
 *
 * Checks beyond "does not crash": a set that loads holds only public
 * Ed25519 keys with valid, distinct kids, and a private key that loads
 * has x matching d.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "jsonx.h"
#include "jwk.h"

static void die(const char *what)
{
	fprintf(stderr, "fuzz_jwks: %s\n", what);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		die("sodium_init");
	return 0;
}

static void check_set(const struct jwks *set)
{
	if (set->n < 1 || set->n > JWKS_MAX_KEYS)
		die("key set of a bad size loaded");
	for (size_t i = 0; i < set->n; i++) {
		const struct jwk *k = &set->keys[i];
		if (k->type != JWK_ED25519 || k->has_priv)
			die("a trusted key is not a public Ed25519 key");
		if (!jwk_kid_valid(k->kid))
			die("a trusted key has an invalid kid");
		if (jwks_find(set, k->kid) != k)
			die("two trusted keys share a kid");
	}
}

static void check_key(const struct jwk *k)
{
	unsigned char pub[32], sk[64];

	if (!jwk_kid_valid(k->kid))
		die("a key with an invalid kid loaded");
	if (!k->has_priv)
		return;
	if (k->type == JWK_ED25519) {
		crypto_sign_seed_keypair(pub, sk, k->priv);
		if (memcmp(sk, k->priv, 64) != 0)
			die("Ed25519 secret key is not seed || public");
	} else {
		crypto_scalarmult_base(pub, k->priv);
	}
	if (memcmp(pub, k->pub, 32) != 0)
		die("a private key whose x does not match d loaded");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwks set = { NULL, 0 };
	struct jwk k;
	struct err e;
	int jerr;

	if (jwks_parse((const char *)data, size, &set, &e) == 0) {
		check_set(&set);
		jwks_free(&set);
	} else if (set.keys != NULL || e.msg[0] == '\0') {
		die("failed parse left keys behind or said nothing");
	}
	cJSON *j = jsonx_parse((const char *)data, size, JWKS_MAX_FILE, 8, &jerr);
	if (j == NULL)
		return 0;
	if (jwk_from_json(j, &k, &e) == 0) {
		check_key(&k);
		cJSON *back = jwk_to_json(&k, 1);
		struct jwk again;
		if (jwk_from_json(back, &again, &e) < 0)
			die("a loaded key does not survive jwk_to_json");
		if (memcmp(again.pub, k.pub, 32) != 0 ||
		    again.has_priv != k.has_priv || again.type != k.type)
			die("jwk_to_json changed the key");
		cJSON_Delete(back);
		jwk_wipe(&again);
		jwk_wipe(&k);
	}
	cJSON_Delete(j);
	return 0;
}
