/*
 * base64url without padding (RFC 4648 section 5, as JOSE uses it) and hex,
 * on top of libsodium's constant-time codecs. Decoding is strict: no
 * padding, no whitespace, no stray trailing bits, so every value has
 * exactly one encoding and a signature cannot be re-encoded to pass a
 * replay check.
 */
#ifndef SKIFF_B64_H
#define SKIFF_B64_H

#include <stddef.h>

/* Decodes exactly inlen characters; -EINVAL when not canonical base64url,
 * -E2BIG when the result would not fit outmax bytes. */
int b64url_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outmax, size_t *outlen);
/* 1 when in[0..inlen) is canonical base64url without padding (the
 * alphabet only, no length of 4k+1, zero bits past the last byte), the
 * form b64url_decode accepts; checks without decoding. */
int b64url_valid(const char *in, size_t inlen);
/* Upper bound of the decoded size of inlen characters. */
size_t b64url_decoded_max(size_t inlen);
/* Returns a NUL-terminated heap string. */
char *b64url_encode(const void *in, size_t inlen);
/* Standard base64 with padding (used for HTTP Basic-style headers). */
char *b64std_encode(const void *in, size_t inlen);
/* Lowercase hex into out (2 * n + 1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* Exactly 2 * n hex digits into n bytes. */
int hex_decode(const char *in, unsigned char *out, size_t n);

#endif
