#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* ---- Landlock, by its ABI version (the headers may be older than the
 * kernel: what they lack is spelt out here) ---- */

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#define LL_TRUNCATE	(1ULL << 14)	/* ABI 3 */
#define LL_IOCTL_DEV	(1ULL << 15)	/* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX	(1ULL << 0)	/* ABI 6 */
#define LL_SCOPE_SIGNAL		(1ULL << 1)

struct ll_attr {
	uint64_t fs, net, scoped;
};

struct ll_beneath {
	uint64_t allowed;
	int32_t parent_fd;
} __attribute__((packed));

#define LL_RO (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | \
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	LL_TRUNCATE | LL_IOCTL_DEV)

/* What TLS (OpenSSL's configuration and the CA store), name resolution
 * (NSS and its modules, resolv.conf) and the C library read. */
static const char *const ro_paths[] = {
	"/etc/ssl", "/etc/ca-certificates", "/usr/share/ca-certificates",
	"/usr/lib/ssl", "/etc/resolv.conf", "/run/systemd/resolve", "/etc/hosts",
	"/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/services",
	"/etc/protocols", "/etc/localtime", "/usr/share/zoneinfo",
	"/etc/ld.so.cache", "/lib", "/lib64", "/usr/lib", "/usr/lib64",
	"/dev/null", "/dev/urandom",
#ifdef SKIFF_SANITIZED
	/* the sanitizers' runtime reads its own maps at exit */
	"/proc/self",
#endif
};

static int ll_add(int rs, int fd, uint64_t rights, uint64_t handled)
{
	struct ll_beneath pb = { rights & handled, fd };

	return (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH,
	    &pb, 0);
}

static int landlock(int state_fd, int *abi_out)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	struct ll_attr a = { 0, 0, 0 };
	size_t asz = sizeof(uint64_t);
	int rs, r = 0;
	struct stat st;

	*abi_out = 0;
	if (abi < 1)
		return 0;	/* not built in or disabled: said at start */
	a.fs = (1ULL << 13) - 1;
	if (abi >= 2)
		a.fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		a.fs |= LL_TRUNCATE;
	if (abi >= 5)
		a.fs |= LL_IOCTL_DEV;
	if (abi >= 4)
		asz = 2 * sizeof(uint64_t);
	if (abi >= 6) {
		a.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		asz = sizeof(a);
	}
	rs = (int)syscall(SYS_landlock_create_ruleset, &a, asz, 0);
	if (rs < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(ro_paths) / sizeof(ro_paths[0]); i++) {
		int fd = open(ro_paths[i], O_PATH | O_CLOEXEC);
		if (fd < 0)
			continue;
		uint64_t rights = LL_RO;
		if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
			rights &= LL_FILE_RIGHTS;
		if (ll_add(rs, fd, rights, a.fs) < 0)
			r = -errno;
		close(fd);
		if (r < 0)
			goto out;
	}
	if (ll_add(rs, state_fd, LL_RO | LANDLOCK_ACCESS_FS_WRITE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	    LL_TRUNCATE, a.fs) < 0) {
		r = -errno;
		goto out;
	}
	if (syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		r = -errno;
	else
		*abi_out = abi;
out:
	close(rs);
	return r;
}

/* ---- capabilities: none, whoever started us ---- */

static int drop_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* ---- seccomp ---- */

static const char *const allowed[] = {
	/* I/O on descriptors it has or opens (Landlock says where) */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "close",
	"lseek", "fstat", "newfstatat", "stat", "lstat", "statx", "fstatfs",
	"openat", "open", "access", "faccessat", "faccessat2", "readlink",
	"readlinkat", "getdents64", "getcwd", "fcntl", "dup", "dup2", "dup3",
	"pipe2", "fsync", "fdatasync", "ftruncate", "fchmod", "rename",
	"renameat", "renameat2", "unlink", "unlinkat", "umask", "flock",
	/* the event loop and libcurl's */
	"poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd2",
	"timerfd_create", "timerfd_settime", "timerfd_gettime",
	/* sockets (socket() itself is checked by family below) */
	"connect", "getsockname", "getpeername", "getsockopt", "setsockopt",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
	"shutdown", "bind",
	/* memory, threads (libcurl resolves names in a thread), time */
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "futex",
	"set_robust_list", "get_robust_list", "rseq", "set_tid_address",
	"sched_yield", "sched_getaffinity", "membarrier",
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
	"gettimeofday", "time",
	/* signals and exit */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"restart_syscall", "exit", "exit_group",
	/* identity and limits */
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "getgroups", "getresuid", "getresgid", "uname", "sysinfo",
	"prlimit64", "getrlimit", "getrandom",
#ifdef SKIFF_SANITIZED
	/* the sanitizers' runtime: leak checking stops the world with a
	 * tracer, and reads its own maps (builds for tests only) */
	"ptrace", "wait4", "waitid", "prctl", "sched_getparam",
	"sched_getscheduler", "mincore", "kill", "tgkill", "getpgid",
#endif
};

/* One line for the journal, then death by SIGSYS for the runner to see.
 * Only async-signal-safe calls, all on the list. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[160];
	struct timespec ts;
	int n;

	(void)uc;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "level=error prog=skiff-agent "
	    "half=net msg=\"system call outside the network half's seccomp "
	    "allow-list\" syscall=%d\n", si->si_syscall);
	if (n > 0)
		(void)!write(2, line, (size_t)n < sizeof(line) ? (size_t)n :
		    sizeof(line) - 1);
	(void)sig;
	syscall(SYS_exit_group, 128 + SIGSYS);
}

static int seccomp_load_list(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int r = 0;

	if (ctx == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0)
			goto out;
	}
	/* Sockets: IP, unix (the resolver's and libcurl's own socketpair) and
	 * netlink (getaddrinfo asks for addresses). */
	static const int fams[] = { AF_INET, AF_INET6, AF_UNIX, AF_NETLINK };
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fams[i]))) < 0)
			goto out;
	}
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0)
		goto out;
	/* ioctl: only asking how much is buffered and non-blocking mode */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_EQ, FIONREAD))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_EQ, FIONBIO))) < 0)
		goto out;
	/* Threads only: no new process. clone3 passes its flags in memory,
	 * which a filter cannot read: ENOSYS makes the C library use clone. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
	    0)) < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r;
}

int sandbox_apply(int state_fd, struct sandbox_info *info)
{
	struct sigaction sa;
	int r;

	memset(info, 0, sizeof(*info));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if ((r = drop_caps()) < 0)
		return r;
	if ((r = landlock(state_fd, &info->landlock_abi)) < 0)
		return r;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	if ((r = seccomp_load_list()) < 0)
		return r;
	info->seccomp = 1;
	return 0;
}
