/*
 * queue/pg.c against a real PostgreSQL that this test makes and removes
 * (initdb as the postgres system user into a temporary directory, served
 * on 127.0.0.1 on a free port): queries from the event loop, pipelining in
 * order, batched queries sharing one transaction and an error aborting
 * only its own batch, control queries never behind bulk ones,
 * notifications, connections killed under queries and made again, no
 * connection at all, and a forgotten query.
 * PostgreSQL's server binaries (Debian's postgresql-15, installed by the
 * README's setup) are required: without them every test fails.
 */
#include "qtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev.h"
#include "pg.h"

static char dir[PATH_MAX], bindir[PATH_MAX], conninfo[512];
static int have_pg, pg_port;

/* Runs argv (no shell), its output discarded; 0 when it exited 0. */
static int run(const char *const argv[])
{
	int st = -1;
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* d/name, in one of eight buffers: valid until eight more calls. */
static char *path_in(const char *d, const char *name)
{
	static char p[8][PATH_MAX + 16];
	static int i;

	i = (i + 1) % 8;
	snprintf(p[i], sizeof(p[i]), "%.*s/%s", PATH_MAX - 1, d, name);
	return p[i];
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int cluster_up(void **state)
{
	glob_t g;
	char opts[PATH_MAX + 128];
	int port;

	(void)state;
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0) {
		fprintf(stderr, "test_pg: no PostgreSQL server binaries "
		    "(apt-get install postgresql-15)\n");
		return -1;
	}
	snprintf(bindir, sizeof(bindir), "%s", g.gl_pathv[g.gl_pathc - 1]);
	*strrchr(bindir, '/') = '\0';
	globfree(&g);
	qt_tmpdir(dir);
	port = pg_port = free_port();
	snprintf(opts, sizeof(opts), "-c listen_addresses=127.0.0.1 -p %d -k %s "
	    "-c fsync=off", port, dir);
	{
		const char *chown_[] = { "chown", "postgres", dir, NULL };
		const char *initdb[] = { "runuser", "-u", "postgres", "--",
		    path_in(bindir, "initdb"), "-D", path_in(dir, "data"), "-U",
		    "skiff", "-A", "trust", "--no-sync", NULL };
		const char *start[] = { "runuser", "-u", "postgres", "--",
		    path_in(bindir, "pg_ctl"), "-D", path_in(dir, "data"), "-l",
		    path_in(dir, "log"), "-w", "-o", opts, "start", NULL };
		if (run(chown_) < 0 || run(initdb) < 0 || run(start) < 0)
			return -1;
	}
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d "
	    "user=skiff dbname=postgres", port);
	have_pg = 1;
	return 0;
}

static int cluster_down(void **state)
{
	const char *stop[] = { "runuser", "-u", "postgres", "--",
	    path_in(bindir, "pg_ctl"), "-D", path_in(dir, "data"), "-m",
	    "immediate", "-w", "stop", NULL };

	(void)state;
	if (!have_pg)
		return 0;
	run(stop);
	qt_rmdir(dir);
	return 0;
}

/* ---- a pool on a loop ---- */

struct fx {
	struct ev_loop *loop;
	struct pg *pg;
	int notified, resyncs;
	char chan[64], payload[256];
};

static void on_notify(void *arg, const char *chan, const char *payload)
{
	struct fx *f = arg;

	if (chan == NULL) {
		f->resyncs++;
		return;
	}
	f->notified++;
	snprintf(f->chan, sizeof(f->chan), "%s", chan);
	snprintf(f->payload, sizeof(f->payload), "%s", payload);
}

static const char *const chans[] = { "t_chan", NULL };

static void open_fx(struct fx *f, int nconn)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(ev_loop_new(&f->loop), 0);
	assert_int_equal(pg_open(f->loop, conninfo, NULL, nconn, chans, on_notify,
	    f, &f->pg), 0);
	assert_int_equal(pg_wait_ready(f->pg, 10000), 0);
}

static void close_fx(struct fx *f)
{
	pg_close(f->pg);
	ev_loop_free(f->loop);
}

/* Runs the loop until *flag reaches want, at most 10 s. */
static void run_until(struct fx *f, const int *flag, int want)
{
	int64_t end = ev_now_update(f->loop) + 10000;

	while (*flag < want && ev_now_update(f->loop) < end)
		ev_run_once(f->loop, 100);
	assert_true(*flag >= want);
}

struct answer {
	int done;
	int ok;
	char text[256];
	char err[256];
	int order;
};

static int order_seen;

static void on_answer(void *arg, PGresult *res, const char *err)
{
	struct answer *a = arg;
	size_t n;
	const char *v;

	a->done = 1;
	a->order = order_seen++;
	if (err) {
		snprintf(a->err, sizeof(a->err), "%s", err);
		return;
	}
	a->ok = 1;
	if (PQntuples(res) == 1 && (v = PQgetvalue(res, 0, 0)) != NULL) {
		n = (size_t)PQgetlength(res, 0, 0);
		if (n >= sizeof(a->text))
			n = sizeof(a->text) - 1;
		memcpy(a->text, v, n);
		a->text[n] = '\0';
	}
}

static int all_done(const struct answer *a, int n)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += a[i].done;
	return c;
}

static void wait_all(struct fx *f, struct answer *a, int n)
{
	int64_t end = ev_now_update(f->loop) + 10000;

	while (all_done(a, n) < n && ev_now_update(f->loop) < end)
		ev_run_once(f->loop, 100);
	assert_int_equal(all_done(a, n), n);
}

/* ---- tests ---- */

#define NEED_PG() assert_true(have_pg)

static void test_values_come_back_in_binary(void **state)
{
	struct fx f;
	struct answer a = { 0 }, b = { 0 };
	struct pg_params p;
	const char bin[] = { 0, 1, 2, (char)255 };

	(void)state;
	NEED_PG();
	open_fx(&f, 2);
	pg_params_init(&p);
	pg_param_text(&p, "{\"k\": [1, 2]}");
	pg_send(f.pg, "SELECT $1::jsonb", &p, 0, on_answer, &a);
	pg_params_init(&p);
	pg_param_bin(&p, bin, sizeof(bin));
	pg_send(f.pg, "SELECT $1::bytea", &p, 0, on_answer, &b);
	wait_all(&f, &a, 1);
	wait_all(&f, &b, 1);
	assert_true(a.ok && b.ok);
	/* Binary jsonb: the version byte, then the text. */
	assert_int_equal(a.text[0], 1);
	assert_string_equal(a.text + 1, "{\"k\": [1, 2]}");
	close_fx(&f);
}

static void test_a_pipeline_answers_in_order(void **state)
{
	struct fx f;
	struct answer a[200];
	struct pg_params p;

	(void)state;
	NEED_PG();
	open_fx(&f, 1);
	memset(a, 0, sizeof(a));
	order_seen = 0;
	for (int i = 0; i < 200; i++) {
		pg_params_init(&p);
		pg_param_int(&p, i);
		pg_send(f.pg, "SELECT $1::int::text", &p, 0, on_answer, &a[i]);
	}
	wait_all(&f, a, 200);
	for (int i = 0; i < 200; i++) {
		char want[16];
		snprintf(want, sizeof(want), "%d", i);
		assert_true(a[i].ok);
		assert_string_equal(a[i].text, want);
		assert_int_equal(a[i].order, i);
	}
	close_fx(&f);
}

static void test_batched_queries_share_a_transaction(void **state)
{
	struct fx f;
	struct answer a[4], b[2];
	const char *q = "SELECT txid_current()::text";

	(void)state;
	NEED_PG();
	open_fx(&f, 1);
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 4; i++)
		pg_send(f.pg, q, NULL, 1, on_answer, &a[i]);
	wait_all(&f, a, 4);
	for (int i = 1; i < 4; i++)
		assert_string_equal(a[i].text, a[0].text);
	/* Queries alone: one transaction each. */
	pg_send(f.pg, q, NULL, 0, on_answer, &b[0]);
	pg_send(f.pg, q, NULL, 0, on_answer, &b[1]);
	wait_all(&f, b, 2);
	assert_string_not_equal(b[0].text, b[1].text);
	assert_string_not_equal(b[0].text, a[0].text);
	close_fx(&f);
}

static void test_an_error_aborts_only_its_batch(void **state)
{
	struct fx f;
	struct answer a[3], after = { 0 };

	(void)state;
	NEED_PG();
	open_fx(&f, 1);
	memset(a, 0, sizeof(a));
	pg_send(f.pg, "SELECT 'one'", NULL, 1, on_answer, &a[0]);
	pg_send(f.pg, "SELECT 1/0", NULL, 1, on_answer, &a[1]);
	pg_send(f.pg, "SELECT 'three'", NULL, 1, on_answer, &a[2]);
	wait_all(&f, a, 3);
	/* The first ran but its transaction was rolled back with the
	 * batch; the second failed; the third never ran. */
	assert_true(a[0].ok);
	assert_false(a[1].ok);
	assert_non_null(strstr(a[1].err, "division by zero"));
	assert_false(a[2].ok);
	assert_non_null(strstr(a[2].err, "aborted"));
	pg_send(f.pg, "SELECT 'next'", NULL, 1, on_answer, &after);
	wait_all(&f, &after, 1);
	assert_true(after.ok);
	assert_string_equal(after.text, "next");
	close_fx(&f);
}

static void test_control_queries_do_not_wait_behind_bulk(void **state)
{
	struct fx f;
	struct answer slow = { 0 }, quick = { 0 };

	(void)state;
	NEED_PG();
	open_fx(&f, 2);
	order_seen = 0;
	pg_send(f.pg, "SELECT pg_sleep(2)::text", NULL, PG_BULK, on_answer,
	    &slow);
	pg_send(f.pg, "SELECT 'lease'", NULL, 0, on_answer, &quick);
	wait_all(&f, &quick, 1);
	assert_true(quick.ok);
	assert_false(slow.done);	/* answered while the bulk one runs */
	wait_all(&f, &slow, 1);
	assert_int_equal(quick.order, 0);
	assert_int_equal(slow.order, 1);
	close_fx(&f);
}

static void test_notifications_and_a_lost_listener(void **state)
{
	struct fx f;
	struct answer a = { 0 }, k = { 0 };
	struct pg_params p;
	int resyncs;

	(void)state;
	NEED_PG();
	open_fx(&f, 1);
	resyncs = f.resyncs;
	assert_true(resyncs >= 1);	/* the first LISTEN */
	pg_params_init(&p);
	pg_param_text(&p, "hello");
	pg_send(f.pg, "SELECT pg_notify('t_chan', $1)", &p, 0, on_answer, &a);
	run_until(&f, &f.notified, 1);
	assert_string_equal(f.chan, "t_chan");
	assert_string_equal(f.payload, "hello");
	/* The listener's backend killed: it comes back and says so. */
	pg_send(f.pg, "SELECT count(pg_terminate_backend(pid))::text FROM "
	    "pg_stat_activity WHERE query LIKE 'LISTEN%'", NULL, 0, on_answer, &k);
	wait_all(&f, &k, 1);
	assert_string_equal(k.text, "1");
	run_until(&f, &f.resyncs, resyncs + 1);
	close_fx(&f);
}

static void test_killed_connections_fail_queries_and_come_back(void **state)
{
	struct fx f;
	struct answer slow[2], after = { 0 };
	struct pg_stats st;
	int64_t end;

	(void)state;
	NEED_PG();
	open_fx(&f, 2);
	memset(slow, 0, sizeof(slow));
	/* One on the control connection, one on the bulk one. */
	pg_send(f.pg, "SELECT pg_sleep(5)::text", NULL, 0, on_answer, &slow[0]);
	pg_send(f.pg, "SELECT pg_sleep(5)::text", NULL, PG_BULK, on_answer,
	    &slow[1]);
	/* From outside the pool, as an operator or a failover would. */
	{
		char port[16];
		const char *kill_[] = { path_in(bindir, "psql"), "-X", "-q", "-h",
		    "127.0.0.1", "-p", port, "-U", "skiff", "-d", "postgres", "-c",
		    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
		    "query LIKE 'SELECT pg_sleep%'", NULL };
		snprintf(port, sizeof(port), "%d", pg_port);
		assert_int_equal(run(kill_), 0);
	}
	wait_all(&f, slow, 2);
	/* The server's own last word, or the loss of the connection. */
	for (int i = 0; i < 2; i++) {
		assert_false(slow[i].ok);
		assert_true(strstr(slow[i].err, "terminating connection") ||
		    strstr(slow[i].err, "lost"));
	}
	/* Made again with backoff; queries work once they are up. */
	end = ev_now_update(f.loop) + 10000;
	do {
		ev_run_once(f.loop, 100);
		pg_get_stats(f.pg, &st);
	} while (st.up < 2 && ev_now_update(f.loop) < end);
	assert_int_equal(st.up, 2);
	assert_true(st.reconnects >= 2);
	pg_send(f.pg, "SELECT 'back'", NULL, 0, on_answer, &after);
	wait_all(&f, &after, 1);
	assert_string_equal(after.text, "back");
	close_fx(&f);
}

static void test_no_server_fails_at_once_and_forget_drops(void **state)
{
	struct ev_loop *loop;
	struct pg *pg;
	struct answer a = { 0 }, b = { 0 };
	struct pg_query *q;
	int port = free_port();
	char ci[128];
	int64_t end;

	(void)state;
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x "
	    "connect_timeout=2", port);
	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(pg_open(loop, ci, NULL, 1, chans, on_notify, NULL, &pg),
	    0);
	assert_int_equal(pg_wait_ready(pg, 300), -ETIMEDOUT);
	pg_send(pg, "SELECT 1", NULL, 0, on_answer, &a);
	q = pg_send(pg, "SELECT 1", NULL, 0, on_answer, &b);
	pg_forget(q);
	end = ev_now_update(loop) + 5000;
	while (!a.done && ev_now_update(loop) < end)
		ev_run_once(loop, 100);
	assert_true(a.done);
	assert_false(a.ok);
	assert_non_null(strstr(a.err, "no connection"));
	ev_run_once(loop, 50);
	assert_false(b.done);
	pg_close(pg);
	ev_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_come_back_in_binary),
		cmocka_unit_test(test_a_pipeline_answers_in_order),
		cmocka_unit_test(test_batched_queries_share_a_transaction),
		cmocka_unit_test(test_an_error_aborts_only_its_batch),
		cmocka_unit_test(test_control_queries_do_not_wait_behind_bulk),
		cmocka_unit_test(test_notifications_and_a_lost_listener),
		cmocka_unit_test(test_killed_connections_fail_queries_and_come_back),
		cmocka_unit_test(test_no_server_fails_at_once_and_forget_drops),
	};

	return cmocka_run_group_tests(tests, cluster_up, cluster_down);
}
