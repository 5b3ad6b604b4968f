/*
 * options.c: see options.h. Values are parsed strictly: anything that is
 * not exactly what connregd(8) describes is an error, never guessed.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "log.h"
#include "options.h"

struct dopt_def {
	const char *name;
	bool takes_value;	/* on the command line; booleans are bare flags */
	bool reloadable;
	const char *arg;	/* for --help */
	const char *help;
};

static const struct dopt_def defs[DOPT_COUNT] = {
	[DOPT_NAME] = { "name", true, false, "/NAME",
			"registry name: / then 1..200 of [A-Za-z0-9._-] (required)" },
	[DOPT_CAPACITY] = { "capacity", true, false, "N", "live ids it holds (required)" },
	[DOPT_KEY_MAX] = { "key-max", true, false, "K", "longest id in bytes (default 64)" },
	[DOPT_MAX_THREADS] = { "max-threads", true, false, "T",
			       "reader slots: threads attached at once (default 512)" },
	[DOPT_MODE] = { "mode", true, false, "MODE",
			"permission bits of a new segment, octal (default 0600)" },
	[DOPT_TRANSPORT_IS_PID] = { "transport-is-pid", false, false, NULL,
				    "transports are pids: reap ids of exited processes" },
	[DOPT_REAP_INTERVAL] = { "reap-interval-ms", true, true, "MS",
				 "time between reap passes (default 1000)" },
	[DOPT_CHECK_INTERVAL] = { "check-interval-ms", true, true, "MS",
				  "time between invariant checks (default 10000)" },
	[DOPT_METRICS_LISTEN] = { "metrics-listen", true, false, "HOST:PORT",
				  "serve GET /metrics and /healthz there" },
	[DOPT_UNLINK_ON_EXIT] = { "unlink-on-exit", false, false, NULL,
				  "remove the registry's name when stopping" },
	[DOPT_PIDFILE] = { "pidfile", true, false, "PATH", "write the pid there while running" },
	[DOPT_CLUSTER] = { "cluster", true, false, "URL",
			   "share ids with other hosts through Redis: redis://HOST:PORT "
			   "or unix:///PATH" },
	[DOPT_HOST_ID] = { "host-id", true, false, "ID",
			   "this host's name in the cluster: 1..64 of [A-Za-z0-9._-]" },
	[DOPT_CLUSTER_VIEW] = { "cluster-view", true, false, "/VIEW",
				"local registry the other hosts' ids are mirrored into" },
	[DOPT_LEASE_MS] = { "lease-ms", true, false, "MS",
			    "this host's lease in Redis, 300 to 600000 (default 5000)" },
	[DOPT_CLUSTER_FEED_MAX] = { "cluster-feed-max", true, false, "N",
				    "records the feed keeps, about (default 100000)" },
	[DOPT_LOG_LEVEL] = { "log-level", true, true, "LEVEL",
			     "error, warning, notice, info (default) or debug" },
	[DOPT_CONFIG] = { "config", true, false, "FILE",
			  "read settings from FILE (key = value); SIGHUP re-reads it" },
};

const char *dopt_name(enum dopt o)
{
	return defs[o].name;
}

bool dopt_reloadable(enum dopt o)
{
	return defs[o].reloadable;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Decimal digits only (no sign, spaces or suffix), within [min, max]. */
static int parse_dec(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_mode(const char *s, uint32_t *out)
{
	uint32_t v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (uint32_t)(*s - '0');
	}
	if (v == 0 || v > 0777)
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static int parse_name(const char *arg, char *out, const char **why)
{
	const char *body = arg[0] == '/' ? arg + 1 : arg;
	size_t n = strlen(body);

	if (n == 0)
		*why = "empty registry name";
	else if (n > CONNREG_NAME_MAX)
		*why = "longer than 200 characters";
	else if (strspn(body, NAME_CHARS) != n)
		*why = "only A-Z a-z 0-9 . _ - may follow the leading /";
	else if (strcmp(body, ".") == 0 || strcmp(body, "..") == 0)
		*why = "\".\" and \"..\" are not registry names";
	else {
		out[0] = '/';
		memcpy(out + 1, body, n + 1);
		return 0;
	}
	return -1;
}

/* Set one option from its text (val is NULL for a bare flag). 0 or -1. */
static int dopt_set(struct dopts *o, enum dopt id, const char *val, char *err, size_t errlen)
{
	const char *nm = defs[id].name, *why;
	uint64_t v;
	bool b;

	switch (id) {
	case DOPT_NAME:
		if (parse_name(val, o->name, &why))
			return fail(err, errlen, "bad --name \"%s\": %s", val, why);
		break;
	case DOPT_CAPACITY:
		if (parse_dec(val, 1, CONNREG_CAPACITY_LIMIT, &v))
			return fail(err, errlen, "bad --capacity \"%s\": expected 1 to %llu", val,
				    (unsigned long long)CONNREG_CAPACITY_LIMIT);
		o->capacity = v;
		break;
	case DOPT_KEY_MAX:
		if (parse_dec(val, 1, CONNREG_KEY_MAX_LIMIT, &v))
			return fail(err, errlen, "bad --key-max \"%s\": expected 1 to %u", val,
				    CONNREG_KEY_MAX_LIMIT);
		o->key_max = (uint32_t)v;
		break;
	case DOPT_MAX_THREADS:
		if (parse_dec(val, 1, UINT32_MAX, &v))
			return fail(err, errlen, "bad --max-threads \"%s\": expected a positive number",
				    val);
		o->max_threads = (uint32_t)v;
		break;
	case DOPT_MODE:
		if (parse_mode(val, &o->mode))
			return fail(err, errlen,
				    "bad --mode \"%s\": expected octal permission bits 1 to 0777", val);
		break;
	case DOPT_TRANSPORT_IS_PID:
	case DOPT_UNLINK_ON_EXIT:
		b = true;
		if (val && parse_bool(val, &b))
			return fail(err, errlen, "bad %s \"%s\": expected yes or no", nm, val);
		if (id == DOPT_TRANSPORT_IS_PID)
			o->transport_is_pid = b;
		else
			o->unlink_on_exit = b;
		break;
	case DOPT_REAP_INTERVAL:
	case DOPT_CHECK_INTERVAL:
		if (parse_dec(val, DOPT_MIN_INTERVAL_MS, DOPT_MAX_INTERVAL_MS, &v))
			return fail(err, errlen, "bad --%s \"%s\": expected %u to %u milliseconds", nm,
				    val, DOPT_MIN_INTERVAL_MS, DOPT_MAX_INTERVAL_MS);
		if (id == DOPT_REAP_INTERVAL)
			o->reap_ms = (uint32_t)v;
		else
			o->check_ms = (uint32_t)v;
		break;
	case DOPT_METRICS_LISTEN:
		if (*val == '\0' || strlen(val) >= sizeof(o->listen) || !strrchr(val, ':'))
			return fail(err, errlen,
				    "bad --metrics-listen \"%s\": expected HOST:PORT, [IPV6]:PORT or :PORT",
				    val);
		strcpy(o->listen, val);
		break;
	case DOPT_PIDFILE:
	case DOPT_CONFIG: {
		char *dst = id == DOPT_PIDFILE ? o->pidfile : o->config;

		if (*val == '\0' || strlen(val) >= PATH_MAX)
			return fail(err, errlen, "bad --%s: empty or too long a path", nm);
		strcpy(dst, val);
		break;
	}
	case DOPT_CLUSTER:
		if ((strncmp(val, "redis://", 8) != 0 || val[8] == '\0') &&
		    (strncmp(val, "unix://", 7) != 0 || val[7] != '/'))
			return fail(err, errlen,
				    "bad --cluster \"%s\": expected redis://HOST[:PORT] or "
				    "unix:///PATH/TO/SOCKET", val);
		if (strlen(val) >= sizeof(o->cluster))
			return fail(err, errlen, "bad --cluster: longer than %zu characters",
				    sizeof(o->cluster) - 1);
		strcpy(o->cluster, val);
		break;
	case DOPT_HOST_ID: {
		size_t n = strlen(val);

		if (n == 0 || n > DOPT_HOST_ID_MAX || strspn(val, NAME_CHARS) != n)
			return fail(err, errlen,
				    "bad --host-id \"%s\": expected 1 to %u of A-Z a-z 0-9 . _ -", val,
				    DOPT_HOST_ID_MAX);
		strcpy(o->host_id, val);
		break;
	}
	case DOPT_CLUSTER_VIEW:
		if (parse_name(val, o->cluster_view, &why))
			return fail(err, errlen, "bad --cluster-view \"%s\": %s", val, why);
		if (strlen(o->cluster_view) + 6 > CONNREG_NAME_MAX + 1)
			return fail(err, errlen,
				    "bad --cluster-view \"%s\": at most %u characters (the daemon "
				    "adds \".hosts\" for the hosts registry)", val,
				    CONNREG_NAME_MAX - 6);
		break;
	case DOPT_LEASE_MS:
		if (parse_dec(val, DOPT_MIN_LEASE_MS, DOPT_MAX_LEASE_MS, &v))
			return fail(err, errlen, "bad --lease-ms \"%s\": expected %u to %u milliseconds",
				    val, DOPT_MIN_LEASE_MS, DOPT_MAX_LEASE_MS);
		o->lease_ms = (uint32_t)v;
		break;
	case DOPT_CLUSTER_FEED_MAX:
		if (parse_dec(val, 100, 1000000000, &v))
			return fail(err, errlen, "bad --cluster-feed-max \"%s\": expected 100 to "
				    "1000000000 records", val);
		o->feed_max = v;
		break;
	case DOPT_LOG_LEVEL: {
		int l = dlog_parse_level(val);

		if (l < 0)
			return fail(err, errlen,
				    "bad --log-level \"%s\": expected error, warning, notice, info "
				    "or debug", val);
		o->log_level = l;
		break;
	}
	case DOPT_COUNT:
		return fail(err, errlen, "internal: no such option");
	}
	o->given |= 1u << id;
	return 0;
}

/* ------------------------------------------------------------------ */
/* command line                                                        */
/* ------------------------------------------------------------------ */

int dopts_parse_args(int argc, char **argv, struct dopts *cl, char *err, size_t errlen)
{
	struct option lopts[DOPT_COUNT + 3];
	int n = 0, c, idx;

	memset(cl, 0, sizeof(*cl));
	for (int i = 0; i < DOPT_COUNT; i++)
		lopts[n++] = (struct option){ defs[i].name,
					      defs[i].takes_value ? required_argument : no_argument,
					      NULL, 1000 + i };
	lopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lopts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	lopts[n] = (struct option){ NULL, 0, NULL, 0 };

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hV", lopts, &idx)) != -1) {
		if (c == 'h')
			return DOPTS_HELP;
		if (c == 'V')
			return DOPTS_VERSION;
		if (c == '?') {
			if (optopt)
				return fail(err, errlen, "unknown option -%c", optopt);
			return fail(err, errlen, "unknown option \"%s\"", argv[optind - 1]);
		}
		if (c == ':')
			return fail(err, errlen, "option \"%s\" needs a value", argv[optind - 1]);
		if (c < 1000 || c >= 1000 + DOPT_COUNT)
			return fail(err, errlen, "unexpected option");
		if (cl->given & (1u << (c - 1000)))
			return fail(err, errlen, "--%s given twice", defs[c - 1000].name);
		if (dopt_set(cl, (enum dopt)(c - 1000), optarg, err, errlen))
			return -1;
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument \"%s\" (every setting is an option)",
			    argv[optind]);
	return DOPTS_RUN;
}

/* ------------------------------------------------------------------ */
/* configuration file                                                  */
/* ------------------------------------------------------------------ */

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int read_config(const char *path, struct dopts *o, char *err, size_t errlen)
{
	char line[PATH_MAX + 64], msg[512];
	unsigned lineno = 0;
	uint32_t seen = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return fail(err, errlen, "cannot read --config %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *key, *val = NULL, *eq;
		int id = -1;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			fclose(f);
			return fail(err, errlen, "%s:%u: line too long", path, lineno);
		}
		key = trim(line);
		if (*key == '\0' || *key == '#' || *key == ';')
			continue;
		eq = strchr(key, '=');
		if (eq) {
			*eq = '\0';
			val = trim(eq + 1);
			key = trim(key);
		}
		for (int i = 0; i < DOPT_COUNT; i++)
			if (i != DOPT_CONFIG && strcmp(key, defs[i].name) == 0)
				id = i;
		if (id < 0) {
			fclose(f);
			return fail(err, errlen, "%s:%u: unknown setting \"%s\"", path, lineno, key);
		}
		if (seen & (1u << id)) {
			fclose(f);
			return fail(err, errlen, "%s:%u: %s set twice", path, lineno, key);
		}
		seen |= 1u << id;
		if (!val && defs[id].takes_value) {
			fclose(f);
			return fail(err, errlen, "%s:%u: %s needs \"= value\"", path, lineno, key);
		}
		if (dopt_set(o, (enum dopt)id, val, msg, sizeof(msg))) {
			fclose(f);
			return fail(err, errlen, "%s:%u: %s", path, lineno, msg);
		}
	}
	if (ferror(f)) {
		fclose(f);
		return fail(err, errlen, "cannot read --config %s: %s", path, strerror(errno));
	}
	fclose(f);
	return 0;
}

static void copy_field(struct dopts *dst, const struct dopts *src, enum dopt id)
{
	switch (id) {
	case DOPT_NAME:
		memcpy(dst->name, src->name, sizeof(dst->name));
		break;
	case DOPT_CAPACITY:
		dst->capacity = src->capacity;
		break;
	case DOPT_KEY_MAX:
		dst->key_max = src->key_max;
		break;
	case DOPT_MAX_THREADS:
		dst->max_threads = src->max_threads;
		break;
	case DOPT_MODE:
		dst->mode = src->mode;
		break;
	case DOPT_TRANSPORT_IS_PID:
		dst->transport_is_pid = src->transport_is_pid;
		break;
	case DOPT_REAP_INTERVAL:
		dst->reap_ms = src->reap_ms;
		break;
	case DOPT_CHECK_INTERVAL:
		dst->check_ms = src->check_ms;
		break;
	case DOPT_METRICS_LISTEN:
		memcpy(dst->listen, src->listen, sizeof(dst->listen));
		break;
	case DOPT_UNLINK_ON_EXIT:
		dst->unlink_on_exit = src->unlink_on_exit;
		break;
	case DOPT_PIDFILE:
		memcpy(dst->pidfile, src->pidfile, sizeof(dst->pidfile));
		break;
	case DOPT_CLUSTER:
		memcpy(dst->cluster, src->cluster, sizeof(dst->cluster));
		break;
	case DOPT_HOST_ID:
		memcpy(dst->host_id, src->host_id, sizeof(dst->host_id));
		break;
	case DOPT_CLUSTER_VIEW:
		memcpy(dst->cluster_view, src->cluster_view, sizeof(dst->cluster_view));
		break;
	case DOPT_LEASE_MS:
		dst->lease_ms = src->lease_ms;
		break;
	case DOPT_CLUSTER_FEED_MAX:
		dst->feed_max = src->feed_max;
		break;
	case DOPT_LOG_LEVEL:
		dst->log_level = src->log_level;
		break;
	case DOPT_CONFIG:
		memcpy(dst->config, src->config, sizeof(dst->config));
		break;
	case DOPT_COUNT:
		break;
	}
	dst->given |= src->given & (1u << id);
}

int dopts_resolve(const struct dopts *cl, struct dopts *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->key_max = DOPT_DEFAULT_KEY_MAX;
	out->max_threads = DOPT_DEFAULT_MAX_THREADS;
	out->mode = DOPT_DEFAULT_MODE;
	out->reap_ms = DOPT_DEFAULT_REAP_MS;
	out->check_ms = DOPT_DEFAULT_CHECK_MS;
	out->log_level = LOG_LVL_INFO;
	out->lease_ms = DOPT_DEFAULT_LEASE_MS;
	out->feed_max = DOPT_DEFAULT_FEED_MAX;

	if ((cl->given & (1u << DOPT_CONFIG)) && read_config(cl->config, out, err, errlen))
		return -1;
	for (int i = 0; i < DOPT_COUNT; i++)
		if (cl->given & (1u << i))
			copy_field(out, cl, (enum dopt)i);
	if (!(out->given & (1u << DOPT_NAME)))
		return fail(err, errlen, "--name /NAME is required");
	if (!(out->given & (1u << DOPT_CAPACITY)))
		return fail(err, errlen, "--capacity N is required");
	{
		const uint32_t cl_bits = (1u << DOPT_CLUSTER) | (1u << DOPT_HOST_ID) |
					 (1u << DOPT_CLUSTER_VIEW);
		const uint32_t opt_bits = (1u << DOPT_LEASE_MS) | (1u << DOPT_CLUSTER_FEED_MAX);
		uint32_t got = out->given & cl_bits;

		if (got && got != cl_bits)
			return fail(err, errlen, "--cluster, --host-id and --cluster-view go together: "
				    "give all three or none");
		if (!got && (out->given & opt_bits))
			return fail(err, errlen, "--lease-ms and --cluster-feed-max need --cluster");
		if (got && strcmp(out->cluster_view, out->name) == 0)
			return fail(err, errlen, "--cluster-view must name another registry than "
				    "--name");
	}
	return 0;
}

void dopt_format(const struct dopts *o, enum dopt which, char *buf, size_t len)
{
	switch (which) {
	case DOPT_NAME:
		snprintf(buf, len, "%s", o->name);
		break;
	case DOPT_CAPACITY:
		snprintf(buf, len, "%" PRIu64, o->capacity);
		break;
	case DOPT_KEY_MAX:
		snprintf(buf, len, "%" PRIu32, o->key_max);
		break;
	case DOPT_MAX_THREADS:
		snprintf(buf, len, "%" PRIu32, o->max_threads);
		break;
	case DOPT_MODE:
		snprintf(buf, len, "0%03" PRIo32, o->mode);
		break;
	case DOPT_TRANSPORT_IS_PID:
		snprintf(buf, len, "%s", o->transport_is_pid ? "yes" : "no");
		break;
	case DOPT_REAP_INTERVAL:
		snprintf(buf, len, "%" PRIu32, o->reap_ms);
		break;
	case DOPT_CHECK_INTERVAL:
		snprintf(buf, len, "%" PRIu32, o->check_ms);
		break;
	case DOPT_METRICS_LISTEN:
		snprintf(buf, len, "%s", o->listen[0] ? o->listen : "(none)");
		break;
	case DOPT_UNLINK_ON_EXIT:
		snprintf(buf, len, "%s", o->unlink_on_exit ? "yes" : "no");
		break;
	case DOPT_PIDFILE:
		snprintf(buf, len, "%s", o->pidfile[0] ? o->pidfile : "(none)");
		break;
	case DOPT_CLUSTER:
		snprintf(buf, len, "%s", o->cluster[0] ? o->cluster : "(none)");
		break;
	case DOPT_HOST_ID:
		snprintf(buf, len, "%s", o->host_id[0] ? o->host_id : "(none)");
		break;
	case DOPT_CLUSTER_VIEW:
		snprintf(buf, len, "%s", o->cluster_view[0] ? o->cluster_view : "(none)");
		break;
	case DOPT_LEASE_MS:
		snprintf(buf, len, "%" PRIu32, o->lease_ms);
		break;
	case DOPT_CLUSTER_FEED_MAX:
		snprintf(buf, len, "%" PRIu64, o->feed_max);
		break;
	case DOPT_LOG_LEVEL:
		snprintf(buf, len, "%s", dlog_level_name(o->log_level));
		break;
	case DOPT_CONFIG:
		snprintf(buf, len, "%s", o->config[0] ? o->config : "(none)");
		break;
	case DOPT_COUNT:
		snprintf(buf, len, "?");
		break;
	}
}

bool dopt_differs(const struct dopts *a, const struct dopts *b, enum dopt o)
{
	char x[PATH_MAX + 16], y[PATH_MAX + 16];

	dopt_format(a, o, x, sizeof(x));
	dopt_format(b, o, y, sizeof(y));
	return strcmp(x, y) != 0;
}

void dopts_usage(FILE *out)
{
	fputs("Usage: connregd --name /NAME --capacity N [OPTIONS]\n"
	      "\n"
	      "Create (or adopt) a connreg registry and look after it: reap the ids of\n"
	      "exited transport processes, check its invariants, serve Prometheus metrics,\n"
	      "and tell systemd when it is ready. Runs in the foreground.\n"
	      "\n"
	      "Options:\n",
	      out);
	for (int i = 0; i < DOPT_COUNT; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", defs[i].name, defs[i].arg ? " " : "",
			 defs[i].arg ? defs[i].arg : "");
		fprintf(out, "  %-28s %s\n", left, defs[i].help);
	}
	fputs("  -h, --help                   print this help and exit\n"
	      "  -V, --version                print the version and exit\n"
	      "\n"
	      "An existing registry is adopted only when its capacity, key-max, max-threads\n"
	      "and transport-is-pid match these settings (defaults included).\n"
	      "SIGTERM or SIGINT: stop (exit 0). SIGHUP: re-read --config, apply\n"
	      "reap-interval-ms, check-interval-ms and log-level, check and reap at once.\n"
	      "Exit status: 0 stopped cleanly, 2 usage error or configuration mismatch,\n"
	      "3 system error (the registry cannot be created or opened, is corrupt or\n"
	      "served by another connregd; the metrics address cannot be bound).\n"
	      "See connregd(8).\n",
	      out);
}
