/* Request bodies: what each endpoint accepts, and a 400 naming the field
 * for everything else. */
#include "qtest.h"

#include "apierr.h"
#include "reqjson.h"
#include "buf.h"
#include "xalloc.h"

#define S(x) (x), strlen(x)

static void assert_bad(int rc, const struct apierr *e, const char *needle)
{
	assert_int_equal(rc, -1);
	assert_int_equal(e->status, 400);
	assert_string_equal(e->code, "bad_request");
	if (strstr(e->msg, needle) == NULL)
		fail_msg("message '%s' does not name '%s'", e->msg, needle);
}

static void test_register(void **state)
{
	struct reqj_register r;
	struct apierr e;

	(void)state;
	assert_int_equal(reqj_register(S("{\"name\":\"vm-1\",\"labels\":[\"docker\","
	    "\"x64\"],\"capacity\":4,\"version\":\"0.1.0\",\"extra\":[1]}"), &r,
	    &e), 0);
	assert_string_equal(r.name, "vm-1");
	assert_int_equal(r.nlabels, 2);
	assert_string_equal(r.labels[1], "x64");
	assert_int_equal(r.capacity, 4);
	assert_string_equal(r.version, "0.1.0");
	reqj_register_free(&r);
	assert_int_equal(reqj_register(S("{\"name\":\"n\"}"), &r, &e), 0);
	assert_int_equal(r.capacity, 1);
	reqj_register_free(&r);
	assert_bad(reqj_register(S("{}"), &r, &e), &e, "'name'");
	assert_bad(reqj_register(S("{\"name\":\"\"}"), &r, &e), &e, "'name'");
	assert_bad(reqj_register(S("{\"name\":\"n\",\"capacity\":0}"), &r, &e),
	    &e, "'capacity'");
	assert_bad(reqj_register(S("{\"name\":\"n\",\"capacity\":257}"), &r, &e),
	    &e, "'capacity'");
	assert_bad(reqj_register(S("{\"name\":\"n\",\"labels\":[\"a b\"]}"), &r,
	    &e), &e, "label");
	assert_bad(reqj_register(S("{\"name\":\"n\",\"labels\":\"x\"}"), &r, &e),
	    &e, "'labels'");
	assert_bad(reqj_register(S("{\"name\":\"a\\nb\"}"), &r, &e), &e,
	    "control");
	assert_bad(reqj_register("", 0, &r, &e), &e, "empty");
}

static void test_lease_and_heartbeat(void **state)
{
	struct reqj_lease l;
	struct apierr e;

	(void)state;
	assert_int_equal(reqj_lease("", 0, &l, &e), 0);
	assert_int_equal(l.wait, 30);
	assert_int_equal(reqj_lease(S("{\"wait\":0,\"free\":2}"), &l, &e), 0);
	assert_int_equal(l.wait, 0);
	assert_int_equal(l.free, 2);
	assert_int_equal(reqj_lease(S("{\"wait\":60}"), &l, &e), 0);
	assert_bad(reqj_lease(S("{\"wait\":61}"), &l, &e), &e, "'wait'");
	assert_bad(reqj_lease(S("{\"wait\":-1}"), &l, &e), &e, "'wait'");
	assert_bad(reqj_lease(S("{\"wait\":\"5\"}"), &l, &e), &e, "'wait'");
	assert_bad(reqj_lease(S("{\"wait\":1,\"wait\":2}"), &l, &e), &e,
	    "duplicate");
	assert_bad(reqj_lease(S("[]"), &l, &e), &e, "object");
	assert_bad(reqj_lease(S("{\"wait\":1} x"), &l, &e), &e, "JSON");
	assert_int_equal(reqj_heartbeat("", 0, &e), 0);
	assert_int_equal(reqj_heartbeat(S("{\"state\":\"running\",\"step\":2}"),
	    &e), 0);
	assert_bad(reqj_heartbeat(S("\"running\""), &e), &e, "object");
}

static void test_complete(void **state)
{
	struct reqj_complete c;
	struct apierr e;

	(void)state;
	assert_int_equal(reqj_complete(S("{\"result\":\"failed\",\"exit_codes\":"
	    "[0,2,-1,137],\"log_length\":18213,\"reason\":\"step 'test' exited "
	    "with 2\",\"reason_code\":\"step_failed\"}"), &c, &e), 0);
	assert_int_equal(c.result, JS_FAILED);
	assert_int_equal(c.nexit, 4);
	assert_int_equal(c.exit_codes[2], -1);
	assert_int_equal(c.exit_codes[3], 137);
	assert_int_equal(c.log_length, 18213);
	assert_string_equal(c.reason_code, "step_failed");
	assert_int_equal(reqj_complete(S("{\"result\":\"succeeded\","
	    "\"log_length\":0}"), &c, &e), 0);
	assert_int_equal(c.nexit, 0);
	assert_bad(reqj_complete(S("{\"result\":\"lost\",\"log_length\":0}"), &c,
	    &e), &e, "'result'");
	assert_bad(reqj_complete(S("{\"result\":\"failed\"}"), &c, &e), &e,
	    "'log_length'");
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"log_length\":0,"
	    "\"exit_codes\":[256]}"), &c, &e), &e, "exit code");
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"log_length\":0,"
	    "\"reason_code\":\"Bad-Code\"}"), &c, &e), &e, "'reason_code'");
}

static void test_complete_outputs(void **state)
{
	struct reqj_complete c;
	struct apierr e;
	char *body, *big = xcalloc(1, 20000);
	struct buf many = BUF_INIT(1 << 20);

	(void)state;
	assert_int_equal(reqj_complete(S("{\"result\":\"succeeded\","
	    "\"log_length\":0,\"outputs\":{\"VERSION\":\"1.4.2\","
	    "\"T\":\"***\",\"Q\":\"a\\\"b\",\"_\":\"\"}}"), &c, &e), 0);
	assert_string_equal(c.outputs, "{\"VERSION\":\"1.4.2\",\"T\":\"***\","
	    "\"Q\":\"a\\\"b\",\"_\":\"\"}");
	reqj_complete_clear(&c);
	assert_null(c.outputs);
	assert_int_equal(reqj_complete(S("{\"result\":\"succeeded\","
	    "\"log_length\":0,\"outputs\":null}"), &c, &e), 0);
	assert_null(c.outputs);
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":[\"a\"]}"), &c, &e), &e, "'outputs'");
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":{\"A\":1}}"), &c, &e), &e, "must be a string");
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":{\"9A\":\"x\"}}"), &c, &e), &e, "output name");
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":{\"\":\"x\"}}"), &c, &e), &e, "output name");
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":{\"a-b\":\"x\"}}"), &c, &e), &e, "output name");
	memset(big, 'v', 4097);
	body = xasprintf("{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":{\"BIG\":\"%s\"}}", big);
	assert_bad(reqj_complete(body, strlen(body), &c, &e), &e, "over 4096");
	free(body);
	/* 65 entries; then 5 of 4000 bytes (over 16 KiB in all). */
	buf_puts(&many, "{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":{");
	for (int i = 0; i < 65; i++)
		buf_printf(&many, "%s\"N%d\":\"v\"", i ? "," : "", i);
	buf_puts(&many, "}}");
	assert_bad(reqj_complete(many.data, many.len, &c, &e), &e,
	    "more than 64");
	buf_reset(&many);
	big[4000] = '\0';
	buf_puts(&many, "{\"result\":\"failed\",\"log_length\":0,"
	    "\"outputs\":{");
	for (int i = 0; i < 5; i++)
		buf_printf(&many, "%s\"N%d\":\"%s\"", i ? "," : "", i, big);
	buf_puts(&many, "}}");
	assert_bad(reqj_complete(many.data, many.len, &c, &e), &e, "in all");
	buf_free(&many);
	free(big);
}

static void test_artifact_and_commit(void **state)
{
	struct reqj_artifact a;
	struct apierr e;
	char sha[65];

	(void)state;
	assert_int_equal(reqj_artifact(S("{\"name\":\"dist/app.tar.gz\","
	    "\"size\":1073741824}"), &a, &e), 0);
	assert_string_equal(a.name, "dist/app.tar.gz");
	assert_int_equal(a.size, 1073741824);
	assert_bad(reqj_artifact(S("{\"name\":\"../x\",\"size\":1}"), &a, &e), &e,
	    "name");
	assert_bad(reqj_artifact(S("{\"name\":\"x\",\"size\":-1}"), &a, &e), &e,
	    "'size'");
	assert_int_equal(reqj_commit(S("{\"sha256\":\"9f86d081884c7d659a2feaa0c5"
	    "5ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}"), sha, &e), 0);
	assert_string_equal(sha, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b82"
	    "2cd15d6c15b0f00a08");
	assert_bad(reqj_commit(S("{\"sha256\":\"9F86D081884C7D659A2FEAA0C55AD015"
	    "A3BF4F1B2B0B822CD15D6C15B0F00A08\"}"), sha, &e), &e, "lowercase");
	assert_bad(reqj_commit(S("{\"sha256\":\"abc\"}"), sha, &e), &e,
	    "'sha256'");
}

static void test_text_and_caps(void **state)
{
	struct reqj_text t;
	struct apierr e;
	char *big;

	(void)state;
	assert_int_equal(reqj_text("", 0, "reason", &t, &e), 0);
	assert_string_equal(t.text, "");
	assert_int_equal(reqj_text(S("{\"reason\":\"idle\"}"), "reason", &t, &e),
	    0);
	assert_string_equal(t.text, "idle");
	big = xcalloc(1, 70000);
	memset(big, ' ', 69999);
	big[0] = '{';
	big[69998] = '}';
	assert_int_equal(reqj_text(big, strlen(big), "reason", &t, &e), -1);
	assert_int_equal(e.status, 413);
	assert_true(e.has_limit);
	free(big);
}

/* Every body the queue reads is strict UTF-8: a name, a label, a reason,
 * an artifact name or a description that is not would be stored and then
 * answered to every client that lists it. */
static void test_utf8_refused_everywhere(void **state)
{
	struct reqj_register r;
	struct reqj_lease l;
	struct reqj_complete c;
	struct reqj_artifact a;
	struct reqj_text t;
	char sha[65];
	struct apierr e;

	(void)state;
	assert_bad(reqj_register(S("{\"name\":\"vm\xc0\xaf\"}"), &r, &e), &e,
	    "not UTF-8 at offset 11");
	assert_string_equal(e.reason, "bad_json");
	assert_bad(reqj_register(S("{\"name\":\"vm\",\"labels\":[\"\x80\"]}"), &r,
	    &e), &e, "byte 0x80");
	assert_bad(reqj_register(S("{\"name\":\"vm\",\"version\":\"\xed\xa0\x80\"}"),
	    &r, &e), &e, "UTF-8");
	assert_bad(reqj_lease(S("{\"wait\":1,\"x\":\"\xf4\x90\x80\x80\"}"), &l, &e),
	    &e, "UTF-8");
	assert_bad(reqj_heartbeat(S("{\"x\":\"\xff\"}"), &e), &e, "UTF-8");
	assert_bad(reqj_complete(S("{\"result\":\"failed\",\"exit_codes\":[1],"
	    "\"log_length\":0,\"reason\":\"cut \xe2\x82\"}"), &c, &e), &e, "UTF-8");
	assert_bad(reqj_artifact(S("{\"name\":\"a\xc1\xbf\",\"size\":1}"), &a, &e),
	    &e, "UTF-8");
	assert_bad(reqj_commit(S("{\"sha256\":\"\xe0\x80\xaf\"}"), sha, &e), &e,
	    "UTF-8");
	assert_bad(reqj_text(S("{\"description\":\"ci \x80\"}"), "description", &t,
	    &e), &e, "UTF-8");
	/* Plain syntax errors carry the same reason. */
	assert_bad(reqj_text(S("{\"description\":"), "description", &t, &e), &e,
	    "not valid JSON");
	assert_string_equal(e.reason, "bad_json");
	/* Real UTF-8 and \u escapes of any plane are fine. */
	assert_int_equal(reqj_register(S("{\"name\":\"caf\xc3\xa9-\\ud83d\\ude00\"}"),
	    &r, &e), 0);
	assert_string_equal(r.name, "caf\xc3\xa9-\xf0\x9f\x98\x80");
	reqj_register_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_lease_and_heartbeat),
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_complete_outputs),
		cmocka_unit_test(test_artifact_and_commit),
		cmocka_unit_test(test_text_and_caps),
		cmocka_unit_test(test_utf8_refused_everywhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
