/*
 * Prometheus text exposition (format 0.0.4) for /metrics: histograms with
 * fixed buckets and helpers that write HELP/TYPE headers and samples with
 * escaped label values. The queue owns the numbers; this module only
 * keeps histograms and prints.
 */
#ifndef SKIFF_QUEUE_METRICS_H
#define SKIFF_QUEUE_METRICS_H

#include <stdint.h>

struct buf;

/* Upper bounds in seconds: from 1 ms (a pickup with a poll waiting) to an
 * hour (a job that waited for a pool to scale up). */
#define METRICS_NBUCKETS 20

struct histo {
	uint64_t bucket[METRICS_NBUCKETS];	/* not cumulative */
	uint64_t count;
	double sum;
};

extern const double metrics_bounds[METRICS_NBUCKETS];

void metrics_observe(struct histo *h, double seconds);
/* "# HELP name help\n# TYPE name type\n" */
void metrics_header(struct buf *b, const char *name, const char *type,
    const char *help);
/* name{k1="v1",k2="v2"} value; labels is a NULL-terminated list of
 * key, value pairs (NULL for none). */
void metrics_sample(struct buf *b, const char *name, const char *const *labels,
    double value);
/* The _bucket, _sum and _count lines of one histogram. */
void metrics_histo(struct buf *b, const char *name, const char *const *labels,
    const struct histo *h);

#endif
