/*
 * The network half's settings. It reads no configuration file and no
 * environment: the runner, which does, sends what this half needs as the
 * INIT message (JSON, netconf_parse), together with a descriptor of the
 * half's own state directory. File contents the half needs (the CA
 * certificates) come inside the message, so that its sandbox can deny
 * every other path.
 */
#ifndef SKIFF_AGENT_NETCONF_H
#define SKIFF_AGENT_NETCONF_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct net_strv {
	char **v;
	size_t n;
};

#define NETCONF_URLS_MAX	16
#define NETCONF_LABELS_MAX	64

struct net_config {
	char *queue_url;		/* comma-joined, as stored in agent.json */
	struct net_strv queue_urls;
	char *pool;
	char *registration_token;	/* NULL: none configured */
	char *name;			/* NULL: the host's name */
	struct net_strv labels;
	int64_t capacity;
	int64_t lease_wait;
	int64_t idle_timeout;
	int64_t max_jobs;
	int64_t drain_grace;
	char *ca_pem;			/* the queue's CA certificates, or NULL */
	char *pinned_pubkey;
	char *inputs_ca_pem;		/* for input downloads, or NULL */
	enum log_level log_level;
	enum log_format log_format;
	int state_fd;			/* the half's state directory */
	/* check-sandbox: after entering the sandbox, try what it forbids and
	 * report instead of running ("execve" or "read") */
	char *selftest;
};

/*
 * Parses the INIT message's JSON: every field typed and bounded, unknown
 * fields refused. Returns 0, or -EINVAL with *why set (static text).
 */
int netconf_parse(const char *json, size_t n, struct net_config *c,
    const char **why);
void netconf_free(struct net_config *c);

#endif
