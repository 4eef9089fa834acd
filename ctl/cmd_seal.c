#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"
#include "err.h"
#include "job.h"
#include "jwk.h"
#include "seal.h"

static const char seal_usage[] =
    "usage: skiffctl seal --pool-key POOL.pub.jwk [VALUE | --file FILE]\n"
    "\n"
    "Seals a secret value to a pool's X25519 public key and prints the\n"
    "sealed box in base64url, for the `secrets` object of a job. Only the\n"
    "pool's agents can open it. With neither VALUE nor --file, the value\n"
    "is read from standard input (a single trailing newline is dropped).\n"
    "Passing the value as an argument exposes it to other local users\n"
    "through the process list; prefer --file or standard input.\n"
    "\n"
    "  --pool-key FILE   the pool's public (or private) X25519 JWK\n"
    "  --file FILE       read the value from FILE, byte for byte\n";

int cmd_seal(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool-key", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = NULL, *file = NULL;
	struct buf v = BUF_INIT(JOB_MAX_SECRET + 1);
	struct jwk k;
	struct err e;
	char *sealed = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "p:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': keyfile = optarg; break;
		case 'f': file = optarg; break;
		case 'h': fputs(seal_usage, stdout); return CTL_EX_OK;
		default: return ctl_usage(seal_usage);
		}
	}
	if (keyfile == NULL || argc - optind > 1 || (file && optind < argc))
		return ctl_usage(seal_usage);
	if (jwk_load(keyfile, &k, &e) < 0)
		return ctl_fail("%s", e.msg);
	if (k.type != JWK_X25519) {
		jwk_wipe(&k);
		return ctl_fail("%s is not an X25519 pool key", keyfile);
	}
	if (optind < argc) {
		r = buf_puts(&v, argv[optind]);
	} else {
		r = ctl_read_input(file ? file : "-", JOB_MAX_SECRET, &v);
		if (r == 0 && !file && v.len && v.data[v.len - 1] == '\n')
			v.data[--v.len] = '\0';
	}
	if (r < 0) {
		r = ctl_fail("%s%s: %s", file ? "--file " : "", file ? file :
		    "standard input", r == -E2BIG ? "over 8 KiB" : strerror(-r));
	} else if (v.len == 0) {
		r = ctl_fail("the value is empty");
	} else if ((r = seal_value(&k, v.data, v.len, &sealed)) < 0) {
		r = ctl_fail("sealing failed: %s", strerror(-r));
	} else {
		printf("%s\n", sealed);
		r = CTL_EX_OK;
	}
	if (v.data)
		sodium_memzero(v.data, v.cap);
	buf_free(&v);
	free(sealed);
	jwk_wipe(&k);
	return r;
}
