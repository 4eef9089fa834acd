/*
 * The masker alone: N secrets (and their derived forms) over 200 MB of
 * the log benchmark's 100-byte lines, fed in 64 KiB pieces as a step's
 * output arrives. Prints MB/s; never a pass/fail test.
 *
 *   build/bench/agent/mask_bench [secrets] [MB]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mask.h"
#include "strnum.h"

static void count(void *arg, const char *d, size_t n)
{
	(void)d;
	*(uint64_t *)arg += n;
}

#ifdef MASK_ADD_PREFIX
static void add_line(void *arg, const char *v, size_t n)
{
	(void)mask_add_runtime(arg, v, n);
}
#endif

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int nsec = 5, mb = 200;
	const size_t piece = 64 * 1024;
	const char *line = "the quick brown fox jumps over the lazy dog, the quick "
	    "brown fox jumps over the lazy dog, the quick brown \n";
	struct mask *m = mask_new();
	struct mask_stream s;
	uint64_t out = 0;

	if ((argc > 1 && strnum_int(argv[1], 0, 64, &nsec, NULL) < 0) ||
	    (argc > 2 && strnum_int(argv[2], 1, 100000, &mb, NULL) < 0)) {
		fprintf(stderr, "usage: mask_bench [secrets 0-64] [MB]\n");
		return 2;
	}
	for (int i = 0; i < nsec; i++) {
		char v[64];
		int n = snprintf(v, sizeof(v), i ? "s%d-%08llx%08llx" :
		    "not-in-the-output-9f3a", i, (unsigned long long)rand(),
		    (unsigned long long)rand());
		(void)mask_add(m, v, (size_t)n);
	}
#ifdef MASK_ADD_PREFIX
	mask_on_add_line(m, add_line, m);
#endif
	size_t ll = strlen(line), total = (size_t)mb * 1000 * 1000;
	char *buf = malloc(piece);
	for (size_t i = 0; i < piece; i++)
		buf[i] = line[i % ll];
	mask_stream_init(&s, m);
	double t0 = now();
	for (size_t done = 0; done < total; done += piece)
		mask_feed(&s, buf, total - done < piece ? total - done : piece, 0,
		    count, &out);
	mask_feed(&s, "", 0, 1, count, &out);
	double secs = now() - t0;
	printf("mask  %d secret%s (%zu byte strings), %d MB in %.3f s: "
	    "%.0f MB/s (%llu bytes out)\n", nsec, nsec == 1 ? "" : "s",
	    mask_count(m), mb, secs, (double)mb / secs,
	    (unsigned long long)out);
	mask_stream_free(&s);
	mask_free(m);
	free(buf);
	return 0;
}
