/*
 * The job pipeline of docs/protocol.md section 3.2, end to end through
 * job_verify with real signatures: claims, replay, schema, limits and
 * sealed secrets. One test per rejection path at least, each asserting its
 * reason code.
 */
#include "testkit.h"

#include <errno.h>

#include "replay.h"
#include "seal.h"

struct fx {
	struct jwk a;		/* trusted signing key */
	struct jwks set;
	struct jwk pool;	/* this pool's X25519 key */
	struct jwk other_pool;
	struct job_check chk;
	struct err e;
	struct job *job;
	char dir[PATH_MAX];
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	tk_ed25519(&f->a, 1, "key-a");
	tk_jwks(&f->set, &f->a, 1);
	tk_x25519(&f->pool, 5, "pool-key");
	tk_x25519(&f->other_pool, 6, "other-pool-key");
	f->chk.trusted = &f->set;
	f->chk.pool = TK_POOL;
	f->chk.now = TK_NOW;
	f->chk.skew = 60;
	f->chk.replay = NULL;
	tk_tmpdir(f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	job_free(f->job);
	replay_close(f->chk.replay);
	jwks_free(&f->set);
	tk_rmdir(f->dir);
	free(f);
	return 0;
}

/* Signs payload with the trusted key and runs the whole pipeline. */
static int run(struct fx *f, const char *payload)
{
	char *jws = tk_sign(&f->a, payload);
	int r;

	job_free(f->job);
	f->job = NULL;
	memset(&f->e, 0, sizeof(f->e));
	r = job_verify(jws, strlen(jws), &f->chk, &f->job, &f->e);
	free(jws);
	if (r < 0)
		assert_null(f->job);
	return r;
}

/* Same, around a job object with valid claims. */
static int run_job(struct fx *f, const char *job_json)
{
	char *p = tk_payload(job_json);
	int r = run(f, p);

	free(p);
	return r;
}

static int run_claims(struct fx *f, const char *aud, const char *jti,
    int64_t iat, int64_t exp)
{
	char *p = tk_claims(aud, jti, iat, exp, TK_JOB_MIN);
	int r = run(f, p);

	free(p);
	return r;
}

#define AUD "\"" TK_POOL "\""

/* ---- valid jobs ---- */

static void test_valid_minimal(void **state)
{
	struct fx *f = *state;

	assert_ok(run_job(f, TK_JOB_MIN), &f->e);
	struct job *j = f->job;
	assert_string_equal(j->iss, "unit@test");
	assert_string_equal(j->jti, "jobid-0001");
	assert_int_equal(j->naud, 1);
	assert_string_equal(j->aud[0], TK_POOL);
	assert_int_equal(j->iat, TK_NOW - 10);
	assert_int_equal(j->exp, TK_NOW + 3600);
	assert_false(j->has_nbf);
	assert_string_equal(j->name, "unit");
	assert_int_equal(j->timeout, JOB_DEFAULT_TIMEOUT);
	assert_int_equal(j->nsteps, 1);
	struct job_step *s = &j->steps[0];
	assert_string_equal(s->name, "s");
	assert_null(s->image);
	assert_int_equal(s->pull, JOB_PULL_IF_NOT_PRESENT);
	assert_int_equal(s->nshell, 3);
	assert_string_equal(s->shell[0], "/bin/sh");
	assert_string_equal(s->shell[1], "-e");
	assert_string_equal(s->shell[2], "-c");
	assert_string_equal(s->script, "true");
	assert_string_equal(s->workdir, "");
	assert_null(s->user);
	assert_int_equal(s->timeout, 0);
	assert_false(s->continue_on_error);
	assert_int_equal(s->nenv + s->nartifacts, 0);
	assert_int_equal(j->nenv + j->nsecrets + j->ninputs + j->nregistries +
	    j->nlabels, 0);
}

/* The example of docs/protocol.md section 3.4, every field. */
static void test_valid_full_example(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *pw = NULL;

	assert_int_equal(seal_value(&f->pool, "s3cr3t-token", 12, &tok), 0);
	assert_int_equal(seal_value(&f->pool, "registry-pw", 11, &pw), 0);
	char *job = xasprintf("{"
	    "\"name\": \"build and test\","
	    "\"labels\": [\"docker\"],"
	    "\"timeout\": 1800,"
	    "\"env\": {\"CI\": \"true\"},"
	    "\"secrets\": {\"DEPLOY_TOKEN\": \"%s\", \"REGISTRY_PASSWORD\": \"%s\"},"
	    "\"registries\": [{\"server\": \"registry.example.org:5000\","
	    "  \"username\": \"ci\", \"password\": \"REGISTRY_PASSWORD\"}],"
	    "\"inputs\": [{\"url\": \"https://pkgs.example.org/app-1.2.tar.gz\","
	    "  \"sha256\": \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
	    "  \"path\": \"app.tar.gz\", \"extract\": true}],"
	    "\"steps\": ["
	    "  {\"name\": \"prepare\", \"script\": \"git --version\"},"
	    "  {\"name\": \"compile\", \"image\": \"registry.example.org:5000/tools:1.4.2-bookworm\","
	    "   \"pull\": \"if-not-present\", \"shell\": [\"/bin/sh\", \"-e\", \"-c\"],"
	    "   \"script\": \"make -j\\nmake check\", \"env\": {\"CC\": \"gcc\"},"
	    "   \"workdir\": \"src\", \"user\": \"1000:1000\", \"timeout\": 900,"
	    "   \"continue_on_error\": false, \"artifacts\": [\"dist/**\", \"build/*.log\"],"
	    "   \"resources\": {\"memory_mb\": 2048, \"cpus\": 2, \"pids\": 512}},"
	    "  {\"name\": \"publish\", \"image\": \"alpine:3\", \"pull\": \"always\","
	    "   \"script\": \"true\", \"continue_on_error\": true,"
	    "   \"resources\": {\"cpus\": 0.5}},"
	    "  {\"name\": \"offline\", \"image\": \"alpine:3\", \"pull\": \"never\","
	    "   \"script\": \"true\"}"
	    "]}", tok, pw);
	char *p = xasprintf("{\"iss\":\"ci@example.org\",\"aud\":[\"other\",\""
	    TK_POOL "\"],\"jti\":\"5m2QkKc1Y0u1m0a8Yk3lNg\",\"iat\":%lld,"
	    "\"exp\":%lld,\"nbf\":%lld,\"job\":%s,\"unknown\":{\"x\":[1]}}",
	    TK_NOW - 60, TK_NOW + 3600, TK_NOW - 60, job);

	assert_ok(run(f, p), &f->e);
	struct job *j = f->job;
	assert_int_equal(j->naud, 2);
	assert_true(j->has_nbf);
	assert_int_equal(j->nbf, TK_NOW - 60);
	assert_string_equal(j->name, "build and test");
	assert_int_equal(j->nlabels, 1);
	assert_string_equal(j->labels[0], "docker");
	assert_int_equal(j->timeout, 1800);
	assert_int_equal(j->nenv, 1);
	assert_string_equal(j->env[0].name, "CI");
	assert_string_equal(j->env[0].value, "true");
	assert_int_equal(j->nsecrets, 2);
	assert_int_equal(j->nregistries, 1);
	assert_string_equal(j->registries[0].server, "registry.example.org:5000");
	assert_string_equal(j->registries[0].password, "REGISTRY_PASSWORD");
	assert_int_equal(j->ninputs, 1);
	assert_string_equal(j->inputs[0].path, "app.tar.gz");
	assert_true(j->inputs[0].extract);
	assert_int_equal(j->inputs[0].sha256[0], 0x9f);
	assert_int_equal(j->inputs[0].sha256[31], 0x08);
	assert_string_equal(j->inputs[0].sha256_hex,
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	assert_int_equal(j->nsteps, 4);
	struct job_step *s = &j->steps[1];
	assert_string_equal(s->image, "registry.example.org:5000/tools:1.4.2-bookworm");
	assert_string_equal(s->script, "make -j\nmake check");
	assert_string_equal(s->workdir, "src");
	assert_string_equal(s->user, "1000:1000");
	assert_int_equal(s->timeout, 900);
	assert_int_equal(s->nartifacts, 2);
	assert_string_equal(s->artifacts[1], "build/*.log");
	assert_int_equal(s->memory_mb, 2048);
	assert_int_equal(s->nano_cpus, 2000000000LL);
	assert_int_equal(s->pids, 512);
	assert_int_equal(j->steps[2].pull, JOB_PULL_ALWAYS);
	assert_true(j->steps[2].continue_on_error);
	assert_int_equal(j->steps[2].nano_cpus, 500000000);
	assert_int_equal(j->steps[3].pull, JOB_PULL_NEVER);

	/* Secrets open with the pool key, and only after job_open_secrets. */
	assert_null(job_secret_find(j, "DEPLOY_TOKEN")->value);
	assert_ok(job_open_secrets(j, &f->pool, &f->e), &f->e);
	const struct job_secret *sec = job_secret_find(j, "DEPLOY_TOKEN");
	assert_non_null(sec);
	assert_int_equal(sec->value_len, 12);
	assert_string_equal(sec->value, "s3cr3t-token");
	assert_string_equal(job_secret_find(j, "REGISTRY_PASSWORD")->value,
	    "registry-pw");
	assert_null(job_secret_find(j, "NOPE"));
	free(p);
	free(job);
	free(tok);
	free(pw);
}

/* ---- claims: time ---- */

static void test_expired(void **state)
{
	struct fx *f = *state;

	assert_reason(run_claims(f, AUD, "jobid-exp1", TK_NOW - 3600,
	    TK_NOW - 61), &f->e, "expired");
	/* exp must be after now - skew: at it exactly is expired. */
	assert_reason(run_claims(f, AUD, "jobid-exp2", TK_NOW - 3600,
	    TK_NOW - 60), &f->e, "expired");
	assert_ok(run_claims(f, AUD, "jobid-exp3", TK_NOW - 3600, TK_NOW - 59),
	    &f->e);
	/* No skew: strictly before now is expired. */
	f->chk.skew = 0;
	assert_reason(run_claims(f, AUD, "jobid-exp4", TK_NOW - 3600, TK_NOW),
	    &f->e, "expired");
	assert_ok(run_claims(f, AUD, "jobid-exp5", TK_NOW - 3600, TK_NOW + 1),
	    &f->e);
}

static void test_not_yet_valid(void **state)
{
	struct fx *f = *state;
	char *p = xasprintf("{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-nbf1\","
	    "\"iat\":%lld,\"exp\":%lld,\"nbf\":%lld,\"job\":" TK_JOB_MIN "}",
	    TK_NOW, TK_NOW + 7200, TK_NOW + 61);

	assert_reason(run(f, p), &f->e, "not_yet_valid");
	free(p);
	p = xasprintf("{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-nbf2\","
	    "\"iat\":%lld,\"exp\":%lld,\"nbf\":%lld,\"job\":" TK_JOB_MIN "}",
	    TK_NOW, TK_NOW + 7200, TK_NOW + 60);
	assert_ok(run(f, p), &f->e);
	free(p);
}

static void test_iat_in_future(void **state)
{
	struct fx *f = *state;

	assert_reason(run_claims(f, AUD, "jobid-iat1", TK_NOW + 61,
	    TK_NOW + 3600), &f->e, "bad_iat");
	assert_ok(run_claims(f, AUD, "jobid-iat2", TK_NOW + 60, TK_NOW + 3600),
	    &f->e);
}

static void test_iat_after_exp(void **state)
{
	struct fx *f = *state;

	assert_reason(run_claims(f, AUD, "jobid-iat3", TK_NOW + 20,
	    TK_NOW + 10), &f->e, "bad_iat");
	assert_ok(run_claims(f, AUD, "jobid-iat4", TK_NOW + 10, TK_NOW + 10),
	    &f->e);
}

static void test_lifetime_over_30_days(void **state)
{
	struct fx *f = *state;

	assert_reason(run_claims(f, AUD, "jobid-life1", TK_NOW - 10,
	    TK_NOW - 10 + JOB_MAX_LIFETIME + 1), &f->e, "bad_iat");
	assert_ok(run_claims(f, AUD, "jobid-life2", TK_NOW - 10,
	    TK_NOW - 10 + JOB_MAX_LIFETIME), &f->e);
}

/* ---- claims: audience ---- */

static void test_wrong_audience_string(void **state)
{
	struct fx *f = *state;

	assert_reason(run_claims(f, "\"linux-arm64\"", "jobid-aud1", TK_NOW,
	    TK_NOW + 60), &f->e, "wrong_audience");
	assert_reason(run_claims(f, "\"LINUX-X64\"", "jobid-aud2", TK_NOW,
	    TK_NOW + 60), &f->e, "wrong_audience");
	assert_reason(run_claims(f, "\"linux-x64 \"", "jobid-aud3", TK_NOW,
	    TK_NOW + 60), &f->e, "wrong_audience");
	assert_reason(run_claims(f, "\"linux\"", "jobid-aud4", TK_NOW,
	    TK_NOW + 60), &f->e, "wrong_audience");
}

static void test_wrong_audience_array(void **state)
{
	struct fx *f = *state;

	assert_reason(run_claims(f, "[\"a\",\"b\",\"linux-x6\"]", "jobid-aud5",
	    TK_NOW, TK_NOW + 60), &f->e, "wrong_audience");
	assert_ok(run_claims(f, "[\"a\",\"" TK_POOL "\"]", "jobid-aud6", TK_NOW,
	    TK_NOW + 60), &f->e);
	assert_int_equal(f->job->naud, 2);
	/* The queue side checks no audience. */
	f->chk.pool = NULL;
	assert_ok(run_claims(f, "\"anything\"", "jobid-aud7", TK_NOW,
	    TK_NOW + 60), &f->e);
}

/* ---- claims: presence and types ---- */

static void test_bad_claims(void **state)
{
	static const char *const bad[] = {
		/* iss */
		"{\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":7,\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"a\\nb\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		/* jti */
		"{\"iss\":\"i\",\"aud\":" AUD ",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"short\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"has.dot.s\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"has space\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":12345678,\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"0123456789012345678901234567890"
		    "1234567890123456789012345678901234\",\"iat\":1,\"exp\":2}",
		/* aud */
		"{\"iss\":\"i\",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":\"\",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":[],\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":[1],\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":[\"\"],\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":7,\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":{\"p\":1},\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
		    "\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"],"
		    "\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2}",
		/* iat, exp, nbf */
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":\"1\",\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":\"2\"}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2.5}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":-1,\"exp\":2}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":null}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":1e300}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2,"
		    "\"nbf\":\"0\"}",
		"{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\",\"iat\":1,\"exp\":2,"
		    "\"nbf\":true}",
	};
	struct fx *f = *state;
	char iss[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* The job object goes in place of the closing brace. */
		char *p = xasprintf("%.*s,\"job\":" TK_JOB_MIN "}",
		    (int)strlen(bad[i]) - 1, bad[i]);
		int r = run(f, p);
		if (r >= 0 || strcmp(job_reason_code(f->e.code), "bad_claims") != 0)
			fail_msg("case %zu: got %s, expected bad_claims: %s", i,
			    r >= 0 ? "success" : job_reason_code(f->e.code), p);
		free(p);
	}
	memset(iss, 'i', sizeof(iss) - 1);
	iss[sizeof(iss) - 1] = '\0';
	char *p = xasprintf("{\"iss\":\"%.129s\",\"aud\":" AUD ",\"jti\":"
	    "\"jobid-0001\",\"iat\":1,\"exp\":2,\"job\":" TK_JOB_MIN "}", iss);
	assert_reason(run(f, p), &f->e, "bad_claims");
	free(p);
}

/* ---- replay ---- */

static void open_replay(struct fx *f, int64_t now)
{
	replay_close(f->chk.replay);
	f->chk.replay = NULL;
	assert_int_equal(replay_open(f->dir, now, 120, &f->chk.replay), 0);
}

static void test_replayed(void **state)
{
	struct fx *f = *state;

	open_replay(f, TK_NOW);
	assert_ok(run_claims(f, AUD, "jobid-rep1", TK_NOW, TK_NOW + 600), &f->e);
	assert_int_equal(replay_count(f->chk.replay), 1);
	assert_reason(run_claims(f, AUD, "jobid-rep1", TK_NOW, TK_NOW + 600),
	    &f->e, "replayed");
	/* The same id signed again with other claims is still a replay. */
	assert_reason(run_claims(f, AUD, "jobid-rep1", TK_NOW + 1, TK_NOW + 900),
	    &f->e, "replayed");
	assert_ok(run_claims(f, AUD, "jobid-rep2", TK_NOW, TK_NOW + 600), &f->e);
	assert_int_equal(replay_count(f->chk.replay), 2);
}

/* The agent restarts: the cache is read back from its state directory. */
static void test_replayed_after_restart(void **state)
{
	struct fx *f = *state;

	open_replay(f, TK_NOW);
	assert_ok(run_claims(f, AUD, "jobid-rst1", TK_NOW, TK_NOW + 600), &f->e);
	replay_close(f->chk.replay);
	f->chk.replay = NULL;
	/* Restarted a minute later. */
	open_replay(f, TK_NOW + 60);
	f->chk.now = TK_NOW + 60;
	assert_int_equal(replay_count(f->chk.replay), 1);
	assert_reason(run_claims(f, AUD, "jobid-rst1", TK_NOW, TK_NOW + 600),
	    &f->e, "replayed");
	assert_ok(run_claims(f, AUD, "jobid-rst2", TK_NOW, TK_NOW + 600), &f->e);
	/* And again, with both on disk. */
	open_replay(f, TK_NOW + 120);
	assert_int_equal(replay_count(f->chk.replay), 2);
	assert_reason(run_claims(f, AUD, "jobid-rst2", TK_NOW, TK_NOW + 600),
	    &f->e, "replayed");
}

/* Entries are pruned once exp + margin has passed; the job itself would
 * be refused as expired by then, so nothing can be replayed. */
static void test_replay_pruned_by_expiry(void **state)
{
	struct fx *f = *state;

	open_replay(f, TK_NOW);
	assert_ok(run_claims(f, AUD, "jobid-old1", TK_NOW, TK_NOW + 100), &f->e);
	assert_ok(run_claims(f, AUD, "jobid-new1", TK_NOW, TK_NOW + 5000), &f->e);
	/* Within the margin (120 s) after exp: still kept. */
	open_replay(f, TK_NOW + 100 + 120);
	assert_int_equal(replay_count(f->chk.replay), 2);
	assert_true(replay_seen(f->chk.replay, "jobid-old1"));
	/* Past it: gone; the other stays. */
	open_replay(f, TK_NOW + 100 + 121);
	assert_int_equal(replay_count(f->chk.replay), 1);
	assert_false(replay_seen(f->chk.replay, "jobid-old1"));
	assert_true(replay_seen(f->chk.replay, "jobid-new1"));
	f->chk.now = TK_NOW + 100 + 121;
	assert_reason(run_claims(f, AUD, "jobid-old1", TK_NOW, TK_NOW + 100),
	    &f->e, "expired");
}

/* A rejected job does not take its id: only accepted ones are recorded. */
static void test_rejected_job_not_recorded(void **state)
{
	struct fx *f = *state;

	open_replay(f, TK_NOW);
	assert_reason(run_claims(f, "\"elsewhere\"", "jobid-rej1", TK_NOW,
	    TK_NOW + 600), &f->e, "wrong_audience");
	char *p = tk_claims(AUD, "jobid-rej2", TK_NOW, TK_NOW + 600,
	    "{\"name\":\"x\",\"steps\":[]}");
	assert_reason(run(f, p), &f->e, "schema");
	free(p);
	assert_int_equal(replay_count(f->chk.replay), 0);
	assert_false(replay_seen(f->chk.replay, "jobid-rej2"));
}

/* ---- payload size and form ---- */

static void test_payload_over_size_cap(void **state)
{
	struct fx *f = *state;
	size_t n = JWS_MAX_COMPACT + 1;
	char *big = xmalloc(n + 1);
	struct job *j = NULL;

	/* job_parse on its own (as the queue uses it): over the cap. */
	memset(big, ' ', n);
	memcpy(big, "{\"a\":1}", 7);
	big[n] = '\0';
	assert_reason(job_parse(big, n, &j, &f->e), &f->e, "too_large");
	assert_null(j);
	free(big);
	/* Through a JWS: a payload whose compact form is over 256 KiB. */
	struct buf pad = BUF_INIT(1 << 20);
	for (int i = 0; i < 200000; i++)
		buf_putc(&pad, 'x');
	char *job = xasprintf("{\"name\":\"big\",\"pad\":\"%s\",\"steps\":"
	    "[{\"name\":\"s\",\"script\":\"true\"}]}", pad.data);
	char *p = tk_payload(job);
	assert_reason(run(f, p), &f->e, "too_large");
	free(p);
	free(job);
	/* 150 KB of padding fits. */
	pad.data[150000] = '\0';
	job = xasprintf("{\"name\":\"big\",\"pad\":\"%s\",\"steps\":"
	    "[{\"name\":\"s\",\"script\":\"true\"}]}", pad.data);
	p = tk_payload(job);
	assert_ok(run(f, p), &f->e);
	free(p);
	free(job);
	buf_free(&pad);
}

static char *nested(int depth)
{
	struct buf b = BUF_INIT(1 << 16);

	for (int i = 0; i < depth; i++)
		buf_putc(&b, '[');
	for (int i = 0; i < depth; i++)
		buf_putc(&b, ']');
	return buf_steal(&b, NULL);
}

static void test_json_too_deep(void **state)
{
	struct fx *f = *state;
	/* The payload object is level 1, so 15 more levels make 16. */
	char *ok = nested(15), *deep = nested(16), *very = nested(5000);
	char *p = xasprintf("{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-deep\","
	    "\"iat\":%lld,\"exp\":%lld,\"x\":%s,\"job\":" TK_JOB_MIN "}",
	    TK_NOW, TK_NOW + 60, ok);

	assert_ok(run(f, p), &f->e);
	free(p);
	p = xasprintf("{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-deep\","
	    "\"iat\":%lld,\"exp\":%lld,\"x\":%s,\"job\":" TK_JOB_MIN "}",
	    TK_NOW, TK_NOW + 60, deep);
	assert_reason(run(f, p), &f->e, "too_deep");
	free(p);
	p = xasprintf("{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-deep\","
	    "\"iat\":%lld,\"exp\":%lld,\"job\":{\"name\":\"n\",\"x\":%s,"
	    "\"steps\":[]}}", TK_NOW, TK_NOW + 60, very);
	assert_reason(run(f, p), &f->e, "too_deep");
	free(p);
	free(ok);
	free(deep);
	free(very);
}

static void test_bad_json(void **state)
{
	static const char *const bad[] = {
		"not json", "[1,2]", "\"a string\"", "42", "null",
		"{\"iss\":\"i\"} trailing", "{\"iss\":\"i\",}", "{\"iss\":'i'}",
		"{\"iss\":\"a\\u0000b\"}",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = run(f, bad[i]);
		if (r >= 0 || strcmp(job_reason_code(f->e.code), "bad_json") != 0)
			fail_msg("'%s': got %s", bad[i], r >= 0 ? "success" :
			    job_reason_code(f->e.code));
	}
	/* A raw NUL byte in a string: the signer and cJSON would disagree. */
	const char raw[] = "{\"iss\":\"a\0b\",\"aud\":" AUD ",\"jti\":\"jobid-0001\"}";
	char *jws = tk_sign_raw(&f->a, "{\"alg\":\"EdDSA\",\"kid\":\"key-a\"}",
	    raw, sizeof(raw) - 1);
	assert_reason(job_verify(jws, strlen(jws), &f->chk, &f->job, &f->e),
	    &f->e, "bad_json");
	free(jws);
}

static void test_duplicate_keys(void **state)
{
	struct fx *f = *state;

	assert_reason(run_job(f, "{\"name\":\"a\",\"name\":\"b\",\"steps\":"
	    "[{\"name\":\"s\",\"script\":\"true\"}]}"), &f->e, "schema");
	assert_reason(run_job(f, "{\"name\":\"a\",\"steps\":[{\"name\":\"s\","
	    "\"script\":\"true\",\"env\":{\"A\":\"1\",\"A\":\"2\"}}]}"), &f->e,
	    "schema");
	char *p = xasprintf("{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-dup1\","
	    "\"jti\":\"jobid-dup2\",\"iat\":%lld,\"exp\":%lld,\"job\":"
	    TK_JOB_MIN "}", TK_NOW, TK_NOW + 60);
	assert_reason(run(f, p), &f->e, "schema");
	free(p);
	p = xasprintf("{\"iss\":\"i\",\"aud\":\"elsewhere\",\"aud\":" AUD ","
	    "\"jti\":\"jobid-dup3\",\"iat\":%lld,\"exp\":%lld,\"job\":"
	    TK_JOB_MIN "}", TK_NOW, TK_NOW + 60);
	assert_reason(run(f, p), &f->e, "schema");
	free(p);
}

/* ---- the job object ---- */

static char *steps_json(int n)
{
	struct buf b = BUF_INIT(1 << 20);

	buf_puts(&b, "{\"name\":\"many\",\"steps\":[");
	for (int i = 0; i < n; i++)
		buf_printf(&b, "%s{\"name\":\"s%d\",\"script\":\"true\"}",
		    i ? "," : "", i);
	buf_puts(&b, "]}");
	return buf_steal(&b, NULL);
}

static void test_too_many_steps(void **state)
{
	struct fx *f = *state;
	char *ok = steps_json(JOB_MAX_STEPS), *bad = steps_json(JOB_MAX_STEPS + 1);

	assert_ok(run_job(f, ok), &f->e);
	assert_int_equal(f->job->nsteps, JOB_MAX_STEPS);
	assert_string_equal(f->job->steps[63].name, "s63");
	assert_reason(run_job(f, bad), &f->e, "limits");
	free(ok);
	free(bad);
}

static void test_steps_missing_or_empty(void **state)
{
	struct fx *f = *state;

	assert_reason(run_job(f, "{\"name\":\"x\"}"), &f->e, "schema");
	assert_reason(run_job(f, "{\"name\":\"x\",\"steps\":[]}"), &f->e, "schema");
	assert_reason(run_job(f, "{\"name\":\"x\",\"steps\":null}"), &f->e,
	    "schema");
	char *p = xasprintf("{\"iss\":\"i\",\"aud\":" AUD ",\"jti\":\"jobid-0001\","
	    "\"iat\":%lld,\"exp\":%lld}", TK_NOW, TK_NOW + 60);
	assert_reason(run(f, p), &f->e, "schema");
	free(p);
}

#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_UPPER "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
#define SHA_G "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g"
#define STEP_SCRIPT_FMT "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"script\":\"%s\"}]}"
#define STEP(extra) "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"script\":\"true\"" extra "}]}"
#define JOB(extra) "{\"name\":\"x\"" extra ",\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}"

static void expect_reason_each(struct fx *f, const char *const *jobs, size_t n,
    const char *code)
{
	for (size_t i = 0; i < n; i++) {
		int r = run_job(f, jobs[i]);
		if (r >= 0 || strcmp(job_reason_code(f->e.code), code) != 0)
			fail_msg("case %zu: got %s (%s), expected %s: %s", i,
			    r >= 0 ? "success" : job_reason_code(f->e.code),
			    r >= 0 ? "" : f->e.msg, code, jobs[i]);
	}
}

static void test_wrong_field_types(void **state)
{
	static const char *const bad[] = {
		"[]", "\"job\"", "7", "null",
		"{\"name\":7,\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}",
		"{\"name\":null,\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}",
		"{\"name\":\"x\",\"steps\":{\"name\":\"s\",\"script\":\"true\"}}",
		"{\"name\":\"x\",\"steps\":[\"echo hi\"]}",
		"{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"script\":[\"true\"]}]}",
		JOB(",\"timeout\":\"60\""), JOB(",\"timeout\":60.5"),
		JOB(",\"timeout\":true"), JOB(",\"labels\":\"docker\""),
		JOB(",\"labels\":[1]"), JOB(",\"env\":[\"A=1\"]"),
		JOB(",\"env\":{\"A\":1}"), JOB(",\"env\":{\"A\":null}"),
		JOB(",\"env\":\"A=1\""), JOB(",\"secrets\":[]"),
		JOB(",\"inputs\":{}"), JOB(",\"inputs\":[\"https://x\"]"),
		JOB(",\"registries\":{}"), JOB(",\"registries\":[7]"),
		STEP(",\"name\":\"dup\""),
		"{\"name\":\"x\",\"steps\":[{\"name\":5,\"script\":\"true\"}]}",
		"{\"name\":\"x\",\"steps\":[{\"script\":\"true\"}]}",
		"{\"name\":\"x\",\"steps\":[{\"name\":\"s\"}]}",
		STEP(",\"image\":1"), STEP(",\"image\":\"a\",\"pull\":true"),
		STEP(",\"shell\":\"/bin/sh -c\""), STEP(",\"shell\":[1]"),
		STEP(",\"env\":[]"), STEP(",\"workdir\":1"), STEP(",\"user\":1000"),
		STEP(",\"timeout\":\"1\""), STEP(",\"continue_on_error\":\"true\""),
		STEP(",\"continue_on_error\":1"), STEP(",\"artifacts\":\"dist/*\""),
		STEP(",\"artifacts\":[1]"), STEP(",\"image\":\"a\",\"resources\":[]"),
		STEP(",\"image\":\"a\",\"resources\":{\"memory_mb\":\"1\"}"),
		STEP(",\"image\":\"a\",\"resources\":{\"cpus\":\"2\"}"),
		STEP(",\"image\":\"a\",\"resources\":{\"pids\":1.5}"),
	};
	struct fx *f = *state;

	/* The duplicate "name" case is a schema error too. */
	expect_reason_each(f, bad, sizeof(bad) / sizeof(bad[0]), "schema");
}

static void test_env_name_with_equals(void **state)
{
	static const char *const bad[] = {
		JOB(",\"env\":{\"A=B\":\"1\"}"), JOB(",\"env\":{\"=A\":\"1\"}"),
		JOB(",\"env\":{\"A=\":\"1\"}"), STEP(",\"env\":{\"PATH=/x\":\"1\"}"),
	};
	struct fx *f = *state;

	expect_reason_each(f, bad, sizeof(bad) / sizeof(bad[0]), "schema");
}

static void test_env_name_invalid(void **state)
{
	static const char *const bad[] = {
		JOB(",\"env\":{\"\":\"1\"}"), JOB(",\"env\":{\"1A\":\"1\"}"),
		JOB(",\"env\":{\"A-B\":\"1\"}"), JOB(",\"env\":{\"A B\":\"1\"}"),
		JOB(",\"env\":{\"A.B\":\"1\"}"), JOB(",\"env\":{\"\\u00e9\":\"1\"}"),
		JOB(",\"env\":{\"A\\nB\":\"1\"}"), STEP(",\"env\":{\"$A\":\"1\"}"),
		JOB(",\"secrets\":{\"A=B\":\"AAAA\"}"),
	};
	struct fx *f = *state;
	char name[130];

	expect_reason_each(f, bad, sizeof(bad) / sizeof(bad[0]), "schema");
	assert_ok(run_job(f, JOB(",\"env\":{\"_a_B_9\":\"\",\"A1\":\"x=y\"}")),
	    &f->e);
	assert_string_equal(f->job->env[1].value, "x=y");
	/* 128 bytes is the longest name. */
	memset(name, 'N', 129);
	name[129] = '\0';
	char *j = xasprintf(JOB(",\"env\":{\"%s\":\"1\"}"), name);
	assert_reason(run_job(f, j), &f->e, "schema");
	free(j);
	name[128] = '\0';
	j = xasprintf(JOB(",\"env\":{\"%s\":\"1\"}"), name);
	assert_ok(run_job(f, j), &f->e);
	free(j);
}

static char *env_json(int entries, size_t value_len)
{
	struct buf b = BUF_INIT(1 << 20);
	char *v = xmalloc(value_len + 1);

	memset(v, 'v', value_len);
	v[value_len] = '\0';
	buf_puts(&b, "{\"name\":\"x\",\"env\":{");
	for (int i = 0; i < entries; i++)
		buf_printf(&b, "%s\"E%d\":\"%s\"", i ? "," : "", i, v);
	buf_puts(&b, "},\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}");
	free(v);
	return buf_steal(&b, NULL);
}

static void test_env_limits(void **state)
{
	struct fx *f = *state;
	char *j;

	j = env_json(JOB_MAX_ENV, 1);
	assert_ok(run_job(f, j), &f->e);
	free(j);
	j = env_json(JOB_MAX_ENV + 1, 1);
	assert_reason(run_job(f, j), &f->e, "limits");
	free(j);
	j = env_json(1, JOB_MAX_ENV_VALUE);
	assert_ok(run_job(f, j), &f->e);
	free(j);
	j = env_json(1, JOB_MAX_ENV_VALUE + 1);
	assert_reason(run_job(f, j), &f->e, "limits");
	free(j);
}

/* n copies of item (a JSON value) as an array. */
static char *array_of(int n, const char *item)
{
	struct buf b = BUF_INIT(1 << 20);

	buf_putc(&b, '[');
	for (int i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", item);
	buf_putc(&b, ']');
	return buf_steal(&b, NULL);
}

static void expect_limits(struct fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void expect_limits(struct fx *f, const char *fmt, ...)
{
	struct buf b = BUF_INIT(1 << 20);
	va_list ap;

	va_start(ap, fmt);
	assert_int_equal(buf_vprintf(&b, fmt, ap), 0);
	va_end(ap);
	assert_reason(run_job(f, b.data), &f->e, "limits");
	buf_free(&b);
}

static void test_count_limits(void **state)
{
	struct fx *f = *state;
	char *a;

	a = array_of(JOB_MAX_LABELS + 1, "\"l\"");
	expect_limits(f, JOB(",\"labels\":%s"), a);
	free(a);
	a = array_of(JOB_MAX_INPUTS + 1, "{}");
	expect_limits(f, JOB(",\"inputs\":%s"), a);
	free(a);
	a = array_of(JOB_MAX_REGISTRIES + 1, "{}");
	expect_limits(f, JOB(",\"registries\":%s"), a);
	free(a);
	a = array_of(JOB_MAX_SHELL + 1, "\"sh\"");
	expect_limits(f, STEP(",\"shell\":%s"), a);
	free(a);
	a = array_of(JOB_MAX_ARTIFACTS + 1, "\"a\"");
	expect_limits(f, STEP(",\"artifacts\":%s"), a);
	free(a);
	struct buf b = BUF_INIT(1 << 20);
	buf_putc(&b, '{');
	for (int i = 0; i <= JOB_MAX_SECRETS; i++)
		buf_printf(&b, "%s\"S%d\":\"AAAA\"", i ? "," : "", i);
	buf_putc(&b, '}');
	expect_limits(f, JOB(",\"secrets\":%s"), b.data);
	buf_free(&b);
}

static void test_length_and_range_limits(void **state)
{
	static const char *const bad[] = {
		JOB(",\"timeout\":0"), JOB(",\"timeout\":86401"),
		JOB(",\"timeout\":-5"), STEP(",\"timeout\":0"),
		STEP(",\"timeout\":86401"),
		STEP(",\"image\":\"a\",\"resources\":{\"memory_mb\":3}"),
		STEP(",\"image\":\"a\",\"resources\":{\"memory_mb\":1048577}"),
		STEP(",\"image\":\"a\",\"resources\":{\"pids\":7}"),
		STEP(",\"image\":\"a\",\"resources\":{\"cpus\":0}"),
		STEP(",\"image\":\"a\",\"resources\":{\"cpus\":0.009}"),
		STEP(",\"image\":\"a\",\"resources\":{\"cpus\":1025}"),
		JOB(",\"labels\":[\"a0123456789012345678901234567890123456789"
		    "0123456789012345678901234\"]"),
	};
	struct fx *f = *state;
	char big[JOB_MAX_SCRIPT + 2];

	expect_reason_each(f, bad, sizeof(bad) / sizeof(bad[0]), "limits");
	/* Name over 128 bytes. */
	memset(big, 'n', 129);
	big[129] = '\0';
	char *j = xasprintf("{\"name\":\"%s\",\"steps\":[{\"name\":\"s\","
	    "\"script\":\"true\"}]}", big);
	assert_reason(run_job(f, j), &f->e, "limits");
	free(j);
	j = xasprintf("{\"name\":\"x\",\"steps\":[{\"name\":\"%s\","
	    "\"script\":\"true\"}]}", big);
	assert_reason(run_job(f, j), &f->e, "limits");
	free(j);
	/* Script at and over 64 KiB. */
	memset(big, 's', JOB_MAX_SCRIPT + 1);
	big[JOB_MAX_SCRIPT] = '\0';
	j = xasprintf(STEP_SCRIPT_FMT, big);
	assert_ok(run_job(f, j), &f->e);
	free(j);
	big[JOB_MAX_SCRIPT] = 's';
	big[JOB_MAX_SCRIPT + 1] = '\0';
	j = xasprintf(STEP_SCRIPT_FMT, big);
	assert_reason(run_job(f, j), &f->e, "limits");
	free(j);
}

static void test_workdir_with_dotdot(void **state)
{
	static const char *const bad[] = {
		STEP(",\"workdir\":\"..\""), STEP(",\"workdir\":\"../etc\""),
		STEP(",\"workdir\":\"a/../../b\""), STEP(",\"workdir\":\"a/..\""),
		STEP(",\"workdir\":\"/etc\""), STEP(",\"workdir\":\"./a\""),
		STEP(",\"workdir\":\"a//b\""), STEP(",\"workdir\":\"a\\\\..\\\\b\""),
	};
	struct fx *f = *state;

	expect_reason_each(f, bad, sizeof(bad) / sizeof(bad[0]), "schema");
	assert_ok(run_job(f, STEP(",\"workdir\":\"src/..a/b.\"")), &f->e);
	assert_string_equal(f->job->steps[0].workdir, "src/..a/b.");
	assert_ok(run_job(f, STEP(",\"workdir\":\"\"")), &f->e);
}

static void test_bad_pull_policy(void **state)
{
	static const char *const bad[] = {
		STEP(",\"image\":\"a\",\"pull\":\"sometimes\""),
		STEP(",\"image\":\"a\",\"pull\":\"Always\""),
		STEP(",\"image\":\"a\",\"pull\":\"\""),
		STEP(",\"image\":\"a\",\"pull\":\"ifnotpresent\""),
		/* pull and resources make sense only with an image */
		STEP(",\"pull\":\"always\""),
		STEP(",\"resources\":{\"memory_mb\":64}"),
	};
	struct fx *f = *state;

	expect_reason_each(f, bad, sizeof(bad) / sizeof(bad[0]), "schema");
}

static void test_other_schema_values(void **state)
{
	static const char *const bad[] = {
		"{\"name\":\"\",\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}",
		"{\"name\":\"a\\nb\",\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}",
		"{\"name\":\"a\\u007fb\",\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}",
		"{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"script\":\"\"}]}",
		"{\"name\":\"x\",\"steps\":[{\"name\":\"\",\"script\":\"true\"}]}",
		JOB(",\"labels\":[\"a b\"]"), JOB(",\"labels\":[\"\"]"),
		JOB(",\"labels\":[\"a/b\"]"),
		STEP(",\"shell\":[]"), STEP(",\"image\":\"\""),
		STEP(",\"image\":\"a\\tb\""), STEP(",\"user\":\"\""),
		STEP(",\"user\":\"a\\nb\""), STEP(",\"artifacts\":[\"/etc/passwd\"]"),
		STEP(",\"artifacts\":[\"\"]"), STEP(",\"artifacts\":[\"a\\u0001\"]"),
		/* inputs */
		JOB(",\"inputs\":[{\"url\":\"ftp://h/x\",\"sha256\":\"" SHA "\","
		    "\"path\":\"x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"file:///etc/passwd\",\"sha256\":\"" SHA
		    "\",\"path\":\"x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/a b\",\"sha256\":\"" SHA "\","
		    "\"path\":\"x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"sha256\":\"" SHA "\","
		    "\"path\":\"../x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"sha256\":\"" SHA "\","
		    "\"path\":\"/x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"sha256\":\"" SHA "\","
		    "\"path\":\"\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"sha256\":\"" SHA_UPPER "\","
		    "\"path\":\"x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"sha256\":\"abc\","
		    "\"path\":\"x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"sha256\":\"" SHA_G "\","
		    "\"path\":\"x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"path\":\"x\"}]"),
		JOB(",\"inputs\":[{\"url\":\"https://h/x\",\"sha256\":\"" SHA "\","
		    "\"path\":\"x\",\"extract\":\"yes\"}]"),
		/* registries */
		JOB(",\"registries\":[{\"server\":\"r/x\",\"username\":\"u\","
		    "\"password\":\"P\"}]"),
		JOB(",\"registries\":[{\"server\":\"r\",\"username\":\"u\","
		    "\"password\":\"NO_SUCH_SECRET\"}]"),
		JOB(",\"registries\":[{\"server\":\"r\",\"password\":\"P\"}]"),
		/* container mode */
		JOB(",\"container\":\"Shared\""), JOB(",\"container\":\"\""),
		JOB(",\"container\":[\"shared\"]"), JOB(",\"container\":1"),
		JOB(",\"container\":\"--shared\""),
	};
	struct fx *f = *state;

	expect_reason_each(f, bad, sizeof(bad) / sizeof(bad[0]), "schema");
}

/* ---- sealed secrets ---- */

static char *job_with_secret(const char *sealed)
{
	return xasprintf(JOB(",\"secrets\":{\"TOKEN\":\"%s\"}"), sealed);
}

static void test_secret_opens(void **state)
{
	struct fx *f = *state;
	char *sealed = NULL;

	assert_int_equal(seal_value(&f->pool, "hunter2", 7, &sealed), 0);
	char *j = job_with_secret(sealed);
	assert_ok(run_job(f, j), &f->e);
	assert_ok(job_open_secrets(f->job, &f->pool, &f->e), &f->e);
	assert_string_equal(job_secret_find(f->job, "TOKEN")->value, "hunter2");
	assert_string_equal(job_secret_find(f->job, "TOKEN")->sealed, sealed);
	free(j);
	free(sealed);
}

static void test_secret_does_not_open(void **state)
{
	struct fx *f = *state;
	char *sealed = NULL;

	/* Sealed to another pool's key. */
	assert_int_equal(seal_value(&f->other_pool, "hunter2", 7, &sealed), 0);
	char *j = job_with_secret(sealed);
	assert_ok(run_job(f, j), &f->e);
	assert_reason(job_open_secrets(f->job, &f->pool, &f->e), &f->e, "secret");
	free(j);
	/* One bit of the box flipped. */
	unsigned char raw[256];
	size_t n;
	assert_int_equal(b64url_decode(sealed, strlen(sealed), raw, sizeof(raw),
	    &n), 0);
	raw[n - 1] ^= 1;
	free(sealed);
	sealed = tk_b64(raw, n);
	j = job_with_secret(sealed);
	assert_ok(run_job(f, j), &f->e);
	assert_reason(job_open_secrets(f->job, &f->other_pool, &f->e), &f->e,
	    "secret");
	free(j);
	free(sealed);
	/* Not base64url, or too short for a sealed box. */
	static const char *const junk[] = { "!!!!", "AAAA", "A+/=", "" };
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		j = job_with_secret(junk[i]);
		assert_ok(run_job(f, j), &f->e);
		assert_reason(job_open_secrets(f->job, &f->pool, &f->e), &f->e,
		    "secret");
		free(j);
	}
}

static void test_secret_no_pool_key(void **state)
{
	struct fx *f = *state;
	char *sealed = NULL;
	struct jwk pub = f->pool;

	assert_int_equal(seal_value(&f->pool, "v", 1, &sealed), 0);
	char *j = job_with_secret(sealed);
	assert_ok(run_job(f, j), &f->e);
	assert_reason(job_open_secrets(f->job, NULL, &f->e), &f->e, "secret");
	/* A public pool key cannot open anything. */
	pub.has_priv = 0;
	assert_reason(job_open_secrets(f->job, &pub, &f->e), &f->e, "secret");
	/* Nor can a signing key. */
	assert_reason(job_open_secrets(f->job, &f->a, &f->e), &f->e, "secret");
	/* Without secrets, no pool key is needed. */
	assert_ok(run_job(f, TK_JOB_MIN), &f->e);
	assert_ok(job_open_secrets(f->job, NULL, &f->e), &f->e);
	free(j);
	free(sealed);
}

/* A secret holding a NUL could not be passed as an environment value. */
static void test_secret_with_nul(void **state)
{
	struct fx *f = *state;
	char *sealed = NULL;

	assert_int_equal(seal_value(&f->pool, "a\0b", 3, &sealed), 0);
	char *j = job_with_secret(sealed);
	assert_ok(run_job(f, j), &f->e);
	assert_reason(job_open_secrets(f->job, &f->pool, &f->e), &f->e, "secret");
	assert_null(job_secret_find(f->job, "TOKEN")->value);
	free(j);
	free(sealed);
}

/* All or nothing: one bad secret leaves none of the others opened. */
static void test_secret_failure_wipes_all(void **state)
{
	struct fx *f = *state;
	char *good = NULL, *bad = NULL;

	assert_int_equal(seal_value(&f->pool, "first", 5, &good), 0);
	assert_int_equal(seal_value(&f->other_pool, "second", 6, &bad), 0);
	char *j = xasprintf(JOB(",\"secrets\":{\"A\":\"%s\",\"B\":\"%s\"}"),
	    good, bad);
	assert_ok(run_job(f, j), &f->e);
	assert_reason(job_open_secrets(f->job, &f->pool, &f->e), &f->e, "secret");
	assert_non_null(strstr(f->e.msg, "'B'"));
	assert_null(job_secret_find(f->job, "A")->value);
	assert_null(job_secret_find(f->job, "B")->value);
	assert_int_equal(job_secret_find(f->job, "A")->value_len, 0);
	/* Opening twice does not leak or change the values. */
	free(j);
	j = xasprintf(JOB(",\"secrets\":{\"A\":\"%s\"}"), good);
	assert_ok(run_job(f, j), &f->e);
	assert_ok(job_open_secrets(f->job, &f->pool, &f->e), &f->e);
	assert_ok(job_open_secrets(f->job, &f->pool, &f->e), &f->e);
	assert_string_equal(job_secret_find(f->job, "A")->value, "first");
	free(j);
	free(good);
	free(bad);
}

/* ---- order, codes, validators ---- */

static void test_order_of_claim_checks(void **state)
{
	struct fx *f = *state;

	/* expired and for another pool: expired first */
	assert_reason(run_claims(f, "\"elsewhere\"", "jobid-ord1", TK_NOW - 999,
	    TK_NOW - 900), &f->e, "expired");
	/* iat in the future and wrong audience: bad_iat first */
	assert_reason(run_claims(f, "\"elsewhere\"", "jobid-ord2", TK_NOW + 500,
	    TK_NOW + 900), &f->e, "bad_iat");
	/* wrong audience and replayed: audience first */
	open_replay(f, TK_NOW);
	assert_ok(run_claims(f, AUD, "jobid-ord3", TK_NOW, TK_NOW + 900), &f->e);
	assert_reason(run_claims(f, "\"elsewhere\"", "jobid-ord3", TK_NOW,
	    TK_NOW + 900), &f->e, "wrong_audience");
	/* claims are read before the job object */
	char *p = tk_claims(AUD, "bad", TK_NOW, TK_NOW + 60, "7");
	assert_reason(run(f, p), &f->e, "bad_claims");
	free(p);
	/* and a bad job object is reported before time checks */
	p = tk_claims(AUD, "jobid-ord4", TK_NOW - 999, TK_NOW - 900, "7");
	assert_reason(run(f, p), &f->e, "schema");
	free(p);
}

static void test_reason_codes(void **state)
{
	/* docs/protocol.md section 11, in enum order. */
	static const char *const codes[JOBR_COUNT] = {
		"ok", "too_large", "malformed", "bad_base64", "bad_header",
		"alg_not_allowed", "unknown_kid", "bad_signature", "bad_json",
		"too_deep", "bad_claims", "expired", "not_yet_valid", "bad_iat",
		"wrong_audience", "replayed", "schema", "limits", "secret",
	};

	(void)state;
	for (int i = 0; i < JOBR_COUNT; i++)
		assert_string_equal(job_reason_code((enum job_reason)i), codes[i]);
	assert_string_equal(job_reason_code(JOBR_COUNT), "internal");
	assert_string_equal(job_reason_code((enum job_reason)-1), "internal");
}

static void test_validators(void **state)
{
	(void)state;
	assert_true(job_env_name_valid("A"));
	assert_true(job_env_name_valid("_"));
	assert_true(job_env_name_valid("a_B9"));
	assert_false(job_env_name_valid(""));
	assert_false(job_env_name_valid("9A"));
	assert_false(job_env_name_valid("A=B"));
	assert_false(job_env_name_valid("A-B"));
	assert_true(job_jti_valid("abcdEFGH"));
	assert_true(job_jti_valid("a-b_c-d_"));
	assert_false(job_jti_valid("abcdEFG"));
	assert_false(job_jti_valid("abcd EFG"));
	assert_false(job_jti_valid("abcd/EFGH"));
	assert_true(job_label_valid("os=linux"));
	assert_true(job_label_valid("a.b:c-d_e"));
	assert_false(job_label_valid(""));
	assert_false(job_label_valid("a b"));
	assert_true(job_relpath_valid("", 1));
	assert_false(job_relpath_valid("", 0));
	assert_true(job_relpath_valid("a/b/c", 0));
	assert_true(job_relpath_valid("a/", 0));
	assert_true(job_relpath_valid("...", 0));
	assert_true(job_relpath_valid(".hidden", 0));
	assert_false(job_relpath_valid("..", 0));
	assert_false(job_relpath_valid("a/../b", 0));
	assert_false(job_relpath_valid("a/..", 0));
	assert_false(job_relpath_valid("/a", 0));
	assert_false(job_relpath_valid(".", 0));
	assert_false(job_relpath_valid("a/./b", 0));
	assert_false(job_relpath_valid("a//b", 0));
	assert_false(job_relpath_valid("a\\b", 0));
	assert_false(job_relpath_valid("a\nb", 0));
}

/* job_parse alone (as the queue uses it): no time or audience checks. */
static void test_parse_without_checks(void **state)
{
	struct fx *f = *state;
	struct job *j = NULL;
	char *p = tk_claims("\"other\"", "jobid-prs1", 1, 2, TK_JOB_MIN);

	assert_ok(job_parse(p, strlen(p), &j, &f->e), &f->e);
	assert_string_equal(j->aud[0], "other");
	job_free(j);
	job_free(NULL);
	free(p);
}

/* job.container: fresh by default, shared when asked. */
static void test_container_mode(void **state)
{
	struct fx *f = *state;
	static const struct { const char *job; int shared; } cases[] = {
		{ "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"script\":\"t\"}]}", 0 },
		{ "{\"name\":\"x\",\"container\":\"fresh\",\"steps\":[{\"name\":"
		  "\"s\",\"script\":\"t\"}]}", 0 },
		{ "{\"name\":\"x\",\"container\":\"shared\",\"steps\":[{\"name\":"
		  "\"s\",\"script\":\"t\"}]}", 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct job *j = NULL;
		char *p = tk_claims("\"other\"", "jobid-ctr1", 1, 2, cases[i].job);
		assert_ok(job_parse(p, strlen(p), &j, &f->e), &f->e);
		assert_int_equal(j->shared_container, cases[i].shared);
		job_free(j);
		free(p);
	}
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_valid_minimal),
		T(test_container_mode),
		T(test_valid_full_example),
		T(test_expired),
		T(test_not_yet_valid),
		T(test_iat_in_future),
		T(test_iat_after_exp),
		T(test_lifetime_over_30_days),
		T(test_wrong_audience_string),
		T(test_wrong_audience_array),
		T(test_bad_claims),
		T(test_replayed),
		T(test_replayed_after_restart),
		T(test_replay_pruned_by_expiry),
		T(test_rejected_job_not_recorded),
		T(test_payload_over_size_cap),
		T(test_json_too_deep),
		T(test_bad_json),
		T(test_duplicate_keys),
		T(test_too_many_steps),
		T(test_steps_missing_or_empty),
		T(test_wrong_field_types),
		T(test_env_name_with_equals),
		T(test_env_name_invalid),
		T(test_env_limits),
		T(test_count_limits),
		T(test_length_and_range_limits),
		T(test_workdir_with_dotdot),
		T(test_bad_pull_policy),
		T(test_other_schema_values),
		T(test_secret_opens),
		T(test_secret_does_not_open),
		T(test_secret_no_pool_key),
		T(test_secret_with_nul),
		T(test_secret_failure_wipes_all),
		T(test_order_of_claim_checks),
		T(test_reason_codes),
		T(test_validators),
		T(test_parse_without_checks),
	};
#undef T

	tk_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
