/* OOM kills from the kernel's log: the record parser, the container
 * match, and (as root, with a memory cgroup) a real kill by the kernel
 * read back from /dev/kmsg, beside a forged record that must not count. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "oomlog.h"

#define ID "7d48c3346c1231bbbd131533d97f785feabd3e8fdd58a7b91ed1f4c091757bb2"

static int parse(const char *rec, uint64_t *seq, char *memcg, size_t cap)
{
	return oomlog_parse(rec, strlen(rec), seq, memcg, cap);
}

static void test_parse_kernel_records(void **state)
{
	char m[OOMLOG_MEMCG_MAX];
	uint64_t seq = 0;
	(void)state;

	/* What Linux 6.18 printed for a container of Docker's cgroupfs
	 * driver, as /dev/kmsg gives it. */
	assert_int_equal(parse("6,20313,43221695023,-;oom-kill:constraint="
	    "CONSTRAINT_MEMCG,nodemask=(null),cpuset=" ID ",mems_allowed=0,"
	    "oom_memcg=/docker/" ID ",task_memcg=/docker/" ID ",task=tail,"
	    "pid=24397,uid=0\n", &seq, m, sizeof(m)), 1);
	assert_int_equal(seq, 20313);
	assert_string_equal(m, "/docker/" ID);
	/* The systemd driver; a dictionary line after the message. */
	assert_int_equal(parse("6,7,1,-;oom-kill:constraint=CONSTRAINT_MEMCG,"
	    "nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/"
	    "docker-" ID ".scope,task_memcg=/system.slice/docker-" ID
	    ".scope,task=sh,pid=1,uid=0\n SUBSYSTEM=x\n", &seq, m,
	    sizeof(m)), 1);
	assert_string_equal(m, "/system.slice/docker-" ID ".scope");
	/* A global OOM kill has no oom_memcg; the task's cgroup is there. */
	assert_int_equal(parse("3,9,1,-;oom-kill:constraint=CONSTRAINT_NONE,"
	    "nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg="
	    "/machine.slice/libpod-" ID ".scope/container,task=x,pid=2,uid=0",
	    &seq, m, sizeof(m)), 1);
	assert_string_equal(m, "/machine.slice/libpod-" ID ".scope/container");
	/* Cut at the caller's size, still terminated. */
	assert_int_equal(parse("6,7,1,-;oom-kill:x,task_memcg=/docker/" ID
	    ",task=sh", &seq, m, 12), 1);
	assert_string_equal(m, "/docker/7d4");
	/* The task's name comes after: it cannot give the cgroup. */
	assert_int_equal(parse("6,7,1,-;oom-kill:constraint=CONSTRAINT_MEMCG,"
	    "task_memcg=/docker/aaaa,task=,task_memcg=/docker/" ID ",pid=1",
	    &seq, m, sizeof(m)), 1);
	assert_string_equal(m, "/docker/aaaa");
}

static void test_parse_other_records(void **state)
{
	char m[OOMLOG_MEMCG_MAX];
	uint64_t seq = 0;
	(void)state;

	/* Another kernel message. */
	assert_int_equal(parse("6,8,1,-;Memory cgroup out of memory: Killed "
	    "process 24397 (tail)\n", &seq, m, sizeof(m)), 0);
	assert_int_equal(seq, 8);
	/* The same text written to /dev/kmsg from user space: facility 1
	 * (prio 14), or any facility but the kernel's. */
	assert_int_equal(parse("14,9,1,-;oom-kill:constraint=CONSTRAINT_MEMCG,"
	    "task_memcg=/docker/" ID ",task=sh\n", &seq, m, sizeof(m)), 0);
	assert_int_equal(parse("190,9,1,-;oom-kill:task_memcg=/docker/" ID,
	    &seq, m, sizeof(m)), 0);
	/* The summary with no task cgroup (a kernel without memcg). */
	assert_int_equal(parse("6,9,1,-;oom-kill:constraint=CONSTRAINT_NONE,"
	    "task=sh,pid=1", &seq, m, sizeof(m)), 0);
	/* The key on the next line, a dictionary's. */
	assert_int_equal(parse("6,9,1,-;oom-kill:x\n task_memcg=/docker/" ID,
	    &seq, m, sizeof(m)), 0);
}

static void test_parse_malformed(void **state)
{
	char m[OOMLOG_MEMCG_MAX];
	uint64_t seq = 0;
	const char *bad[] = {
		"", ";", "6", "6,", "6,7", "6,7,1,-", "x,7,1,-;oom-kill:",
		"6,x,1,-;oom-kill:", ",7,1,-;m", "6,,1,-;m",
		"6,99999999999999999999999,1,-;oom-kill:task_memcg=/a",
		"6\n,7,1,-;m", "6,7,1\n;m",
	};
	static const char longer[] = "6,7,1,-;oom-kill:x,task_memcg=/docker/xyz";
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &seq, m, sizeof(m)), -EINVAL);
	assert_int_equal(oomlog_parse("6,7,1,-;oom-kill:task_memcg=/a", 28,
	    &seq, m, 0), -EINVAL);
	/* Only n bytes are read. */
	assert_int_equal(oomlog_parse(longer, sizeof(longer) - 3, &seq, m,
	    sizeof(m)), 1);
	assert_string_equal(m, "/docker/x");
}

static void test_names(void **state)
{
	(void)state;
	assert_true(oomlog_names("/docker/" ID, ID));
	assert_true(oomlog_names("/system.slice/docker-" ID ".scope", ID));
	assert_true(oomlog_names("/machine.slice/libpod-" ID ".scope/container",
	    ID));
	assert_true(oomlog_names("/libpod_parent/libpod-" ID, ID));
	/* Not a component of its own, nor the engine's unit of it. */
	assert_false(oomlog_names(ID, ID));
	assert_false(oomlog_names("/job-" ID "-x", ID));
	assert_false(oomlog_names("/docker/" ID ".x", ID));
	assert_false(oomlog_names("/docker/x" ID, ID));
	/* Part of a longer hex word, or another container's. */
	assert_false(oomlog_names("/docker/a" ID, ID));
	assert_false(oomlog_names("/docker/" ID "0", ID));
	assert_false(oomlog_names("/docker/" ID,
	    "1d48c3346c1231bbbd131533d97f785feabd3e8fdd58a7b91ed1f4c091757bb2"));
	/* A found id later in the path still counts once whole. */
	assert_true(oomlog_names("/x" ID "/docker/" ID, ID));
	/* Ids too short to mean one container, or not the engine's form. */
	assert_false(oomlog_names("/docker/7d48c334", "7d48c334"));
	assert_false(oomlog_names("/docker/", ""));
	assert_false(oomlog_names("/docker/../" ID, "../" ID));
	assert_false(oomlog_names("/docker/" ID, "7D48C3346C1231BBBD1315"));
	/* Not opened: nothing is known, nothing is claimed. */
	assert_false(oomlog_available());
	assert_false(oomlog_killed(ID, 0));
	assert_false(oomlog_complete_since(0));
}

/* ---- a real kill ---- */

/* The memory controller, v1 or v2: the directory new groups go in. */
static const char *memory_root(int *v2)
{
	char buf[512];
	int fd;
	ssize_t n;

	if (access("/sys/fs/cgroup/memory/tasks", F_OK) == 0) {
		*v2 = 0;
		return "/sys/fs/cgroup/memory";
	}
	if ((fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_RDONLY)) < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (strstr(buf, "memory") == NULL)
		return NULL;
	*v2 = 1;
	return "/sys/fs/cgroup";
}

static int put(const char *dir, const char *file, const char *value)
{
	char path[512];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((fd = open(path, O_WRONLY)) < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* A swap area in use (/proc/swaps has a line past its header). */
static int swap_on(void)
{
	char buf[256];
	int fd = open("/proc/swaps", O_RDONLY), lines = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return lines > 1;
}

static void random_id(char *id)
{
	unsigned char b[32];
	int fd = open("/dev/urandom", O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, b, sizeof(b)), (ssize_t)sizeof(b));
	close(fd);
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
}

static void test_real_kill(void **state)
{
	char id[65], other[65], dir[256], pidbuf[32];
	const char *root;
	uint64_t mark;
	int v2 = 0, st, fd, limit, noswap;
	pid_t pid;
	(void)state;

	if (geteuid() != 0 || (root = memory_root(&v2)) == NULL) {
		print_message("needs root and a memory cgroup: skipped\n");
		skip();
	}
	if (oomlog_open() < 0) {
		print_message("/dev/kmsg not readable here: skipped\n");
		skip();
	}
	assert_true(oomlog_available());
	random_id(id);
	random_id(other);
	mark = oomlog_mark();
	snprintf(dir, sizeof(dir), "%s/skiff-oomlog-%s", root, id);
	assert_int_equal(mkdir(dir, 0755), 0);
	if (v2) {
		limit = put(dir, "memory.max", "16777216");
		noswap = put(dir, "memory.swap.max", "0") == 0;
	} else {
		limit = put(dir, "memory.limit_in_bytes", "16777216");
		noswap = put(dir, "memory.memsw.limit_in_bytes", "16777216") == 0;
	}
	if (limit < 0 || (!noswap && swap_on())) {
		(void)rmdir(dir);
		if (limit < 0)
			fail_msg("cannot set the group's memory limit: %s",
			    strerror(-limit));
		/* It would swap rather than be killed. */
		print_message("swap on and not limited per group: skipped\n");
		skip();
	}
	/* A forged summary from user space, naming the other group, with no
	 * prefix (facility user) and with the kernel's (made user's). */
	fd = open("/dev/kmsg", O_WRONLY);
	if (fd < 0)
		(void)rmdir(dir);
	assert_true(fd >= 0);
	for (size_t i = 0; i < 2; i++) {
		const char *prefix[] = { "", "<0>" };
		char rec[256];
		int n = snprintf(rec, sizeof(rec), "%soom-kill:constraint="
		    "CONSTRAINT_MEMCG,task_memcg=/docker/%s,task=forged,"
		    "pid=1,uid=0\n", prefix[i], other);

		assert_int_equal(write(fd, rec, (size_t)n), n);
	}
	close(fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		if (put(dir, "cgroup.procs", pidbuf) < 0)
			_exit(3);
		/* 256 MiB touched page by page: the kernel kills it. */
		for (int i = 0; i < 256; i++) {
			char *p = malloc(1 << 20);

			if (p == NULL)
				_exit(4);
			memset(p, i, 1 << 20);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(rmdir(dir), 0);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	/* The kernel printed its summary before the SIGKILL. */
	assert_true(oomlog_killed(id, mark));
	assert_true(oomlog_complete_since(mark));
	assert_false(oomlog_killed(other, mark));
	/* Asked again (the record is kept), and after a later mark. */
	assert_true(oomlog_killed(id, 0));
	assert_false(oomlog_killed(id, oomlog_mark()));
	oomlog_close();
	assert_false(oomlog_available());
	assert_false(oomlog_killed(id, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kernel_records),
		cmocka_unit_test(test_parse_other_records),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_real_kill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
