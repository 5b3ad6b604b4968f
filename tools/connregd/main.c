/*
 * connregd: the service that owns a connreg registry.
 *
 * It creates the registry (or adopts an existing one whose configuration
 * matches), then, in one main loop that sleeps until the next deadline or
 * signal: reaps the ids of exited transport processes (--transport-is-pid),
 * runs the invariant check, pings the systemd watchdog. libmicrohttpd
 * serves GET /metrics and /healthz from its own thread. SIGTERM/SIGINT stop
 * it (exit 0), SIGHUP re-reads --config. Signals are read from a signalfd
 * in the main loop: no work is done in a signal handler.
 *
 * Exit status: 0 clean stop, 2 usage error or configuration mismatch,
 * 3 system error. See docs/connregd.8.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cluster.h"
#include "connreg.h"
#include "http.h"
#include "log.h"
#include "options.h"
#include "prom.h"

#define EXIT_USAGE  2
#define EXIT_SYSTEM 3

/* A check that finds problems is repeated after this pause (see connreg_check). */
#define RECHECK_PAUSE_MS 200
/* Problems logged per check; the rest are counted. */
#define MAX_PROBLEM_LINES 20

struct daemon {
	struct dopts cl;	/* the command line as given, kept for SIGHUP */
	struct dopts o;		/* the settings in force */
	connreg_t *reg;
	bool created;		/* this process created the registry */
	int lock_fd;		/* the segment, locked: one connregd per name and pid namespace */
	int sig_fd;
	struct http *http;
	struct cluster *cluster;	/* --cluster: cluster.c's threads */
	bool pidfile_written;

	uint64_t next_reap;	/* CLOCK_MONOTONIC ms */
	uint64_t next_check;
	uint64_t next_watchdog;
	uint64_t watchdog_ms;	/* 0: no watchdog */
	int last_reap_rc;
	char status[512];	/* last STATUS= sent to systemd */

	/* Written by the main loop, read by the HTTP thread. */
	atomic_uint_fast64_t reaped_total, reap_runs, reap_errors, reap_last_ms;
	atomic_uint_fast64_t check_runs, check_last_ms, check_duration_us;
	atomic_int check_problems;	/* confirmed; < 0: the last check could not run */
	atomic_uint_fast64_t check_last_mono;	/* CLOCK_MONOTONIC ms, for /healthz */
	atomic_uint_fast32_t check_interval_ms;	/* d->o.check_ms, for /healthz */
	double start_time;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The deadline after `next`, never in the past (a late loop does not catch up). */
static uint64_t advance(uint64_t next, uint32_t interval, uint64_t now)
{
	next += interval;
	return next > now ? next : now + interval;
}

/* ------------------------------------------------------------------ */
/* what the HTTP thread renders                                        */
/* ------------------------------------------------------------------ */

static unsigned render_metrics(void *arg, FILE *f)
{
	struct daemon *d = arg;
	struct connreg_prom_sample s;
	struct connreg_prom_extra x = { 0 };
	int rc = connreg_prom_collect(d->reg, &s);

	if (rc) {
		dlog(LOG_LVL_ERR, "metrics: cannot read the registry's counters: %s",
		     connreg_strerror(rc));
		fprintf(f, "cannot read the registry's counters: %s\n", connreg_strerror(rc));
		return 500;
	}
	x.has_check = true;
	x.check_problems = atomic_load(&d->check_problems);
	x.is_service = true;
	x.check_runs = atomic_load(&d->check_runs);
	x.check_last_run = (double)atomic_load(&d->check_last_ms) / 1e3;
	x.check_duration = (double)atomic_load(&d->check_duration_us) / 1e6;
	x.reaped_total = atomic_load(&d->reaped_total);
	x.reap_runs = atomic_load(&d->reap_runs);
	x.reap_errors = atomic_load(&d->reap_errors);
	x.reap_last_run = (double)atomic_load(&d->reap_last_ms) / 1e3;
	x.start_time = d->start_time;
	connreg_prom_write(f, d->o.name, &s, &x);
	if (d->cluster)
		cluster_metrics(d->cluster, f, d->o.name);
	return 200;
}

/* A check this late means the main loop is stuck (or a check takes far too long). */
#define STALE_SLACK_MS 5000

static unsigned render_healthz(void *arg, FILE *f)
{
	struct daemon *d = arg;
	int p = atomic_load(&d->check_problems);
	uint64_t last = atomic_load(&d->check_last_mono), now = mono_ms();
	uint64_t stale_ms = 2 * (uint64_t)atomic_load(&d->check_interval_ms) + STALE_SLACK_MS;
	double age = now > last ? (double)(now - last) / 1e3 : 0.0;

	if (now > last && now - last > stale_ms) {
		fprintf(f, "unhealthy: no check of %s has finished for %.1f s (interval %" PRIu32
			   " ms): the main loop is stuck\n",
			d->o.name, age, (uint32_t)atomic_load(&d->check_interval_ms));
		return 503;
	}
	if (p == 0) {
		fprintf(f, "ok: %s is sound (checked %.1f s ago)\n", d->o.name, age);
		return 200;
	}
	if (p > 0)
		fprintf(f, "unhealthy: the last check of %s found %d problem%s (%.1f s ago); "
			   "see connregd's log or run: connreg check %s\n",
			d->o.name, p, p == 1 ? "" : "s", age, d->o.name);
	else
		fprintf(f, "unhealthy: the last check of %s could not run (%.1f s ago)\n",
			d->o.name, age);
	return 503;
}

/* ------------------------------------------------------------------ */
/* systemd                                                             */
/* ------------------------------------------------------------------ */

/* STATUS= for systemctl status, sent only when it changed. */
static void update_status(struct daemon *d)
{
	connreg_stats_t st = { .size = sizeof(st) };
	int p = atomic_load(&d->check_problems);
	char s[sizeof(d->status)], chk[64];

	if (connreg_stats(d->reg, &st) != 0)
		return;
	if (p == 0)
		snprintf(chk, sizeof(chk), "sound");
	else if (p > 0)
		snprintf(chk, sizeof(chk), "%d problem%s", p, p == 1 ? "" : "s");
	else
		snprintf(chk, sizeof(chk), "check failed");
	snprintf(s, sizeof(s), "serving %s: %" PRIu64 " of %" PRIu64 " ids live, %" PRIu64
		 " reaped, %s", d->o.name, st.live, st.capacity,
		 (uint64_t)atomic_load(&d->reaped_total), chk);
	if (strcmp(s, d->status) == 0)
		return;
	memcpy(d->status, s, sizeof(s));
	sd_notifyf(0, "STATUS=%s", s);
}

static void setup_watchdog(struct daemon *d)
{
	uint64_t usec = 0;

	/* WATCHDOG_USEC (and WATCHDOG_PID, if set, naming us): ping twice per period. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		d->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
		d->next_watchdog = mono_ms();
		dlog(LOG_LVL_INFO, "systemd watchdog: ping every %" PRIu64 " ms", d->watchdog_ms);
	}
}

/* ------------------------------------------------------------------ */
/* the work                                                            */
/* ------------------------------------------------------------------ */

static void do_reap(struct daemon *d)
{
	uint64_t removed = 0;
	int rc = connreg_reap(d->reg, &removed);

	atomic_fetch_add(&d->reap_runs, 1);
	atomic_store(&d->reap_last_ms, real_ms());
	if (rc) {
		atomic_fetch_add(&d->reap_errors, 1);
		/* Once per change of outcome, not at every pass. */
		if (rc != d->last_reap_rc)
			dlog(LOG_LVL_ERR, "reap failed: %s", connreg_strerror(rc));
	} else {
		if (d->last_reap_rc)
			dlog(LOG_LVL_NOTICE, "reap works again");
		if (removed) {
			uint64_t total = atomic_fetch_add(&d->reaped_total, removed) + removed;

			dlog(LOG_LVL_INFO,
			     "reaped %" PRIu64 " id%s whose transport process had exited "
			     "(%" PRIu64 " since start)",
			     removed, removed == 1 ? "" : "s", total);
		}
	}
	d->last_reap_rc = rc;
}

struct problem_log {
	unsigned n;
};

static void log_problem(const char *problem, void *arg)
{
	struct problem_log *pl = arg;

	if (pl->n++ < MAX_PROBLEM_LINES)
		dlog(LOG_LVL_ERR, "check: %s", problem);
}

static void do_check(struct daemon *d)
{
	struct problem_log pl = { 0 };
	uint64_t t0 = mono_us();
	int before = atomic_load(&d->check_problems);
	int rc = connreg_prom_check(d->reg, RECHECK_PAUSE_MS, log_problem, &pl);
	uint64_t took = mono_us() - t0;

	atomic_store(&d->check_duration_us, took);
	atomic_store(&d->check_last_ms, real_ms());
	atomic_store(&d->check_last_mono, mono_ms());
	atomic_fetch_add(&d->check_runs, 1);
	atomic_store(&d->check_problems, rc < 0 ? -1 : rc);
	if (rc < 0)
		dlog(LOG_LVL_ERR, "check could not run: %s", connreg_strerror(rc));
	else if (rc > 0)
		dlog(LOG_LVL_ERR,
		     "check: %s has %d problem%s (confirmed by a second pass%s); /healthz "
		     "answers 503",
		     d->o.name, rc, rc == 1 ? "" : "s",
		     pl.n > MAX_PROBLEM_LINES ? ", only the first 20 are logged" : "");
	else if (before != 0)
		dlog(LOG_LVL_NOTICE, "check: %s is sound again", d->o.name);
	else
		dlog(LOG_LVL_DEBUG, "check: %s is sound (%.1f ms)", d->o.name,
		     (double)took / 1e3);
}

/* ------------------------------------------------------------------ */
/* start                                                               */
/* ------------------------------------------------------------------ */

/* Append ", item" (or "item" first) to buf, truncating. */
__attribute__((format(printf, 4, 5)))
static void append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (*n + 3 >= cap)
		return;
	if (*n) {
		memcpy(buf + *n, ", ", 3);
		*n += 2;
	}
	va_start(ap, fmt);
	k = vsnprintf(buf + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (k > 0)
		*n = *n + (size_t)k < cap ? *n + (size_t)k : cap - 1;
}

/* Compare an adopted registry with the settings; 0 or EXIT_USAGE (logged). */
static int verify_adopted(struct daemon *d)
{
	connreg_stats_t st = { .size = sizeof(st) };
	uint32_t want_flags = d->o.transport_is_pid ? CONNREG_TRANSPORT_IS_PID : 0;
	char diff[768];
	size_t n = 0;
	int rc = connreg_stats(d->reg, &st);

	if (rc) {
		dlog(LOG_LVL_ERR, "%s: cannot read its configuration: %s", d->o.name,
		     connreg_strerror(rc));
		return EXIT_SYSTEM;
	}
	diff[0] = '\0';
	if (st.capacity != d->o.capacity)
		append(diff, sizeof(diff), &n, "capacity %" PRIu64 " (requested %" PRIu64 ")",
		       st.capacity, d->o.capacity);
	if (st.key_max != d->o.key_max)
		append(diff, sizeof(diff), &n, "key-max %" PRIu32 " (requested %" PRIu32 ")",
		       st.key_max, d->o.key_max);
	if (st.max_threads != d->o.max_threads)
		append(diff, sizeof(diff), &n, "max-threads %" PRIu32 " (requested %" PRIu32 ")",
		       st.max_threads, d->o.max_threads);
	if (st.flags != want_flags)
		append(diff, sizeof(diff), &n, "transport-is-pid %s (requested %s)",
		       st.flags & CONNREG_TRANSPORT_IS_PID ? "yes" : "no",
		       d->o.transport_is_pid ? "yes" : "no");
	if (n == 0)
		return 0;
	dlog(LOG_LVL_ERR,
	     "%s already exists with another configuration: %s. Start connregd with the "
	     "registry's settings, or, if nothing uses it any more, remove it "
	     "(connreg unlink %s) and start again",
	     d->o.name, diff, d->o.name);
	return EXIT_USAGE;
}

/* Create or adopt the registry. 0, or the exit status (logged). */
static int open_registry(struct daemon *d)
{
	connreg_config_t cfg;
	int created = 0, rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.capacity = d->o.capacity;
	cfg.key_max = d->o.key_max;
	cfg.max_threads = d->o.max_threads;
	cfg.mode = d->o.mode;
	cfg.flags = d->o.transport_is_pid ? CONNREG_TRANSPORT_IS_PID : 0;
	rc = connreg_open_or_create(d->o.name, &cfg, &d->reg, &created);
	switch (rc) {
	case 0:
		break;
	case -EPROTO:
		dlog(LOG_LVL_ERR,
		     "%s exists but is not a usable connreg registry (%s): corrupt, foreign, of "
		     "another layout version, or its creator died before finishing it. It is "
		     "left as it is: inspect /dev/shm%s and remove it (connreg unlink %s) if "
		     "nothing uses it",
		     d->o.name, connreg_strerror(rc), d->o.name, d->o.name);
		return EXIT_SYSTEM;
	case -EINVAL:
		dlog(LOG_LVL_ERR, "%s: the library refused this configuration: %s", d->o.name,
		     connreg_strerror(rc));
		return EXIT_USAGE;
	default:
		dlog(LOG_LVL_ERR, "%s: cannot create or open the registry: %s", d->o.name,
		     connreg_strerror(rc));
		return EXIT_SYSTEM;
	}
	d->created = created != 0;
	if (!d->created) {
		rc = verify_adopted(d);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * The byte of the segment file this connregd locks: its pid namespace's
 * inode number. connreg_reap only judges pids registered from the reaper's
 * own pid namespace, so one connregd per pid namespace may serve a
 * registry; two in one namespace would only duplicate each other.
 */
static off_t pidns_byte(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (off_t)st.st_ino : 0;
}

/*
 * One connregd per name and pid namespace: an open-file-description lock
 * on one byte of the segment file (advisory: nothing in the segment
 * changes). 0 or the exit status.
 */
static int lock_registry(struct daemon *d)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = pidns_byte(),
			    .l_len = 1 };
	struct stat st;

	d->lock_fd = shm_open(d->o.name, O_RDWR | O_CLOEXEC, 0);
	if (d->lock_fd < 0) {
		dlog(LOG_LVL_ERR, "%s: cannot open the segment to lock it: %s", d->o.name,
		     strerror(errno));
		return EXIT_SYSTEM;
	}
	if (fcntl(d->lock_fd, F_OFD_SETLK, &fl) != 0) {
		if (errno == EAGAIN || errno == EACCES)
			dlog(LOG_LVL_ERR,
			     "%s is already served by another connregd in this pid namespace "
			     "(it holds the segment's lock); not starting a second one",
			     d->o.name);
		else
			dlog(LOG_LVL_ERR, "%s: cannot lock the segment: %s", d->o.name,
			     strerror(errno));
		return EXIT_SYSTEM;
	}
	if (!d->created && (d->o.given & (1u << DOPT_MODE)) && fstat(d->lock_fd, &st) == 0 &&
	    (st.st_mode & 0777) != d->o.mode)
		dlog(LOG_LVL_WARNING,
		     "%s has mode 0%03o, not the requested 0%03" PRIo32 " (an adopted registry "
		     "keeps its mode)",
		     d->o.name, (unsigned)(st.st_mode & 0777), d->o.mode);
	return 0;
}

/* Does a connregd other than us (in another pid namespace) still serve the segment? */
static bool others_serve(struct daemon *d)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

	/* Our own lock never conflicts with itself: any conflict is another's. */
	return fcntl(d->lock_fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

static int write_pidfile(struct daemon *d)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	int fd = open(d->o.pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd) != 0) {
		dlog(LOG_LVL_ERR, "cannot write --pidfile %s: %s", d->o.pidfile, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_SYSTEM;
	}
	d->pidfile_written = true;
	return 0;
}

static void remove_pidfile(struct daemon *d)
{
	char buf[32] = "";
	int fd;

	if (!d->pidfile_written)
		return;
	/* Only our own: another instance may have taken the path over. */
	fd = open(d->o.pidfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (strtol(buf, NULL, 10) == (long)getpid() && unlink(d->o.pidfile) != 0)
			dlog(LOG_LVL_WARNING, "cannot remove --pidfile %s: %s", d->o.pidfile,
			     strerror(errno));
	}
}

/* --unlink-on-exit: remove the name, if it is still the segment we served. */
static void unlink_name(struct daemon *d)
{
	struct stat ours, now;
	int fd = shm_open(d->o.name, O_RDONLY | O_CLOEXEC, 0);
	int rc;

	if (fd < 0) {
		dlog(LOG_LVL_WARNING, "--unlink-on-exit: %s is already gone", d->o.name);
		return;
	}
	if (fstat(d->lock_fd, &ours) != 0 || fstat(fd, &now) != 0 || ours.st_dev != now.st_dev ||
	    ours.st_ino != now.st_ino) {
		close(fd);
		dlog(LOG_LVL_WARNING,
		     "--unlink-on-exit: %s now names another segment; leaving it", d->o.name);
		return;
	}
	close(fd);
	if (others_serve(d)) {
		dlog(LOG_LVL_NOTICE,
		     "--unlink-on-exit: a connregd in another pid namespace still serves %s; "
		     "leaving the name to the last one",
		     d->o.name);
		return;
	}
	rc = connreg_unlink(d->o.name);
	if (rc)
		dlog(LOG_LVL_ERR, "--unlink-on-exit: cannot remove %s: %s", d->o.name,
		     connreg_strerror(rc));
	else
		dlog(LOG_LVL_NOTICE, "removed the name %s (--unlink-on-exit)", d->o.name);
}

/* ------------------------------------------------------------------ */
/* SIGHUP                                                              */
/* ------------------------------------------------------------------ */

static void reload(struct daemon *d)
{
	struct dopts n;
	char err[1024], was[PATH_MAX + 16], now[PATH_MAX + 16];
	unsigned changed = 0;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading", mono_us());
	if (dopts_resolve(&d->cl, &n, err, sizeof(err)) != 0) {
		dlog(LOG_LVL_ERR, "reload: %s; keeping the settings in force", err);
	} else {
		for (int i = 0; i < DOPT_COUNT; i++) {
			if (!dopt_differs(&d->o, &n, (enum dopt)i))
				continue;
			dopt_format(&d->o, (enum dopt)i, was, sizeof(was));
			dopt_format(&n, (enum dopt)i, now, sizeof(now));
			if (!dopt_reloadable((enum dopt)i)) {
				dlog(LOG_LVL_WARNING,
				     "reload: %s changed (%s -> %s) but only a restart applies "
				     "it; keeping %s",
				     dopt_name((enum dopt)i), was, now, was);
				continue;
			}
			dlog(LOG_LVL_NOTICE, "reload: %s %s -> %s", dopt_name((enum dopt)i), was, now);
			changed++;
		}
		d->o.reap_ms = n.reap_ms;
		d->o.check_ms = n.check_ms;
		atomic_store(&d->check_interval_ms, n.check_ms);
		d->o.log_level = n.log_level;
		dlog_set_level(n.log_level);
		dlog(LOG_LVL_NOTICE, "reloaded %s: %u setting%s changed",
		     d->cl.config[0] ? d->cl.config : "(no --config file)", changed,
		     changed == 1 ? "" : "s");
	}
	/* Fresh figures right away. */
	d->next_check = mono_ms();
	if (d->o.transport_is_pid)
		d->next_reap = d->next_check;
	d->status[0] = '\0';
	sd_notify(0, "READY=1");
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

/* Sleep until the next deadline or a signal. Returns the exit status, or -1 to go on. */
static int wait_and_handle_signals(struct daemon *d)
{
	uint64_t now = mono_ms(), next = d->next_check;
	struct pollfd pfd = { .fd = d->sig_fd, .events = POLLIN };
	int timeout, stop = -1;

	if (d->o.transport_is_pid && d->next_reap < next)
		next = d->next_reap;
	if (d->watchdog_ms && d->next_watchdog < next)
		next = d->next_watchdog;
	timeout = next <= now ? 0 : next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
	if (poll(&pfd, 1, timeout) < 0) {
		if (errno == EINTR)
			return -1;
		dlog(LOG_LVL_ERR, "poll: %s", strerror(errno));
		return EXIT_SYSTEM;
	}
	if (!(pfd.revents & POLLIN))
		return -1;
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t r = read(d->sig_fd, &si, sizeof(si));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r != (ssize_t)sizeof(si)) {
			dlog(LOG_LVL_ERR, "signalfd: %s", r < 0 ? strerror(errno) : "short read");
			return EXIT_SYSTEM;
		}
		if (si.ssi_signo == SIGHUP) {
			dlog(LOG_LVL_NOTICE, "SIGHUP (from pid %" PRIu32 "): reloading", si.ssi_pid);
			reload(d);
		} else {
			dlog(LOG_LVL_NOTICE, "%s (from pid %" PRIu32 "): stopping",
			     si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", si.ssi_pid);
			stop = 0;
		}
	}
	return stop;
}

static int run(struct daemon *d)
{
	for (;;) {
		uint64_t now = mono_ms();
		bool worked = false;
		int rc;

		if (d->o.transport_is_pid && now >= d->next_reap) {
			do_reap(d);
			d->next_reap = advance(d->next_reap, d->o.reap_ms, mono_ms());
			worked = true;
		}
		if (now >= d->next_check) {
			do_check(d);
			d->next_check = advance(d->next_check, d->o.check_ms, mono_ms());
			worked = true;
		}
		if (d->watchdog_ms && mono_ms() >= d->next_watchdog) {
			sd_notify(0, "WATCHDOG=1");
			d->next_watchdog = advance(d->next_watchdog, (uint32_t)d->watchdog_ms,
						   mono_ms());
		}
		if (worked)
			update_status(d);
		rc = wait_and_handle_signals(d);
		if (rc >= 0)
			return rc;
	}
}

static void shutdown_daemon(struct daemon *d, bool served)
{
	if (served)
		sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	http_stop(d->http); /* its thread gives its reader slot back as it exits */
	d->http = NULL;
	/* Before the registry is closed: its threads use it. */
	cluster_stop(d->cluster, served && d->o.unlink_on_exit);
	d->cluster = NULL;
	remove_pidfile(d);
	if (served && d->o.unlink_on_exit)
		unlink_name(d);
	connreg_close(d->reg);
	d->reg = NULL;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
}

static int usage_error(const char *msg)
{
	dlog(LOG_LVL_ERR, "%s (try 'connregd --help')", msg);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static struct daemon dd = { .lock_fd = -1, .sig_fd = -1 };
	struct daemon *d = &dd;
	char err[1024], where[320] = "";
	int listen_fd = -1, rc;
	sigset_t mask;

	dlog_init();
	rc = dopts_parse_args(argc, argv, &d->cl, err, sizeof(err));
	if (rc < 0)
		return usage_error(err);
	if (rc == DOPTS_HELP) {
		dopts_usage(stdout);
		return fflush(stdout) == 0 ? 0 : EXIT_SYSTEM;
	}
	if (rc == DOPTS_VERSION) {
		printf("connregd %d.%d (connreg)\n", CONNREG_VERSION_MAJOR, CONNREG_VERSION_MINOR);
		return fflush(stdout) == 0 ? 0 : EXIT_SYSTEM;
	}
	if (dopts_resolve(&d->cl, &d->o, err, sizeof(err)) != 0)
		return usage_error(err);
	dlog_set_level(d->o.log_level);
	if (!d->o.transport_is_pid && (d->o.given & (1u << DOPT_REAP_INTERVAL)))
		dlog(LOG_LVL_WARNING, "--reap-interval-ms has no effect without --transport-is-pid");

	/*
	 * Signals go to the signalfd only: blocked here, before any thread
	 * exists, so that libmicrohttpd's thread inherits the mask.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (d->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		dlog(LOG_LVL_ERR, "signalfd: %s", strerror(errno));
		return EXIT_SYSTEM;
	}
	signal(SIGPIPE, SIG_IGN);
	d->start_time = (double)real_ms() / 1e3;

	/* The address first: a bad one changes nothing in /dev/shm. */
	if (d->o.listen[0]) {
		listen_fd = http_listen(d->o.listen, where, sizeof(where), err, sizeof(err));
		if (listen_fd == HTTP_ERR_SPEC)
			return usage_error(err);
		if (listen_fd < 0) {
			dlog(LOG_LVL_ERR, "%s", err);
			return EXIT_SYSTEM;
		}
	}

	rc = open_registry(d);
	if (rc == 0)
		rc = lock_registry(d);
	if (rc == 0 && d->o.cluster[0]) {
		struct cluster_cfg cc = {
			.url = d->o.cluster, .host_id = d->o.host_id, .view = d->o.cluster_view,
			.lease_ms = d->o.lease_ms, .feed_max = d->o.feed_max, .name = d->o.name,
			.capacity = d->o.capacity, .key_max = d->o.key_max,
			.max_threads = d->o.max_threads, .mode = d->o.mode,
		};

		rc = cluster_start(d->reg, d->lock_fd, &cc, &d->cluster);
	}
	if (rc == 0 && d->o.pidfile[0])
		rc = write_pidfile(d);
	if (rc) {
		if (listen_fd >= 0)
			close(listen_fd);
		shutdown_daemon(d, false);
		return rc;
	}
	if (d->created)
		dlog(LOG_LVL_NOTICE,
		     "created %s: capacity %" PRIu64 ", key-max %" PRIu32 ", max-threads %" PRIu32
		     ", transport-is-pid %s, mode 0%03" PRIo32,
		     d->o.name, d->o.capacity, d->o.key_max, d->o.max_threads,
		     d->o.transport_is_pid ? "yes" : "no", d->o.mode);
	else
		dlog(LOG_LVL_NOTICE,
		     "adopted the existing registry %s: capacity %" PRIu64 ", key-max %" PRIu32
		     ", max-threads %" PRIu32 ", transport-is-pid %s",
		     d->o.name, d->o.capacity, d->o.key_max, d->o.max_threads,
		     d->o.transport_is_pid ? "yes" : "no");

	/* A first check before anyone can ask /healthz. */
	atomic_store(&d->check_interval_ms, d->o.check_ms);
	d->last_reap_rc = 0;
	do_check(d);
	d->next_check = mono_ms() + d->o.check_ms;
	d->next_reap = mono_ms();

	if (listen_fd >= 0) {
		struct http_routes routes = { render_metrics, render_healthz, d };

		d->http = http_start(listen_fd, &routes);
		if (!d->http) {
			shutdown_daemon(d, false);
			return EXIT_SYSTEM;
		}
		dlog(LOG_LVL_INFO, "metrics: listening on http://%s/metrics (and /healthz)", where);
	}
	setup_watchdog(d);
	update_status(d);
	sd_notify(0, "READY=1");
	if (d->o.transport_is_pid)
		dlog(LOG_LVL_NOTICE,
		     "ready: serving %s (reaping every %" PRIu32 " ms, checking every %" PRIu32
		     " ms)", d->o.name, d->o.reap_ms, d->o.check_ms);
	else
		dlog(LOG_LVL_NOTICE,
		     "ready: serving %s (checking every %" PRIu32 " ms; no reaping without "
		     "--transport-is-pid)", d->o.name, d->o.check_ms);

	rc = run(d);
	shutdown_daemon(d, true);
	close(d->sig_fd);
	dlog(LOG_LVL_NOTICE, "stopped (exit %d)", rc);
	return rc;
}
