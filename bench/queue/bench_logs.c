/*
 * The log path under load (issue 11, item 4), for two queue binaries side
 * by side: the one built now and a baseline (say, built from an older
 * commit), each started here on a fresh --dev data directory per figure.
 *
 *   (a) 8 KiB appends/s: A jobs each PUT 8 KiB chunks back to back;
 *   (b) log MB/s accepted: B jobs each PUT 1 MiB chunks back to back;
 *   (c) pickup p50/p99 while C jobs stream 1 MiB chunks;
 *   (d) pickup p50/p99 while D jobs log 64 KiB once a second each
 *       (starts spread over the second), with accepted vs offered MB/s
 *       and the PUT latency.
 *
 * A pickup is what bench_queue_pickup measures: a lease request (wait
 * 30 s) held by the queue, then a submit; the clock stops at the first
 * byte of the lease answer. Chunks are gzip members of log-like text,
 * compressed once; MB are 10^6 bytes of inflated log.
 *
 *   bench_queue_logs --queue BIN [--baseline BIN] [--seconds S]
 *                    [--jobs A,B,C,D] [--only abcd] [--postgres CONNINFO
 *                    [--postgres-db NAME]] [-- QUEUE ARGS...]
 *
 * With --postgres the first queue runs on PostgreSQL instead, a fresh
 * database per figure in the cluster CONNINFO names (a connection string
 * without dbname, e.g. "host=127.0.0.1 port=5432 user=skiff"; psql on
 * PATH makes the database), with the certificates and admin token of a
 * --dev queue started for them; the baseline stays on SQLite: the two
 * stores side by side. --postgres-db NAME uses that (existing) database
 * for every figure: several benches run at once are then loads on
 * replicas of one queue.
 *
 * QUEUE ARGS go to both queues after the bench's own (--dev --data-dir
 * --listen --port-file --log-level warn --max-connections-per-ip 0), for
 * instance --sync normal, or another store's options.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "bench_common.h"
#include "fsx.h"
#include "jwk.h"
#include "jws.h"
#include "strnum.h"
#include "xalloc.h"

static const char usage[] =
    "usage: bench_queue_logs --queue BIN [--baseline BIN] [--seconds S]\n"
    "                        [--jobs A,B,C,D] [--only abcd]\n"
    "                        [--postgres CONNINFO [--postgres-db NAME]]\n"
    "                        [-- QUEUE ARGS]\n";

/* ---- a queue started here ---- */

struct queue_proc {
	pid_t pid;
	char *dir;
	char *data;			/* --dev: its data directory */
	char *env[4];			/* url, ca, admin, registration */
	struct bench_conn c;
};

static char *env_value(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; ) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		if (n > kl && strncmp(l, key, kl) == 0 && l[kl] == '=')
			return xasprintf("%.*s", (int)(n - kl - 1), l + kl + 1);
		l = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static int qp_start(struct queue_proc *qp, const char *bin, char **extra,
    int nextra);
static void qp_stop(struct queue_proc *qp);

/*
 * Starts bin with the store's arguments, the bench's own (a free port
 * written to port, warnings only, 60 s polls, no per-address cap) and
 * extra, its output to out; waits (at most 15 s) for the port file.
 */
static pid_t spawn_queue(const char *bin, const char *const *store,
    const char *port, const char *out, char **extra, int nextra)
{
	const char *own[] = { "--listen", "127.0.0.1:0", "--port-file", port,
	    "--log-level", "warn", "--max-lease-wait", "60",
	    "--max-connections-per-ip", "0", NULL };
	char **argv = xcalloc((size_t)nextra + 32, sizeof(*argv));
	int n = 0;
	pid_t pid;

	argv[n++] = (char *)bin;
	for (int i = 0; store[i]; i++)
		argv[n++] = (char *)store[i];
	for (int i = 0; own[i]; i++)
		argv[n++] = (char *)own[i];
	for (int i = 0; i < nextra; i++)
		argv[n++] = extra[i];
	if ((pid = fork()) == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(bin, argv);
		_exit(127);
	}
	free(argv);
	for (int i = 0; i < 300 && fsx_check_regular(port) != 0; i++)
		usleep(50 * 1000);
	return pid;
}

/* A token for pool dev, made through the admin API. */
static char *make_regtoken(const struct bench_conn *c)
{
	CURL *e = bench_easy(c);
	struct buf out = BUF_INIT(1 << 16);
	char *tok = NULL;
	const char *body = "{\"description\":\"bench\"}";
	long st = bench_request(e, c, "POST", "/v1/pools/dev/tokens", NULL, body,
	    strlen(body), c->admin, &out);
	const char *p = strstr(buf_cstr(&out), "\"token\":\"");

	if (st == 201 && p) {
		p += 9;
		tok = xasprintf("%.*s", (int)strcspn(p, "\""), p);
	}
	buf_free(&out);
	curl_easy_cleanup(e);
	return tok;
}

/*
 * The queue on PostgreSQL: a --dev queue makes the certificates and the
 * admin token (and is stopped), a fresh database is created, and bin is
 * started on it with them.
 */
/* psql -d conninfo -c sql (no shell); 0 when it succeeded. */
static int run_psql(const char *conninfo, const char *sql)
{
	int st = -1;
	pid_t pid = fork();

	if (pid == 0) {
		execlp("psql", "psql", "-X", "-q", "-d", conninfo, "-c", sql,
		    (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* --postgres-db: every figure on this database (replicas of one queue,
 * when several benches run at once) instead of a fresh one. */
static const char *shared_db;

static int qp_start_pg(struct queue_proc *qp, const char *bin,
    const char *conninfo, char **extra, int nextra)
{
	static int seq;
	struct queue_proc dev;
	char *db, *ci, *cmd, *sql, *port, *out, *admin, *cert, *keyf;
	struct buf b = BUF_INIT(1 << 10);
	int r = -1;

	if (qp_start(&dev, bin, NULL, 0) < 0) {
		qp_stop(&dev);
		return -1;
	}
	memset(qp, 0, sizeof(*qp));
	qp->dir = dev.dir;		/* the certificates stay there */
	dev.dir = NULL;
	db = shared_db ? xstrdup(shared_db) :
	    xasprintf("benchlogs_%ld_%d", (long)getpid(), ++seq);
	cmd = xasprintf("%s dbname=postgres", conninfo);
	sql = xasprintf("CREATE DATABASE %s", db);
	if (!shared_db && run_psql(cmd, sql) < 0) {
		fprintf(stderr, "bench: %s failed\n", cmd);
		goto out;
	}
	ci = xasprintf("%s dbname=%s", conninfo, db);
	port = xasprintf("%s/pg.port", qp->dir);
	out = xasprintf("%s/pg.log", qp->dir);
	admin = xasprintf("%s/admin", qp->dir);
	buf_printf(&b, "%s\n", dev.c.admin);
	fsx_write_file(admin, b.data, b.len, 0600);
	cert = xasprintf("%s/tls/server.pem", dev.data);
	keyf = xasprintf("%s/tls/server-key.pem", dev.data);
	{
		const char *store[] = { "--postgres", ci, "--tls-cert", cert,
		    "--tls-key", keyf, "--admin-token-file", admin, NULL };
		qp->pid = spawn_queue(bin, store, port, out, extra, nextra);
	}
	buf_reset(&b);
	if (fsx_read_file(port, 64, &b) == 0) {
		char num[16];
		int pn = 0;
		snprintf(num, sizeof(num), "%.*s", (int)strcspn(buf_cstr(&b), "\n"),
		    buf_cstr(&b));
		strnum_int(num, 1, 65535, &pn, NULL);
		qp->env[0] = xasprintf("https://127.0.0.1:%d", pn);
		qp->env[1] = xstrdup(dev.c.ca);
		qp->env[2] = xstrdup(dev.c.admin);
		qp->c.url = qp->env[0];
		qp->c.ca = qp->env[1];
		qp->c.admin = qp->env[2];
		qp->c.pool = "dev";
		qp->c.pid = qp->pid;
		qp->env[3] = make_regtoken(&qp->c);
		qp->c.regtok = qp->env[3];
		r = qp->env[3] ? 0 : -1;
	}
	if (r < 0)
		fprintf(stderr, "bench: %s on PostgreSQL did not start; see %s\n",
		    bin, out);
	free(ci);
	free(port);
	free(out);
	free(admin);
	free(cert);
	free(keyf);
out:
	free(cmd);
	free(sql);
	free(db);
	buf_free(&b);
	qp_stop(&dev);
	return r;
}

static int qp_start(struct queue_proc *qp, const char *bin, char **extra,
    int nextra)
{
	static int seq;
	char tmpl[] = "/tmp/skiff-bench-logs.XXXXXX";
	char *port, *data, *out;
	struct buf env = BUF_INIT(1 << 16);

	memset(qp, 0, sizeof(*qp));
	if (mkdtemp(tmpl) == NULL)
		return -errno;
	qp->dir = xstrdup(tmpl);
	port = xasprintf("%s/port", qp->dir);
	data = xasprintf("%s/data%d", qp->dir, ++seq);
	out = xasprintf("%s/queue.log", qp->dir);
	{
		const char *store[] = { "--dev", "--data-dir", data, NULL };
		qp->pid = spawn_queue(bin, store, port, out, extra, nextra);
	}
	free(port);
	usleep(100 * 1000);
	char *envf = xasprintf("%s/dev.env", data);
	int r = fsx_read_file(envf, 1 << 16, &env);
	free(envf);
	qp->data = data;
	if (r < 0) {
		fprintf(stderr, "bench: %s did not start; see %s\n", bin, out);
		free(out);
		return -1;
	}
	free(out);
	qp->env[0] = env_value(buf_cstr(&env), "SKIFF_QUEUE_URL");
	qp->env[1] = env_value(buf_cstr(&env), "SKIFF_CA_FILE");
	qp->env[2] = env_value(buf_cstr(&env), "SKIFF_ADMIN_TOKEN");
	qp->env[3] = env_value(buf_cstr(&env), "SKIFF_REGISTRATION_TOKEN");
	buf_free(&env);
	qp->c.url = qp->env[0];
	qp->c.ca = qp->env[1];
	qp->c.admin = qp->env[2];
	qp->c.regtok = qp->env[3];
	qp->c.pool = "dev";
	qp->c.pid = qp->pid;
	return qp->c.url && qp->c.admin && qp->c.regtok ? 0 : -1;
}

static void qp_stop(struct queue_proc *qp)
{
	if (qp->pid > 0) {
		kill(qp->pid, SIGTERM);
		waitpid(qp->pid, NULL, 0);
	}
	for (int i = 0; i < 4; i++)
		free(qp->env[i]);
	free(qp->data);
	if (qp->dir)
		fsx_remove_tree(qp->dir);
	free(qp->dir);
	memset(qp, 0, sizeof(*qp));
}

/* ---- jobs and leases ---- */

static struct jwk key;

static char *make_job(const char *pool, int i)
{
	static int64_t serial;
	char *payload, *jws = NULL;
	long now = (long)time(NULL);

	payload = xasprintf("{\"iss\":\"bench\",\"aud\":\"%s\",\"jti\":"
	    "\"logs-%ld-%d-%07lld\",\"iat\":%ld,\"exp\":%ld,\"job\":{\"name\":"
	    "\"bench\",\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}}", pool,
	    now, (int)getpid(), (long long)(++serial * 1000 + i % 1000), now,
	    now + 3600);
	jws_sign(&key, payload, strlen(payload), &jws);
	free(payload);
	return jws;
}

static char *json_str(const char *s, const char *field)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", field);
	if ((p = strstr(s, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	if ((e = strchr(p, '"')) == NULL)
		return NULL;
	return xasprintf("%.*s", (int)(e - p), p);
}

/* n jobs submitted and leased (acknowledged) by agents of capacity 256
 * (the protocol's most): lease ids and the token of each one's agent. */
static char **lease_jobs(const struct bench_conn *c, int n, char ***tokens)
{
	CURL *e = bench_easy(c);
	struct buf out = BUF_INIT(1 << 20);
	char **ids = xcalloc((size_t)n, sizeof(*ids));
	char **tok = xcalloc((size_t)n, sizeof(*tok));
	char *cur = NULL;
	int i;

	for (i = 0; i < n; i++) {
		char *jws = make_job(c->pool, i);
		long st = bench_request(e, c, "POST", "/v1/jobs", "application/jose",
		    jws, strlen(jws), c->admin, &out);
		free(jws);
		if (st != 201)
			goto fail;
	}
	for (i = 0; i < n; i++) {
		char *hb;
		long st;
		if (i % 256 == 0 && (cur = bench_register(c, n - i < 256 ? n - i :
		    256)) == NULL)
			goto fail;
		tok[i] = i % 256 == 0 ? cur : xstrdup(cur);
		if (bench_request(e, c, "POST", "/v1/agent/lease", NULL,
		    "{\"wait\":0}", 10, cur, &out) != 200 ||
		    (ids[i] = json_str(buf_cstr(&out), "lease")) == NULL)
			goto fail;
		hb = xasprintf("/v1/leases/%s/heartbeat", ids[i]);
		st = bench_request(e, c, "POST", hb, NULL, "{}", 2, cur, &out);
		free(hb);
		if (st != 200)
			goto fail;
	}
	buf_free(&out);
	curl_easy_cleanup(e);
	*tokens = tok;
	return ids;
fail:
	fprintf(stderr, "bench: setting up %d leases failed at %d: %s\n", n, i,
	    buf_cstr(&out));
	for (i = 0; i < n; i++) {
		free(ids[i]);
		free(tok[i]);
	}
	free(ids);
	free(tok);
	buf_free(&out);
	curl_easy_cleanup(e);
	return NULL;
}

/* ---- chunks ---- */

/* gzip of n bytes of log-like lines (hex of a counter hash: deflates
 * about 2:1, as much work to inflate as real output). */
static char *make_chunk(size_t n, size_t *gzlen)
{
	char *raw = xmalloc(n), *gz;
	uLong bound;
	z_stream z;
	uint64_t h = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i++) {
		if (i % 64 == 63) {
			raw[i] = '\n';
			continue;
		}
		h ^= h << 13;
		h ^= h >> 7;
		h ^= h << 17;
		raw[i] = "0123456789abcdef"[h & 15];
	}
	memset(&z, 0, sizeof(z));
	deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	bound = deflateBound(&z, (uLong)n);
	gz = xmalloc(bound);
	z.next_in = (Bytef *)raw;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)gz;
	z.avail_out = (uInt)bound;
	deflate(&z, Z_FINISH);
	*gzlen = z.total_out;
	deflateEnd(&z);
	free(raw);
	return gz;
}

/* ---- streams: one thread, one multi, one connection per job ---- */

struct stream {
	CURL *e;
	struct curl_slist *h;
	char *lease, *token;
	int64_t offset;
	int64_t due_ns;			/* paced: next send */
	int64_t sent_ns;
	int active;
	char answer[256];
	size_t alen;
};

struct load {
	const struct bench_conn *c;
	struct stream *s;
	int n;
	const char *body;
	size_t blen, raw;		/* gzip and inflated sizes */
	int64_t period_ns;		/* 0: back to back */
	atomic_int stop;
	atomic_llong bytes, puts, errors;
	int64_t *lat;			/* PUT latencies (ns), paced mode */
	size_t nlat, caplat;
	int counting;			/* inside the measured window */
	pthread_t thr;
};

static size_t on_answer(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t n = size * nmemb, room = sizeof(s->answer) - 1 - s->alen;

	memcpy(s->answer + s->alen, p, n < room ? n : room);
	s->alen += n < room ? n : room;
	s->answer[s->alen] = '\0';
	return n;
}

static void stream_send(struct load *L, CURLM *m, struct stream *s)
{
	char *url = xasprintf("%s/v1/leases/%s/log?offset=%lld", L->c->url,
	    s->lease, (long long)s->offset);

	curl_easy_setopt(s->e, CURLOPT_URL, url);
	free(url);
	s->alen = 0;
	s->sent_ns = bench_now_ns();
	s->active = 1;
	curl_multi_add_handle(m, s->e);
}

static void stream_init(struct load *L, struct stream *s)
{
	char *auth = xasprintf("Authorization: Bearer %s", s->token);

	s->e = bench_easy(L->c);
	s->h = curl_slist_append(NULL, auth);
	s->h = curl_slist_append(s->h, "Content-Encoding: gzip");
	s->h = curl_slist_append(s->h, "Content-Type: application/octet-stream");
	s->h = curl_slist_append(s->h, "Expect:");
	curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, s->h);
	curl_easy_setopt(s->e, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(s->e, CURLOPT_POSTFIELDS, L->body);
	curl_easy_setopt(s->e, CURLOPT_POSTFIELDSIZE, (long)L->blen);
	curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->e, CURLOPT_PRIVATE, s);
	free(auth);
}

static void stream_done(struct load *L, CURLM *m, CURL *e, CURLcode rc)
{
	struct stream *s;
	long st = -1;
	const char *p;
	int64_t now = bench_now_ns();

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
	curl_multi_remove_handle(m, e);
	s->active = 0;
	if (rc == CURLE_OK && st == 200 &&
	    (p = strstr(s->answer, "\"length\":")) != NULL) {
		int64_t len = strtoll(p + 9, NULL, 10);
		if (L->counting) {
			atomic_fetch_add(&L->bytes, len - s->offset);
			atomic_fetch_add(&L->puts, 1);
			if (L->lat && L->nlat < L->caplat)
				L->lat[L->nlat++] = now - s->sent_ns;
		}
		s->offset = len;
	} else {
		atomic_fetch_add(&L->errors, 1);
	}
	s->due_ns = L->period_ns ? s->due_ns + L->period_ns : now;
}

static void *load_run(void *arg)
{
	struct load *L = arg;
	CURLM *m = curl_multi_init();
	int64_t t0 = bench_now_ns();

	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	for (int i = 0; i < L->n; i++) {
		stream_init(L, &L->s[i]);
		/* Paced starts are spread over one period. */
		L->s[i].due_ns = t0 + (L->period_ns ? L->period_ns * i / L->n : 0);
	}
	while (!atomic_load(&L->stop)) {
		int running, left;
		int64_t now = bench_now_ns(), next = now + 100 * 1000000LL;
		CURLMsg *msg;

		for (int i = 0; i < L->n; i++) {
			struct stream *s = &L->s[i];
			if (s->active)
				continue;
			if (s->due_ns <= now)
				stream_send(L, m, s);
			else if (s->due_ns < next)
				next = s->due_ns;
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				stream_done(L, m, msg->easy_handle, msg->data.result);
		now = bench_now_ns();
		curl_multi_poll(m, NULL, 0, next > now ? (int)((next - now) /
		    1000000) + 1 : 0, NULL);
	}
	for (int i = 0; i < L->n; i++) {
		if (L->s[i].active)
			curl_multi_remove_handle(m, L->s[i].e);
		curl_easy_cleanup(L->s[i].e);
		curl_slist_free_all(L->s[i].h);
	}
	curl_multi_cleanup(m);
	return NULL;
}

static int load_start(struct load *L, const struct bench_conn *c, int n,
    const char *body, size_t blen, size_t raw, int64_t period_ns)
{
	char **tokens, **ids = lease_jobs(c, n, &tokens);

	if (ids == NULL)
		return -1;
	memset(L, 0, sizeof(*L));
	L->c = c;
	L->n = n;
	L->body = body;
	L->blen = blen;
	L->raw = raw;
	L->period_ns = period_ns;
	L->s = xcalloc((size_t)n, sizeof(*L->s));
	for (int i = 0; i < n; i++) {
		L->s[i].lease = ids[i];
		L->s[i].token = tokens[i];
	}
	free(ids);
	free(tokens);
	pthread_create(&L->thr, NULL, load_run, L);
	return 0;
}

static void load_stop(struct load *L)
{
	atomic_store(&L->stop, 1);
	pthread_join(L->thr, NULL);
	for (int i = 0; i < L->n; i++) {
		free(L->s[i].lease);
		free(L->s[i].token);
	}
	free(L->s);
	free(L->lat);
}

/* Counts from now for seconds: the figures of the window only. */
static double window(struct load *L, double seconds)
{
	int64_t t0 = bench_now_ns(), t1;

	atomic_store(&L->bytes, 0);
	atomic_store(&L->puts, 0);
	L->counting = 1;
	usleep((useconds_t)(seconds * 1e6));
	L->counting = 0;
	t1 = bench_now_ns();
	return (double)(t1 - t0) / 1e9;
}

/* ---- pickups ---- */

struct answer {
	int64_t first_ns;
	struct buf body;
};

static size_t first_byte(char *p, size_t size, size_t nmemb, void *arg)
{
	struct answer *a = arg;

	if (a->first_ns == 0)
		a->first_ns = bench_now_ns();
	return buf_append(&a->body, p, size * nmemb) < 0 ? 0 : size * nmemb;
}

/* Acknowledges and completes a picked lease: frees the slot. */
static int release(CURL *e, const struct bench_conn *c, const char *token,
    const char *answer)
{
	char *lease = json_str(answer, "lease"), *p1, *p2;
	struct buf out = BUF_INIT(1 << 20);
	int ok;

	if (lease == NULL)
		return -1;
	p1 = xasprintf("/v1/leases/%s/heartbeat", lease);
	p2 = xasprintf("/v1/leases/%s/complete", lease);
	ok = bench_request(e, c, "POST", p1, NULL, "{}", 2, token, &out) == 200 &&
	    bench_request(e, c, "POST", p2, NULL, "{\"result\":\"succeeded\","
	    "\"exit_codes\":[0],\"log_length\":0}", 54, token, &out) == 200;
	free(p1);
	free(p2);
	free(lease);
	buf_free(&out);
	return ok ? 0 : -1;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Pickups for seconds: p50, p99 in ms; -1 on failure. */
static int pickups(const struct bench_conn *c0, double seconds, double *p50,
    double *p99, int *count)
{
	struct bench_conn c = *c0;
	char *token, *auth, *url;
	struct curl_slist *h = NULL;
	int64_t *v, end;
	struct answer ans = { 0, BUF_INIT(1 << 20) };
	int n = 0, cap = 100000;
	CURL *le, *sub, *probe;
	CURLM *m;
	char prefix[160];

	c.pool = "pick";
	/* The registration token of --dev is for pool dev: pickups use a
	 * pool of their own, its token made through the admin API. */
	probe = bench_easy(&c);
	{
		struct buf out = BUF_INIT(1 << 20);
		if (bench_request(probe, &c, "POST", "/v1/pools/pick/tokens", NULL,
		    "{\"description\":\"bench\"}", 23, c.admin, &out) != 201) {
			fprintf(stderr, "bench: token: %s\n", buf_cstr(&out));
			buf_free(&out);
			return -1;
		}
		c.regtok = json_str(buf_cstr(&out), "token");
		buf_free(&out);
	}
	token = bench_register(&c, 1);
	if (token == NULL)
		return -1;
	snprintf(prefix, sizeof(prefix), "skiff_lease_waiters{pool=\"pick\"}");
	auth = xasprintf("Authorization: Bearer %s", token);
	url = xasprintf("%s/v1/agent/lease", c.url);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	le = bench_easy(&c);
	curl_easy_setopt(le, CURLOPT_URL, url);
	curl_easy_setopt(le, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(le, CURLOPT_POSTFIELDS, "{\"wait\":30}");
	curl_easy_setopt(le, CURLOPT_WRITEFUNCTION, first_byte);
	curl_easy_setopt(le, CURLOPT_WRITEDATA, &ans);
	sub = bench_easy(&c);
	m = curl_multi_init();
	v = xcalloc((size_t)cap, sizeof(*v));
	end = bench_now_ns() + (int64_t)(seconds * 1e9);
	while (bench_now_ns() < end && n < cap) {
		struct buf out = BUF_INIT(1 << 20);
		struct curl_slist *sh;
		int running, held = 0, done = 0, left;
		char *jws = make_job("pick", n);
		int64_t t0;
		CURLMsg *msg;

		ans.first_ns = 0;
		buf_reset(&ans.body);
		curl_multi_add_handle(m, le);
		for (int i = 0; i < 5000 && !held; i++) {
			curl_multi_perform(m, &running);
			held = bench_metric(probe, &c, prefix) >= 1;
			if (!held)
				curl_multi_poll(m, NULL, 0, 1, NULL);
		}
		sh = bench_prepare(sub, &c, "POST", "/v1/jobs", "application/jose",
		    jws, strlen(jws), c.admin, &out);
		t0 = bench_now_ns();
		curl_multi_add_handle(m, sub);
		for (int i = 0; i < 600000 && done < 2; i++) {
			curl_multi_perform(m, &running);
			while ((msg = curl_multi_info_read(m, &left)) != NULL)
				done += msg->msg == CURLMSG_DONE;
			if (done < 2)
				curl_multi_poll(m, NULL, 0, 100, NULL);
		}
		curl_multi_remove_handle(m, sub);
		curl_multi_remove_handle(m, le);
		curl_easy_setopt(sub, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(sh);
		buf_free(&out);
		free(jws);
		if (!held || ans.first_ns == 0 ||
		    release(probe, &c, token, buf_cstr(&ans.body)) < 0) {
			fprintf(stderr, "bench: a pickup failed\n");
			break;
		}
		v[n++] = ans.first_ns - t0;
	}
	if (n > 0) {
		qsort(v, (size_t)n, sizeof(*v), cmp64);
		*p50 = v[n / 2] / 1e6;
		*p99 = v[n * 99 / 100] / 1e6;
	}
	*count = n;
	free(v);
	buf_free(&ans.body);
	free(url);
	free(auth);
	free(token);
	free((char *)c.regtok);
	curl_slist_free_all(h);
	curl_easy_cleanup(le);
	curl_easy_cleanup(sub);
	curl_easy_cleanup(probe);
	curl_multi_cleanup(m);
	return n > 0 ? 0 : -1;
}

/* ---- the figures ---- */

enum { F_A, F_B, F_CP50, F_CP99, F_CMB, F_DP50, F_DP99, F_DACC, F_DOFF,
    F_DPUT50, F_DPUT99, F_COUNT };

struct figs {
	double v[F_COUNT];
	int have[F_COUNT];
};

struct opts {
	const char *bin[2];
	const char *postgres;		/* the first queue on PostgreSQL */
	double seconds;
	int jobs[4];
	const char *only;
	char **extra;
	int nextra;
	char *chunk[4];
	size_t chunk_len[4], raw[4];
};

static void set(struct figs *f, int k, double v)
{
	f->v[k] = v;
	f->have[k] = 1;
}

static int run_figure(const struct opts *o, const char *bin, int which,
    struct figs *f)
{
	struct queue_proc qp;
	struct load L;
	double secs, p50 = 0, p99 = 0;
	int n = 0, r = 0;
	int paced = which == 3;

	if ((o->postgres && bin == o->bin[0] ?
	    qp_start_pg(&qp, bin, o->postgres, o->extra, o->nextra) :
	    qp_start(&qp, bin, o->extra, o->nextra)) < 0) {
		qp_stop(&qp);
		return -1;
	}
	if (load_start(&L, &qp.c, o->jobs[which], o->chunk[which],
	    o->chunk_len[which], o->raw[which], paced ? 1000000000LL : 0) < 0) {
		qp_stop(&qp);
		return -1;
	}
	if (paced)
		L.lat = xcalloc(L.caplat = 1 << 22, sizeof(*L.lat));
	/* Warm-up: every connection made, the disk's write-back going. */
	sleep(paced ? 2 : 1);
	if (which <= 1) {
		secs = window(&L, o->seconds);
		if (which == 0)
			set(f, F_A, (double)atomic_load(&L.puts) / secs);
		else
			set(f, F_B, (double)atomic_load(&L.bytes) / secs / 1e6);
	} else {
		int64_t t0 = bench_now_ns();
		atomic_store(&L.bytes, 0);
		L.counting = 1;
		r = pickups(&qp.c, o->seconds, &p50, &p99, &n);
		L.counting = 0;
		secs = (double)(bench_now_ns() - t0) / 1e9;
		set(f, which == 2 ? F_CP50 : F_DP50, p50);
		set(f, which == 2 ? F_CP99 : F_DP99, p99);
		set(f, which == 2 ? F_CMB : F_DACC,
		    (double)atomic_load(&L.bytes) / secs / 1e6);
		if (paced) {
			set(f, F_DOFF, (double)o->jobs[3] * 65536 / 1e6);
			if (L.nlat) {
				qsort(L.lat, L.nlat, sizeof(*L.lat), cmp64);
				set(f, F_DPUT50, L.lat[L.nlat / 2] / 1e6);
				set(f, F_DPUT99, L.lat[L.nlat * 99 / 100] / 1e6);
			}
		}
	}
	if (atomic_load(&L.errors))
		fprintf(stderr, "bench: %s: %lld PUTs failed\n", bin,
		    (long long)atomic_load(&L.errors));
	load_stop(&L);
	qp_stop(&qp);
	(void)n;
	return r;
}

static const char *const names[F_COUNT] = {
	"(a) 8 KiB appends/s", "(b) log MB/s, 1 MiB chunks",
	"(c) pickup p50 ms", "(c) pickup p99 ms", "(c) log MB/s meanwhile",
	"(d) pickup p50 ms", "(d) pickup p99 ms", "(d) accepted MB/s",
	"(d) offered MB/s", "(d) PUT p50 ms", "(d) PUT p99 ms",
};
static const char *const targets[F_COUNT] = {
	">= 10000", ">= 300", "", "<= 10", "", "", "<= 10", "= offered", "",
	"", "",
};
static const int figure_of[F_COUNT] = { 0, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3 };

static void print(const struct opts *o, const struct figs *f)
{
	printf("%-28s %12s %12s %9s  %s\n", "figure", o->postgres ? "postgres" :
	    "new", o->postgres ? "sqlite" : "baseline", o->postgres ? "pg/sqlite" :
	    "new/base", "target");
	for (int k = 0; k < F_COUNT; k++) {
		char nv[32] = "-", bv[32] = "-", ratio[32] = "-";
		if (!f[0].have[k] && !f[1].have[k])
			continue;
		if (f[0].have[k])
			snprintf(nv, sizeof(nv), "%.2f", f[0].v[k]);
		if (o->bin[1] && f[1].have[k])
			snprintf(bv, sizeof(bv), "%.2f", f[1].v[k]);
		if (o->bin[1] && f[0].have[k] && f[1].have[k] && f[1].v[k] > 0)
			snprintf(ratio, sizeof(ratio), "%.2fx", f[0].v[k] / f[1].v[k]);
		printf("%-28s %12s %12s %9s  %s\n", names[k], nv, bv, ratio,
		    targets[k]);
	}
	(void)figure_of;
}

static int parse(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->seconds = 10;
	o->jobs[0] = 256;
	o->jobs[1] = 32;
	o->jobs[2] = 128;
	o->jobs[3] = 1024;
	o->only = "abcd";
	for (i = 1; i < argc; i++) {
		const char *k = argv[i];
		if (strcmp(k, "--") == 0) {
			o->extra = argv + i + 1;
			o->nextra = argc - i - 1;
			break;
		}
		if (i + 1 >= argc)
			return -1;
		if (strcmp(k, "--queue") == 0)
			o->bin[0] = argv[++i];
		else if (strcmp(k, "--baseline") == 0)
			o->bin[1] = argv[++i];
		else if (strcmp(k, "--seconds") == 0)
			o->seconds = atof(argv[++i]);
		else if (strcmp(k, "--only") == 0)
			o->only = argv[++i];
		else if (strcmp(k, "--postgres") == 0)
			o->postgres = argv[++i];
		else if (strcmp(k, "--postgres-db") == 0)
			shared_db = argv[++i];
		else if (strcmp(k, "--jobs") == 0 && sscanf(argv[++i], "%d,%d,%d,%d",
		    &o->jobs[0], &o->jobs[1], &o->jobs[2], &o->jobs[3]) == 4)
			;
		else
			return -1;
	}
	return o->bin[0] && o->seconds > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct figs f[2];
	struct rlimit rl;

	if (parse(argc, argv, &o) < 0) {
		fputs(usage, stderr);
		return 2;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	jwk_generate(JWK_ED25519, "bench", &key);
	memset(f, 0, sizeof(f));
	o.raw[0] = 8192;
	o.raw[1] = o.raw[2] = 1 << 20;
	o.raw[3] = 65536;
	for (int w = 0; w < 4; w++)
		o.chunk[w] = make_chunk(o.raw[w], &o.chunk_len[w]);
	printf("== log path, %.0f s per figure, jobs a=%d b=%d c=%d d=%d, queue "
	    "args:", o.seconds, o.jobs[0], o.jobs[1], o.jobs[2], o.jobs[3]);
	for (int i = 0; i < o.nextra; i++)
		printf(" %s", o.extra[i]);
	printf("\n   new: %s%s\n   baseline: %s\n", o.bin[0],
	    o.postgres ? " (on PostgreSQL)" : "", o.bin[1] ? o.bin[1] : "(none)");
	fflush(stdout);
	for (int w = 0; w < 4; w++) {
		if (strchr(o.only, 'a' + w) == NULL)
			continue;
		for (int b = 0; b < 2; b++) {
			if (o.bin[b] && run_figure(&o, o.bin[b], w, &f[b]) < 0)
				fprintf(stderr, "bench: figure %c failed for %s\n", 'a' + w,
				    o.bin[b]);
		}
	}
	print(&o, f);
	for (int w = 0; w < 4; w++)
		free(o.chunk[w]);
	return 0;
}
