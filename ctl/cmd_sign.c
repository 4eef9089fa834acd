#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64.h"
#include "buf.h"
#include "ctl.h"
#include "err.h"
#include "job.h"
#include "jsonx.h"
#include "jwk.h"
#include "jws.h"
#include "strnum.h"
#include "xalloc.h"

static const char sign_usage[] =
    "usage: skiffctl sign JOB.json --key KEY.jwk --aud POOL [options]\n"
    "\n"
    "Signs a job into a compact JWS (EdDSA) and prints it. JOB.json is\n"
    "either the `job` object itself or a claims object with a `job`\n"
    "member; iat, exp and a random jti are filled in. \"-\" reads standard\n"
    "input. The job is checked against the schema before it is signed.\n"
    "\n"
    "  --key FILE     private Ed25519 JWK (from skiffctl keygen)\n"
    "  --aud POOL     the pool the job is for (required unless in the file)\n"
    "  --ttl DUR      lifetime: 90s, 30m, 1h, 2d (default 1h, at most 30d)\n"
    "  --iss NAME     issuer (default: the file's, else \"skiffctl\")\n"
    "  --jti ID       job id (default: 127 random bits in base64url, never\n"
    "                 starting with '-', which commands would read as an\n"
    "                 option)\n"
    "  --out FILE     write the JWS here instead of standard output\n";

static void set_string(cJSON *o, const char *k, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddStringToObject(o, k, v);
}

static void set_number(cJSON *o, const char *k, double v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddNumberToObject(o, k, v);
}

/* Wraps a bare job object into claims, then fills the claims in. */
static cJSON *claims_from(cJSON *in, const char *aud, const char *iss,
    const char *jti, int64_t ttl)
{
	cJSON *claims = in;
	int64_t now = (int64_t)time(NULL);

	if (!cJSON_GetObjectItemCaseSensitive(in, "job")) {
		claims = cJSON_CreateObject();
		cJSON_AddItemToObject(claims, "job", in);
	}
	if (aud)
		set_string(claims, "aud", aud);
	if (iss || !cJSON_GetObjectItemCaseSensitive(claims, "iss"))
		set_string(claims, "iss", iss ? iss : "skiffctl");
	if (jti) {
		set_string(claims, "jti", jti);
	} else {
		unsigned char rnd[16];
		randombytes_buf(rnd, sizeof(rnd));
		/* The first character encodes the top six bits; with the top
		 * one clear it is one of A-Z a-f, never '-' (62) or '_' (63):
		 * a job id every command takes without "--". */
		rnd[0] &= 0x7f;
		char *id = b64url_encode(rnd, sizeof(rnd));
		set_string(claims, "jti", id);
		free(id);
	}
	set_number(claims, "iat", (double)now);
	set_number(claims, "exp", (double)(now + ttl));
	return claims;
}

static int sign_and_write(const struct jwk *key, cJSON *claims,
    const char *out)
{
	char *payload = jsonx_print(claims), *jws = NULL;
	struct job *j = NULL;
	struct err e;
	int r = CTL_EX_OK;

	if (job_parse(payload, strlen(payload), &j, &e) < 0) {
		r = ctl_fail("job is not valid (%s): %s",
		    job_reason_code((enum job_reason)e.code), e.msg);
		goto out;
	}
	if (jws_sign(key, payload, strlen(payload), &jws) < 0) {
		r = ctl_fail("signing failed: the job is over %d bytes",
		    JWS_MAX_COMPACT);
		goto out;
	}
	if (out) {
		struct buf b = BUF_INIT(JWS_MAX_COMPACT + 2);
		buf_printf(&b, "%s\n", jws);
		int w = ctl_write_new(out, b.data, b.len, 0644, 1);
		buf_free(&b);
		if (w < 0)
			r = ctl_fail("%s: %s", out, strerror(-w));
	} else {
		printf("%s\n", jws);
	}
out:
	job_free(j);
	free(jws);
	cJSON_free(payload);
	return r;
}

int cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "aud", required_argument, NULL, 'a' },
		{ "ttl", required_argument, NULL, 't' },
		{ "iss", required_argument, NULL, 'i' },
		{ "jti", required_argument, NULL, 'j' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = NULL, *aud = NULL, *iss = NULL, *jti = NULL;
	const char *out = NULL, *errstr;
	int64_t ttl = 3600;
	int c, jerr, r;
	struct buf in = BUF_INIT(JWS_MAX_COMPACT);
	struct jwk key;
	struct err e;

	while ((c = getopt_long(argc, argv, "k:a:t:i:j:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': keyfile = optarg; break;
		case 'a': aud = optarg; break;
		case 'i': iss = optarg; break;
		case 'j': jti = optarg; break;
		case 'o': out = optarg; break;
		case 't':
			if (strnum_duration(optarg, 1, JOB_MAX_LIFETIME, &ttl,
			    &errstr) < 0)
				return ctl_fail("--ttl %s: %s (e.g. 90s, 30m, 1h, 2d; at "
				    "most 30d)", optarg, errstr);
			break;
		case 'h': fputs(sign_usage, stdout); return CTL_EX_OK;
		default: return ctl_usage(sign_usage);
		}
	}
	if (keyfile == NULL || optind + 1 != argc)
		return ctl_usage(sign_usage);
	if (jti && !job_jti_valid(jti))
		return ctl_fail("--jti must match [A-Za-z0-9_-]{8,64}");
	if (jti && jti[0] == '-')
		fprintf(stderr, "skiffctl: note: job id %s starts with '-': give it "
		    "to other commands after '--' (skiffctl status -- %s)\n", jti,
		    jti);
	if (jwk_load(keyfile, &key, &e) < 0)
		return ctl_fail("%s", e.msg);
	if (key.type != JWK_ED25519 || !key.has_priv) {
		jwk_wipe(&key);
		return ctl_fail("%s is not a private Ed25519 signing key", keyfile);
	}
	if ((r = ctl_read_input(argv[optind], JWS_MAX_COMPACT, &in)) < 0) {
		jwk_wipe(&key);
		return ctl_fail("%s: %s", argv[optind],
		    r == -E2BIG ? "file too large" : strerror(-r));
	}
	cJSON *doc = jsonx_parse(buf_cstr(&in), in.len, JWS_MAX_COMPACT,
	    JOB_MAX_DEPTH, &jerr);
	buf_free(&in);
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		jwk_wipe(&key);
		return ctl_fail("%s: not a JSON object (or nested deeper than %d)",
		    argv[optind], JOB_MAX_DEPTH);
	}
	cJSON *claims = claims_from(doc, aud, iss, jti, ttl);
	if (!cJSON_GetObjectItemCaseSensitive(claims, "aud"))
		r = ctl_fail("no audience: pass --aud POOL");
	else
		r = sign_and_write(&key, claims, out);
	cJSON_Delete(claims);
	jwk_wipe(&key);
	return r;
}
