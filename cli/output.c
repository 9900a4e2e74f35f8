/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Output helpers: escaping names for one-record-per-line text and JSON,
 * timestamps, and writing to a pipe whose reader may go away.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli_i.h"

void cli_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

static int stdout_errno;   /* why the first write to stdout failed */

int cli_stdout_error(void)
{
	if (!stdout_errno && ferror(stdout))
		stdout_errno = errno ? errno : EIO;
	return -stdout_errno;
}

int cli_stdout_finish(void)
{
	if (fflush(stdout) != 0 && !stdout_errno)
		stdout_errno = errno ? errno : EIO;
	if (cli_stdout_error() == 0 || stdout_errno == EPIPE)
		return CLI_EXIT_OK;
	return cli_error("cannot write to standard output: %s", strerror(stdout_errno));
}

/*
 * Length of the valid UTF-8 sequence at `s` (1..4), or 0 if the bytes there
 * are not one (overlong forms, surrogates and code points above U+10FFFF
 * are invalid). *ret_cp gets the code point.
 */
static size_t utf8_seq(const unsigned char *s, unsigned *ret_cp)
{
	unsigned cp, min;
	size_t len;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		cp = s[0] & 0x1f, len = 2, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		cp = s[0] & 0x0f, len = 3, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		cp = s[0] & 0x07, len = 4, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;   /* also stops at the terminating NUL */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return len;
}

bool cli_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;
	size_t n;

	while (*p) {
		n = utf8_seq(p, &cp);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

void cli_put_escaped(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;
	size_t n;

	while (*p) {
		n = utf8_seq(p, &cp);
		if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
			/* Not UTF-8, or a control character: escape each byte. */
			size_t bytes = n ? n : 1;

			for (size_t i = 0; i < bytes; i++)
				fprintf(f, "\\x%02x", p[i]);
			p += bytes;
		} else if (cp == '\\') {
			fputs("\\\\", f);
			p++;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
}

void cli_put_json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;
	size_t n;

	fputc('"', f);
	while (*p) {
		n = utf8_seq(p, &cp);
		if (n == 0) {
			fputs("\xef\xbf\xbd", f);   /* U+FFFD for each bad byte */
			p++;
			continue;
		}
		switch (cp) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (cp < 0x20 || cp == 0x7f)
				fprintf(f, "\\u%04x", cp);
			else
				fwrite(p, 1, n, f);
		}
		p += n;
	}
	fputc('"', f);
}

void cli_put_json_hex(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fprintf(f, "%02X", *p);   /* as the journal's path_hex */
	fputc('"', f);
}

void cli_format_time(int64_t time_ns, char *buf, size_t size)
{
	int64_t sec = time_ns / 1000000000, ms;
	char date[32], zone[8];
	struct tm tm;
	time_t t;

	if (time_ns % 1000000000 < 0)
		sec--;   /* floor, for times before 1970 */
	ms = (time_ns - sec * 1000000000) / 1000000;
	t = (time_t)sec;
	if (!localtime_r(&t, &tm)) {
		snprintf(buf, size, "%lld.%03lld", (long long)sec, (long long)ms);
		return;
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);   /* +0200 */
	snprintf(buf, size, "%s.%03lld%.3s:%.2s", date, (long long)ms, zone, zone + 3);
}
