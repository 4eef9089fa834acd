/*
 * NULL-terminated string vectors of a step (argv, env): copied when an
 * executor keeps them, wiped when freed (an env holds opened secrets).
 */
#ifndef SKIFF_AGENT_STRV_H
#define SKIFF_AGENT_STRV_H

/* A deep copy; NULL gives an empty vector. */
char **strv_copy(char *const *v);
/* Zeroes every string, then frees them and v. NULL is fine. */
void strv_free(char **v);

#endif
