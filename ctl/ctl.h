/*
 * skiffctl: one file per subcommand, dispatched from the table in main.c.
 * Every command returns a process exit code (CTL_EX_*).
 */
#ifndef SKIFF_CTL_H
#define SKIFF_CTL_H

#include <stddef.h>

struct buf;

#define CTL_EX_OK       0	/* done */
#define CTL_EX_FAIL     1	/* the operation failed or the job was rejected */
#define CTL_EX_USAGE    2	/* bad command line */
#define CTL_EX_SERVER   3	/* the queue could not be reached or answered an error */

/* For the usage of every command that takes an id. */
#define CTL_ID_HELP \
	"\nAn id that starts with '-' (a job id another JOSE tool chose) goes\n" \
	"after '--', which ends the options: skiffctl status -- -2v-JOqKa5U\n"

struct ctl_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

int cmd_keygen(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_artifacts(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_agents(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_cache(int argc, char **argv);

/* Prints "skiffctl: <msg>" to stderr and returns CTL_EX_FAIL. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ctl_usage(const char *usage);
/* Reads a file, or standard input for "-", into out (capped). */
int ctl_read_input(const char *path, size_t max, struct buf *out);
/* Writes a file with mode, refusing to replace one unless force. */
int ctl_write_new(const char *path, const char *data, size_t len, int mode,
    int force);

#endif
