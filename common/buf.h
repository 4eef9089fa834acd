/*
 * Growable byte buffer with a hard cap chosen at creation (curl's dynbuf).
 * Every buffer that holds data from a peer is created with the cap that
 * applies to that data; appending past it fails with -E2BIG and leaves the
 * buffer as it was, so the caller can refuse the input cleanly.
 *
 * The data is always followed by a NUL byte that is not counted in len,
 * so a buffer holding text can be used as a C string.
 */
#ifndef SKIFF_BUF_H
#define SKIFF_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

#define BUF_INIT(maxbytes) { NULL, 0, 0, (maxbytes) }

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
int buf_reserve(struct buf *b, size_t extra);
void buf_consume(struct buf *b, size_t n);
char *buf_steal(struct buf *b, size_t *len);
const char *buf_cstr(const struct buf *b);

#endif
