/*
 * The agent's trust boundary: a compact JWS off the network through the
 * whole pipeline of docs/protocol.md section 3.2 (jws_verify against a
 * fixed trusted key, job_parse of the payload, claims, sealed secrets),
 * and job_parse directly on the raw input, since mutations of a signed
 * JWS rarely keep its signature and the payload parser must hold up to
 * anything a trusted signer's tooling might produce.
 *
 * Beyond "does not crash", it checks the promises the pipeline makes:
 * every rejection carries a known reason code, an accepted JWS is in its
 * one canonical encoding, and an accepted job is within the limits.
 *
 * An input that starts with '{' is also signed with the trusted key and
 * run through the whole pipeline, so that the fuzzer reaches everything
 * past the signature check too.
 *
 * The fixed keys are derived from the seeds below; the seed corpus is
 * signed with the same key (tests/fuzz/make_corpus.py).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "fuzz.h"
#include "job.h"
#include "jwk.h"
#include "jws.h"
#include "xalloc.h"

#define FUZZ_SIGN_SEED "skiff-fuzz-signing-key-seed-0001"
#define FUZZ_POOL_SCALAR "skiff-fuzz-pool-key-scalar-00001"
#define FUZZ_KID "fuzz-key"
#define FUZZ_POOL "fuzz-pool"
#define FUZZ_NOW 1764043200

static struct jwks trusted;
static struct jwk pool_key;
static struct jwk sign_key;

static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "fuzz_jws_job: %s (%s: %s)\n", what,
	    e ? job_reason_code((enum job_reason)e->code) : "-",
	    e ? e->msg : "-");
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char pub[32], sk[64];
	struct err e;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		die("sodium_init", NULL);
	crypto_sign_seed_keypair(pub, sk, (const unsigned char *)FUZZ_SIGN_SEED);
	sign_key.type = JWK_ED25519;
	sign_key.has_priv = 1;
	memcpy(sign_key.pub, pub, 32);
	memcpy(sign_key.priv, sk, 64);
	memcpy(sign_key.kid, FUZZ_KID, sizeof(FUZZ_KID));
	sodium_memzero(sk, sizeof(sk));
	char *x = b64url_encode(pub, sizeof(pub));
	char *set = xasprintf("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"kid\":\"" FUZZ_KID "\",\"use\":\"sig\",\"alg\":\"EdDSA\","
	    "\"x\":\"%s\"}]}", x);
	if (jwks_parse(set, strlen(set), &trusted, &e) < 0)
		die("trusted key set", &e);
	free(set);
	free(x);
	pool_key.type = JWK_X25519;
	pool_key.has_priv = 1;
	memcpy(pool_key.priv, FUZZ_POOL_SCALAR, 32);
	crypto_scalarmult_base(pool_key.pub, pool_key.priv);
	memcpy(pool_key.kid, "fuzz-pool-key", sizeof("fuzz-pool-key"));
	return 0;
}

static void check_rejection(const struct err *e)
{
	if (e->code <= JOBR_OK || e->code >= JOBR_COUNT)
		die("rejection without a reason code", e);
	if (e->msg[0] == '\0')
		die("rejection without a message", e);
}

/* An accepted JWS has exactly one spelling: each segment re-encodes to
 * itself, so a replayed job cannot pass as new under another encoding. */
static void check_canonical(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size;
	static unsigned char raw[JWS_MAX_COMPACT];

	for (int i = 0; i < 3; i++) {
		const char *dot = memchr(s, '.', (size_t)(end - s));
		size_t len = dot ? (size_t)(dot - s) : (size_t)(end - s), n;
		if ((i < 2) != (dot != NULL))
			die("accepted JWS without three segments", NULL);
		if (b64url_decode(s, len, raw, sizeof(raw), &n) < 0)
			die("accepted JWS segment does not decode", NULL);
		char *again = b64url_encode(raw, n);
		if (strlen(again) != len || memcmp(again, s, len) != 0)
			die("accepted JWS segment is not canonical", NULL);
		free(again);
		s += len + 1;
	}
}

static void check_kv(const struct job_kv *kv, size_t n, size_t max)
{
	if (n > max)
		die("too many env entries", NULL);
	for (size_t i = 0; i < n; i++)
		if (!job_env_name_valid(kv[i].name) || kv[i].value == NULL ||
		    strlen(kv[i].value) > JOB_MAX_ENV_VALUE)
			die("bad env entry accepted", NULL);
}

/* job.services: names are unique DNS labels, ports in range, a TCP wait
 * on one of the service's ports. */
static void check_services(const struct job *j)
{
	if (j->nservices > JOB_MAX_SERVICES)
		die("too many services accepted", NULL);
	for (size_t i = 0; i < j->nservices; i++) {
		const struct job_service *sv = &j->services[i];
		int wait_ok = sv->wait != JOB_WAIT_TCP;
		if (!job_service_name_valid(sv->name) || sv->image == NULL ||
		    !job_env_name_valid(sv->env_name))
			die("bad service accepted", NULL);
		for (size_t k = 0; k < i; k++)
			if (strcmp(j->services[k].name, sv->name) == 0 ||
			    strcmp(j->services[k].env_name, sv->env_name) == 0)
				die("duplicate service accepted", NULL);
		if (sv->nports > JOB_MAX_SERVICE_PORTS ||
		    sv->ncommand > JOB_MAX_SERVICE_ARGS ||
		    (sv->command && sv->ncommand == 0) ||
		    sv->wait_timeout < 1 || sv->wait_timeout > JOB_MAX_SERVICE_WAIT)
			die("service over a limit accepted", NULL);
		for (size_t k = 0; k < sv->nports; k++) {
			if (sv->ports[k] < 1 || sv->ports[k] > 65535)
				die("bad service port accepted", NULL);
			if (sv->ports[k] == sv->wait_port)
				wait_ok = 1;
		}
		if (!wait_ok)
			die("tcp wait on an unpublished port accepted", NULL);
		check_kv(sv->env, sv->nenv, JOB_MAX_ENV);
	}
}

/* What job_parse promises about a job it returns. */
static void check_job(const struct job *j)
{
	if (!job_jti_valid(j->jti) || j->naud < 1 || j->iss == NULL)
		die("bad claims accepted", NULL);
	if (j->name == NULL || strlen(j->name) > JOB_MAX_NAME ||
	    j->timeout < 1 || j->timeout > JOB_MAX_TIMEOUT)
		die("bad job header accepted", NULL);
	if (j->nsteps < 1 || j->nsteps > JOB_MAX_STEPS ||
	    j->nlabels > JOB_MAX_LABELS || j->ninputs > JOB_MAX_INPUTS ||
	    j->nregistries > JOB_MAX_REGISTRIES || j->nsecrets > JOB_MAX_SECRETS)
		die("job over a count limit accepted", NULL);
	check_kv(j->env, j->nenv, JOB_MAX_ENV);
	for (size_t i = 0; i < j->nlabels; i++)
		if (!job_label_valid(j->labels[i]))
			die("bad label accepted", NULL);
	for (size_t i = 0; i < j->nsecrets; i++)
		if (!job_env_name_valid(j->secrets[i].name))
			die("bad secret name accepted", NULL);
	for (size_t i = 0; i < j->ninputs; i++)
		if (!job_relpath_valid(j->inputs[i].path, 0))
			die("bad input path accepted", NULL);
	for (size_t i = 0; i < j->nregistries; i++)
		if (job_secret_find(j, j->registries[i].password) == NULL)
			die("registry password names no secret", NULL);
	for (size_t i = 0; i < j->nsteps; i++) {
		const struct job_step *s = &j->steps[i];
		if (s->name == NULL || s->script == NULL ||
		    strlen(s->script) > JOB_MAX_SCRIPT || s->nshell < 1 ||
		    s->nshell > JOB_MAX_SHELL || s->nartifacts > JOB_MAX_ARTIFACTS)
			die("bad step accepted", NULL);
		if (!job_relpath_valid(s->workdir, 1))
			die("bad workdir accepted", NULL);
		if (s->image == NULL && (s->memory_mb || s->nano_cpus || s->pids))
			die("resources without image accepted", NULL);
		check_kv(s->env, s->nenv, JOB_MAX_ENV);
	}
	check_services(j);
}

static void after_parse(struct job *j)
{
	struct job_check chk = { &trusted, FUZZ_POOL, FUZZ_NOW, 60, NULL };
	struct err e;

	check_job(j);
	if (job_check_claims(j, &chk, &e) < 0)
		check_rejection(&e);
	if (job_open_secrets(j, &pool_key, &e) < 0)
		check_rejection(&e);
	for (size_t i = 0; i < j->nsecrets; i++)
		if (j->secrets[i].value &&
		    memchr(j->secrets[i].value, '\0', j->secrets[i].value_len))
			die("secret with a NUL opened", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job_check chk = { &trusted, FUZZ_POOL, FUZZ_NOW, 60, NULL };
	struct buf payload = BUF_INIT(JWS_MAX_COMPACT);
	struct job *j = NULL;
	struct err e;

	if (trusted.n == 0)
		LLVMFuzzerInitialize(NULL, NULL);
	/* The signed path, as the agent runs it. */
	if (jws_verify((const char *)data, size, &trusted, &payload, NULL,
	    &e) < 0) {
		check_rejection(&e);
	} else {
		check_canonical(data, size);
		if (job_parse(payload.data, payload.len, &j, &e) < 0) {
			check_rejection(&e);
		} else {
			after_parse(j);
			job_free(j);
			j = NULL;
		}
	}
	buf_free(&payload);
	if (job_verify((const char *)data, size, &chk, &j, &e) < 0)
		check_rejection(&e);
	job_free(j);
	j = NULL;
	/* The queue's unverified peek. */
	buf_init(&payload, JWS_MAX_COMPACT);
	if (jws_peek_payload((const char *)data, size, &payload, &e) < 0)
		check_rejection(&e);
	buf_free(&payload);
	/* An input that looks like a payload, signed with the trusted key:
	 * the whole pipeline past the signature, as a trusted signer's
	 * tooling would feed it. */
	if (size > 0 && data[0] == '{') {
		char *jws = NULL;
		if (jws_sign(&sign_key, data, size, &jws) == 0) {
			if (job_verify(jws, strlen(jws), &chk, &j, &e) < 0) {
				check_rejection(&e);
			} else {
				after_parse(j);
				job_free(j);
			}
			j = NULL;
			free(jws);
		}
	}
	/* The payload parser on its own. */
	if (job_parse((const char *)data, size, &j, &e) < 0) {
		check_rejection(&e);
	} else {
		after_parse(j);
		job_free(j);
	}
	return 0;
}
