/*
 * An error with a machine-readable code and a message for people. Used
 * where a caller must both act on the kind of failure and report it, such
 * as job verification (the code becomes the rejection reason code).
 */
#ifndef SKIFF_ERR_H
#define SKIFF_ERR_H

struct err {
	int code;
	char msg[384];
};

/* Fills e (which may be NULL) and returns -EINVAL. */
int err_set(struct err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
