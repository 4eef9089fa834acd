#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "extract.h"

static int read_block(void *arg, const void **buf, size_t *n, int64_t *off)
{
	la_int64_t o;
	int r = archive_read_data_block(arg, buf, n, &o);

	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK)
		return -EBADMSG;
	*off = o;
	return 1;
}

static enum extract_type type_of(struct archive_entry *e)
{
	if (archive_entry_hardlink(e))
		return EXTRACT_HARDLINK;
	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		return EXTRACT_DIR;
	case AE_IFREG:
		return EXTRACT_FILE;
	case AE_IFLNK:
		return EXTRACT_SYMLINK;
	default:
		return EXTRACT_OTHER;
	}
}

int unpack_targz(const char *archive_path, int dirfd, uint64_t max_bytes,
    uint64_t max_entries, char *err, size_t errlen)
{
	return unpack_targz_flags(archive_path, dirfd, max_bytes, max_entries, 0,
	    err, errlen);
}

int unpack_targz_flags(const char *archive_path, int dirfd,
    uint64_t max_bytes, uint64_t max_entries, unsigned flags, char *err,
    size_t errlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	struct extract x;
	int r = 0, rr;

	extract_init(&x, dirfd, max_bytes, max_entries);
	x.no_links = (flags & UNPACK_NO_LINKS) != 0;
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, archive_path, 65536) != ARCHIVE_OK) {
		snprintf(err, errlen, "not a .tar.gz: %s", archive_error_string(a));
		r = -EINVAL;
		goto out;
	}
	while ((rr = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		enum extract_type t = type_of(ae);
		struct extract_entry e = {
			.type = t,
			.path = archive_entry_pathname(ae),
			.link = t == EXTRACT_HARDLINK ? archive_entry_hardlink(ae) :
			    archive_entry_symlink(ae),
			.mode = archive_entry_perm(ae),
			.size = t == EXTRACT_FILE ? archive_entry_size(ae) : 0,
			.mtime = archive_entry_mtime_is_set(ae) ?
			    archive_entry_mtime(ae) : -1,
		};
		if ((r = extract_entry(&x, &e, read_block, a)) < 0) {
			if (r == -EBADMSG)
				snprintf(err, errlen, "corrupt archive: %s",
				    archive_error_string(a));
			else
				snprintf(err, errlen, "%s", x.err);
			goto out;
		}
	}
	if (rr != ARCHIVE_EOF) {
		snprintf(err, errlen, "corrupt archive: %s", archive_error_string(a));
		r = -EINVAL;
	} else if ((r = extract_finish(&x)) < 0) {
		snprintf(err, errlen, "%s", x.err);
	}
out:
	extract_free(&x);
	archive_read_free(a);
	return r;
}
