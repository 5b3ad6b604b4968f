/*
 * log.c: see log.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = LOG_LVL_INFO;
static bool log_journal;

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "error",     [LOG_LVL_WARNING] = "warning",
	[LOG_LVL_NOTICE] = "notice", [LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void dlog_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* $JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected. */
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0)
		log_journal = (unsigned long long)st.st_dev == dev &&
			      (unsigned long long)st.st_ino == ino;
}

void dlog_set_level(int level)
{
	atomic_store(&log_level, level);
}

int dlog_parse_level(const char *s)
{
	for (int l = LOG_LVL_ERR; l <= LOG_LVL_DEBUG; l++)
		if (strcmp(s, level_names[l]) == 0)
			return l;
	if (strcmp(s, "err") == 0)
		return LOG_LVL_ERR;
	if (strcmp(s, "warn") == 0)
		return LOG_LVL_WARNING;
	return -1;
}

const char *dlog_level_name(int level)
{
	return level >= LOG_LVL_ERR && level <= LOG_LVL_DEBUG ? level_names[level] : "?";
}

void dlogv(int level, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n = 0, cap = sizeof(line) - 1; /* room for the newline */
	int k;

	if (level > atomic_load(&log_level))
		return;
	if (log_journal) {
		k = snprintf(line, cap, "<%d>", level);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		k = snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ connregd[%ld] %s: ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, ts.tv_nsec / 1000000L, (long)getpid(),
			     dlog_level_name(level));
	}
	n = k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap;
	k = vsnprintf(line + n, cap - n, fmt, ap);
	n += k < 0 ? 0 : (size_t)k < cap - n ? (size_t)k : cap - n - 1;
	/* One event, one line: a newline inside (an MHD message ends in one) becomes a space. */
	while (n > 0 && line[n - 1] == '\n')
		n--;
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* One write per line; a short write to a full pipe is not retried forever. */
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

void dlog(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dlogv(level, fmt, ap);
	va_end(ap);
}
