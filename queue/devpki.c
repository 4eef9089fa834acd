#include "devpki.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <arpa/inet.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsx.h"
#include "log.h"
#include "xalloc.h"

#define VALIDITY (365 * 86400)

struct pair {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
};

static void pair_free(struct pair *p)
{
	if (p->crt)
		gnutls_x509_crt_deinit(p->crt);
	if (p->key)
		gnutls_x509_privkey_deinit(p->key);
	memset(p, 0, sizeof(*p));
}

/* A fresh key and a certificate skeleton: serial, validity, subject. */
static int pair_new(struct pair *p, const char *cn)
{
	unsigned char serial[16];
	time_t now = time(NULL);
	int r;

	memset(p, 0, sizeof(*p));
	randombytes_buf(serial, sizeof(serial));
	serial[0] &= 0x7f;	/* a positive INTEGER */
	if ((r = gnutls_x509_privkey_init(&p->key)) < 0 ||
	    (r = gnutls_x509_privkey_generate(p->key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
	    (r = gnutls_x509_crt_init(&p->crt)) < 0 ||
	    (r = gnutls_x509_crt_set_version(p->crt, 3)) < 0 ||
	    (r = gnutls_x509_crt_set_serial(p->crt, serial, sizeof(serial))) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(p->crt, now - 3600)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(p->crt, now + VALIDITY)) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(p->crt,
	    GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn))) < 0 ||
	    (r = gnutls_x509_crt_set_key(p->crt, p->key)) < 0)
		return r;
	return 0;
}

static int set_key_id(gnutls_x509_crt_t crt)
{
	unsigned char id[64];
	size_t n = sizeof(id);
	int r = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &n);

	return r < 0 ? r : gnutls_x509_crt_set_subject_key_id(crt, id, n);
}

static int make_ca(struct pair *ca)
{
	int r;

	if ((r = pair_new(ca, "skiff-queue dev CA")) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(ca->crt, 1, 0)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(ca->crt,
	    GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN)) < 0 ||
	    (r = set_key_id(ca->crt)) < 0)
		return r;
	return gnutls_x509_crt_sign2(ca->crt, ca->crt, ca->key,
	    GNUTLS_DIG_SHA256, 0);
}

static int add_sans(gnutls_x509_crt_t crt)
{
	unsigned char v4[4], v6[16];
	int r;

	inet_pton(AF_INET, "127.0.0.1", v4);
	inet_pton(AF_INET6, "::1", v6);
	if ((r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
	    "localhost", 9, GNUTLS_FSAN_APPEND)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS,
	    v4, sizeof(v4), GNUTLS_FSAN_APPEND)) < 0)
		return r;
	return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS,
	    v6, sizeof(v6), GNUTLS_FSAN_APPEND);
}

static int make_server(struct pair *srv, const struct pair *ca)
{
	unsigned char id[64];
	size_t n = sizeof(id);
	int r;

	if ((r = pair_new(srv, "localhost")) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(srv->crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(srv->crt,
	    GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(srv->crt,
	    GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (r = add_sans(srv->crt)) < 0 || (r = set_key_id(srv->crt)) < 0 ||
	    (r = gnutls_x509_crt_get_subject_key_id(ca->crt, id, &n, NULL)) < 0 ||
	    (r = gnutls_x509_crt_set_authority_key_id(srv->crt, id, n)) < 0)
		return r;
	return gnutls_x509_crt_sign2(srv->crt, ca->crt, ca->key,
	    GNUTLS_DIG_SHA256, 0);
}

static char *datum_str(gnutls_datum_t *d)
{
	char *s = xstrndup((const char *)d->data, d->size);

	gnutls_free(d->data);
	d->data = NULL;
	return s;
}

static int export_all(const struct pair *ca, const struct pair *srv,
    char **ca_pem, char **cert_pem, char **key_pem)
{
	gnutls_datum_t a = { NULL, 0 }, c = { NULL, 0 }, k = { NULL, 0 };
	int r;

	if ((r = gnutls_x509_crt_export2(ca->crt, GNUTLS_X509_FMT_PEM, &a)) < 0 ||
	    (r = gnutls_x509_crt_export2(srv->crt, GNUTLS_X509_FMT_PEM, &c)) < 0 ||
	    (r = gnutls_x509_privkey_export2_pkcs8(srv->key, GNUTLS_X509_FMT_PEM,
	    NULL, GNUTLS_PKCS_PLAIN, &k)) < 0) {
		gnutls_free(a.data);
		gnutls_free(c.data);
		return r;
	}
	*ca_pem = datum_str(&a);
	*cert_pem = datum_str(&c);
	*key_pem = datum_str(&k);
	return 0;
}

int devpki_generate(char **ca_pem, char **cert_pem, char **key_pem)
{
	struct pair ca, srv;
	int r;

	memset(&srv, 0, sizeof(srv));
	if ((r = make_ca(&ca)) >= 0 && (r = make_server(&srv, &ca)) >= 0)
		r = export_all(&ca, &srv, ca_pem, cert_pem, key_pem);
	if (r < 0)
		log_error("cannot make the dev certificates", "error=%s",
		    logq(gnutls_strerror(r)));
	pair_free(&ca);
	pair_free(&srv);
	return r < 0 ? -EINVAL : 0;
}

static int write_all3(const struct devpki *p, const char *ca, const char *cert,
    const char *key)
{
	int r;

	if ((r = fsx_write_file(p->key, key, strlen(key), 0600)) < 0 ||
	    (r = fsx_write_file(p->cert, cert, strlen(cert), 0644)) < 0 ||
	    (r = fsx_write_file(p->ca_cert, ca, strlen(ca), 0644)) < 0)
		return r;
	return 0;
}

int devpki_ensure(const char *dir, struct devpki *out)
{
	struct devpki p;
	char *ca = NULL, *cert = NULL, *key = NULL;
	int r;

	p.ca_cert = xasprintf("%s/ca.pem", dir);
	p.cert = xasprintf("%s/server.pem", dir);
	p.key = xasprintf("%s/server-key.pem", dir);
	if (access(p.ca_cert, R_OK) == 0 && access(p.cert, R_OK) == 0 &&
	    access(p.key, R_OK) == 0) {
		*out = p;
		return 0;
	}
	if ((r = fsx_mkdir_p(dir, 0700)) == 0 &&
	    (r = devpki_generate(&ca, &cert, &key)) == 0)
		r = write_all3(&p, ca, cert, key);
	if (key)
		sodium_memzero(key, strlen(key));
	free(ca);
	free(cert);
	free(key);
	if (r < 0) {
		devpki_free(&p);
		return r;
	}
	*out = p;
	return 0;
}

void devpki_free(struct devpki *p)
{
	free(p->ca_cert);
	free(p->cert);
	free(p->key);
	memset(p, 0, sizeof(*p));
}
