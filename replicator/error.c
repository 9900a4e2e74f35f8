/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-thread error messages, zstd error translation, wire error codes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "repl_i.h"

static _Thread_local char last_errmsg[512];

const char *repl_last_errmsg(void)
{
	return last_errmsg;
}

int repl_fail(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_errmsg, sizeof(last_errmsg), fmt, ap);
	va_end(ap);
	return r;
}

/* The one place zstd's error space becomes -errno. */
int repl_zstd_err(size_t code)
{
	if (!ZSTD_isError(code))
		return 0;
	switch (ZSTD_getErrorCode(code)) {
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	case ZSTD_error_dstSize_tooSmall:
		return -ENOBUFS;
	case ZSTD_error_parameter_unsupported:
	case ZSTD_error_parameter_combination_unsupported:
	case ZSTD_error_parameter_outOfBound:
		return -EINVAL;
	case ZSTD_error_frameParameter_windowTooLarge:
		return -EFBIG;
	case ZSTD_error_prefix_unknown:
	case ZSTD_error_version_unsupported:
	case ZSTD_error_frameParameter_unsupported:
	case ZSTD_error_corruption_detected:
	case ZSTD_error_checksum_wrong:
	case ZSTD_error_literals_headerWrong:
	case ZSTD_error_srcSize_wrong:
	case ZSTD_error_dictionary_wrong:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

const char *repl_zstd_reason(size_t code)
{
	return ZSTD_getErrorName(code);
}

/*
 * REFUSE/NAK carry one of these codes, not a raw errno (whose values differ
 * between architectures). Anything not listed travels as EIO.
 */
static const struct {
	uint32_t code;
	int error;
} wire_codes[] = {
	{ 1, EIO },
	{ 2, EPROTONOSUPPORT },
	{ 3, EBADMSG },
	{ 4, EPROTO },
	{ 5, EINVAL },
	{ 6, EFBIG },
	{ 7, ENOSPC },
	{ 8, EEXIST },
	{ 9, ENOENT },
	{ 10, EACCES },
	{ 11, EPERM },
	{ 12, EBUSY },
	{ 13, ESTALE },
	{ 14, ENOTDIR },
	{ 15, EISDIR },
	{ 16, ENOTEMPTY },
	{ 17, EROFS },
	{ 18, EDQUOT },
	{ 19, ENOMEM },
	{ 20, EUCLEAN },
};

uint32_t repl_code_from_errno(int error)
{
	if (error < 0)
		error = -error;
	for (size_t i = 0; i < sizeof(wire_codes) / sizeof(wire_codes[0]); i++)
		if (wire_codes[i].error == error)
			return wire_codes[i].code;
	return 1;
}

int repl_code_to_errno(uint32_t code)
{
	for (size_t i = 0; i < sizeof(wire_codes) / sizeof(wire_codes[0]); i++)
		if (wire_codes[i].code == code)
			return -wire_codes[i].error;
	return -EIO;
}
