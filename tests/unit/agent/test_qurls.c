/* Several queue URLs: the list as SKIFF_QUEUE_URL takes it
 * (config_parse_queue_urls), and which URL the agent uses (qurls.h):
 * round robin on no answer or a 5xx, once per failure of the URL in use,
 * never on a 4xx; the stored list compared as a set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "qurls.h"

static int parse(const char *v, struct strlist *l, const char **why)
{
	*why = NULL;
	l->v = NULL;
	l->n = 0;
	return config_parse_queue_urls(v, l, why);
}

static void test_lists_kept(void **state)
{
	static const struct { const char *in; size_t n; const char *urls[3]; }
	    cases[] = {
		{ "https://q.example:8443/", 1, { "https://q.example:8443" } },
		{ "https://a.example,https://b.example/", 2,
		  { "https://a.example", "https://b.example" } },
		/* Each as libcurl writes it back, in the order given. */
		{ "http://127.1:1,https://[0:0:0:0:0:0:0:1]:2/x/,https://Q.example", 3,
		  { "http://127.0.0.1:1", "https://[::1]:2/x", "https://Q.example" } },
		/* Not duplicates: another port, another path. */
		{ "https://a:1,https://a:2", 2, { "https://a:1", "https://a:2" } },
		{ "https://a/p,https://a/q", 2, { "https://a/p", "https://a/q" } },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strlist l;
		const char *why;
		if (parse(cases[i].in, &l, &why) != 0)
			fail_msg("%s: refused: %s", cases[i].in, why);
		assert_int_equal(l.n, cases[i].n);
		for (size_t k = 0; k < l.n; k++)
			assert_string_equal(l.v[k], cases[i].urls[k]);
		config_strlist_free(&l);
		assert_null(l.v);
	}
}

static void test_lists_refused(void **state)
{
	char many[2048], longest[5 * 1024];
	size_t o = 0;
	(void)state;

	for (int i = 0; i < CONFIG_QUEUE_URLS_MAX + 1; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "%shttps://h%d",
		    i ? "," : "", i);
	/* Five URLs of 891 bytes each: every one within urlpolicy's 1024,
	 * the whole over 4096. */
	o = 0;
	for (int i = 0; i < 5; i++) {
		o += (size_t)snprintf(longest + o, sizeof(longest) - o,
		    "%shttps://h%d/", i ? "," : "", i);
		memset(longest + o, 'p', 880);
		o += 880;
		longest[o] = '\0';
	}
	const struct { const char *in, *why; } cases[] = {
		{ "", "empty" },
		{ ",https://a", "URL 1 of 2 is empty" },
		{ "https://a,", "URL 2 of 2 is empty" },
		{ "https://a,,https://b", "URL 2 of 3 is empty" },
		{ ",", "URL 1 of 2 is empty" },
		{ "https://a, https://b", "URL 2 of 2 contains a space" },
		{ "https://a ,https://b", "URL 1 of 2 contains a space" },
		{ "https://a,\thttps://b", "URL 2 of 2 contains a space" },
		{ "https://a,https://b\n", "URL 2 of 2 contains a space" },
		{ "https://a,https://b\x7f", "URL 2 of 2 contains a space" },
		{ "https://a,https://b\xc3\xbc.example", "URL 2 of 2 contains a "
		  "byte outside ASCII" },
		{ "https://\xc3\xbc.example", "contains a byte outside ASCII" },
		{ "https://a,https://a", "URL 2 of 2 repeats URL 1" },
		{ "https://a/,https://b,https://A", "URL 3 of 3 repeats URL 1" },
		{ "https://127.0.0.1:1,https://127.1:1/", "URL 2 of 2 repeats URL 1" },
		{ many, "lists 17 URLs; at most 16" },
		{ longest, "longer than 4096 bytes" },
		/* urlpolicy's own reasons, with the URL's place. */
		{ "https://a,ftp://b", "URL 2 of 2 must be https://" },
		{ "https://a,https://u@b", "URL 2 of 2 must not contain userinfo" },
		{ "https://a/?x,https://b", "URL 1 of 2 must not contain a query" },
		{ "https://a,b.example:8443", "URL 2 of 2 is not a URL" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strlist l;
		const char *why;
		if (parse(cases[i].in, &l, &why) != -22)
			fail_msg("case %zu accepted", i);
		assert_null(l.v);
		assert_non_null(why);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, why,
			    cases[i].why);
	}
	/* 16 is the cap, not one less. */
	char *comma = many;
	for (int i = 0; i < CONFIG_QUEUE_URLS_MAX; i++)
		comma = strchr(comma + 1, ',');
	*comma = '\0';
	struct strlist l;
	const char *why;
	assert_int_equal(parse(many, &l, &why), 0);
	assert_int_equal(l.n, CONFIG_QUEUE_URLS_MAX);
	config_strlist_free(&l);
}

/* The configuration as the agent loads it: the list and its joined form;
 * plain http:// only to loopback, checked for every URL. */
static void test_config_keeps_list(void **state)
{
	struct agent_config c;
	int argi, check;
	char conf[] = "/tmp/skiff-test-qurls.XXXXXX";
	int fd = mkstemp(conf);
	const char *argv[] = { "skiff-agent", "--config", conf, "--queue-url",
	    "https://a.example/,http://127.0.0.1:8080", NULL };
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(config_load(&c, 5, (char **)argv, &argi, &check), 0);
	assert_int_equal(c.queue_urls.n, 2);
	assert_string_equal(c.queue_urls.v[1], "http://127.0.0.1:8080");
	assert_string_equal(c.queue_url, "https://a.example,http://127.0.0.1:8080");
	assert_int_equal(config_validate(&c), 0);
	config_free(&c);
	assert_null(c.queue_urls.v);

	argv[4] = "https://a.example,http://b.example";
	assert_int_equal(config_load(&c, 5, (char **)argv, &argi, &check), 0);
	assert_int_equal(config_validate(&c), -22);
	config_free(&c);

	/* A refused list leaves nothing half-set. */
	argv[4] = "https://a.example,,https://b.example";
	assert_int_equal(config_load(&c, 5, (char **)argv, &argi, &check), -22);
	assert_null(c.queue_url);
	assert_int_equal(c.queue_urls.n, 0);
	config_free(&c);
	unlink(conf);
}

static char *const three[] = { "https://a", "https://b", "https://c" };

static void test_moves_on(void **state)
{
	(void)state;
	assert_true(qurls_moves_on(0));
	assert_true(qurls_moves_on(500));
	assert_true(qurls_moves_on(502));
	assert_true(qurls_moves_on(503));
	assert_true(qurls_moves_on(599));
	static const long stay[] = { 200, 201, 204, 400, 401, 403, 404, 409,
	    410, 413, 422, 429, 499, 600 };
	for (size_t i = 0; i < sizeof(stay) / sizeof(stay[0]); i++)
		if (qurls_moves_on(stay[i]))
			fail_msg("%ld moves on", stay[i]);
}

/* Round robin, one move per failure of the URL in use. */
static void test_round_robin(void **state)
{
	struct qurls q;
	uint64_t g0, g1, g;
	(void)state;

	qurls_init(&q, three, 3);
	assert_string_equal(qurls_current(&q, &g0), "https://a");
	/* A 4xx and a success never move. */
	assert_int_equal(qurls_failed(&q, g0, 401), 0);
	assert_int_equal(qurls_failed(&q, g0, 429), 0);
	assert_int_equal(qurls_failed(&q, g0, 200), 0);
	assert_string_equal(qurls_current(&q, &g), "https://a");
	assert_true(g == g0);
	/* The heartbeat, the log upload and the long-poll sent to a were in
	 * flight when it died: the first failure moves, the others find the
	 * agent moved already. */
	assert_int_equal(qurls_failed(&q, g0, 0), 1);
	assert_string_equal(qurls_current(&q, &g1), "https://b");
	assert_true(g1 != g0);
	assert_int_equal(qurls_failed(&q, g0, 0), 0);
	assert_int_equal(qurls_failed(&q, g0, 503), 0);
	assert_string_equal(qurls_current(&q, NULL), "https://b");
	/* b answers 503: on to c, then back to a. */
	assert_int_equal(qurls_failed(&q, g1, 503), 1);
	assert_string_equal(qurls_current(&q, &g), "https://c");
	assert_int_equal(qurls_failed(&q, g, 0), 1);
	assert_string_equal(qurls_current(&q, &g), "https://a");
	/* Back on a with another generation: a stale failure from the first
	 * time on a does not move the agent off it again. */
	assert_true(g != g0);
	assert_int_equal(qurls_failed(&q, g0, 0), 0);
	assert_string_equal(qurls_current(&q, NULL), "https://a");
	/* Bounded: any number of failures cycles through the three. */
	for (int i = 0; i < 3000; i++) {
		qurls_current(&q, &g);
		assert_int_equal(qurls_failed(&q, g, i % 2 ? 0 : 500), 1);
		assert_string_equal(qurls_current(&q, NULL), three[(i + 1) % 3]);
	}
}

static void test_one_url_never_moves(void **state)
{
	struct qurls q;
	uint64_t g;
	(void)state;

	qurls_init(&q, three, 1);
	qurls_current(&q, &g);
	assert_int_equal(qurls_failed(&q, g, 0), 0);
	assert_int_equal(qurls_failed(&q, g, 503), 0);
	assert_string_equal(qurls_current(&q, &g), "https://a");
}

static void test_compare(void **state)
{
	char *const ab[] = { "https://a", "https://b" };
	char *const ba[] = { "https://B", "https://a" };
	char *const bc[] = { "https://b", "https://c" };
	char *const cd[] = { "https://c", "https://d" };
	char *const a[] = { "https://a" };
	(void)state;

	assert_int_equal(qurls_compare(ab, 2, ab, 2), QURLS_SAME);
	assert_int_equal(qurls_compare(ab, 2, ba, 2), QURLS_SAME);
	assert_int_equal(qurls_compare(a, 1, a, 1), QURLS_SAME);
	assert_int_equal(qurls_compare(ab, 2, bc, 2), QURLS_OVERLAP);
	assert_int_equal(qurls_compare(a, 1, ab, 2), QURLS_OVERLAP);
	assert_int_equal(qurls_compare(ab, 2, a, 1), QURLS_OVERLAP);
	assert_int_equal(qurls_compare(three, 3, ab, 2), QURLS_OVERLAP);
	assert_int_equal(qurls_compare(ab, 2, cd, 2), QURLS_DISJOINT);
	assert_int_equal(qurls_compare(a, 1, cd, 2), QURLS_DISJOINT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_kept),
		cmocka_unit_test(test_lists_refused),
		cmocka_unit_test(test_config_keeps_list),
		cmocka_unit_test(test_moves_on),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_one_url_never_moves),
		cmocka_unit_test(test_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
