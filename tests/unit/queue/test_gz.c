/* Streaming gzip with a cap: what fits is produced, a bomb is stopped at
 * the cap without inflating the rest, broken input is refused. */
#include "qtest.h"

#include <errno.h>
#include <zlib.h>

#include "buf.h"
#include "gz.h"

static unsigned char *gzip_of(const void *p, size_t n, size_t *outlen)
{
	z_stream zs;
	size_t cap = compressBound((uLong)n) + 64;
	unsigned char *out = xmalloc(cap);

	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9,
	    Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)(uintptr_t)p;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*outlen = cap - zs.avail_out;
	deflateEnd(&zs);
	return out;
}

static int to_buf(void *arg, const void *p, size_t n)
{
	return buf_append(arg, p, n);
}

static int count(void *arg, const void *p, size_t n)
{
	(void)p;
	*(size_t *)arg += n;
	return 0;
}

static int refuse(void *arg, const void *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return -ENOSPC;
}

static void test_round_trip_in_pieces(void **state)
{
	char text[100000];
	size_t zl;
	struct buf out = BUF_INIT(1 << 20);
	struct gz *g;

	(void)state;
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + i % 26);
	unsigned char *z = gzip_of(text, sizeof(text), &zl);
	assert_int_equal(gz_new(sizeof(text), &g), 0);
	/* One byte at a time: state carries across feeds. */
	for (size_t i = 0; i < zl; i++)
		assert_int_equal(gz_feed(g, z + i, 1, to_buf, &out), 0);
	assert_int_equal(gz_finish(g), 0);
	assert_int_equal(gz_total_out(g), sizeof(text));
	assert_memory_equal(out.data, text, sizeof(text));
	gz_free(g);
	buf_free(&out);
	free(z);
}

static void test_cap_exact_and_one_past(void **state)
{
	char data[5000];
	size_t zl, n = 0;
	struct buf out = BUF_INIT(1 << 20);

	(void)state;
	memset(data, 'x', sizeof(data));
	unsigned char *z = gzip_of(data, sizeof(data), &zl);
	assert_int_equal(gz_inflate_all(z, zl, sizeof(data), to_buf, &out), 0);
	assert_int_equal(out.len, sizeof(data));
	assert_int_equal(gz_inflate_all(z, zl, sizeof(data) - 1, count, &n),
	    -E2BIG);
	/* Nothing past the cap reached the sink. */
	assert_true(n <= sizeof(data) - 1);
	buf_free(&out);
	free(z);
}

static void test_bomb_stops_at_cap(void **state)
{
	size_t big = 256u << 20, zl, n = 0;
	char *zeros = xcalloc(1, 1 << 20);
	z_stream zs;
	unsigned char *z = xmalloc(1 << 20);
	clock_t t0;

	(void)state;
	/* 256 MiB of zeros in a few hundred KiB. */
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9,
	    Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_out = z;
	zs.avail_out = 1 << 20;
	for (size_t done = 0; done < big; done += 1 << 20) {
		zs.next_in = (unsigned char *)zeros;
		zs.avail_in = 1 << 20;
		assert_int_equal(deflate(&zs, done + (1 << 20) < big ? Z_NO_FLUSH :
		    Z_FINISH), done + (1 << 20) < big ? Z_OK : Z_STREAM_END);
	}
	zl = (1 << 20) - zs.avail_out;
	deflateEnd(&zs);
	t0 = clock();
	assert_int_equal(gz_inflate_all(z, zl, 1 << 20, count, &n), -E2BIG);
	assert_true(n <= 1 << 20);
	/* Stopped early: far less CPU than inflating 256 MiB. */
	assert_true(clock() - t0 < CLOCKS_PER_SEC / 2);
	free(z);
	free(zeros);
}

static void test_broken_input(void **state)
{
	const char *msg = "hello, world\n";
	size_t zl, n = 0;
	unsigned char *z = gzip_of(msg, strlen(msg), &zl);
	unsigned char *two = xmalloc(2 * zl);
	struct gz *g;

	(void)state;
	assert_int_equal(gz_inflate_all("plain text", 10, 100, count, &n),
	    -EBADMSG);
	/* Truncated: the member never ends. */
	assert_int_equal(gz_inflate_all(z, zl - 4, 100, count, &n), -EBADMSG);
	/* A flipped byte in the CRC. */
	z[zl - 6] ^= 1;
	assert_int_equal(gz_inflate_all(z, zl, 100, count, &n), -EBADMSG);
	z[zl - 6] ^= 1;
	/* Two members: only one is allowed. */
	memcpy(two, z, zl);
	memcpy(two + zl, z, zl);
	assert_int_equal(gz_inflate_all(two, 2 * zl, 100, count, &n), -EBADMSG);
	/* Once failed, a stream stays failed. */
	assert_int_equal(gz_new(100, &g), 0);
	assert_int_equal(gz_feed(g, "xx", 2, count, &n), -EBADMSG);
	assert_int_equal(gz_feed(g, z, zl, count, &n), -EBADMSG);
	gz_free(g);
	/* The sink's error stops the stream. */
	assert_int_equal(gz_inflate_all(z, zl, 100, refuse, NULL), -ENOSPC);
	/* Empty input is no member. */
	assert_int_equal(gz_inflate_all("", 0, 100, count, &n), -EBADMSG);
	free(two);
	free(z);
}

static void test_empty_member(void **state)
{
	size_t zl, n = 0;
	unsigned char *z = gzip_of("", 0, &zl);

	(void)state;
	assert_int_equal(gz_inflate_all(z, zl, 0, count, &n), 0);
	assert_int_equal(n, 0);
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_in_pieces),
		cmocka_unit_test(test_cap_exact_and_one_past),
		cmocka_unit_test(test_bomb_stops_at_cap),
		cmocka_unit_test(test_broken_input),
		cmocka_unit_test(test_empty_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
