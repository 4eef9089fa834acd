/* Pull progress: one line per layer state change, errors in the stream. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "pullprog.h"

static void collect(void *arg, const char *line)
{
	struct buf *b = arg;

	assert_true(strlen(line) <= PULLPROG_LINE_MAX);
	assert_null(strchr(line, '\n'));
	assert_int_equal(buf_printf(b, "%s\n", line), 0);
}

/* As Docker 20.10 writes a two-layer pull (progress bars shortened). */
static const char stream[] =
    "{\"status\":\"Pulling from skiff/pullme\",\"id\":\"1\"}\r\n"
    "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Already exists\",\"progressDetail\":{},\"id\":\"0f0f0f0f0f0f\"}\r\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":32768,\"total\":2100000},\"progress\":\"[>  ]\",\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":65536,\"total\":2100000},\"progress\":\"[=> ]\",\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":98304,\"total\":2100000},\"progress\":\"[==>]\",\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Verifying Checksum\",\"progressDetail\":{},\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Extracting\",\"progressDetail\":{\"current\":32768,\"total\":2100000},\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Extracting\",\"progressDetail\":{\"current\":2100000,\"total\":2100000},\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"a1b2c3d4e5f6\"}\r\n"
    "{\"status\":\"Digest: sha256:f96ce038e2a1ebb81a1af5554fc43987299cba76553d0f166bfa6bb4193707b1\"}\r\n"
    "{\"status\":\"Status: Downloaded newer image for 127.0.0.1:5000/skiff/pullme:1\"}\r\n";

static const char summary[] =
    "Pulling from skiff/pullme\n"
    "a1b2c3d4e5f6: Pulling fs layer\n"
    "0f0f0f0f0f0f: Already exists\n"
    "a1b2c3d4e5f6: Downloading 2.1 MB\n"
    "a1b2c3d4e5f6: Verifying Checksum\n"
    "a1b2c3d4e5f6: Download complete\n"
    "a1b2c3d4e5f6: Extracting 2.1 MB\n"
    "a1b2c3d4e5f6: Pull complete\n"
    "Digest: sha256:f96ce038e2a1ebb81a1af5554fc43987299cba76553d0f166bfa6bb4193707b1\n"
    "Status: Downloaded newer image for 127.0.0.1:5000/skiff/pullme:1\n";

static void test_summary(void **state)
{
	struct pullprog p;
	struct buf out = BUF_INIT(1 << 16);
	(void)state;
	pullprog_init(&p, collect, &out);
	assert_int_equal(pullprog_feed(&p, stream, strlen(stream)), 0);
	assert_int_equal(pullprog_finish(&p), 0);
	assert_string_equal(buf_cstr(&out), summary);
	assert_null(pullprog_error(&p));
	assert_int_equal(p.messages, 13);
	pullprog_free(&p);
	buf_free(&out);
}

static void test_every_split(void **state)
{
	size_t len = strlen(stream);
	(void)state;
	for (size_t cut = 0; cut <= len; cut += 7) {
		struct pullprog p;
		struct buf out = BUF_INIT(1 << 16);
		pullprog_init(&p, collect, &out);
		assert_int_equal(pullprog_feed(&p, stream, cut), 0);
		assert_int_equal(pullprog_feed(&p, stream + cut, len - cut), 0);
		assert_int_equal(pullprog_finish(&p), 0);
		assert_string_equal(buf_cstr(&out), summary);
		pullprog_free(&p);
		buf_free(&out);
	}
}

/* The HTTP status is 200 by the time a layer fails: the error is in the
 * stream, and later messages do not replace the first error. */
static void test_error_in_stream(void **state)
{
	static const char s[] =
	    "{\"status\":\"Pulling from x\",\"id\":\"1\"}\n"
	    "{\"errorDetail\":{\"message\":\"unauthorized: authentication required\"},"
	    "\"error\":\"unauthorized: authentication required\"}\n"
	    "{\"error\":\"second\"}\n";
	struct pullprog p;
	struct buf out = BUF_INIT(1 << 16);
	(void)state;
	pullprog_init(&p, collect, &out);
	assert_int_equal(pullprog_feed(&p, s, strlen(s)), 0);
	assert_int_equal(pullprog_finish(&p), 0);
	assert_string_equal(pullprog_error(&p),
	    "unauthorized: authentication required");
	assert_int_equal(pullprog_classify(pullprog_error(&p)), PULLPROG_AUTH);
	assert_string_equal(buf_cstr(&out), "Pulling from x\n");
	pullprog_free(&p);
	buf_free(&out);
}

/* "error" alone, "errorDetail" without a message, and null fields. */
static void test_error_forms(void **state)
{
	struct {
		const char *in, *want;
	} cases[] = {
		{ "{\"error\":\"boom\"}", "boom" },
		{ "{\"errorDetail\":{}}", "unspecified pull error" },
		{ "{\"errorDetail\":{\"message\":\"\"},\"error\":\"fallback\"}",
		    "fallback" },
		{ "{\"status\":\"ok\",\"errorDetail\":null,\"error\":null}", NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pullprog p;
		pullprog_init(&p, NULL, NULL);
		assert_int_equal(pullprog_feed(&p, cases[i].in,
		    strlen(cases[i].in)), 0);
		assert_int_equal(pullprog_finish(&p), 0);
		if (cases[i].want)
			assert_string_equal(pullprog_error(&p), cases[i].want);
		else
			assert_null(pullprog_error(&p));
		pullprog_free(&p);
	}
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"{\"status\":\"x\"\n",		/* cut JSON */
		"[1,2]\n",			/* not an object */
		"{\"a\":1,\"a\":2}\n",		/* duplicate key */
		"{\"a\":[[[[[[[[[[1]]]]]]]]]]}\n",	/* too deep */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pullprog p;
		pullprog_init(&p, NULL, NULL);
		assert_int_equal(pullprog_feed(&p, bad[i], strlen(bad[i])),
		    -EPROTO);
		assert_int_equal(pullprog_feed(&p, "{}\n", 3), -EPROTO);
		assert_int_equal(pullprog_finish(&p), -EPROTO);
		pullprog_free(&p);
	}
}

static void test_message_cap(void **state)
{
	struct pullprog p;
	char *big = malloc(PULLPROG_MSG_MAX + 16);
	(void)state;
	memset(big, ' ', PULLPROG_MSG_MAX + 16);
	pullprog_init(&p, NULL, NULL);
	assert_int_equal(pullprog_feed(&p, big, PULLPROG_MSG_MAX), 0);
	assert_int_equal(pullprog_feed(&p, big, 16), -E2BIG);
	assert_int_equal(pullprog_finish(&p), -E2BIG);
	pullprog_free(&p);
	free(big);
}

/* Registry text is cut, keeps whole UTF-8 characters, loses controls. */
static void test_sanitised(void **state)
{
	struct pullprog p;
	struct buf out = BUF_INIT(1 << 16);
	struct buf in = BUF_INIT(1 << 16);
	(void)state;
	buf_puts(&in, "{\"status\":\"bell\\u0007 and\\u001b[31m red\"}\n");
	buf_puts(&in, "{\"status\":\"");
	for (int i = 0; i < PULLPROG_LINE_MAX - 1; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\u00e9\u00e9\"}\n");	/* a 2-byte character at the cut */
	pullprog_init(&p, collect, &out);
	assert_int_equal(pullprog_feed(&p, in.data, in.len), 0);
	const char *o = buf_cstr(&out);
	assert_memory_equal(o, "bell? and?[31m red\n", 19);
	const char *second = strchr(o, '\n') + 1;
	assert_int_equal(strlen(second), PULLPROG_LINE_MAX - 1 + 1);
	assert_int_equal(second[PULLPROG_LINE_MAX - 1], '\n');
	pullprog_free(&p);
	buf_free(&out);
	buf_free(&in);
}

static void test_layer_cap_and_retry(void **state)
{
	struct pullprog p;
	struct buf out = BUF_INIT(1 << 20);
	char line[128];
	(void)state;
	pullprog_init(&p, collect, &out);
	for (int i = 0; i < PULLPROG_MAX_LAYERS + 10; i++) {
		int n = snprintf(line, sizeof(line),
		    "{\"status\":\"Waiting\",\"id\":\"%012d\"}\n", i);
		assert_int_equal(pullprog_feed(&p, line, (size_t)n), 0);
	}
	assert_int_equal(p.lines, PULLPROG_MAX_LAYERS);
	assert_int_equal(p.untracked, 10);
	/* a countdown is one state change */
	for (int s = 5; s > 0; s--) {
		int n = snprintf(line, sizeof(line),
		    "{\"status\":\"Retrying in %d seconds\",\"id\":\"%012d\"}\n",
		    s, 0);
		assert_int_equal(pullprog_feed(&p, line, (size_t)n), 0);
	}
	assert_int_equal(p.lines, PULLPROG_MAX_LAYERS + 1);
	assert_non_null(strstr(buf_cstr(&out), "000000000000: Retrying\n"));
	pullprog_free(&p);
	buf_free(&out);
}

static void test_last_message_without_newline(void **state)
{
	static const char s[] = "\n\n{\"status\":\"Digest: x\"}";
	struct pullprog p;
	struct buf out = BUF_INIT(1 << 16);
	(void)state;
	pullprog_init(&p, collect, &out);
	assert_int_equal(pullprog_feed(&p, s, strlen(s)), 0);
	assert_int_equal(p.lines, 0);
	assert_int_equal(pullprog_finish(&p), 0);
	assert_string_equal(buf_cstr(&out), "Digest: x\n");
	pullprog_free(&p);
	buf_free(&out);
}

/* Messages as Docker 20.10 and Podman 4.3 word them. */
static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(pullprog_classify("unauthorized: authentication required"),
	    PULLPROG_AUTH);
	assert_int_equal(pullprog_classify("Head \"http://127.0.0.1:5123/v2/bb/"
	    "manifests/1\": no basic auth credentials"), PULLPROG_AUTH);
	assert_int_equal(pullprog_classify("pull access denied for x, repository "
	    "does not exist or may require 'docker login': denied: requested "
	    "access to the resource is denied"), PULLPROG_AUTH);
	assert_int_equal(pullprog_classify("initializing source docker://127.0."
	    "0.1:5123/bb:1: reading manifest 1 in 127.0.0.1:5123/bb: "
	    "unauthorized: authentication required"), PULLPROG_AUTH);
	assert_int_equal(pullprog_classify("manifest for 127.0.0.1:5123/nope:1 "
	    "not found: manifest unknown: manifest unknown"), PULLPROG_NOTFOUND);
	assert_int_equal(pullprog_classify("Get \"http://127.0.0.1:5999/v2/\": "
	    "dial tcp 127.0.0.1:5999: connect: connection refused"),
	    PULLPROG_OTHER);
	/* a lost layer is not a wrong name */
	assert_int_equal(pullprog_classify("unknown blob"), PULLPROG_OTHER);
	assert_int_equal(pullprog_classify("reading blob sha256:2154: Error "
	    "fetching blob: invalid status code from registry 404 (Not Found)"),
	    PULLPROG_OTHER);
	/* a local permission problem is not a registry's refusal */
	assert_int_equal(pullprog_classify("open /var/lib/docker/tmp/x: "
	    "permission denied"), PULLPROG_OTHER);
	assert_int_equal(pullprog_classify(NULL), PULLPROG_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_error_in_stream),
		cmocka_unit_test(test_error_forms),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_message_cap),
		cmocka_unit_test(test_sanitised),
		cmocka_unit_test(test_layer_cap_and_retry),
		cmocka_unit_test(test_last_message_without_newline),
		cmocka_unit_test(test_classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
