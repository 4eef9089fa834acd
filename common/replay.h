/*
 * The jti replay cache: every job id an agent accepted, kept on disk in
 * its state directory until the job's exp has passed (plus a margin for
 * clock skew), so that a queue cannot make an agent run a job twice, not
 * even across a restart.
 *
 * The file is append-only text, one "jti exp" line per job, fsync'd before
 * the job runs; it is compacted when expired entries outnumber live ones.
 */
#ifndef SKIFF_REPLAY_H
#define SKIFF_REPLAY_H

#include <stddef.h>
#include <stdint.h>

struct replay;

/* Opens (creating) dir/replay; drops entries with exp + margin < now. */
int replay_open(const char *dir, int64_t now, int64_t margin,
    struct replay **out);
int replay_seen(const struct replay *r, const char *jti);
/* Records jti durably; -EEXIST when already present. */
int replay_add(struct replay *r, const char *jti, int64_t exp);
/* Number of live entries. */
size_t replay_count(const struct replay *r);
void replay_close(struct replay *r);

#endif
