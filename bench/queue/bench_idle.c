/*
 * Idle long-polls one queue holds: N agents' lease requests (wait 60 s),
 * each on its own connection, from one libcurl multi. Once the queue
 * reports all N held (skiff_lease_waiters), the queue's resident set and
 * the CPU it uses over a quiet interval are read from /proc.
 *
 *   bench_queue_idle --pid PID [--url U --ca F --admin-token T
 *                    --registration-token R] [N] [SECONDS]
 *
 * N defaults to 1000, SECONDS (the quiet interval) to 10. The queue
 * should run with --max-lease-wait 60 so that nothing is answered during
 * the interval; set-up plus interval must stay under 60 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_common.h"
#include "strnum.h"
#include "xalloc.h"

static const char usage[] =
    "usage: bench_queue_idle --pid PID [--url U] [--ca F] [--admin-token T]\n"
    "                        [--registration-token R] [--pool P] [N] [SECONDS]\n";

static size_t discard(char *p, size_t size, size_t nmemb, void *arg)
{
	(void)p;
	(void)arg;
	return size * nmemb;
}

static CURL *poll_handle(const struct bench_conn *c, struct curl_slist *h,
    const char *url)
{
	CURL *e = bench_easy(c);

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{\"wait\":60}");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 90L);
	/* One connection each, as N agents would have. */
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	return e;
}

/* Drives the multi until the queue reports n held, at most 50 s. */
static int wait_held(CURLM *m, CURL *probe, const struct bench_conn *c,
    long n, double *seconds)
{
	char prefix[160];
	int64_t t0 = bench_now_ns(), last = 0;
	int running;
	double held = 0;

	snprintf(prefix, sizeof(prefix), "skiff_lease_waiters{pool=\"%s\"}",
	    c->pool);
	while (bench_now_ns() - t0 < 50 * (int64_t)1000000000) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 10, NULL);
		if (bench_now_ns() - last < 200000000)
			continue;
		last = bench_now_ns();
		if ((held = bench_metric(probe, c, prefix)) >= (double)n) {
			*seconds = (double)(bench_now_ns() - t0) / 1e9;
			return 0;
		}
	}
	fprintf(stderr, "bench: only %.0f of %ld requests held after 50 s\n",
	    held, n);
	return -1;
}

static long self_rss_kib(void)
{
	return bench_rss_kib((long)getpid());
}

int main(int argc, char **argv)
{
	struct bench_conn c;
	struct rlimit rl;
	int64_t n = 1000, quiet = 10;
	int i = bench_parse(argc, argv, &c, usage), running;
	char *token, *url, *auth;
	struct curl_slist *h = NULL;
	CURL **polls, *probe;
	CURLM *m;
	double setup, cpu0, cpu1;
	long rss0, rss;

	if (i < 0 || c.pid == 0 ||
	    (i < argc && strnum_i64(argv[i], 1, 100000, &n, NULL) < 0) ||
	    (i + 1 < argc && strnum_i64(argv[i + 1], 1, 40, &quiet, NULL) < 0)) {
		fputs(usage, stderr);
		return 2;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)n + 64 > rl.rlim_cur) {
		fprintf(stderr, "bench: RLIMIT_NOFILE %lu is too low for %lld\n",
		    (unsigned long)rl.rlim_cur, (long long)n);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((token = bench_register(&c, 256)) == NULL)
		return 1;
	url = xasprintf("%s/v1/agent/lease", c.url);
	auth = xasprintf("Authorization: Bearer %s", token);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	m = curl_multi_init();
	probe = bench_easy(&c);
	rss0 = bench_rss_kib(c.pid);
	polls = xcalloc((size_t)n, sizeof(*polls));
	for (int64_t k = 0; k < n; k++) {
		polls[k] = poll_handle(&c, h, url);
		curl_multi_add_handle(m, polls[k]);
	}
	if (wait_held(m, probe, &c, (long)n, &setup) < 0)
		return 1;
	rss = bench_rss_kib(c.pid);
	cpu0 = bench_cpu_seconds(c.pid);
	sleep((unsigned)quiet);
	cpu1 = bench_cpu_seconds(c.pid);
	printf("held=%lld setup=%.1f s queue_rss_before=%.1f MiB "
	    "queue_rss_held=%.1f MiB per_poll=%.1f KiB queue_cpu_idle=%.3f s "
	    "over %lld s (%.2f%%) generator_rss=%.1f MiB\n", (long long)n, setup,
	    rss0 / 1024.0, rss / 1024.0, (double)(rss - rss0) / (double)n,
	    cpu1 - cpu0, (long long)quiet, 100.0 * (cpu1 - cpu0) / (double)quiet,
	    self_rss_kib() / 1024.0);
	curl_multi_perform(m, &running);
	for (int64_t k = 0; k < n; k++) {
		curl_multi_remove_handle(m, polls[k]);
		curl_easy_cleanup(polls[k]);
	}
	curl_multi_cleanup(m);
	return 0;
}
