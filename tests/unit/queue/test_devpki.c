/* The --dev certificates: a CA that signs a server certificate GnuTLS
 * itself accepts for 127.0.0.1, ::1 and localhost, and nothing else. */
#include "qtest.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "devpki.h"

static gnutls_x509_crt_t load(const char *pem)
{
	gnutls_x509_crt_t c;
	gnutls_datum_t d = { (unsigned char *)(uintptr_t)pem,
	    (unsigned)strlen(pem) };

	assert_int_equal(gnutls_x509_crt_init(&c), 0);
	assert_int_equal(gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_PEM), 0);
	return c;
}

static void test_chain_and_names(void **state)
{
	char *ca_pem, *cert_pem, *key_pem;
	gnutls_x509_crt_t ca, crt;
	unsigned status = 1;
	unsigned char v4[4], v6[16], other[4];

	(void)state;
	assert_int_equal(sodium_init() < 0, 0);
	assert_int_equal(devpki_generate(&ca_pem, &cert_pem, &key_pem), 0);
	assert_non_null(strstr(key_pem, "PRIVATE KEY"));
	ca = load(ca_pem);
	crt = load(cert_pem);
	assert_int_equal(gnutls_x509_crt_verify(crt, &ca, 1, 0, &status), 0);
	assert_int_equal(status, 0);
	assert_true(gnutls_x509_crt_check_hostname(crt, "localhost"));
	assert_false(gnutls_x509_crt_check_hostname(crt, "example.org"));
	inet_pton(AF_INET, "127.0.0.1", v4);
	inet_pton(AF_INET6, "::1", v6);
	inet_pton(AF_INET, "10.0.0.1", other);
	assert_true(gnutls_x509_crt_check_ip(crt, v4, 4, 0));
	assert_true(gnutls_x509_crt_check_ip(crt, v6, 16, 0));
	assert_false(gnutls_x509_crt_check_ip(crt, other, 4, 0));
	/* The CA is a CA; the server certificate is not. */
	assert_int_equal(gnutls_x509_crt_get_ca_status(ca, NULL), 1);
	assert_int_equal(gnutls_x509_crt_get_ca_status(crt, NULL), 0);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(crt);
	free(ca_pem);
	free(cert_pem);
	free(key_pem);
}

static void test_ensure_reuses(void **state)
{
	char dir[PATH_MAX], sub[PATH_MAX + 8];
	struct devpki a, b;
	char *c1, *c2;
	size_t n;
	struct buf x = BUF_INIT(1 << 20), y = BUF_INIT(1 << 20);

	(void)state;
	qt_tmpdir(dir);
	snprintf(sub, sizeof(sub), "%s/tls", dir);
	assert_int_equal(devpki_ensure(sub, &a), 0);
	assert_int_equal(fsx_read_file(a.cert, 1 << 20, &x), 0);
	assert_int_equal(devpki_ensure(sub, &b), 0);
	assert_int_equal(fsx_read_file(b.cert, 1 << 20, &y), 0);
	c1 = buf_steal(&x, &n);
	c2 = buf_steal(&y, NULL);
	assert_string_equal(c1, c2);
	devpki_free(&a);
	devpki_free(&b);
	free(c1);
	free(c2);
	qt_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_and_names),
		cmocka_unit_test(test_ensure_reuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
