#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ctl.h"
#include "err.h"
#include "job.h"
#include "jsonx.h"
#include "jwk.h"
#include "jws.h"
#include "strnum.h"

static const char verify_usage[] =
    "usage: skiffctl verify [JWS-FILE|-] --keys TRUSTED.jwks [options]\n"
    "\n"
    "Checks a signed job exactly as an agent does (signature, claims,\n"
    "schema and limits; not the replay cache) and prints its claims (and\n"
    "on standard error a line of its steps, services, caches and inputs),\n"
    "or the rejection reason code and what failed. Reads standard input\n"
    "when no file is given.\n"
    "\n"
    "  --keys FILE    trusted keys (JWKS)\n"
    "  --aud POOL     check that the job is for this pool\n"
    "  --skew SECS    allowed clock skew (default 60)\n"
    "  --pool-key F   also open the job's sealed secrets with this private\n"
    "                 X25519 JWK (their values are not printed)\n"
    "\n"
    "exit status: 0 valid, 1 rejected, 2 usage error\n";

/* Trailing whitespace (a newline from a file) is not part of the JWS. */
static size_t trimmed(const struct buf *b)
{
	size_t n = b->len;
	while (n && (b->data[n - 1] == '\n' || b->data[n - 1] == '\r' ||
	    b->data[n - 1] == ' '))
		n--;
	return n;
}

static int print_claims(const char *compact, size_t n)
{
	struct buf payload = BUF_INIT(JWS_MAX_COMPACT);
	int jerr;

	if (jws_peek_payload(compact, n, &payload, NULL) < 0)
		return -1;
	cJSON *j = jsonx_parse(payload.data, payload.len, JWS_MAX_COMPACT,
	    JOB_MAX_DEPTH, &jerr);
	buf_free(&payload);
	if (j == NULL)
		return -1;
	char *s = cJSON_Print(j);
	printf("%s\n", s);
	cJSON_free(s);
	cJSON_Delete(j);
	return 0;
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keys", required_argument, NULL, 'k' },
		{ "aud", required_argument, NULL, 'a' },
		{ "skew", required_argument, NULL, 's' },
		{ "pool-key", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keys = NULL, *aud = NULL, *poolkey = NULL, *errstr;
	int64_t skew = 60;
	int c, r;
	struct jwks set = { NULL, 0 };
	struct jwk pk;
	struct buf in = BUF_INIT(JWS_MAX_COMPACT + 64);
	struct job *job = NULL;
	struct err e;

	while ((c = getopt_long(argc, argv, "k:a:s:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': keys = optarg; break;
		case 'a': aud = optarg; break;
		case 'p': poolkey = optarg; break;
		case 's':
			if (strnum_i64(optarg, 0, 86400, &skew, &errstr) < 0)
				return ctl_fail("--skew %s: %s", optarg, errstr);
			break;
		case 'h': fputs(verify_usage, stdout); return CTL_EX_OK;
		default: return ctl_usage(verify_usage);
		}
	}
	if (keys == NULL || argc - optind > 1)
		return ctl_usage(verify_usage);
	const char *src = optind < argc ? argv[optind] : "-";
	memset(&pk, 0, sizeof(pk));
	if (jwks_load(keys, &set, &e) < 0)
		return ctl_fail("%s", e.msg);
	/* Every file named is read before the verdict: a typo in --pool-key
	 * is said as such, whether or not the job verifies. */
	if (poolkey && jwk_load(poolkey, &pk, &e) < 0) {
		r = ctl_fail("--pool-key %s", e.msg);
		goto out;
	}
	if ((r = ctl_read_input(src, JWS_MAX_COMPACT + 64, &in)) < 0) {
		r = ctl_fail("%s: %s", src, r == -E2BIG ? "input too large" :
		    strerror(-r));
		goto out;
	}
	struct job_check chk = { &set, aud, (int64_t)time(NULL), skew, NULL };
	r = job_verify(buf_cstr(&in), trimmed(&in), &chk, &job, &e);
	if (r == 0 && poolkey)
		r = job_open_secrets(job, &pk, &e);
	if (r < 0) {
		printf("rejected: %s: %s\n", job_reason_code((enum job_reason)e.code),
		    e.msg);
		r = CTL_EX_FAIL;
		goto out;
	}
	print_claims(buf_cstr(&in), trimmed(&in));
	fprintf(stderr, "skiffctl: valid: job %s, %zu step%s", job->jti,
	    job->nsteps, job->nsteps == 1 ? "" : "s");
	if (job->nservices)
		fprintf(stderr, ", %zu service%s", job->nservices,
		    job->nservices == 1 ? "" : "s");
	if (job->ncaches)
		fprintf(stderr, ", %zu cache%s", job->ncaches,
		    job->ncaches == 1 ? "" : "s");
	if (job->ninputs)
		fprintf(stderr, ", %zu input%s", job->ninputs,
		    job->ninputs == 1 ? "" : "s");
	fprintf(stderr, ", signed by a trusted key\n");
	r = CTL_EX_OK;
out:
	jwk_wipe(&pk);
	job_free(job);
	jwks_free(&set);
	buf_free(&in);
	return r;
}
