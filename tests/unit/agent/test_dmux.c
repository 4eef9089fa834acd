/* Docker's multiplexed stream: frames cut anywhere, refused headers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "dmux.h"

struct got {
	struct buf s[4];
	struct buf order;	/* the stream of each callback, as digits */
	int stop_after;		/* return -1 after this many calls; 0: never */
	int calls;
};

static void got_init(struct got *g)
{
	memset(g, 0, sizeof(*g));
	for (int i = 0; i < 4; i++)
		buf_init(&g->s[i], 1 << 20);
	buf_init(&g->order, 1 << 16);
}

static void got_free(struct got *g)
{
	for (int i = 0; i < 4; i++)
		buf_free(&g->s[i]);
	buf_free(&g->order);
}

static int collect(void *arg, int stream, const char *d, size_t n)
{
	struct got *g = arg;

	assert_true(stream >= 0 && stream <= 3);
	assert_true(n > 0);
	assert_int_equal(buf_append(&g->s[stream], d, n), 0);
	buf_putc(&g->order, (char)('0' + stream));
	g->calls++;
	if (g->stop_after && g->calls >= g->stop_after)
		return -ECANCELED;
	return 0;
}

/* Appends one frame to b. */
static void frame(struct buf *b, int stream, const char *payload, size_t n)
{
	unsigned char h[8] = { (unsigned char)stream, 0, 0, 0,
	    (unsigned char)(n >> 24), (unsigned char)(n >> 16),
	    (unsigned char)(n >> 8), (unsigned char)n };

	assert_int_equal(buf_append(b, h, 8), 0);
	assert_int_equal(buf_append(b, payload, n), 0);
}

static void sample(struct buf *b)
{
	buf_init(b, 1 << 20);
	frame(b, 1, "hello\n", 6);
	frame(b, 2, "oops\n", 5);
	frame(b, 1, "", 0);		/* empty frames occur and carry nothing */
	frame(b, 1, "world\n", 6);
}

static void test_whole(void **state)
{
	struct buf in;
	struct got g;
	struct dmux m;
	(void)state;
	sample(&in);
	got_init(&g);
	dmux_init(&m);
	assert_int_equal(dmux_feed(&m, in.data, in.len, collect, &g), 0);
	assert_int_equal(dmux_finish(&m), 0);
	assert_string_equal(buf_cstr(&g.s[1]), "hello\nworld\n");
	assert_string_equal(buf_cstr(&g.s[2]), "oops\n");
	assert_string_equal(buf_cstr(&g.order), "121");
	assert_int_equal(m.frames, 4);
	got_free(&g);
	buf_free(&in);
}

/* Every cut position, and byte by byte: the same result. */
static void test_every_split(void **state)
{
	struct buf in;
	(void)state;
	sample(&in);
	for (size_t cut = 0; cut <= in.len; cut++) {
		struct got g;
		struct dmux m;
		got_init(&g);
		dmux_init(&m);
		assert_int_equal(dmux_feed(&m, in.data, cut, collect, &g), 0);
		assert_int_equal(dmux_feed(&m, in.data + cut, in.len - cut,
		    collect, &g), 0);
		assert_int_equal(dmux_finish(&m), 0);
		assert_string_equal(buf_cstr(&g.s[1]), "hello\nworld\n");
		assert_string_equal(buf_cstr(&g.s[2]), "oops\n");
		got_free(&g);
	}
	struct got g;
	struct dmux m;
	got_init(&g);
	dmux_init(&m);
	for (size_t i = 0; i < in.len; i++)
		assert_int_equal(dmux_feed(&m, in.data + i, 1, collect, &g), 0);
	assert_int_equal(dmux_finish(&m), 0);
	assert_string_equal(buf_cstr(&g.s[1]), "hello\nworld\n");
	got_free(&g);
	buf_free(&in);
}

static void test_truncated(void **state)
{
	struct buf in;
	(void)state;
	sample(&in);
	/* cut inside a header, and inside a payload */
	size_t cuts[] = { 3, 8 + 6 + 4, 8 + 2 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct got g;
		struct dmux m;
		got_init(&g);
		dmux_init(&m);
		assert_int_equal(dmux_feed(&m, in.data, cuts[i], collect, &g), 0);
		assert_int_equal(dmux_finish(&m), -EPROTO);
		got_free(&g);
	}
	buf_free(&in);
}

static void test_bad_headers(void **state)
{
	static const unsigned char bad[][8] = {
		{ 4, 0, 0, 0, 0, 0, 0, 1 },	/* no stream 4 */
		{ 1, 1, 0, 0, 0, 0, 0, 1 },	/* padding must be zero */
		{ 'H', 'T', 'T', 'P', '/', '1', '.', '1' },	/* not framed */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct got g;
		struct dmux m;
		got_init(&g);
		dmux_init(&m);
		assert_int_equal(dmux_feed(&m, (const char *)bad[i], 8, collect,
		    &g), -EPROTO);
		/* sticky, and nothing was delivered */
		assert_int_equal(dmux_feed(&m, "x", 1, collect, &g), -EPROTO);
		assert_int_equal(dmux_finish(&m), -EPROTO);
		assert_int_equal(g.calls, 0);
		got_free(&g);
	}
}

/* A 16 MiB frame header costs nothing: payload is passed on as it comes,
 * and the systemerr stream is delivered as its own stream. */
static void test_large_frame_and_systemerr(void **state)
{
	unsigned char h[8] = { 1, 0, 0, 0, 0x01, 0, 0, 0 };
	char chunk[4096];
	struct got g;
	struct dmux m;
	struct buf tail = BUF_INIT(1 << 10);
	(void)state;
	memset(chunk, 'a', sizeof(chunk));
	got_init(&g);
	buf_free(&g.s[1]);
	buf_init(&g.s[1], 1 << 25);
	dmux_init(&m);
	assert_int_equal(dmux_feed(&m, (const char *)h, 8, collect, &g), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(dmux_feed(&m, chunk, sizeof(chunk), collect, &g), 0);
	frame(&tail, 3, "boom", 4);
	assert_int_equal(dmux_feed(&m, tail.data, tail.len, collect, &g), 0);
	assert_int_equal(dmux_finish(&m), 0);
	assert_int_equal(g.s[1].len, 1 << 24);
	assert_string_equal(buf_cstr(&g.s[3]), "boom");
	buf_free(&tail);
	got_free(&g);
}

static void test_callback_stops(void **state)
{
	struct buf in;
	struct got g;
	struct dmux m;
	(void)state;
	sample(&in);
	got_init(&g);
	g.stop_after = 1;
	dmux_init(&m);
	assert_int_equal(dmux_feed(&m, in.data, in.len, collect, &g), -ECANCELED);
	assert_int_equal(g.calls, 1);
	assert_int_equal(dmux_finish(&m), -ECANCELED);
	got_free(&g);
	buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_large_frame_and_systemerr),
		cmocka_unit_test(test_callback_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
