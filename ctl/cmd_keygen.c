#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"
#include "jwk.h"
#include "xalloc.h"

static const char keygen_usage[] =
    "usage: skiffctl keygen [--pool] [--kid KID] [--force] --out NAME\n"
    "\n"
    "Makes a key pair and writes it as JSON Web Keys.\n"
    "\n"
    "  (default)     an Ed25519 signing key: NAME.jwk (private, mode 0600)\n"
    "                and NAME.jwks (the public key set agents trust)\n"
    "  --pool        an X25519 pool key for sealing secrets: NAME.jwk\n"
    "                (private, mode 0600, for the pool's agents) and\n"
    "                NAME.pub.jwk (public, for whoever seals secrets)\n"
    "  --kid KID     key id (default: the RFC 7638 thumbprint)\n"
    "  --force       replace existing files\n"
    "  --out NAME    path prefix of the files to write\n";

static int write_json(const char *path, cJSON *j, int mode, int force)
{
	char *s = cJSON_Print(j);
	struct buf b = BUF_INIT(1 << 20);
	int r;

	buf_puts(&b, s);
	buf_putc(&b, '\n');
	r = ctl_write_new(path, b.data, b.len, mode, force);
	memset(s, 0, strlen(s));
	memset(b.data, 0, b.len);
	cJSON_free(s);
	buf_free(&b);
	if (r == -EEXIST)
		return ctl_fail("%s exists; use --force to replace it", path);
	if (r < 0)
		return ctl_fail("%s: %s", path, strerror(-r));
	return 0;
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", no_argument, NULL, 'p' },
		{ "kid", required_argument, NULL, 'k' },
		{ "out", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kid = NULL, *out = NULL;
	int pool = 0, force = 0, c, r;
	struct jwk k;

	while ((c = getopt_long(argc, argv, "pk:o:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pool = 1; break;
		case 'k': kid = optarg; break;
		case 'o': out = optarg; break;
		case 'f': force = 1; break;
		case 'h': fputs(keygen_usage, stdout); return CTL_EX_OK;
		default: return ctl_usage(keygen_usage);
		}
	}
	if (out == NULL || optind != argc)
		return ctl_usage(keygen_usage);
	if (kid && !jwk_kid_valid(kid))
		return ctl_fail("--kid must be 1 to 128 characters of [A-Za-z0-9_.:-]");
	if (jwk_generate(pool ? JWK_X25519 : JWK_ED25519, kid, &k) < 0)
		return ctl_fail("key generation failed");

	char *priv_path = xasprintf("%s.jwk", out);
	char *pub_path = xasprintf(pool ? "%s.pub.jwk" : "%s.jwks", out);
	cJSON *priv = jwk_to_json(&k, 1), *pub = jwk_to_json(&k, 0);
	if (!pool) {
		cJSON *set = cJSON_CreateObject(), *keys = cJSON_AddArrayToObject(set, "keys");
		cJSON_AddItemToArray(keys, pub);
		pub = set;
	}
	r = write_json(priv_path, priv, 0600, force);
	if (r == 0)
		r = write_json(pub_path, pub, 0644, force);
	if (r == 0)
		printf("%s key %s\n  private: %s\n  public:  %s\n",
		    pool ? "pool" : "signing", k.kid, priv_path, pub_path);
	cJSON *d = cJSON_GetObjectItemCaseSensitive(priv, "d");
	if (d && d->valuestring)
		memset(d->valuestring, 0, strlen(d->valuestring));
	cJSON_Delete(priv);
	cJSON_Delete(pub);
	jwk_wipe(&k);
	free(priv_path);
	free(pub_path);
	return r;
}
