/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_LOG_H
#define MIRRORFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

/*
 * One logging facility for the whole program. Levels are syslog's
 * (LOG_ERR .. LOG_DEBUG). The sink is stderr in the foreground and syslog
 * when the mount daemonizes. Library code logs at LOG_DEBUG and returns an
 * error; whoever decides what to do about the error logs it once.
 */

enum log_sink {
	LOG_SINK_STDERR,
	LOG_SINK_SYSLOG,
};

/* Thread-safe. Messages above `level` are dropped cheaply. */
void log_set_level(int level);
int log_get_level(void);
void log_set_sink(enum log_sink sink, const char *ident);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Cheap check for hot paths: if (log_debug_enabled()) log_msg(LOG_DEBUG, ...). */
bool log_debug_enabled(void);

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                     \
	do {                                                               \
		if (log_debug_enabled())                                   \
			log_msg(LOG_DEBUG, __VA_ARGS__);                   \
	} while (0)

#endif /* MIRRORFS_LOG_H */
