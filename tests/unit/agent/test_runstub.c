/*
 * The network half's end of the seam alone (net/runstub.c) against a
 * test playing the runner: INIT must come first, each message reaches its
 * seam_net_in call with its descriptor, a bad message is dropped without
 * ending the channel, and the half's calls come out as the runner's stub
 * decodes them. The settings parser (net/netconf.c) too.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/testkit.h"
#include "ev.h"
#include "log.h"
#include "netconf.h"
#include "runstub.h"
#include "wire.h"

struct fx {
	struct ev_loop *loop;
	struct runstub *s;
	int peer;
	int ended;
	const char *why;
	/* what the fake network half was handed */
	int inits, spools, logged_calls, steps, arts, fetches, dones, drains;
	uint64_t logged;
	int fd_ok;
	char art_name[64];
	enum seam_result result;
	char reason[64];
	size_t nexit;
};

static int f_init(void *ctx, const char *json, int fd)
{
	struct fx *f = ctx;

	f->inits++;
	f->fd_ok = fd >= 0 && fcntl(fd, F_GETFD) >= 0;
	close(fd);
	return strstr(json, "\"bad\"") ? -1 : 0;
}

static void f_spool(void *ctx, uint64_t jh, int fd)
{
	struct fx *f = ctx;

	(void)jh;
	f->spools++;
	f->fd_ok = fd >= 0;
	close(fd);
}

static void f_logged(void *ctx, uint64_t jh, uint64_t total)
{
	struct fx *f = ctx;

	(void)jh;
	f->logged_calls++;
	f->logged = total;
}

static void f_step(void *ctx, uint64_t jh, int i)
{
	(void)jh;
	(void)i;
	((struct fx *)ctx)->steps++;
}

static void f_artifact(void *ctx, uint64_t jh, uint64_t id, int fd,
    const char *name, uint64_t size)
{
	struct fx *f = ctx;

	(void)jh;
	(void)id;
	(void)size;
	f->arts++;
	snprintf(f->art_name, sizeof(f->art_name), "%s", name);
	close(fd);
}

static void f_fetch(void *ctx, uint64_t jh, uint64_t id, const char *url,
    int fd, uint64_t max)
{
	(void)jh;
	(void)id;
	(void)url;
	(void)max;
	((struct fx *)ctx)->fetches++;
	close(fd);
}

static void f_done(void *ctx, uint64_t jh, const struct seam_done *d)
{
	struct fx *f = ctx;

	(void)jh;
	f->dones++;
	f->result = d->result;
	f->nexit = d->nexit;
	snprintf(f->reason, sizeof(f->reason), "%s", d->reason ? d->reason : "");
}

static void f_drain(void *ctx)
{
	((struct fx *)ctx)->drains++;
}

static void f_quit(void *ctx)
{
	(void)ctx;
}

static void on_end(void *arg, const char *why)
{
	struct fx *f = arg;

	f->ended = 1;
	f->why = why;
}

static struct seam_net_in table;

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	int sv[2];

	log_setup("test", LOGL_ERROR, LOGF_LOGFMT);
	assert_int_equal(ev_loop_new(&f->loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	    0);
	f->peer = sv[1];
	table = (struct seam_net_in){ f, f_init, f_spool, f_logged, f_step,
	    f_artifact, f_fetch, f_done, f_drain, f_quit, NULL, NULL };
	assert_int_equal(runstub_new(f->loop, sv[0], &table, on_end, f, &f->s),
	    0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	runstub_free(f->s);
	close(f->peer);
	ev_loop_free(f->loop);
	free(f);
	return 0;
}

/* Sends the encoded messages in b, with fd on the first byte. */
static void send_msgs(struct fx *f, struct buf *b, int fd)
{
	struct iovec iov = { b->data, b->len };
	union {
		struct cmsghdr c;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	assert_int_equal(sendmsg(f->peer, &mh, 0), (ssize_t)b->len);
	if (fd >= 0)
		close(fd);
	buf_reset(b);
	for (int i = 0; i < 20; i++)
		ev_run_once(f->loop, 5);
}

static int devnull(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void test_init_first_then_each_call(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1 << 20);
	int exits[2] = { 0, 3 };

	/* a job message before INIT ends the channel: the half is not set up */
	(void)f;
	assert_int_equal(seamwire_put(&b, SW_INIT, 0, "{}", 2), 0);
	send_msgs(f, &b, devnull());
	assert_int_equal(f->inits, 1);
	assert_true(f->fd_ok);
	assert_int_equal(f->ended, 0);

	assert_int_equal(seamwire_put(&b, SW_SPOOL, 5, NULL, 0), 0);
	send_msgs(f, &b, devnull());
	assert_int_equal(f->spools, 1);
	/* several LOGGED in one read: each reaches the half in order */
	assert_int_equal(seamwire_put_u64(&b, SW_LOGGED, 5, 10), 0);
	assert_int_equal(seamwire_put_u64(&b, SW_LOGGED, 5, 20), 0);
	assert_int_equal(seamwire_put_u32(&b, SW_STEP, 5, 1), 0);
	send_msgs(f, &b, -1);
	assert_int_equal(f->logged_calls, 2);
	assert_int_equal(f->logged, 20);
	assert_int_equal(f->steps, 1);
	assert_int_equal(seamwire_put_u64s_str(&b, SW_ARTIFACT, 5, 1, 3,
	    "dist/a.txt"), 0);
	send_msgs(f, &b, devnull());
	assert_string_equal(f->art_name, "dist/a.txt");
	assert_int_equal(seamwire_put_u64s_str(&b, SW_FETCH, 5, 1, 100,
	    "https://example.org/x"), 0);
	send_msgs(f, &b, devnull());
	assert_int_equal(f->fetches, 1);
	/* a bad message is dropped, the next is read */
	assert_int_equal(seamwire_put(&b, SW_START, 5, "xxxxxxxxxx", 10), 0);
	assert_int_equal(seamwire_put_done(&b, 5, SEAM_FAILED, "step_failed",
	    "step 's' exited with 3", exits, 2, NULL, 0), 0);
	assert_int_equal(seamwire_put(&b, SW_DRAIN, 0, NULL, 0), 0);
	send_msgs(f, &b, -1);
	assert_int_equal(f->dones, 1);
	assert_int_equal(f->result, SEAM_FAILED);
	assert_int_equal(f->nexit, 2);
	assert_string_equal(f->reason, "step 's' exited with 3");
	assert_int_equal(f->drains, 1);
	assert_int_equal(f->ended, 0);
	/* a second INIT ends it */
	assert_int_equal(seamwire_put(&b, SW_INIT, 0, "{}", 2), 0);
	send_msgs(f, &b, devnull());
	assert_int_equal(f->ended, 1);
	buf_free(&b);
}

static void test_message_before_init_ends(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT(1024);

	assert_int_equal(seamwire_put_u64(&b, SW_LOGGED, 5, 10), 0);
	send_msgs(f, &b, -1);
	assert_int_equal(f->ended, 1);
	assert_int_equal(f->logged_calls, 0);
	buf_free(&b);
}

static void test_calls_come_out_as_messages(void **state)
{
	struct fx *f = *state;
	const struct seam_to_runner *r = runstub_table(f->s);
	unsigned char in[4096];
	struct seamwire_hdr h;
	struct seamwire_msg m;
	const char *why;
	ssize_t n;

	r->start(r->ctx, 9, "jobid", 2, "a.b.c", 5);
	n = read(f->peer, in, sizeof(in));
	assert_true(n >= (ssize_t)SEAMWIRE_HDR);
	memcpy(&h, in, sizeof(h));
	assert_int_equal(seamwire_decode(SEAMWIRE_FROM_NET, &h,
	    in + SEAMWIRE_HDR, -1, &m, &why), 0);
	assert_int_equal(m.type, SW_START);
	assert_int_equal(m.u, 2);
	assert_string_equal(m.s1, "jobid");
	assert_string_equal(m.s2, "a.b.c");
	seamwire_msg_clear(&m);
	r->fetch_done(r->ctx, 9, 4, 1, 200, 1234, NULL);
	n = read(f->peer, in, sizeof(in));
	memcpy(&h, in, sizeof(h));
	assert_int_equal(seamwire_decode(SEAMWIRE_FROM_NET, &h,
	    in + SEAMWIRE_HDR, -1, &m, &why), 0);
	assert_int_equal(m.type, SW_FETCH_DONE);
	assert_int_equal(m.status, 200);
	assert_int_equal(m.n, 1234);
	seamwire_msg_clear(&m);
}

static void test_netconf(void **state)
{
	struct net_config c;
	const char *why;
	const char *good = "{\"queue_urls\":[\"https://a:1\",\"https://b:2\"],"
	    "\"pool\":\"p\",\"capacity\":2,\"lease_wait\":30,\"idle_timeout\":0,"
	    "\"max_jobs\":0,\"drain_grace\":5,\"log_level\":\"info\","
	    "\"log_format\":\"json\",\"labels\":[\"x\"]}";

	(void)state;
	assert_int_equal(netconf_parse(good, strlen(good), &c, &why), 0);
	assert_string_equal(c.queue_url, "https://a:1,https://b:2");
	assert_int_equal(c.capacity, 2);
	assert_null(c.registration_token);
	netconf_free(&c);
	static const char *const bad[] = {
		"[]", "{\"pool\":\"p\"}",
		"{\"queue_urls\":[\"a,b\"],\"pool\":\"p\",\"capacity\":1,"
		"\"lease_wait\":30,\"idle_timeout\":0,\"max_jobs\":0,"
		"\"drain_grace\":5,\"log_level\":\"info\",\"log_format\":\"json\"}",
		"{\"queue_urls\":[\"u\"],\"pool\":\"p\",\"capacity\":0,"
		"\"lease_wait\":30,\"idle_timeout\":0,\"max_jobs\":0,"
		"\"drain_grace\":5,\"log_level\":\"info\",\"log_format\":\"json\"}",
		"{\"queue_urls\":[\"u\"],\"pool\":\"p\",\"capacity\":1,"
		"\"lease_wait\":30,\"idle_timeout\":0,\"max_jobs\":0,"
		"\"drain_grace\":5,\"log_level\":\"info\",\"log_format\":\"json\","
		"\"extra\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(netconf_parse(bad[i], strlen(bad[i]), &c, &why),
		    -EINVAL);
}

/* DONE with output variables: encoded, decoded, and refused when a
 * count, a length or a byte is out of bounds. */
static int decode_done(const struct buf *b, struct seamwire_msg *m)
{
	struct seamwire_hdr h;
	const char *why;

	memcpy(&h, b->data, sizeof(h));
	if (h.len != b->len - sizeof(h))
		return -1;
	return seamwire_decode(SEAMWIRE_FROM_RUNNER, &h,
	    (const unsigned char *)b->data + sizeof(h), -1, m, &why);
}

static void test_done_outputs(void **state)
{
	struct buf b = BUF_INIT(1 << 20);
	struct seamwire_msg m;
	struct seam_output outs[SEAMWIRE_OUTPUTS_MAX + 2] = {
		{ "VERSION", "1.4.2" }, { "EMPTY", "" }, { "T", "***" },
	};
	char names[SEAMWIRE_OUTPUTS_MAX + 2][8];
	char *big = calloc(1, SEAMWIRE_OUTPUT_VALUE_MAX + 2);
	int ex[1] = { 0 };
	uint32_t v;
	(void)state;

	assert_int_equal(seamwire_put_done(&b, 5, SEAM_SUCCEEDED, NULL, NULL, ex,
	    1, outs, 3), 0);
	assert_int_equal(decode_done(&b, &m), 0);
	assert_int_equal(m.noutputs, 3);
	assert_string_equal(m.outputs[0].name, "VERSION");
	assert_string_equal(m.outputs[0].value, "1.4.2");
	assert_string_equal(m.outputs[1].value, "");
	assert_string_equal(m.outputs[2].value, "***");
	seamwire_msg_clear(&m);
	/* None: the message of before, nothing after the reason. */
	buf_reset(&b);
	assert_int_equal(seamwire_put_done(&b, 5, SEAM_SUCCEEDED, NULL, NULL, ex,
	    1, NULL, 0), 0);
	assert_int_equal(b.len, SEAMWIRE_HDR + 16 + 4);
	assert_int_equal(decode_done(&b, &m), 0);
	assert_int_equal(m.noutputs, 0);
	seamwire_msg_clear(&m);
	/* The encoder keeps to the decoder's caps: past 64, and a value over
	 * its cap, are left out. */
	for (size_t i = 0; i < SEAMWIRE_OUTPUTS_MAX + 2; i++) {
		snprintf(names[i], sizeof(names[i]), "N%zu", i);
		outs[i].name = names[i];
		outs[i].value = "v";
	}
	memset(big, 'b', SEAMWIRE_OUTPUT_VALUE_MAX + 1);
	outs[0].value = big;
	buf_reset(&b);
	assert_int_equal(seamwire_put_done(&b, 5, SEAM_SUCCEEDED, NULL, NULL, ex,
	    1, outs, SEAMWIRE_OUTPUTS_MAX + 2), 0);
	assert_int_equal(decode_done(&b, &m), 0);
	assert_int_equal(m.noutputs, SEAMWIRE_OUTPUTS_MAX);
	assert_string_equal(m.outputs[0].name, "N1");
	seamwire_msg_clear(&m);
	/* Hostile payloads: a count over the cap, a truncated entry, a NUL
	 * in a value, an empty name. */
	outs[0].value = "x";
	buf_reset(&b);
	assert_int_equal(seamwire_put_done(&b, 5, SEAM_SUCCEEDED, NULL, NULL, ex,
	    1, outs, 1), 0);
	size_t at = SEAMWIRE_HDR + 16 + 4;	/* the count */
	v = SEAMWIRE_OUTPUTS_MAX + 1;
	memcpy(b.data + at, &v, 4);
	assert_int_equal(decode_done(&b, &m), -EPROTO);
	v = 1;
	memcpy(b.data + at, &v, 4);
	b.data[b.len - 1] = '\0';
	assert_int_equal(decode_done(&b, &m), -EPROTO);
	b.data[b.len - 1] = 'x';
	v = 0;
	memcpy(b.data + at + 4, &v, 4);	/* name length 0 */
	assert_int_equal(decode_done(&b, &m), -EPROTO);
	v = 2;
	memcpy(b.data + at + 4, &v, 4);
	assert_int_equal(decode_done(&b, &m), 0);
	seamwire_msg_clear(&m);
	struct seamwire_hdr h;
	memcpy(&h, b.data, sizeof(h));
	h.len--;
	memcpy(b.data, &h, sizeof(h));
	b.len--;
	assert_int_equal(decode_done(&b, &m), -EPROTO);
	free(big);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_first_then_each_call,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_before_init_ends,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_come_out_as_messages,
		    setup, teardown),
		cmocka_unit_test(test_netconf),
		cmocka_unit_test(test_done_outputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
