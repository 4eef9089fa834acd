/*
 * The kernel's own word on OOM kills, from its log (/dev/kmsg).
 *
 * The engine learns of an OOM kill from an event that containerd sends
 * apart from the exit, and that event can come after the exit or not at
 * all (containerd issue 8893): a container step killed for its memory
 * limit would then be reported as a plain exit 137. The kernel prints
 * its summary of each kill before it sends the SIGKILL:
 *
 *   oom-kill:constraint=CONSTRAINT_MEMCG,...,task_memcg=/docker/<id>,task=...
 *
 * and the victim's memory cgroup names its container. The runner reads
 * those records when a container step has failed, so the answer does not
 * hang on timing. Where the log cannot be read (not root, or a unit with
 * ProtectKernelLogs=), the engine's flag is all there is.
 *
 * One reader per process: the runner opens it at start.
 */
#ifndef SKIFF_AGENT_OOMLOG_H
#define SKIFF_AGENT_OOMLOG_H

#include <stddef.h>
#include <stdint.h>

#define OOMLOG_MEMCG_MAX 256

/* Opens the kernel log at its end (records from before are not read).
 * 0, or -errno when it cannot be read; nothing else then changes. */
int oomlog_open(void);
void oomlog_close(void);
/* 1 when the log is read. */
int oomlog_available(void);

/* oomlog_killed, logged when it is 1: for a container whose engine has
 * not recorded the kill (yet). */
int oomlog_killed_unrecorded(const char *container_id, uint64_t mark);

/* The position in the log now: an OOM kill recorded after it is news. */
uint64_t oomlog_mark(void);
/* 1 when a kill recorded after mark (0: since open) took a process of the
 * container whose id (the engine's full id) is given. */
int oomlog_killed(const char *container_id, uint64_t mark);
/* 1 when no kill since mark can be missing from what was read: no record
 * was overwritten unread and the kernel has not said it held reports
 * back (it says so only at its next report, so this is a best guess);
 * 0 too when the log is not read. */
int oomlog_complete_since(uint64_t mark);

/*
 * One /dev/kmsg record, "PRIO,SEQ,USEC,FLAGS[,...];MESSAGE\n[ KEY=VALUE\n]...".
 * 1: the kernel's summary of an OOM kill, with the victim's memory cgroup
 * in memcg (NUL-terminated, cut at cap) and the record's sequence number
 * in *seq; 0: another record, including one written from user space
 * (whose facility is not the kernel's); -EINVAL: not a record.
 */
int oomlog_parse(const char *rec, size_t n, uint64_t *seq, char *memcg,
    size_t cap);
/* 1 when the memory cgroup path has the container id as a component of
 * its own or the engine's unit of it, maybe with groups below:
 * /docker/<id>, /system.slice/docker-<id>.scope, .../libpod-<id>.scope/x. */
int oomlog_names(const char *memcg, const char *container_id);

#endif
