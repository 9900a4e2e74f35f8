/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "mirrorfs/log.h"

static atomic_int log_level = LOG_NOTICE;
static atomic_int log_sink_kind = LOG_SINK_STDERR;

void log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int log_get_level(void)
{
	return atomic_load(&log_level);
}

bool log_debug_enabled(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed) >= LOG_DEBUG;
}

void log_set_sink(enum log_sink sink, const char *ident)
{
	if (sink == LOG_SINK_SYSLOG)
		openlog(ident ? ident : "mirrorfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_sink_kind, sink);
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
	char buf[2048];

	if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (atomic_load(&log_sink_kind) == LOG_SINK_SYSLOG) {
		syslog(level, "%s", buf);
		return;
	}
	/* One fprintf per message so lines from threads do not interleave. */
	fprintf(stderr, "mirrorfs: %s\n", buf);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
