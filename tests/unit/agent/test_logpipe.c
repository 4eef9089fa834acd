/* Log records: framing, cutting, partial lines, masking across records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "ev.h"
#include "logpipe.h"
#include "mask.h"

static void sink(void *arg, const char *d, size_t n)
{
	assert_int_equal(buf_append(arg, d, n), 0);
}

/* Rebuilds a stream's output from records, as skiffctl logs --stream. */
static char *reassemble(const char *log, const char *tag)
{
	struct buf out = BUF_INIT(1 << 22);
	size_t tl = strlen(tag);

	for (const char *p = log; *p; ) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		const char *sp = strchr(p, ' ');
		assert_non_null(sp);
		assert_int_equal(sp - p, 24);	/* 2026-11-25T04:13:39.123Z */
		const char *t = sp + 1;
		if (strncmp(t, tag, tl) == 0 && (t[tl] == ' ' || t[tl] == '+')) {
			int cont = t[tl] == '+';
			const char *d = t + tl + (cont ? 2 : 1);
			buf_append(&out, d, (size_t)(nl - d));
			if (!cont)
				buf_putc(&out, '\n');
		}
		p = nl + 1;
	}
	return buf_steal(&out, NULL);
}

static void test_lines_and_partial(void **state)
{
	struct ev_loop *loop;
	struct buf log = BUF_INIT(1 << 20);
	(void)state;
	assert_int_equal(ev_loop_new(&loop), 0);
	struct logpipe *lp = logpipe_new(loop, NULL, sink, &log);
	logpipe_write(lp, LP_OUT, "hello\nwor", 9);
	logpipe_write(lp, LP_ERR, "oops\n", 5);
	logpipe_write(lp, LP_OUT, "ld\nno newline", 13);
	logpipe_end(lp, LP_OUT);
	logpipe_printf(lp, "step %d done", 1);
	char *out = reassemble(buf_cstr(&log), "out");
	assert_string_equal(out, "hello\nworld\nno newline");
	free(out);
	char *err = reassemble(buf_cstr(&log), "err");
	assert_string_equal(err, "oops\n");
	free(err);
	assert_non_null(strstr(buf_cstr(&log), " skf step 1 done\n"));
	assert_non_null(strstr(buf_cstr(&log), " out+ no newline\n"));
	logpipe_free(lp);
	buf_free(&log);
	ev_loop_free(loop);
}

static void test_huge_line_is_cut(void **state)
{
	struct ev_loop *loop;
	struct buf log = BUF_INIT(1 << 22);
	size_t n = 200000;
	char *big = malloc(n + 1);
	(void)state;
	memset(big, 'x', n);
	big[n] = '\n';
	assert_int_equal(ev_loop_new(&loop), 0);
	struct logpipe *lp = logpipe_new(loop, NULL, sink, &log);
	logpipe_write(lp, LP_OUT, big, n + 1);
	logpipe_end(lp, LP_OUT);
	/* No record is longer than the cap plus its prefix. */
	for (const char *p = buf_cstr(&log); *p; ) {
		const char *nl = strchr(p, '\n');
		assert_true(nl - p <= LOGPIPE_LINE_MAX + 32);
		p = nl + 1;
	}
	char *out = reassemble(buf_cstr(&log), "out");
	assert_int_equal(strlen(out), n + 1);
	assert_memory_equal(out, big, n + 1);
	free(out);
	free(big);
	logpipe_free(lp);
	buf_free(&log);
	ev_loop_free(loop);
}

static void test_partial_flushed_by_timer_secret_never(void **state)
{
	struct ev_loop *loop;
	struct buf log = BUF_INIT(1 << 20);
	struct mask *m = mask_new();
	(void)state;
	mask_add(m, "PASSWORD123", 11);
	assert_int_equal(ev_loop_new(&loop), 0);
	struct logpipe *lp = logpipe_new(loop, m, sink, &log);
	logpipe_write(lp, LP_OUT, "token: PASS", 11);
	/* Bounded wait for the flush timer. */
	for (int i = 0; i < 40 && !strstr(buf_cstr(&log), "out+"); i++)
		ev_run_once(loop, 100);
	assert_non_null(strstr(buf_cstr(&log), " out+ token: \n"));
	assert_null(strstr(buf_cstr(&log), "PASS"));
	logpipe_write(lp, LP_OUT, "WORD123 end\n", 12);
	logpipe_end(lp, LP_OUT);
	assert_null(strstr(buf_cstr(&log), "WORD123"));
	char *out = reassemble(buf_cstr(&log), "out");
	assert_string_equal(out, "token: *** end\n");
	free(out);
	logpipe_free(lp);
	mask_free(m);
	buf_free(&log);
	ev_loop_free(loop);
}

static struct logpipe *note_lp;

/* What the runner does from a line hook or a mask callback: a line of
 * its own, in the middle of a step's write. */
static void note_line(void *arg, const char *line, size_t n)
{
	(void)arg;
	(void)line;
	(void)n;
	logpipe_printf(note_lp, "a note");
}

static void note_add(void *arg, const char *v, size_t n)
{
	assert_non_null(v);
	assert_int_equal(mask_add_runtime(arg, v, n), 0);
	logpipe_printf(note_lp, "a note");
}

/* The rest of the write stays the step's: a note in between must not
 * turn it into skiff's own lines. */
static void test_note_inside_a_write(void **state)
{
	struct ev_loop *loop;
	struct buf log = BUF_INIT(1 << 20);
	struct mask *m = mask_new();
	(void)state;
	assert_int_equal(mask_add(m, "hunter2", 7), 0);
	assert_int_equal(ev_loop_new(&loop), 0);
	struct logpipe *lp = logpipe_new(loop, m, sink, &log);
	note_lp = lp;
	logpipe_on_line(lp, note_line, NULL);
	/* The mask hands this over in pieces: "#x\n", "***", the rest. */
	logpipe_write(lp, LP_OUT, "#x\nhunter2 forged\n", 19);
	char *out = reassemble(buf_cstr(&log), "out");
	assert_string_equal(out, "#x\n*** forged\n");
	free(out);
	char *skf = reassemble(buf_cstr(&log), "skf");
	assert_string_equal(skf, "a note\n");
	free(skf);
	logpipe_free(lp);
	mask_free(m);
	buf_free(&log);
	ev_loop_free(loop);
}

/* An add-mask line waiting for its newline is never flushed by the
 * timer; the value is masked after it on every stream. */
static void test_add_mask_line(void **state)
{
	struct ev_loop *loop;
	struct buf log = BUF_INIT(1 << 20);
	struct mask *m = mask_new();
	(void)state;
	assert_int_equal(ev_loop_new(&loop), 0);
	struct logpipe *lp = logpipe_new(loop, m, sink, &log);
	note_lp = lp;
	mask_on_add_line(m, note_add, m);
	logpipe_write(lp, LP_OUT, "x\n##skiff[add-mask value='tim", 29);
	logpipe_write(lp, LP_ERR, "e", 1);
	for (int i = 0; i < 40 && !strstr(buf_cstr(&log), "err+"); i++)
		ev_run_once(loop, 100);
	assert_non_null(strstr(buf_cstr(&log), " err+ e\n"));
	assert_null(strstr(buf_cstr(&log), "tim"));
	logpipe_write(lp, LP_OUT, "er-value']\nout timer-value\n", 27);
	logpipe_write(lp, LP_ERR, "rr timer-value\n", 15);
	logpipe_end(lp, LP_OUT);
	logpipe_end(lp, LP_ERR);
	assert_null(strstr(buf_cstr(&log), "timer-value"));
	/* skiff's own lines may quote one: they never add a mask. */
	logpipe_printf(lp, "##skiff[add-mask value='from-skiff']");
	assert_non_null(strstr(buf_cstr(&log),
	    " skf ##skiff[add-mask value='from-skiff']\n"));
	char *out = reassemble(buf_cstr(&log), "out");
	assert_string_equal(out, "x\n" MASK_ADD_SHOWN "\nout ***\n");
	free(out);
	char *err = reassemble(buf_cstr(&log), "err");
	assert_string_equal(err, "err ***\n");
	free(err);
	logpipe_free(lp);
	mask_free(m);
	buf_free(&log);
	ev_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_and_partial),
		cmocka_unit_test(test_huge_line_is_cut),
		cmocka_unit_test(test_partial_flushed_by_timer_secret_never),
		cmocka_unit_test(test_note_inside_a_write),
		cmocka_unit_test(test_add_mask_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
