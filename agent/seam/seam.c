#include "seam.h"

static const char *const result_names[] = {
	"succeeded", "failed", "canceled", "timed_out", "rejected",
};

const char *seam_result_name(enum seam_result r)
{
	if ((unsigned)r >= sizeof(result_names) / sizeof(result_names[0]))
		return "failed";
	return result_names[r];
}
