/*
 * Submit-to-lease pickup latency with a long-poll already waiting.
 *
 * For each of N jobs: an agent's lease request (wait 30 s) is sent and
 * held by the queue (confirmed through skiff_lease_waiters); then the
 * clock starts, a job is submitted on another keep-alive connection, and
 * the clock stops when the lease answer reaches the agent. That is what
 * an agent sees: the submit's processing (parse, SQLite commit), the
 * wake-up of the held request, the lease's own commit, and the answer.
 * The lease is then acknowledged and completed (not timed) so that the
 * agent is free for the next round.
 *
 *   bench_queue_pickup [--submit-url U2] [--url U --ca F --admin-token T
 *                       --registration-token R] [N]
 *
 * With --submit-url the job is submitted to another replica (U2) than the
 * one holding the lease request (U): pickup across replicas on
 * PostgreSQL, woken by NOTIFY.
 *
 * (or SKIFF_QUEUE_URL, SKIFF_CA_FILE, SKIFF_ADMIN_TOKEN,
 * SKIFF_REGISTRATION_TOKEN, as skiff-queue --dev writes them to dev.env).
 * Prints p50, p90, p99 and max in milliseconds.
 */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "bench_common.h"
#include "jsonx.h"
#include "jwk.h"
#include "jws.h"
#include "strnum.h"
#include "xalloc.h"

static const char usage[] =
    "usage: bench_queue_pickup [--submit-url U2] [--url U] [--ca F]\n"
    "                          [--admin-token T]\n"
    "                          [--registration-token R] [--pool P] [N]\n";

struct lease_req {
	CURL *e;
	struct buf body;
	int64_t first_byte_ns;
	struct curl_slist *h;
};

static size_t on_lease_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct lease_req *l = arg;

	if (l->first_byte_ns == 0)
		l->first_byte_ns = bench_now_ns();
	return buf_append(&l->body, p, size * nmemb) < 0 ? 0 : size * nmemb;
}

static void lease_setup(struct lease_req *l, const struct bench_conn *c,
    const char *token)
{
	char *url = xasprintf("%s/v1/agent/lease", c->url);
	char *auth = xasprintf("Authorization: Bearer %s", token);

	l->e = bench_easy(c);
	buf_init(&l->body, 1 << 20);
	l->h = curl_slist_append(NULL, auth);
	l->h = curl_slist_append(l->h, "Content-Type: application/json");
	curl_easy_setopt(l->e, CURLOPT_URL, url);
	curl_easy_setopt(l->e, CURLOPT_HTTPHEADER, l->h);
	curl_easy_setopt(l->e, CURLOPT_POSTFIELDS, "{\"wait\":30}");
	curl_easy_setopt(l->e, CURLOPT_WRITEFUNCTION, on_lease_body);
	curl_easy_setopt(l->e, CURLOPT_WRITEDATA, l);
	free(url);
	free(auth);
}

/* Drives the multi until both requests are done. */
static void drive(CURLM *m, int want)
{
	int running = 1, done = 0, left;
	CURLMsg *msg;

	while (done < want && running) {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			done += msg->msg == CURLMSG_DONE;
		if (done < want)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
}

/* Sends the lease request and waits until the queue holds it. */
static int start_lease(CURLM *m, struct lease_req *l, CURL *probe,
    const struct bench_conn *c)
{
	char prefix[160];
	int running;

	snprintf(prefix, sizeof(prefix), "skiff_lease_waiters{pool=\"%s\"}",
	    c->pool);
	buf_reset(&l->body);
	l->first_byte_ns = 0;
	curl_multi_add_handle(m, l->e);
	for (int i = 0; i < 2000; i++) {
		curl_multi_perform(m, &running);
		if (bench_metric(probe, c, prefix) >= 1)
			return 0;
		curl_multi_poll(m, NULL, 0, 1, NULL);
	}
	fprintf(stderr, "bench: the lease request was not held\n");
	return -1;
}

static char *make_job(const struct jwk *k, const char *pool, int i)
{
	char *payload, *jws = NULL;
	long now = (long)time(NULL);

	payload = xasprintf("{\"iss\":\"bench\",\"aud\":\"%s\",\"jti\":"
	    "\"bench-%ld-%ld-%06d\",\"iat\":%ld,\"exp\":%ld,\"job\":{\"name\":"
	    "\"bench\",\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}}", pool,
	    now, (long)getpid(), i, now, now + 3600);
	jws_sign(k, payload, strlen(payload), &jws);
	free(payload);
	return jws;
}

/* Acknowledges and completes the lease: frees the agent's one slot. */
static int release(CURL *e, const struct bench_conn *c, const char *token,
    const char *answer)
{
	int jerr;
	cJSON *j = jsonx_parse(answer, strlen(answer), 1 << 20, 4, &jerr);
	const char *lease = cJSON_GetStringValue(cJSON_GetObjectItem(j, "lease"));
	struct buf out = BUF_INIT(1 << 20);
	char *p1, *p2;
	int ok;

	if (lease == NULL) {
		fprintf(stderr, "bench: no lease in answer: %s\n", answer);
		cJSON_Delete(j);
		return -1;
	}
	p1 = xasprintf("/v1/leases/%s/heartbeat", lease);
	p2 = xasprintf("/v1/leases/%s/complete", lease);
	ok = bench_request(e, c, "POST", p1, NULL, "{}", 2, token, &out) == 200 &&
	    bench_request(e, c, "POST", p2, NULL, "{\"result\":\"succeeded\","
	    "\"exit_codes\":[0],\"log_length\":0}", 54, token, &out) == 200;
	free(p1);
	free(p2);
	buf_free(&out);
	cJSON_Delete(j);
	return ok ? 0 : -1;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void report(int64_t *v, int n, const char *what)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-28s n=%d p50=%.3f ms p90=%.3f ms p99=%.3f ms max=%.3f ms\n",
	    what, n, v[n / 2] / 1e6, v[n * 9 / 10] / 1e6, v[n * 99 / 100] / 1e6,
	    v[n - 1] / 1e6);
}

/* One job: both requests run in the same multi, so each answer is
 * stamped the moment it arrives. */
static int round_trip(CURLM *m, struct lease_req *l, CURL *sub, CURL *aux,
    const struct bench_conn *c, const struct bench_conn *sc, const char *jws,
    int64_t *pick, int64_t *rtt)
{
	struct buf out = BUF_INIT(1 << 20);
	struct curl_slist *h;
	curl_off_t total = 0;
	int64_t t0;
	long st = -1;

	if (start_lease(m, l, aux, c) < 0)
		return -1;
	h = bench_prepare(sub, sc, "POST", "/v1/jobs", "application/jose", jws,
	    strlen(jws), c->admin, &out);
	t0 = bench_now_ns();
	curl_multi_add_handle(m, sub);
	drive(m, 2);
	curl_easy_getinfo(sub, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_getinfo(sub, CURLINFO_TOTAL_TIME_T, &total);
	curl_multi_remove_handle(m, sub);
	curl_multi_remove_handle(m, l->e);
	curl_easy_setopt(sub, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	*pick = l->first_byte_ns - t0;
	*rtt = (int64_t)total * 1000;
	buf_free(&out);
	if (st != 201 || l->first_byte_ns == 0) {
		fprintf(stderr, "bench: submit answered %ld\n", st);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_conn c, sc;
	struct lease_req l;
	struct jwk key;
	int64_t n = 1000, *pick, *rtt;
	const char *submit_url = NULL;
	int i, done = 0;
	char *token;
	CURLM *m;
	CURL *sub, *aux;

	if (argc > 2 && strcmp(argv[1], "--submit-url") == 0) {
		submit_url = argv[2];
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	i = bench_parse(argc, argv, &c, usage);
	if (i < 0 || (i < argc && strnum_i64(argv[i], 1, 1000000, &n, NULL) < 0))
		return 2;
	sc = c;
	if (submit_url)
		sc.url = submit_url;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((token = bench_register(&c, 1)) == NULL)
		return 1;
	jwk_generate(JWK_ED25519, "bench", &key);
	lease_setup(&l, &c, token);
	m = curl_multi_init();
	sub = bench_easy(&c);
	aux = bench_easy(&c);
	pick = xcalloc((size_t)n, sizeof(*pick));
	rtt = xcalloc((size_t)n, sizeof(*rtt));
	for (; done < n; done++) {
		char *jws = make_job(&key, c.pool, done);
		int r = round_trip(m, &l, sub, aux, &c, &sc, jws, &pick[done],
		    &rtt[done]);
		free(jws);
		if (r < 0 || release(aux, &c, token, buf_cstr(&l.body)) < 0)
			break;
	}
	if (done > 0) {
		report(pick, done, submit_url ? "submit -> lease (across)" :
		    "submit -> lease answer");
		report(rtt, done, "submit round trip");
	}
	return done == n ? 0 : 1;
}
