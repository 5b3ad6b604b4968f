/*
 * log.h: connregd's log, one line per event on stderr, with a level.
 *
 * Under systemd (stderr is the journal stream named by $JOURNAL_STREAM)
 * a line is "<N>text", N being the syslog priority that journald strips
 * and records; anywhere else (a terminal, a container runtime) it is
 * "2024-05-01T12:00:00.123Z connregd[PID] LEVEL: text". Each line is one
 * write(2), so lines from the HTTP thread and the main loop never mix.
 */
#ifndef CONNREGD_LOG_H
#define CONNREGD_LOG_H

#include <stdarg.h>

/* syslog priorities */
enum {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARNING = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/* Decide the line format (journal or plain). Call once at start. */
void dlog_init(void);

/* Lines above this priority are dropped (default LOG_LVL_INFO). */
void dlog_set_level(int level);

/* "error", "warning", "notice", "info", "debug" -> priority, or -1. */
int dlog_parse_level(const char *s);
const char *dlog_level_name(int level);

void dlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dlogv(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif /* CONNREGD_LOG_H */
