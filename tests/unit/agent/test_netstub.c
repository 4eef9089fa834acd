/*
 * The runner half alone, driven through its end of the socketpair by a
 * test that plays a compromised network half: the real runner (real
 * verification, real replay cache, real host steps) behind the real stub
 * (run/netstub.c), and raw bytes written to the other end. Forged starts
 * (unsigned, tampered, expired, replayed, a job id that is a path),
 * oversized, truncated and unknown messages: nothing runs, each is
 * refused with its reason, and a good job still runs after all of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/testkit.h"
#include "ev.h"
#include "log.h"
#include "netstub.h"
#include "replay.h"
#include "run/config.h"
#include "runner.h"
#include "wire.h"

struct fx {
	char dir[PATH_MAX];
	char state[PATH_MAX + 16], work[PATH_MAX + 16], spool[PATH_MAX + 32];
	struct agent_config cfg;
	struct ev_loop *loop;
	struct jwk key;
	struct jwks trusted;
	struct replay *replay;
	struct runner *runner;
	struct netstub *stub;
	int peer;		/* the test's end: the "network half" */
	int gone;
	int exit_code;
	/* what came back */
	unsigned char in[SEAMWIRE_HDR + SEAMWIRE_MAX];
	size_t in_len;
	int fds[16];
	size_t nfds;
};

static void on_exit_code(void *ctx, int code)
{
	((struct fx *)ctx)->exit_code = code;
}

static void on_gone(void *ctx, const char *why)
{
	(void)why;
	((struct fx *)ctx)->gone = 1;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char conf[PATH_MAX + 32], *argv[4];
	int sv[2], argi, check;
	FILE *fp;

	tk_init();
	log_setup("test", LOGL_INFO, LOGF_LOGFMT);
	tk_tmpdir(f->dir);
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->work, sizeof(f->work), "%s/work", f->dir);
	snprintf(f->spool, sizeof(f->spool), "%s/state/spool", f->dir);
	snprintf(conf, sizeof(conf), "%s/agent.conf", f->dir);
	assert_int_equal(fsx_mkdir_p(f->spool, 0700), 0);
	assert_int_equal(fsx_mkdir_p(f->work, 0711), 0);
	fp = fopen(conf, "w");
	assert_non_null(fp);
	fprintf(fp, "SKIFF_QUEUE_URL=https://127.0.0.1:1\nSKIFF_POOL=%s\n"
	    "SKIFF_TRUSTED_KEYS=%s/none.jwks\nSKIFF_STATE_DIR=%s\n"
	    "SKIFF_WORK_DIR=%s\nSKIFF_STEP_USER=nobody\n", TK_POOL, f->dir,
	    f->state, f->work);
	fclose(fp);
	argv[0] = (char *)"skiff-agent";
	argv[1] = (char *)"--config";
	argv[2] = conf;
	argv[3] = NULL;
	assert_int_equal(config_load(&f->cfg, 3, argv, &argi, &check), 0);
	assert_int_equal(ev_loop_new(&f->loop), 0);
	tk_ed25519(&f->key, 7, "unit-key");
	tk_jwks(&f->trusted, &f->key, 1);
	assert_int_equal(replay_open(f->state, (int64_t)time(NULL), 300,
	    &f->replay), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	    0);
	f->peer = sv[1];
	struct netstub_params np = { f->loop, sv[0], f->spool, 1 << 20,
	    on_exit_code, on_gone, f };
	assert_int_equal(netstub_new(&np, &f->stub), 0);
	struct runner_params rp = { &f->cfg, f->loop, netstub_table(f->stub),
	    &f->trusted, NULL, f->replay, NULL, "unit", "0123", NULL };
	assert_int_equal(runner_new(&rp, &f->runner), 0);
	netstub_set_runner(f->stub, runner_seam(f->runner));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	runner_free(f->runner);
	netstub_free(f->stub);
	replay_close(f->replay);
	jwks_free(&f->trusted);
	ev_loop_free(f->loop);
	config_free(&f->cfg);
	close(f->peer);
	for (size_t i = 0; i < f->nfds; i++)
		close(f->fds[i]);
	tk_rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- the forged half ---- */

static void put(struct fx *f, uint32_t type, uint32_t len, uint64_t jh,
    const void *payload, size_t n)
{
	struct seamwire_hdr h = { type, len, jh };

	assert_int_equal(write(f->peer, &h, sizeof(h)), (ssize_t)sizeof(h));
	if (n)
		assert_int_equal(write(f->peer, payload, n), (ssize_t)n);
}

static void start(struct fx *f, uint64_t jh, const char *id, const char *jws)
{
	struct buf b = BUF_INIT(SEAMWIRE_HDR + SEAMWIRE_MAX);

	assert_int_equal(seamwire_put_start(&b, jh, 1, id, jws, strlen(jws)), 0);
	assert_int_equal(write(f->peer, b.data, b.len), (ssize_t)b.len);
	buf_free(&b);
}

/* The next message from the runner (the loop runs meanwhile); 0: none
 * within the bound. */
static int next(struct fx *f, struct seamwire_hdr *h, unsigned char **payload,
    int *fd)
{
	for (int i = 0; i < 1500; i++) {
		if (f->in_len >= SEAMWIRE_HDR) {
			memcpy(h, f->in, sizeof(*h));
			if (f->in_len >= SEAMWIRE_HDR + h->len) {
				*payload = xmalloc(h->len + 1);
				memcpy(*payload, f->in + SEAMWIRE_HDR, h->len);
				(*payload)[h->len] = 0;
				memmove(f->in, f->in + SEAMWIRE_HDR + h->len,
				    f->in_len - SEAMWIRE_HDR - h->len);
				f->in_len -= SEAMWIRE_HDR + h->len;
				*fd = -1;
				if (seamwire_has_fd(h->type) && f->nfds) {
					*fd = f->fds[0];
					memmove(f->fds, f->fds + 1, --f->nfds * sizeof(int));
				}
				return 1;
			}
		}
		ev_run_once(f->loop, 10);
		union {
			struct cmsghdr c;
			char b[CMSG_SPACE(sizeof(int) * 4)];
		} ctl;
		struct iovec iov = { f->in + f->in_len, sizeof(f->in) - f->in_len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		    .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(f->peer, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n > 0) {
			f->in_len += (size_t)n;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
			    c = CMSG_NXTHDR(&mh, c)) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t j = 0; j < k && f->nfds < 16; j++)
					memcpy(&f->fds[f->nfds++],
					    CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			}
		}
	}
	return 0;
}

struct outcome {
	uint32_t result;
	char code[80];
	char reason[512];
	int exits[8];
	uint32_t nexit;
	int spool_fd;
};

/* Reads until the DONE for jh; what else came is checked on the way. */
static void wait_done(struct fx *f, uint64_t jh, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->spool_fd = -1;
	for (int i = 0; i < 10000; i++) {
		struct seamwire_hdr h;
		unsigned char *p;
		int fd;

		if (!next(f, &h, &p, &fd))
			fail_msg("no DONE for job handle %llu", (unsigned long long)jh);
		assert_true(h.jh == jh);
		if (h.type == SW_SPOOL) {
			assert_true(fd >= 0);
			o->spool_fd = fd;
		} else if (h.type == SW_DONE) {
			uint32_t w[4];
			memcpy(w, p, sizeof(w));
			o->result = w[0];
			o->nexit = w[1] < 8 ? w[1] : 8;
			memcpy(o->exits, p + 16, o->nexit * 4);
			snprintf(o->code, sizeof(o->code), "%.*s", (int)w[2],
			    p + 16 + 4 * w[1]);
			snprintf(o->reason, sizeof(o->reason), "%.*s", (int)w[3],
			    p + 16 + 4 * w[1] + w[2]);
			free(p);
			return;
		} else if (fd >= 0) {
			close(fd);
		}
		free(p);
	}
	fail_msg("too many messages");
}

static char *job(struct fx *f, const char *jti, int64_t exp_in,
    const char *script)
{
	int64_t now = (int64_t)time(NULL);
	char *job_json = xasprintf("{\"name\":\"unit\",\"steps\":[{\"name\":\"s\","
	    "\"script\":\"%s\"}]}", script);
	char *claims = tk_claims("\"" TK_POOL "\"", jti, now - 10, now + exp_in,
	    job_json);
	char *jws = tk_sign(&f->key, claims);

	free(job_json);
	free(claims);
	return jws;
}

static void assert_rejected(struct fx *f, uint64_t jh, const char *code)
{
	struct outcome o;

	wait_done(f, jh, &o);
	if (o.result != SEAM_REJECTED || strcmp(o.code, code) != 0)
		fail_msg("job handle %llu: want rejected/%s, got %u/%s: %s",
		    (unsigned long long)jh, code, o.result, o.code, o.reason);
	if (o.spool_fd >= 0)
		close(o.spool_fd);
}

static void release(struct fx *f, uint64_t jh)
{
	put(f, SW_RELEASE, 0, jh, NULL, 0);
}

static void test_forged_starts_are_refused(void **state)
{
	struct fx *f = *state;
	char marker[PATH_MAX + 16], escape[PATH_MAX + 32];
	struct stat st;

	/* Where the step user (nobody, when the test runs as root) may write. */
	snprintf(marker, sizeof(marker), "%s/out", f->dir);
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(mkdir(marker, 0777), 0);
	assert_int_equal(chmod(marker, 0777), 0);
	snprintf(marker, sizeof(marker), "%s/out/ran", f->dir);
	char *script = xasprintf("touch %s", marker);

	/* unsigned: a JWS with no valid signature at all */
	start(f, 1, "jobAAAAAAAAAAAAAAAAAAA",
	    "eyJhbGciOiJub25lIn0.eyJqb2IiOnt9fQ.");
	assert_rejected(f, 1, "malformed");
	release(f, 1);

	/* tampered: signed, then one byte of the payload changed */
	char *good = job(f, "jobBBBBBBBBBBBBBBBBBBB", 3600, script);
	char *dot = strchr(good, '.') + 5;
	*dot = *dot == 'A' ? 'B' : 'A';
	start(f, 2, "jobBBBBBBBBBBBBBBBBBBB", good);
	assert_rejected(f, 2, "bad_signature");
	release(f, 2);
	free(good);

	/* expired */
	char *old = job(f, "jobCCCCCCCCCCCCCCCCCCC", -600, script);
	start(f, 3, "jobCCCCCCCCCCCCCCCCCCC", old);
	assert_rejected(f, 3, "expired");
	release(f, 3);
	free(old);

	/* a job id that is a path: refused before it names any file */
	snprintf(escape, sizeof(escape), "%s/escaped.1.log", f->dir);
	char *ok = job(f, "jobPPPPPPPPPPPPPPPPPPP", 3600, script);
	start(f, 4, "../../escaped", ok);
	assert_rejected(f, 4, "bad_message");
	assert_int_equal(stat(escape, &st), -1);
	free(ok);

	/* truncated: a START whose job id runs past the payload */
	uint32_t t[2] = { 1, 200 };
	unsigned char pl[8 + 5];
	memcpy(pl, t, 8);
	memcpy(pl + 8, "short", 5);
	put(f, SW_START, sizeof(pl), 5, pl, sizeof(pl));
	assert_rejected(f, 5, "bad_message");

	/* longer than its type allows (but skippable): refused, next read */
	unsigned char big[16] = { 0 };
	put(f, SW_STOP, sizeof(big), 6, big, sizeof(big));
	/* unknown types, and one of the runner's own */
	put(f, 200, 4, 6, big, 4);
	put(f, SW_LOGGED, 8, 6, big, 8);
	/* a stop and an answer for jobs that do not exist */
	put(f, SW_STOP, 4, 99, big, 4);
	put(f, SW_ARTIFACT_DONE, 12, 99, big, 12);

	/* nothing ran */
	assert_int_equal(stat(marker, &st), -1);
	assert_int_equal(f->gone, 0);

	/* ...and the runner still works: a good job runs, once */
	char *real = job(f, "jobDDDDDDDDDDDDDDDDDDD", 3600, script);
	struct outcome o;
	start(f, 7, "jobDDDDDDDDDDDDDDDDDDD", real);
	wait_done(f, 7, &o);
	assert_int_equal(o.result, SEAM_SUCCEEDED);
	assert_int_equal(o.nexit, 1);
	assert_int_equal(o.exits[0], 0);
	assert_true(o.spool_fd >= 0);
	/* the log is in the spool, read through the descriptor handed over */
	char logb[4096];
	ssize_t n = pread(o.spool_fd, logb, sizeof(logb) - 1, 0);
	assert_true(n > 0);
	logb[n] = 0;
	assert_non_null(strstr(logb, "job succeeded"));
	/* read-only: the network half cannot rewrite the log */
	assert_int_equal(write(o.spool_fd, "x", 1), -1);
	close(o.spool_fd);
	assert_int_equal(stat(marker, &st), 0);
	release(f, 7);
	assert_int_equal(unlink(marker), 0);

	/* replayed: the same JWS again */
	start(f, 8, "jobDDDDDDDDDDDDDDDDDDD", real);
	assert_rejected(f, 8, "replayed");
	assert_int_equal(stat(marker, &st), -1);
	release(f, 8);
	free(real);
	free(script);
	assert_int_equal(f->gone, 0);
}

static void test_unskippable_length_ends_the_channel(void **state)
{
	struct fx *f = *state;
	struct seamwire_hdr h;
	unsigned char *p;
	int fd;

	put(f, SW_START, SEAMWIRE_MAX + 1, 1, NULL, 0);
	for (int i = 0; i < 200 && !f->gone; i++)
		ev_run_once(f->loop, 10);
	assert_int_equal(f->gone, 1);
	assert_int_equal(next(f, &h, &p, &fd), 0);
}

static void test_exit_is_passed_on(void **state)
{
	struct fx *f = *state;
	uint32_t code = 77;

	put(f, SW_EXIT, 4, 0, &code, 4);
	for (int i = 0; i < 200 && f->exit_code == 0; i++)
		ev_run_once(f->loop, 10);
	assert_int_equal(f->exit_code, 77);
	/* an exit code that cannot be one is refused */
	code = 300;
	f->exit_code = 0;
	put(f, SW_EXIT, 4, 0, &code, 4);
	for (int i = 0; i < 30; i++)
		ev_run_once(f->loop, 10);
	assert_int_equal(f->exit_code, 0);
	assert_int_equal(f->gone, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forged_starts_are_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unskippable_length_ends_the_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_is_passed_on, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
