/*
 * The pull-progress summariser: whatever the engine (or a registry behind
 * it) sends, fed whole or in pieces, it hands on the same lines, each
 * bounded and free of control bytes, and keeps the same error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "pullprog.h"

static void collect(void *arg, const char *line)
{
	size_t n = strlen(line);

	if (n > PULLPROG_LINE_MAX)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			__builtin_trap();
	buf_append(arg, line, n);
	buf_putc(arg, '\n');
}

static int run(const uint8_t *data, size_t size, size_t piece, struct buf *out,
    char **error)
{
	struct pullprog p;
	int rc = 0;

	buf_init(out, 1 << 24);
	pullprog_init(&p, collect, out);
	for (size_t pos = 0; pos < size && rc == 0; pos += piece)
		rc = pullprog_feed(&p, (const char *)data + pos,
		    size - pos < piece ? size - pos : piece);
	if (rc == 0)
		rc = pullprog_finish(&p);
	const char *e = pullprog_error(&p);
	*error = e ? strdup(e) : NULL;
	(void)pullprog_classify(e);
	pullprog_free(&p);
	return rc;
}

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole, split;
	char *ew, *es;
	int want = run(data, size, size ? size : 1, &whole, &ew);

	for (size_t piece = 1; piece <= 13; piece += 6) {
		if (run(data, size, piece, &split, &es) != want ||
		    split.len != whole.len ||
		    memcmp(buf_cstr(&split), buf_cstr(&whole), whole.len) != 0 ||
		    !same(ew, es))
			__builtin_trap();
		buf_free(&split);
		free(es);
	}
	buf_free(&whole);
	free(ew);
	return 0;
}
