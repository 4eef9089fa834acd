#ifndef SKIFF_AGENT_PREPULL_H
#define SKIFF_AGENT_PREPULL_H

struct agent_config;

/* skiff-agent prepull: 0 when every image was pulled, 1 otherwise, 64 on
 * a usage error. */
int prepull_run(const struct agent_config *cfg, int n, char **images);

#endif
