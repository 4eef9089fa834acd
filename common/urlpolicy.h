/*
 * Base URLs of the queue (the agent's SKIFF_QUEUE_URL, skiffctl's --url):
 * read with libcurl's URL API, the parser of the library that connects,
 * never by comparing text. Whatever a check decides is decided on the host
 * libcurl will connect to, and the URL used afterwards is the one libcurl
 * wrote back (host normalized: percent-decoding, 0x7f.1 and 127.1 as
 * 127.0.0.1), so the check and the connection cannot disagree.
 *
 * A base URL is http:// or https://, with no userinfo (a queue URL carries
 * no credentials, and "http://localhost:80@evil.example/" is user
 * "localhost" at evil.example), no IPv6 zone id, no query and no fragment
 * (protocol paths are appended to it); a path prefix is kept. Plain http://
 * is for loopback only: a host that is an IPv4 literal in 127.0.0.0/8 or
 * the IPv6 literal ::1 (both checked with inet_pton), or the name
 * "localhost" in any case. Not loopback, and refused: other names
 * ("127.0.0.1.evil", "localhost.", "foo.localhost": a resolver decides
 * where those go), IPv4-mapped IPv6 ("[::ffff:127.0.0.1]"), 0.0.0.0, "::".
 * Compiled into the agent and skiffctl (both link libcurl), not into
 * skiffcore, which the queue links without libcurl.
 */
#ifndef SKIFF_URLPOLICY_H
#define SKIFF_URLPOLICY_H

#define URLPOLICY_MAX 1024

/*
 * Checks url's form (above) and puts the URL as libcurl writes it back,
 * trailing '/' removed, into *out (heap). Returns 0, or -EINVAL with *why
 * set to a static reason.
 */
int urlpolicy_base(const char *url, char **out, const char **why);
/* 1 when host, as curl_url_get(CURLUPART_HOST) gives it, is loopback. */
int urlpolicy_host_is_loopback(const char *host);
/*
 * 0 when url (of the form urlpolicy_base accepts) may carry a token:
 * https://, or http:// to a loopback host; -EPERM when it is plain http://
 * to anything else, -EINVAL when it does not parse.
 */
int urlpolicy_cleartext_ok(const char *url);

#endif
