/*
 * Allocation wrappers. skiff's programs do not try to limp on after an
 * allocation failure: every allocation goes through these, which check
 * multiplication overflow and abort with a message when memory runs out
 * (tmux's xmalloc.c). Caps on untrusted sizes are enforced by callers
 * before they allocate, so an abort here means the machine is out of
 * memory, not that a peer asked for too much.
 */
#ifndef SKIFF_XALLOC_H
#define SKIFF_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
