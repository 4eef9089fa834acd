/* The masker: secrets never reach the log, however they are split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>

#include "buf.h"
#include "mask.h"
#include "svcmsg.h"
#include "xalloc.h"

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

/* want, whole, split at every position, and in pieces of 1, 2, 3, 7. */
static void check_all(const struct mask *m, const char *in, const char *want)
{
	size_t len = strlen(in);

	for (size_t cut = 1; cut <= len; cut++) {
		size_t sizes[2] = { cut, len };
		char *r = feed_split(m, in, sizes, 2);
		assert_string_equal(r, want);
		free(r);
	}
	for (size_t n = 1; n <= 7; n += n < 3 ? 1 : 4) {
		char *r = feed_split(m, in, &n, 1);
		assert_string_equal(r, want);
		free(r);
	}
}

/* "<< form >>" masks to "<< *** >>", however it is split. */
static void check_form(const struct mask *m, const char *form)
{
	char *in = xasprintf("<< %s >>\n", form);
	check_all(m, in, "<< *** >>\n");
	free(in);
}

static struct mask *mask_of(const char *v)
{
	struct mask *m = mask_new();
	assert_int_equal(mask_add(m, v, strlen(v)), 0);
	return m;
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

/* base64 of pre + v + post as an encoder prints it. */
static char *b64(const char *pre, const char *v, const char *post,
    int variant)
{
	char *raw = xasprintf("%s%s%s", pre, v, post);
	size_t n = strlen(raw), elen = sodium_base64_ENCODED_LEN(n, variant);
	char *enc = xmalloc(elen);
	sodium_bin2base64(enc, elen, (unsigned char *)raw, n, variant);
	free(raw);
	return enc;
}

/*
 * The value at byte offset p of the encoded input: the characters before
 * ceil(8p/6) depend on pre, those from floor(8(p+n)/6) on post (when
 * there is one: else the last character is the value's, zero-padded,
 * and it is masked too; so it is when post begins with the zero bits
 * that padding would have). Everything between must be one "***", at
 * each alignment, in both alphabets, however the text is split.
 */
static void check_b64(const struct mask *m, const char *pre, const char *v,
    const char *post, int variant)
{
	size_t p = strlen(pre), end = 8 * (p + strlen(v));
	size_t lo = (8 * p + 5) / 6, hi = *post ? end / 6 : (end + 5) / 6;
	char *enc = b64(pre, v, post, variant);
	char *last = b64(pre, v, "", variant);
	if (*post && end % 6 && enc[hi] == last[hi])
		hi++;
	free(last);
	char *want = xasprintf("%.*s***%s", (int)lo, enc, enc + hi);
	check_all(m, enc, want);
	free(want);
	free(enc);
}

static void test_base64_every_alignment(void **state)
{
	const char *v = "t0k?n>~~s3cr3t!";
	const char *pre[] = { "", "a", "ab", "abc", "abcd", "abcde" };
	const char *post[] = { "", "x", "yz", ":tail" };
	const int variants[] = { sodium_base64_VARIANT_ORIGINAL,
	    sodium_base64_VARIANT_URLSAFE };
	struct mask *m = mask_of(v);
	int differ = 0;
	(void)state;
	for (size_t a = 0; a < 3; a++) {
		char *x = b64(pre[a], v, "", variants[0]);
		char *y = b64(pre[a], v, "", variants[1]);
		differ |= strcmp(x, y) != 0;
		free(x);
		free(y);
	}
	assert_true(differ);	/* the url alphabet is really tested */
	for (size_t i = 0; i < 6; i++)
		for (size_t j = 0; j < 4; j++)
			for (size_t k = 0; k < 2; k++)
				check_b64(m, pre[i], v, post[j], variants[k]);
	mask_free(m);
}

/* printf 'ci-bot:%s' "$S" | base64, as in an Authorization header. */
static void test_base64_basic_auth(void **state)
{
	const char *v = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
	struct mask *m = mask_of(v);
	(void)state;
	check_b64(m, "ci-bot:", v, "", sodium_base64_VARIANT_ORIGINAL);
	char *enc = b64("ci-bot:", v, "", sodium_base64_VARIANT_ORIGINAL);
	char *in = xasprintf("Authorization: Basic %s\n", enc);
	char *r = mask_string(m, in);
	/* "ci-bot:" is 7 bytes: 9 characters of its own and one it shares
	 * with the value; the value ends the text. */
	char *want = xasprintf("Authorization: Basic %.10s***=\n", enc);
	assert_string_equal(r, want);
	free(want);
	free(r);
	free(in);
	free(enc);
	mask_free(m);
}

static void test_hex(void **state)
{
	struct mask *m = mask_of("Hex-s3cret");
	(void)state;
	check_form(m, "4865782d733363726574");
	check_form(m, "4865782D733363726574");
	/* Inside a longer dump, byte-aligned. */
	check_all(m, "00ff4865782d733363726574abcd\n", "00ff***abcd\n");
	mask_free(m);
}

/* A derived form under MASK_MIN_FORM is not masked; the value is. */
static void test_short_values(void **state)
{
	struct mask *m = mask_of("q");
	(void)state;
	check_all(m, "71 7171 q 0x71\n", "71 7171 *** 0x71\n");
	mask_free(m);
	m = mask_of("qz");
	/* hex "717a" is 4 characters: left; "%71%7A" is 6: masked. */
	check_all(m, "717a %71%7A qz\n", "717a *** ***\n");
	mask_free(m);
}

static void test_percent(void **state)
{
	const char *v = "p@ss w0rd/x!(y)*'~";
	struct mask *m = mask_of(v);
	(void)state;
	/* every byte, upper and lower case */
	check_form(m, "%70%40%73%73%20%77%30%72%64%2F%78%21%28%79%29%2A%27%7E");
	check_form(m, "%70%40%73%73%20%77%30%72%64%2f%78%21%28%79%29%2a%27%7e");
	/* RFC 3986 reserved only: curl --data-urlencode, Python quote() */
	check_form(m, "p%40ss%20w0rd%2Fx%21%28y%29%2A%27~");
	check_form(m, "p%40ss%20w0rd%2fx%21%28y%29%2a%27~");
	/* encodeURIComponent keeps !*'() */
	check_form(m, "p%40ss%20w0rd%2Fx!(y)*'~");
	/* form encoding: a space is '+' */
	check_form(m, "p%40ss+w0rd%2Fx%21%28y%29%2A%27~");
	check_all(m, "curl -d user=me&pass=p%40ss%20w0rd%2Fx%21%28y%29%2A%27~&x=1\n",
	    "curl -d user=me&pass=***&x=1\n");
	mask_free(m);
}

static void test_json(void **state)
{
	const char *v = "tab\there \"q\" back\\slash </b> \xc3\xa9/"
	    "\xf0\x9f\x98\x80\x01";
	struct mask *m = mask_of(v);
	(void)state;
	check_form(m, "tab\\there \\\"q\\\" back\\\\slash </b> \xc3\xa9/"
	    "\xf0\x9f\x98\x80\\u0001");
	/* ASCII only (Python's default) */
	check_form(m, "tab\\there \\\"q\\\" back\\\\slash </b> "
	    "\\u00e9/\\ud83d\\ude00\\u0001");
	/* HTML-safe (Go's default) */
	check_form(m, "tab\\there \\\"q\\\" back\\\\slash \\u003c/b\\u003e "
	    "\xc3\xa9/\xf0\x9f\x98\x80\\u0001");
	/* "\/" (PHP's default) */
	check_form(m, "tab\\there \\\"q\\\" back\\\\slash <\\/b> \xc3\xa9\\/"
	    "\xf0\x9f\x98\x80\\u0001");
	mask_free(m);
}

static void test_lines_of_a_value(void **state)
{
	struct mask *m = mask_of("-----KEY-----\r\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF");
	(void)state;
	check_form(m, "-----KEY-----");
	check_form(m, "MIIEvQIBADANBg");
	check_form(m, "kqhkiG9w0BAQEF");
	mask_free(m);
}

/* Overlapping and nested occurrences are one "***": nothing between
 * them shows; adjacent ones stay two. */
static void test_overlapping_secrets(void **state)
{
	struct mask *m = mask_new();
	(void)state;
	assert_int_equal(mask_add(m, "abcdef12", 8), 0);
	assert_int_equal(mask_add(m, "ef12ghij", 8), 0);
	assert_int_equal(mask_add(m, "cdef", 4), 0);
	assert_int_equal(mask_add(m, "zz-cdef12gh-zz", 14), 0);
	check_all(m, "xx abcdef12ghij yy\n", "xx *** yy\n");
	check_all(m, "xx ab-cdef-gh yy\n", "xx ab-***-gh yy\n");
	check_all(m, "xx zz-cdef12gh-zz yy\n", "xx *** yy\n");
	check_all(m, "xx zz-cdef12ghij yy\n", "xx zz-*** yy\n");
	check_all(m, "abcdef12ef12ghij\n", "******\n");
	check_all(m, "abcdef12ghij-abcdef12ghij-cdef\n", "***-***-***\n");
	mask_free(m);
}

/* The forms of a value split across every chunk boundary. */
static void test_every_form_split(void **state)
{
	const char *v = "p@ss/w0rd\"\t<&>";
	struct mask *m = mask_of(v);
	char hex[64], HEX[64], pct[128];
	(void)state;
	for (size_t i = 0; v[i]; i++) {
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)v[i]);
		snprintf(HEX + 2 * i, 3, "%02X", (unsigned char)v[i]);
		snprintf(pct + 3 * i, 4, "%%%02X", (unsigned char)v[i]);
	}
	check_form(m, v);
	check_form(m, hex);
	check_form(m, HEX);
	check_form(m, pct);
	check_form(m, "p%40ss%2Fw0rd%22%09%3C%26%3E");
	check_form(m, "p@ss/w0rd\\\"\\t<&>");
	check_form(m, "p@ss/w0rd\\\"\\t\\u003c\\u0026\\u003e");
	for (int k = 0; k < 2; k++) {
		int variant = k ? sodium_base64_VARIANT_URLSAFE :
		    sodium_base64_VARIANT_ORIGINAL;
		check_b64(m, "", v, "-", variant);
		check_b64(m, "1", v, "-", variant);
		check_b64(m, "12", v, "", variant);
	}
	mask_free(m);
}

static void test_budget(void **state)
{
	struct mask *m = mask_new();
	char *v = xmalloc(MASK_MAX_SECRET);
	int r = 0;
	(void)state;
	for (int i = 0; i < 64 && r == 0; i++) {
		memset(v, 'a' + i % 26, MASK_MAX_SECRET);
		v[0] = (char)('0' + i % 10);
		r = mask_add(m, v, MASK_MAX_SECRET);
	}
	/* Past the budget the forms go, the value itself is still masked. */
	assert_int_equal(r, -E2BIG);
	char *in = xasprintf("[%.*s]", MASK_MAX_SECRET, v);
	char *out = mask_string(m, in);
	assert_string_equal(out, "[***]");
	free(out);
	free(in);
	free(v);
	mask_free(m);
}

/* ---- ##skiff[add-mask] ---- */

static int refused;

static void add_line(void *arg, const char *v, size_t n)
{
	if (v == NULL || mask_add_runtime(arg, v, n) < 0)
		refused++;
}

/* As check_all, with a fresh mask (it grows) for every way of feeding. */
static void check_runtime(const char *sealed, const char *in,
    const char *want)
{
	size_t len = strlen(in);

	for (size_t cut = 1; cut <= len + 7; cut++) {
		struct mask *m = mask_new();
		size_t sizes[2] = { cut, len };
		size_t one = cut - len;
		if (sealed)
			assert_int_equal(mask_add(m, sealed, strlen(sealed)), 0);
		mask_on_add_line(m, add_line, m);
		char *r = cut <= len ? feed_split(m, in, sizes, 2) :
		    feed_split(m, in, &one, 1);
		assert_string_equal(r, want);
		free(r);
		mask_free(m);
	}
}

static void test_add_mask(void **state)
{
	(void)state;
	refused = 0;
	check_runtime(NULL,
	    "before run-time-v4lue\n"
	    "##skiff[add-mask value='run-time-v4lue']\n"
	    "after run-time-v4lue and 72756e2d74696d652d76346c7565\n",
	    "before run-time-v4lue\n"
	    MASK_ADD_SHOWN "\n"
	    "after *** and ***\n");
	/* Quotes escaped as |', a CR before the newline, a sealed secret
	 * beside it. */
	check_runtime("sealed-one",
	    "x sealed-one\n##skiff[add-mask value='it|'s a s3cret']\r\n"
	    "it's a s3cret, sealed-one\n",
	    "x ***\n" MASK_ADD_SHOWN "\n***, ***\n");
	/* At the end of the output without a newline. */
	check_runtime(NULL, "a\n##skiff[add-mask value='no-newline']",
	    "a\n" MASK_ADD_SHOWN);
	assert_int_equal(refused, 0);
}

static void test_add_mask_refused_lines_hidden(void **state)
{
	char *big = xmalloc(MASK_LINE_MAX + 64);
	(void)state;
	refused = 0;
	/* Too short, malformed, unknown attribute only: never shown. */
	check_runtime(NULL, "##skiff[add-mask value='abc']\nabc\n",
	    MASK_ADD_SHOWN "\nabc\n");
	check_runtime(NULL, "##skiff[add-mask value='unterminated]\nok\n",
	    MASK_ADD_SHOWN "\nok\n");
	check_runtime(NULL, "##skiff[add-mask]\n", MASK_ADD_SHOWN "\n");
	assert_true(refused > 0);
	/* Longer than MASK_LINE_MAX: refused whole. */
	refused = 0;
	struct mask *m = mask_new();
	mask_on_add_line(m, add_line, m);
	memset(big, 'v', MASK_LINE_MAX + 63);
	big[MASK_LINE_MAX + 63] = '\0';
	char *in = xasprintf("##skiff[add-mask value='%s']\nv\n", big);
	size_t sz = 1000;
	char *r = feed_split(m, in, &sz, 1);
	assert_string_equal(r, MASK_ADD_SHOWN "\nv\n");
	assert_int_equal(refused, 1);
	free(r);
	free(in);
	free(big);
	mask_free(m);
	/* Not at a line start, or not add-mask: plain text. */
	check_runtime(NULL, " ##skiff[add-mask value='zzzzzz']\nzzzzzz\n",
	    " ##skiff[add-mask value='zzzzzz']\nzzzzzz\n");
	check_runtime(NULL, "##skiff[add-mas value='zzzzzz']\n",
	    "##skiff[add-mas value='zzzzzz']\n");
	check_runtime(NULL, "##skiff[add-ma", "##skiff[add-ma");
}

static void test_add_mask_caps(void **state)
{
	struct mask *m = mask_new();
	char v[32];
	int r = 0, i;
	(void)state;
	assert_int_equal(mask_add_runtime(m, "abc", 3), -EINVAL);
	for (i = 0; i < MASK_MAX_RUNTIME + 1 && r == 0; i++) {
		snprintf(v, sizeof(v), "value-%04d", i);
		r = mask_add_runtime(m, v, strlen(v));
	}
	assert_int_equal(r, -E2BIG);
	assert_int_equal(i, MASK_MAX_RUNTIME + 1);
	char *out = mask_string(m, "value-0000 value-0255 value-0256");
	assert_string_equal(out, "*** *** value-0256");
	free(out);
	mask_free(m);

	/* The byte budget: long values fill it, then are refused. */
	m = mask_new();
	char *big = xmalloc(MASK_MAX_SECRET);
	r = 0;
	for (i = 0; i < 64 && r == 0; i++) {
		memset(big, 'A' + i % 26, MASK_MAX_SECRET);
		big[1] = (char)('0' + i % 10);
		r = mask_add_runtime(m, big, MASK_MAX_SECRET);
	}
	assert_int_equal(r, -ENOSPC);
	free(big);
	mask_free(m);
}

/* A mask added in one stream hides the value in the others, in what
 * they still hold, and after their end (the next step). */
static void test_add_mask_all_streams(void **state)
{
	struct mask *m = mask_new();
	struct mask_stream out, err;
	struct buf bo = BUF_INIT(4096), be = BUF_INIT(4096);
	(void)state;
	refused = 0;
	mask_on_add_line(m, add_line, m);
	mask_stream_init(&out, m);
	mask_stream_init(&err, m);
	mask_feed(&err, "e1 late-", 8, 0, collect, &be);
	mask_feed(&out, "##skiff[add-mask value='late-adder']\n", 37, 0, collect,
	    &bo);
	mask_feed(&err, "adder\n", 6, 0, collect, &be);
	mask_feed(&out, "o late-adder\n", 13, 1, collect, &bo);
	mask_feed(&err, "e2 late-adder\n", 14, 1, collect, &be);
	mask_feed(&err, "next step late-adder", 20, 1, collect, &be);
	assert_string_equal(buf_cstr(&bo), MASK_ADD_SHOWN "\no ***\n");
	/* "late-" was out before the mask existed, unless it was held. */
	assert_string_equal(buf_cstr(&be), "e1 late-adder\ne2 ***\nnext step ***");
	assert_int_equal(refused, 0);
	/* mask_string never treats add-mask lines. */
	char *s = mask_string(m, "##skiff[add-mask value='other-one']");
	assert_string_equal(s, "##skiff[add-mask value='other-one']");
	free(s);
	mask_stream_free(&out);
	mask_stream_free(&err);
	buf_free(&bo);
	buf_free(&be);
	mask_free(m);
}

/* ---- ##skiff[set-secret] and ##skiff[set-output] ---- */

static void test_set_secret(void **state)
{
	(void)state;
	refused = 0;
	/* The documented name of add-mask: the same, shown as itself. */
	check_runtime(NULL,
	    "##skiff[set-secret value='t0ken-from-step']\n"
	    "use t0ken-from-step\n",
	    MASK_SECRET_SHOWN "\nuse ***\n");
	assert_int_equal(refused, 0);
	/* A set-secret line with add-mask's type inside is malformed. */
	check_runtime(NULL, "##skiff[set-secret-x value='zzzzzz']\nzzzzzz\n",
	    MASK_SECRET_SHOWN "\nzzzzzz\n");
	assert_true(refused > 0);
}

struct got_outputs {
	char names[8][64];
	char values[8][SVCMSG_MAX_VALUE + 1];
	size_t n;
	size_t bad;
};

static void out_line(void *arg, const struct svcmsg *m)
{
	struct got_outputs *g = arg;
	const char *n = m ? svcmsg_get(m, "name") : NULL;
	const char *v = m ? svcmsg_get(m, "value") : NULL;

	if (n == NULL || v == NULL || g->n == 8) {
		g->bad++;
		return;
	}
	snprintf(g->names[g->n], sizeof(g->names[0]), "%s", n);
	snprintf(g->values[g->n], sizeof(g->values[0]), "%s", v);
	g->n++;
}

/* The owner gets the value as written; the log gets the line masked. */
static void check_output(const char *in, const char *want, const char *name,
    const char *value, size_t bad)
{
	size_t len = strlen(in);

	for (size_t cut = 1; cut <= len + 7; cut++) {
		struct mask *m = mask_new();
		struct got_outputs g = { .n = 0 };
		size_t sizes[2] = { cut, len };
		size_t one = cut - len;
		assert_int_equal(mask_add(m, "sealed-one", 10), 0);
		mask_on_add_line(m, add_line, m);
		mask_on_output_line(m, out_line, &g);
		char *r = cut <= len ? feed_split(m, in, sizes, 2) :
		    feed_split(m, in, &one, 1);
		assert_string_equal(r, want);
		assert_int_equal(g.bad, bad);
		if (name) {
			assert_int_equal(g.n, 1);
			assert_string_equal(g.names[0], name);
			assert_string_equal(g.values[0], value);
		} else {
			assert_int_equal(g.n, 0);
		}
		free(r);
		mask_free(m);
	}
}

static void test_set_output(void **state)
{
	char *big = xmalloc(MASK_LINE_MAX + 64);
	(void)state;
	refused = 0;
	check_output("a\n##skiff[set-output name='V' value='1.2']\nb\n",
	    "a\n##skiff[set-output name='V' value='1.2']\nb\n", "V", "1.2", 0);
	/* A secret in the value: unmasked to the owner, masked in the log
	 * (also one added at run time just before). */
	check_output("##skiff[set-output name='T' value='x sealed-one']\r\n",
	    "##skiff[set-output name='T' value='x ***']\r\n", "T",
	    "x sealed-one", 0);
	check_output("##skiff[set-secret value='run-t1me']\n"
	    "##skiff[set-output name='R' value='run-t1me']",
	    MASK_SECRET_SHOWN "\n##skiff[set-output name='R' value='***']", "R",
	    "run-t1me", 0);
	/* Malformed: told as NULL, shown masked. */
	check_output("##skiff[set-output name='N']\n",
	    "##skiff[set-output name='N']\n", NULL, NULL, 1);
	check_output("##skiff[set-output value='sealed-one]\n",
	    "##skiff[set-output value='***]\n", NULL, NULL, 1);
	/* Not at a line start, or another type: plain text. */
	check_output(" ##skiff[set-output name='A' value='b']\n",
	    " ##skiff[set-output name='A' value='b']\n", NULL, NULL, 0);
	check_output("##skiff[set-outputs name='A' value='b']\n",
	    "##skiff[set-outputs name='A' value='b']\n", NULL, NULL, 1);
	check_output("##skiff[set-outp", "##skiff[set-outp", NULL, NULL, 0);
	assert_int_equal(refused, 0);
	/* Longer than MASK_LINE_MAX: refused, not shown. */
	memset(big, 'v', MASK_LINE_MAX + 63);
	big[MASK_LINE_MAX + 63] = '\0';
	char *in = xasprintf("##skiff[set-output name='B' value='%s']\nv\n",
	    big);
	struct mask *m = mask_new();
	struct got_outputs g = { .n = 0 };
	mask_on_add_line(m, add_line, m);
	mask_on_output_line(m, out_line, &g);
	size_t sz = 1000;
	char *r = feed_split(m, in, &sz, 1);
	assert_string_equal(r, MASK_OUTPUT_OVER "\nv\n");
	assert_int_equal(g.bad, 1);
	free(r);
	free(in);
	free(big);
	mask_free(m);
	/* Without an output owner, set-output lines are plain text. */
	m = mask_new();
	mask_on_add_line(m, add_line, m);
	sz = 3;
	r = feed_split(m, "##skiff[set-output name='A' value='b']\n", &sz, 1);
	assert_string_equal(r, "##skiff[set-output name='A' value='b']\n");
	free(r);
	mask_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole),
		cmocka_unit_test(test_set_secret),
		cmocka_unit_test(test_set_output),
		cmocka_unit_test(test_split_every_position),
		cmocka_unit_test(test_prefix_not_secret_released_at_end),
		cmocka_unit_test(test_longer_secret_wins),
		cmocka_unit_test(test_derived_forms),
		cmocka_unit_test(test_no_secrets_passthrough),
		cmocka_unit_test(test_base64_every_alignment),
		cmocka_unit_test(test_base64_basic_auth),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_short_values),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_lines_of_a_value),
		cmocka_unit_test(test_overlapping_secrets),
		cmocka_unit_test(test_every_form_split),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_add_mask),
		cmocka_unit_test(test_add_mask_refused_lines_hidden),
		cmocka_unit_test(test_add_mask_caps),
		cmocka_unit_test(test_add_mask_all_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
