/*
 * The certificates of `skiff-queue --dev`: a self-signed CA and a server
 * certificate it signs for 127.0.0.1, ::1 and localhost, made with GnuTLS
 * directly (already linked through libmicrohttpd's TLS), ECDSA P-256,
 * valid for a year. Written as PEM files into a directory; reused when
 * they are already there.
 */
#ifndef SKIFF_QUEUE_DEVPKI_H
#define SKIFF_QUEUE_DEVPKI_H

struct devpki {
	char *ca_cert;		/* paths */
	char *cert;
	char *key;
};

/* Makes (or finds) dir/ca.pem, dir/server.pem, dir/server-key.pem. */
int devpki_ensure(const char *dir, struct devpki *out);
void devpki_free(struct devpki *p);
/* Generates a CA and a server certificate into PEM strings (heap). */
int devpki_generate(char **ca_pem, char **cert_pem, char **key_pem);

#endif
