/* The masker: secrets never reach the log, however they are split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "mask.h"

static void collect(void *arg, const char *d, size_t n)
{
	assert_int_equal(buf_append(arg, d, n), 0);
}

/* Feeds input in pieces of the given sizes (cycling), then ends. */
static char *feed_split(const struct mask *m, const char *in,
    const size_t *sizes, size_t nsizes)
{
	struct mask_stream s;
	struct buf out = BUF_INIT(1 << 20);
	size_t len = strlen(in), pos = 0, k = 0;

	mask_stream_init(&s, m);
	while (pos < len) {
		size_t n = sizes[k++ % nsizes];
		if (n > len - pos)
			n = len - pos;
		mask_feed(&s, in + pos, n, 0, collect, &out);
		pos += n;
	}
	mask_feed(&s, "", 0, 1, collect, &out);
	mask_stream_free(&s);
	return buf_steal(&out, NULL);
}

static void test_whole(void **state)
{
	struct mask *m = mask_new();
	(void)state;
	mask_add(m, "hunter2", 7);
	char *r = mask_string(m, "password is hunter2, ok");
	assert_string_equal(r, "password is ***, ok");
	free(r);
	mask_free(m);
}

static void test_split_every_position(void **state)
{
	struct mask *m = mask_new();
	const char *in = "a s3cr3t-value b s3cr3t-value\n";
	(void)state;
	mask_add(m, "s3cr3t-value", 12);
	/* Every split point, and byte-by-byte. */
	for (size_t cut = 1; cut < strlen(in); cut++) {
		size_t sizes[2] = { cut, strlen(in) };
		char *r = feed_split(m, in, sizes, 2);
		assert_string_equal(r, "a *** b ***\n");
		free(r);
	}
	size_t one = 1;
	char *r = feed_split(m, in, &one, 1);
	assert_string_equal(r, "a *** b ***\n");
	free(r);
	mask_free(m);
}

static void test_prefix_not_secret_released_at_end(void **state)
{
	struct mask *m = mask_new();
	struct mask_stream s;
	struct buf out = BUF_INIT(4096);
	(void)state;
	mask_add(m, "topsecret", 9);
	mask_stream_init(&s, m);
	mask_feed(&s, "value: tops", 11, 0, collect, &out);
	/* "tops" may begin the secret: held back. */
	assert_int_equal(out.len, 7);
	assert_int_equal(mask_held(&s), 4);
	mask_feed(&s, "", 0, 1, collect, &out);
	assert_string_equal(buf_cstr(&out), "value: tops");
	mask_stream_free(&s);
	buf_free(&out);
	mask_free(m);
}

static void test_longer_secret_wins(void **state)
{
	struct mask *m = mask_new();
	(void)state;
	mask_add(m, "abc", 3);
	mask_add(m, "abcdef", 6);
	size_t sizes[] = { 4, 100 };
	/* "abcd" could still become "abcdef": "abc" must not be masked
	 * alone, which would show "def". */
	char *r = feed_split(m, "xabcdefy abcz", sizes, 2);
	assert_string_equal(r, "x***y ***z");
	free(r);
	mask_free(m);
}

static void test_derived_forms(void **state)
{
	struct mask *m = mask_new();
	(void)state;
	mask_add(m, "line-one\nline-two", 17);
	char *r = mask_string(m, "got line-two and line-one");
	assert_string_equal(r, "got *** and ***");
	free(r);
	/* base64 of "line-one\nline-two" */
	r = mask_string(m, "b64=bGluZS1vbmUKbGluZS10d28=");
	assert_string_equal(r, "b64=***=");
	free(r);
	r = mask_string(m, "json=\"line-one\\nline-two\"");
	assert_string_equal(r, "json=\"***\"");
	free(r);
	mask_free(m);
}

static void test_no_secrets_passthrough(void **state)
{
	struct mask *m = mask_new();
	size_t sizes[] = { 3 };
	(void)state;
	char *r = feed_split(m, "nothing to hide\n", sizes, 1);
	assert_string_equal(r, "nothing to hide\n");
	free(r);
	mask_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole),
		cmocka_unit_test(test_split_every_position),
		cmocka_unit_test(test_prefix_not_secret_released_at_end),
		cmocka_unit_test(test_longer_secret_wins),
		cmocka_unit_test(test_derived_forms),
		cmocka_unit_test(test_no_secrets_passthrough),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
