/* Routing: every endpoint of docs/protocol.md, strict path decoding, and
 * the answers for unknown paths and methods. */
#include "qtest.h"

#include <errno.h>

#include "route.h"

static void expect(const char *method, const char *path, enum route_id id,
    const char *param, const char *name)
{
	struct route_match m;
	int rc = route_match(method, path, &m);

	if (rc != 0)
		fail_msg("%s %s: %d (%s)", method, path, rc, m.why);
	assert_int_equal(m.id, id);
	assert_string_equal(m.param, param);
	assert_string_equal(m.name, name);
}

static void test_every_endpoint(void **state)
{
	(void)state;
	expect("GET", "/v1/health", R_HEALTH, "", "");
	expect("GET", "/metrics", R_METRICS, "", "");
	expect("POST", "/v1/agents/register", R_REGISTER, "", "");
	expect("POST", "/v1/agent/lease", R_LEASE, "", "");
	expect("POST", "/v1/agent/deregister", R_DEREGISTER, "", "");
	expect("POST", "/v1/leases/lse_1/heartbeat", R_HEARTBEAT, "lse_1", "");
	expect("PUT", "/v1/leases/lse_1/log", R_LOG_PUT, "lse_1", "");
	expect("POST", "/v1/leases/lse_1/artifacts", R_ART_CREATE, "lse_1", "");
	expect("POST", "/v1/leases/lse_1/complete", R_COMPLETE, "lse_1", "");
	expect("PUT", "/v1/uploads/upl_9", R_UPLOAD_PUT, "upl_9", "");
	expect("GET", "/v1/uploads/upl_9", R_UPLOAD_GET, "upl_9", "");
	expect("POST", "/v1/uploads/upl_9/commit", R_UPLOAD_COMMIT, "upl_9", "");
	expect("POST", "/v1/jobs", R_JOB_SUBMIT, "", "");
	expect("GET", "/v1/jobs", R_JOB_LIST, "", "");
	expect("GET", "/v1/jobs/abc", R_JOB_GET, "abc", "");
	expect("GET", "/v1/jobs/abc/log", R_JOB_LOG, "abc", "");
	expect("GET", "/v1/jobs/abc/artifacts", R_JOB_ARTS, "abc", "");
	expect("GET", "/v1/jobs/abc/artifacts/dist/app.tar.gz", R_JOB_ART,
	    "abc", "dist/app.tar.gz");
	expect("POST", "/v1/jobs/abc/cancel", R_JOB_CANCEL, "abc", "");
	expect("GET", "/v1/agents", R_AGENTS, "", "");
	expect("DELETE", "/v1/agents/agt_x", R_AGENT_DEL, "agt_x", "");
	expect("POST", "/v1/pools/linux-x64/tokens", R_TOKENS_CREATE,
	    "linux-x64", "");
	expect("GET", "/v1/pools/linux-x64/tokens", R_TOKENS_LIST, "linux-x64",
	    "");
	expect("DELETE", "/v1/tokens/tok_1", R_TOKEN_DEL, "tok_1", "");
}

static void test_auth_and_body_kinds(void **state)
{
	struct route_match m;

	(void)state;
	assert_int_equal(route_match("POST", "/v1/jobs", &m), 0);
	assert_int_equal(m.auth, RA_ADMIN);
	assert_int_equal(m.body, RB_JWS);
	assert_int_equal(route_match("PUT", "/v1/uploads/u", &m), 0);
	assert_int_equal(m.auth, RA_AGENT);
	assert_int_equal(m.body, RB_STREAM);
	assert_int_equal(route_match("POST", "/v1/agents/register", &m), 0);
	assert_int_equal(m.auth, RA_REGISTRATION);
	assert_int_equal(route_match("GET", "/v1/health", &m), 0);
	assert_int_equal(m.auth, RA_NONE);
	assert_int_equal(route_match("PUT", "/v1/leases/l/log", &m), 0);
	assert_int_equal(m.body, RB_LOG);
}

/* What the web view reads takes a viewer token; what acts does not. */
static void test_view_routes(void **state)
{
	static const struct {
		const char *method, *path;
		enum route_id id;
		enum route_auth auth;
		const char *name;
	} want[] = {
		{ "GET", "/v1/jobs/j/log", R_JOB_LOG, RA_VIEWER, "" },
		{ "GET", "/v1/jobs/j/artifacts/a/b", R_JOB_ART, RA_VIEWER, "a/b" },
		{ "GET", "/v1/pools", R_POOLS, RA_VIEWER, "" },
		{ "GET", "/v1/jobs/j/steps", R_JOB_STEPS, RA_VIEWER, "" },
		{ "POST", "/v1/jobs/j/cancel", R_JOB_CANCEL, RA_ADMIN, "" },
		{ "POST", "/v1/viewer-tokens", R_VIEWERS_CREATE, RA_ADMIN, "" },
		{ "POST", "/ui/login", R_UI_LOGIN, RA_LOGIN, "" },
		{ "GET", "/ui/", R_UI, RA_NONE, "" },
		{ "GET", "/ui/app.js", R_UI, RA_NONE, "app.js" },
		{ "GET", "/ui", R_UI_ROOT, RA_NONE, "" },
		{ "GET", "/ui/login", R_UI, RA_NONE, "login" },
	};
	struct route_match m;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(route_match(want[i].method, want[i].path, &m), 0);
		assert_int_equal(m.id, want[i].id);
		assert_int_equal(m.auth, want[i].auth);
		assert_string_equal(m.name, want[i].name);
	}
}

static void test_decoding(void **state)
{
	(void)state;
	expect("GET", "/v1/jobs/a%2Db", R_JOB_GET, "a-b", "");
	expect("GET", "/v1/jobs/abc/artifacts/dist%2Fa%20b", R_JOB_ART, "abc",
	    "dist/a b");
	expect("GET", "/v1/pools/p/tokens", R_TOKENS_LIST, "p", "");
}

static void test_refusals(void **state)
{
	struct route_match m;

	(void)state;
	assert_int_equal(route_match("GET", "/v1/nothing", &m), -ENOENT);
	assert_int_equal(route_match("GET", "/v1/jobs/", &m), -ENOENT);
	assert_int_equal(route_match("GET", "/v1/jobs/a/b", &m), -ENOENT);
	assert_int_equal(route_match("GET", "/v1/jobs/abc/artifacts/", &m),
	    -ENOENT);
	assert_int_equal(route_match("GET", "", &m), -EINVAL);
	assert_int_equal(route_match("GET", "v1/health", &m), -EINVAL);
	/* An encoded '/' in an id names nothing. */
	assert_int_equal(route_match("GET", "/v1/jobs/a%2Fb", &m), -ENOENT);
	assert_int_equal(route_match("GET", "/v1/jobs/a%00b", &m), -EINVAL);
	assert_int_equal(route_match("GET", "/v1/jobs/a%zz", &m), -EINVAL);
	assert_int_equal(route_match("GET", "/v1/jobs/a%4", &m), -EINVAL);
	assert_int_equal(route_match("GET", "/v1/jobs/a%", &m), -EINVAL);
	assert_non_null(strstr(m.why, "percent"));
	assert_int_equal(route_match("DELETE", "/v1/jobs", &m), -EOPNOTSUPP);
	assert_string_equal(m.allow, "POST, GET");
	assert_int_equal(route_match("PUT", "/v1/health", &m), -EOPNOTSUPP);
	assert_string_equal(m.allow, "GET");
}

static void test_long_segments(void **state)
{
	struct route_match m;
	char path[600];

	(void)state;
	snprintf(path, sizeof(path), "/v1/jobs/%0200d", 1);
	assert_int_equal(route_match("GET", path, &m), -EINVAL);
	snprintf(path, sizeof(path), "/v1/jobs/abc/artifacts/%0300d", 1);
	assert_int_equal(route_match("GET", path, &m), -EINVAL);
}

static void test_pct_decode_and_pool(void **state)
{
	char out[8];
	size_t n;

	(void)state;
	assert_int_equal(route_pct_decode("a%41b", 5, out, sizeof(out), &n), 0);
	assert_string_equal(out, "aAb");
	assert_int_equal(n, 3);
	assert_int_equal(route_pct_decode("abcdefgh", 8, out, sizeof(out), &n),
	    -E2BIG);
	assert_int_equal(route_pct_decode("abcdefg", 7, out, sizeof(out), &n), 0);
	assert_int_equal(route_pct_decode("%00", 3, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(route_pct_decode("a\0b", 3, out, sizeof(out), &n),
	    -EINVAL);
	assert_true(route_pool_valid("linux-x64"));
	assert_true(route_pool_valid("a.b:c_d"));
	assert_false(route_pool_valid(""));
	assert_false(route_pool_valid("a b"));
	assert_false(route_pool_valid("a/b"));
	assert_string_equal(route_name(R_LEASE), "lease");
	assert_string_equal(route_name(R_COUNT), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_endpoint),
		cmocka_unit_test(test_auth_and_body_kinds),
		cmocka_unit_test(test_view_routes),
		cmocka_unit_test(test_decoding),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_long_segments),
		cmocka_unit_test(test_pct_decode_and_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
