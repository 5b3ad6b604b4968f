/*
 * cmd_watch.c: watch, a line per change of one id's transport until
 * interrupted.
 *
 * connreg_wait_transport sleeps until the id holds a transport other than
 * the one we saw, but never returns for an unregister, nor for a
 * re-register with the transport it had. So the wait is cut into short
 * slices and each slice that ends without news looks the id up once: that
 * catches those changes too, and lets SIGINT end the loop promptly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "escape.h"
#include "report.h"

#define SLICE_MS 100

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The id's state: registered with a transport, or not. */
struct id_state {
	bool present;
	uint64_t transport;
};

static void put_state(const struct id_state *s)
{
	if (s->present)
		printf("%" PRIu64, s->transport);
	else
		fputs("-", stdout);
}

/* "2024-05-01T12:00:00.123+0200 OLD -> NEW", local time with milliseconds. */
static void print_change(const struct id_state *from, const struct id_state *to)
{
	struct timespec ts;
	struct tm tm;
	char when[64], zone[16];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	printf("%s.%03ld%s ", when, ts.tv_nsec / 1000000L, zone);
	put_state(from);
	fputs(" -> ", stdout);
	put_state(to);
	putchar('\n');
	fflush(stdout);
}

static int install_stop_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	/* No SA_RESTART: a signal should cut a sleep short. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -1;
	return 0;
}

struct watch {
	char name[CLI_NAME_SIZE];
	struct cli_id id;
	uint64_t count;		/* changes to see before exiting; 0: no limit */
	int64_t timeout_ms;	/* -1: none */
};

static int parse_watch_args(const struct cli_command *self, int argc, char **argv,
			    struct watch *w)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "text", no_argument, NULL, 't' },
		{ "escaped", no_argument, NULL, 'e' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	enum cli_id_syntax syntax = CLI_ID_AUTO;
	uint64_t v;
	int c, rc;

	w->count = 0;
	w->timeout_ms = -1;
	optind = 0;
	while ((c = getopt_long(argc, argv, "htec:T:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_print_help(self, stdout);
			return CLI_EXIT_OK;
		case 't':
		case 'e':
			if (syntax != CLI_ID_AUTO)
				return cli_usage(self, "--text and --escaped exclude each other");
			syntax = c == 't' ? CLI_ID_TEXT : CLI_ID_ESCAPED;
			break;
		case 'c':
			if (cli_parse_range(optarg, 1, UINT64_MAX, &v))
				return cli_usage(self,
						 "bad --count \"%s\": expected a number from 1",
						 optarg);
			w->count = v;
			break;
		case 'T':
			if (cli_parse_range(optarg, 0, INT32_MAX, &v))
				return cli_usage(self,
						 "bad --timeout \"%s\": expected milliseconds, "
						 "0 to %d", optarg, INT32_MAX);
			w->timeout_ms = (int64_t)v;
			break;
		default:
			return cli_usage_hint(self);
		}
	}
	if (argc - optind != 2)
		return cli_usage(self, "%s (expected: %s)",
				 argc - optind < 2 ? "missing arguments" : "too many arguments",
				 self->synopsis);
	rc = cli_name_arg(self, argv[optind], w->name);
	if (rc < 0)
		rc = cli_id_arg(self, argv[optind + 1], syntax, &w->id);
	return rc;
}

/*
 * Look the id up: 0 and *s, or a library error. An absent id keeps the
 * last transport in s->transport: the value the next wait compares with.
 */
static int look_up(connreg_t *reg, const struct cli_id *id, struct id_state *s)
{
	uint64_t t;
	int rc = connreg_get_transport(reg, id->bytes, id->len, &t);

	if (rc == -ENOENT) {
		s->present = false;
		return 0;
	}
	if (rc)
		return rc;
	s->present = true;
	s->transport = t;
	return 0;
}

static int watch_loop(const struct cli_command *self, connreg_t *reg, const struct watch *w)
{
	uint64_t deadline = w->timeout_ms >= 0 ? now_ms() + (uint64_t)w->timeout_ms : 0;
	struct id_state cur = { false, 0 }, next;
	uint64_t seen = 0;
	int rc;

	rc = look_up(reg, &w->id, &cur);
	if (rc)
		return cli_lib_error(self, w->name, &w->id, rc);
	/* Tell the operator (and scripts waiting on stderr) that watching has begun. */
	if (cur.present)
		cli_error(self, w->name, &w->id, "watching; transport %" PRIu64, cur.transport);
	else
		cli_error(self, w->name, &w->id, "watching; not registered yet");

	while (!stop_signal) {
		int slice = SLICE_MS;

		if (w->timeout_ms >= 0) {
			uint64_t t = now_ms();

			if (t >= deadline)
				break;
			if (deadline - t < (uint64_t)slice)
				slice = (int)(deadline - t);
		}
		/* Absent: a transport other than the last one wakes us; the slice does the rest. */
		next = cur;
		rc = connreg_wait_transport(reg, w->id.bytes, w->id.len, cur.transport,
					    &next.transport, slice);
		if (rc == 0) {
			next.present = true;
		} else if (rc == -ETIMEDOUT) {
			rc = look_up(reg, &w->id, &next);
			if (rc)
				return cli_lib_error(self, w->name, &w->id, rc);
		} else {
			return cli_lib_error(self, w->name, &w->id, rc);
		}
		if (next.present == cur.present &&
		    (!cur.present || next.transport == cur.transport))
			continue;
		print_change(&cur, &next);
		cur = next;
		if (w->count && ++seen == w->count)
			return cli_finish_output(self, w->name, CLI_EXIT_OK);
	}
	if (stop_signal || !w->count)
		return cli_finish_output(self, w->name, CLI_EXIT_OK);
	cli_error(self, w->name, &w->id,
		  "timed out after %" PRId64 " ms with %" PRIu64 " of %" PRIu64 " changes seen",
		  w->timeout_ms, seen, w->count);
	return cli_finish_output(self, w->name, CLI_EXIT_FAIL);
}

static int run_watch(const struct cli_command *self, int argc, char **argv)
{
	struct watch w;
	connreg_t *reg;
	int rc;

	rc = parse_watch_args(self, argc, argv, &w);
	if (rc < 0)
		rc = cli_open(self, w.name, &reg);
	if (rc >= 0)
		return rc;
	if (install_stop_handlers()) {
		cli_error(self, w.name, NULL, "sigaction: %s", strerror(errno));
		connreg_close(reg);
		return CLI_EXIT_SYSTEM;
	}
	rc = watch_loop(self, reg, &w);
	/* Gives back this thread's reader slot. */
	connreg_close(reg);
	return rc;
}

const struct cli_command cmd_watch = {
	.name = "watch",
	.synopsis = "[--count N] [--timeout MS] [--text|--escaped] NAME ID",
	.summary = "print each change of the id's transport until interrupted",
	.details =
		"Each change is one line on standard output:\n"
		"  2024-05-01T12:00:00.123+0200 OLD -> NEW\n"
		"where OLD and NEW are transports, or - when the id is not registered.\n"
		"An unregister, or a re-register with the old transport, shows within\n"
		"about 100 ms; a change undone before then (A -> B -> A) may go unseen.\n"
		"Options:\n"
		"  -c, --count N     exit 0 after N changes\n"
		"  -T, --timeout MS  stop after MS milliseconds: exit 0, or exit 1 when\n"
		"                    --count changes were not all seen by then\n"
		"  -t, --text        take ID literally, even when it starts with 0x\n"
		"  -e, --escaped     read \\\\ and \\xNN escapes in ID\n"
		"SIGINT or SIGTERM ends the watch with exit 0.\n",
	.run = run_watch,
};
