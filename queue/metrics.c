#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

const double metrics_bounds[METRICS_NBUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
};

void metrics_observe(struct histo *h, double s)
{
	if (!(s >= 0))
		s = 0;
	h->count++;
	h->sum += s;
	for (int i = 0; i < METRICS_NBUCKETS; i++) {
		if (s <= metrics_bounds[i]) {
			h->bucket[i]++;
			return;
		}
	}
}

void metrics_header(struct buf *b, const char *name, const char *type,
    const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and newline. */
static void put_value(struct buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *v);
	}
}

static void put_labels(struct buf *b, const char *const *labels,
    const char *extra_k, const char *extra_v)
{
	int n = 0;

	if ((labels == NULL || labels[0] == NULL) && extra_k == NULL)
		return;
	buf_putc(b, '{');
	for (; labels && labels[0]; labels += 2, n++) {
		buf_printf(b, "%s%s=\"", n ? "," : "", labels[0]);
		put_value(b, labels[1]);
		buf_putc(b, '"');
	}
	if (extra_k) {
		buf_printf(b, "%s%s=\"", n ? "," : "", extra_k);
		put_value(b, extra_v);
		buf_putc(b, '"');
	}
	buf_putc(b, '}');
}

static void put_number(struct buf *b, double v)
{
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		buf_printf(b, " %.0f\n", v);
	else
		buf_printf(b, " %.9g\n", v);
}

void metrics_sample(struct buf *b, const char *name, const char *const *labels,
    double value)
{
	buf_puts(b, name);
	put_labels(b, labels, NULL, NULL);
	put_number(b, value);
}

void metrics_histo(struct buf *b, const char *name, const char *const *labels,
    const struct histo *h)
{
	uint64_t cum = 0;
	char le[32];

	for (int i = 0; i < METRICS_NBUCKETS; i++) {
		cum += h->bucket[i];
		snprintf(le, sizeof(le), "%g", metrics_bounds[i]);
		buf_printf(b, "%s_bucket", name);
		put_labels(b, labels, "le", le);
		put_number(b, (double)cum);
	}
	buf_printf(b, "%s_bucket", name);
	put_labels(b, labels, "le", "+Inf");
	put_number(b, (double)h->count);
	buf_printf(b, "%s_sum", name);
	put_labels(b, labels, NULL, NULL);
	put_number(b, h->sum);
	buf_printf(b, "%s_count", name);
	put_labels(b, labels, NULL, NULL);
	put_number(b, (double)h->count);
}
