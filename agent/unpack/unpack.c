#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Symlink targets must stay inside the directory being unpacked. */
static int link_stays_inside(const char *entry_path, const char *target)
{
	int depth = 0;

	if (target[0] == '/')
		return 0;
	/* Depth of the link's own directory below the root. */
	for (const char *p = entry_path; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			depth++;
	for (const char *p = target; *p; ) {
		size_t c = strcspn(p, "/");
		if (c == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (c > 0 && !(c == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return 0;
		p += c;
		while (*p == '/')
			p++;
	}
	return 1;
}

/* Relative, and no ".." component ("./x" and "x/" are fine). */
static int path_inside(const char *p)
{
	if (p == NULL || p[0] == '/' || p[0] == '\0')
		return 0;
	while (*p) {
		size_t c = strcspn(p, "/");
		if (c == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += c;
		while (*p == '/')
			p++;
	}
	return 1;
}

static int check_entry(struct archive_entry *e, char *err, size_t errlen)
{
	const char *path = archive_entry_pathname(e);
	mode_t type = archive_entry_filetype(e);
	const char *hl = archive_entry_hardlink(e);
	const char *sl = archive_entry_symlink(e);

	if (!path_inside(path)) {
		snprintf(err, errlen, "refused entry '%.200s': absolute or with '..'",
		    path ? path : "(none)");
		return -EPERM;
	}
	if (hl) {
		/* A hard link names an earlier entry of the archive. */
		if (!path_inside(hl)) {
			snprintf(err, errlen, "refused entry '%.200s': a hard link "
			    "outside", path);
			return -EPERM;
		}
		return 0;
	}
	if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
		snprintf(err, errlen, "refused entry '%.200s': device, FIFO or socket",
		    path);
		return -EPERM;
	}
	if (type == AE_IFLNK && (sl == NULL || !link_stays_inside(path, sl))) {
		snprintf(err, errlen, "refused entry '%.200s': a link pointing outside",
		    path);
		return -EPERM;
	}
	return 0;
}

int unpack_targz(const char *archive_path, const char *dir, char *err,
    size_t errlen)
{
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	struct archive_entry *e;
	int r = 0, rr;

	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
	    ARCHIVE_EXTRACT_TIME);
	if (chdir(dir) < 0) {
		snprintf(err, errlen, "cannot enter %s: %s", dir, strerror(errno));
		r = -errno;
		goto out;
	}
	if (archive_read_open_filename(a, archive_path, 65536) != ARCHIVE_OK) {
		snprintf(err, errlen, "not a .tar.gz: %s", archive_error_string(a));
		r = -EINVAL;
		goto out;
	}
	while ((rr = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		if ((r = check_entry(e, err, errlen)) < 0)
			goto out;
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			snprintf(err, errlen, "cannot unpack '%.200s': %s",
			    archive_entry_pathname(e), archive_error_string(w));
			r = -EIO;
			goto out;
		}
		const void *buf;
		size_t size;
		la_int64_t off;
		while ((rr = archive_read_data_block(a, &buf, &size, &off)) ==
		    ARCHIVE_OK) {
			if (archive_write_data_block(w, buf, size, off) != ARCHIVE_OK) {
				snprintf(err, errlen, "cannot write '%.200s': %s",
				    archive_entry_pathname(e), archive_error_string(w));
				r = -EIO;
				goto out;
			}
		}
		if (rr != ARCHIVE_EOF) {
			snprintf(err, errlen, "corrupt archive: %s",
			    archive_error_string(a));
			r = -EINVAL;
			goto out;
		}
		archive_write_finish_entry(w);
	}
	if (rr != ARCHIVE_EOF) {
		snprintf(err, errlen, "corrupt archive: %s", archive_error_string(a));
		r = -EINVAL;
	}
out:
	archive_read_free(a);
	archive_write_free(w);
	return r;
}

