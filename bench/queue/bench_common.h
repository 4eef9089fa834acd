/*
 * What the queue benchmarks share: command-line connection settings,
 * blocking JSON requests with libcurl, /metrics reading, and time.
 */
#ifndef SKIFF_BENCH_COMMON_H
#define SKIFF_BENCH_COMMON_H

#include <curl/curl.h>
#include <stdint.h>

#include "buf.h"

struct bench_conn {
	const char *url;
	const char *ca;
	const char *admin;
	const char *regtok;
	const char *pool;
	long pid;		/* the queue's pid, for RSS and CPU */
};

/* Monotonic nanoseconds. */
int64_t bench_now_ns(void);
/* A reusable easy handle with the connection settings (keep-alive). */
CURL *bench_easy(const struct bench_conn *c);
/* Sets e up for method path with an optional body under token, the
 * answer body into out; returns the header list to free afterwards. */
struct curl_slist *bench_prepare(CURL *e, const struct bench_conn *c,
    const char *method, const char *path, const char *ctype,
    const char *body, size_t n, const char *token, struct buf *out);
/* method path with an optional body under token; the answer body in out
 * (capped at 4 MiB). Returns the HTTP status, or -1. */
long bench_request(CURL *e, const struct bench_conn *c, const char *method,
    const char *path, const char *ctype, const char *body, size_t n,
    const char *token, struct buf *out);
/* Registers an agent of capacity cap; its token (heap) or NULL. */
char *bench_register(const struct bench_conn *c, int cap);
/* The value of an unlabelled-or-labelled sample line of /metrics that
 * starts with prefix, or -1. */
double bench_metric(CURL *e, const struct bench_conn *c, const char *prefix);
/* The server's resident set (KiB) and CPU time used (seconds), from
 * /proc; -1 when unknown. */
long bench_rss_kib(long pid);
double bench_cpu_seconds(long pid);
/* Parses --url --ca --admin-token --registration-token --pool --pid
 * from argv (and SKIFF_* environment variables); returns the index of the
 * first argument it did not take, or -1 after printing usage. */
int bench_parse(int argc, char **argv, struct bench_conn *c,
    const char *usage);

#endif
