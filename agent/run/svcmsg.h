/*
 * Service messages a step writes on a line of its own output to talk to
 * the agent (docs/protocol.md section 3.5):
 *
 *   ##skiff[artifact path='dist/app.tar.gz' name='app.tar.gz']
 *
 * Values are single-quoted; inside them |' is a quote and || a bar. The
 * line still appears in the log.
 */
#ifndef SKIFF_AGENT_SVCMSG_H
#define SKIFF_AGENT_SVCMSG_H

#include <stddef.h>

#define SVCMSG_PREFIX "##skiff["
#define SVCMSG_MAX_ATTRS 8
#define SVCMSG_MAX_VALUE 1024

struct svcmsg {
	char type[32];
	size_t nattrs;
	struct {
		char key[32];
		char value[SVCMSG_MAX_VALUE + 1];
	} attrs[SVCMSG_MAX_ATTRS];
};

/* 1: a service message parsed into *m; 0: not one; -EINVAL: malformed. */
int svcmsg_parse(const char *line, size_t n, struct svcmsg *m);
/* The value of key, or NULL. */
const char *svcmsg_get(const struct svcmsg *m, const char *key);

#endif
