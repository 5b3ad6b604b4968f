/*
 * The connreg command-line tool, driven as a real binary (fork + exec):
 * every subcommand, every documented exit code, bad arguments, missing and
 * corrupt registries, binary ids through list/dump/load, JSON output, and
 * watch seeing a change made by another connreg process.
 *
 * The binary is $CONNREG_CLI, else "connreg" next to this test binary (or
 * in tools/cli/ below it). The library is used directly only to set up and
 * to verify what the tool did.
 */
#include "common.h"

#include <ctype.h>
#include <poll.h>

TestSuite(cli, .fini = t_cleanup_names, .timeout = 120);

#define CLI_RUN_TIMEOUT_MS 30000

/* ------------------------------------------------------------------ */
/* running the binary                                                  */
/* ------------------------------------------------------------------ */

static const char *cli_path(void)
{
	static char path[PATH_MAX + 32];
	const char *p = t_sibling_binary("CONNREG_CLI", "connreg", path, sizeof(path));

	if (p == path && access(path, X_OK) != 0) {
		/* a build tree that puts it in tools/cli/ */
		*strrchr(path, '/') = '\0';
		strncat(path, "/tools/cli/connreg", sizeof(path) - strlen(path) - 1);
	}
	return p;
}

/* A running connreg and what it has written so far. */
struct proc {
	pid_t pid;
	int in, out, err; /* our ends of its stdin, stdout, stderr; -1 when closed */
	char *obuf, *ebuf;
	size_t olen, elen, ocap, ecap;
	const char *input; /* left to write to its stdin */
	size_t input_len;
	int status; /* exit code, or T_WAIT_SIGNALED + signal, T_WAIT_TIMEOUT */
};

static void cli_spawn(struct proc *p, const char *input, size_t input_len,
		      const char *const args[])
{
	const char *path = cli_path();
	int pin[2], pout[2], perr[2];
	const char *argv[64];
	size_t n = 0;

	cr_assert(access(path, X_OK) == 0,
		  "connreg binary not found at %s (set CONNREG_CLI to its path)", path);
	argv[n++] = path;
	for (size_t i = 0; args[i]; i++) {
		cr_assert(n < 63, "too many arguments");
		argv[n++] = args[i];
	}
	argv[n] = NULL;

	memset(p, 0, sizeof(*p));
	cr_assert(pipe2(pin, O_CLOEXEC) == 0 && pipe2(pout, O_CLOEXEC) == 0 &&
		  pipe2(perr, O_CLOEXEC) == 0);
	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	cr_assert(p->pid >= 0, "fork: %s", strerror(errno));
	if (p->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	p->in = pin[1];
	p->out = pout[0];
	p->err = perr[0];
	p->input = input;
	p->input_len = input ? input_len : 0;
	if (!p->input_len) {
		close(p->in);
		p->in = -1;
	}
	else
		fcntl(p->in, F_SETFL, O_NONBLOCK);
	p->status = -1;
}

static void buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = realloc(*buf, *cap);
		cr_assert_not_null(*buf);
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/*
 * Move data between the pipes for up to timeout_ms, or until `until`
 * (if not NULL) appears on its stderr. Returns true when both outputs
 * reached end of file (or `until` was seen).
 */
static bool cli_pump(struct proc *p, unsigned timeout_ms, const char *until)
{
	uint64_t deadline = t_now_ms() + timeout_ms;
	char chunk[65536];

	while (p->out >= 0 || p->err >= 0) {
		struct pollfd fds[3];
		int nfds = 0, k;

		if (until && p->ebuf && strstr(p->ebuf, until))
			return true;
		if (t_now_ms() >= deadline)
			return false;
		fds[nfds++] = (struct pollfd){ .fd = p->out, .events = POLLIN };
		fds[nfds++] = (struct pollfd){ .fd = p->err, .events = POLLIN };
		fds[nfds++] = (struct pollfd){ .fd = p->in, .events = POLLOUT };
		k = poll(fds, (nfds_t)nfds, 50);
		if (k < 0 && errno != EINTR)
			cr_assert_fail("poll: %s", strerror(errno));
		if (k <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &p->out : &p->err;
			ssize_t r;

			if (*fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(*fd, chunk, sizeof(chunk));
			if (r > 0 && i == 0)
				buf_append(&p->obuf, &p->olen, &p->ocap, chunk, (size_t)r);
			else if (r > 0)
				buf_append(&p->ebuf, &p->elen, &p->ecap, chunk, (size_t)r);
			else if (r == 0 || errno != EINTR) {
				close(*fd);
				*fd = -1;
			}
		}
		if (p->in >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(p->in, p->input, p->input_len);

			if (w > 0) {
				p->input += w;
				p->input_len -= (size_t)w;
			}
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || p->input_len == 0) {
				close(p->in);
				p->in = -1;
			}
		}
	}
	return !until || (p->ebuf && strstr(p->ebuf, until));
}

/* Collect everything and the exit status; the process is gone afterwards. */
static int cli_finish(struct proc *p)
{
	bool done = cli_pump(p, CLI_RUN_TIMEOUT_MS, NULL);

	if (!done)
		kill(p->pid, SIGKILL);
	p->status = t_wait(p->pid, done ? CLI_RUN_TIMEOUT_MS : 1000);
	if (p->in >= 0)
		close(p->in);
	if (p->out >= 0)
		close(p->out);
	if (p->err >= 0)
		close(p->err);
	p->in = p->out = p->err = -1;
	/* Never NULL, so tests can strstr() freely. */
	if (!p->obuf)
		buf_append(&p->obuf, &p->olen, &p->ocap, "", 0);
	if (!p->ebuf)
		buf_append(&p->ebuf, &p->elen, &p->ecap, "", 0);
	return p->status;
}

static void proc_free(struct proc *p)
{
	free(p->obuf);
	free(p->ebuf);
	p->obuf = p->ebuf = NULL;
}

static int cli_run_argv(struct proc *p, const char *input, size_t input_len,
			const char *const args[])
{
	cli_spawn(p, input, input_len, args);
	return cli_finish(p);
}

/* RUN(&p, "get", name, "x"): run connreg with these arguments, no stdin. */
#define RUN(p, ...) cli_run_argv((p), NULL, 0, (const char *const[]){ __VA_ARGS__, NULL })
/* RUN_IN(&p, input, len, "load", name, "-"): with this standard input. */
#define RUN_IN(p, in, len, ...) \
	cli_run_argv((p), (in), (len), (const char *const[]){ __VA_ARGS__, NULL })

/* Run, expect an exit status, and free the output. */
#define EXPECT_EXIT(want, ...)                                                             \
	do {                                                                               \
		struct proc p_;                                                            \
		int st_ = RUN(&p_, __VA_ARGS__);                                           \
		cr_expect_eq(st_, (want), "connreg %s: exit %d, want %d; stderr: %s",      \
			     #__VA_ARGS__, st_, (want), p_.ebuf);                          \
		proc_free(&p_);                                                            \
	} while (0)

#define EXPECT_CONTAINS(buf, s) \
	cr_expect(strstr((buf), (s)) != NULL, "expected \"%s\" in:\n%s", (s), (buf))

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/* Create a registry through the CLI. */
static const char *make_reg(char *name, const char *tag, const char *capacity)
{
	struct proc p;

	t_name(name, tag);
	cr_assert_eq(RUN(&p, "create", name, "--capacity", capacity), 0, "create %s: %s", name,
		     p.ebuf);
	proc_free(&p);
	return name;
}

static connreg_t *open_reg(const char *name)
{
	connreg_t *r = NULL;
	int rc = connreg_open(name, &r);

	cr_assert_eq(rc, 0, "connreg_open(%s): %s", name, connreg_strerror(rc));
	return r;
}

static uint64_t api_get(const char *name, const void *id, size_t len, int *rc)
{
	connreg_t *r = open_reg(name);
	uint64_t t = 0;

	*rc = connreg_get_transport(r, id, len, &t);
	connreg_close(r);
	return t;
}

static uint64_t live_count(const char *name)
{
	connreg_t *r = open_reg(name);
	connreg_stats_t st = { .size = sizeof(st) };

	cr_assert_eq(connreg_stats(r, &st), 0);
	connreg_close(r);
	return st.live;
}

/* ------------------------------------------------------------------ */
/* a small JSON validator: is the output really JSON?                  */
/* ------------------------------------------------------------------ */

static const char *js_value(const char *p, int depth);

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c >= 0x80) /* our output must be plain ASCII */
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						return NULL;
				p += 5;
			} else if (*p && strchr("\"\\/bfnrt", *p)) {
				p++;
			} else {
				return NULL;
			}
		} else {
			p++;
		}
	}
	return p + 1;
}

static const char *js_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		if (!(*++p >= '0' && *p <= '9'))
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static const char *js_seq(const char *p, char close, bool object, int depth)
{
	p = js_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			p = js_string(js_ws(p));
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = js_value(p, depth + 1);
		if (!p)
			return NULL;
		p = js_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = js_ws(p);
	switch (*p) {
	case '{':
		return js_seq(p, '}', true, depth);
	case '[':
		return js_seq(p, ']', false, depth);
	case '"':
		return js_string(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	default:
		return js_number(p);
	}
}

static bool json_valid(const char *s)
{
	const char *end = js_value(s, 0);

	return end && *js_ws(end) == '\0';
}

Test(cli, json_validator_sanity)
{
	cr_assert(json_valid("{\"a\":[1,-2.5,\"x\\\\y\\u0001\",true,null,{}]}\n"));
	cr_assert(!json_valid("{\"a\":1,}"));
	cr_assert(!json_valid("{\"a\":\"\\x00\"}"));
	cr_assert(!json_valid("[1] x"));
}

/* ------------------------------------------------------------------ */
/* help, version, usage errors                                          */
/* ------------------------------------------------------------------ */

static const char *const all_commands[] = {
	"create", "unlink", "get", "register", "update", "unregister", "cas",
	"list", "dump", "load", "stat", "check", "reap", "watch", "hosts",
};

#define N_ALL_COMMANDS (sizeof(all_commands) / sizeof(all_commands[0]))

Test(cli, version_and_help)
{
	struct proc p;
	char want[64], usage[64];

	snprintf(want, sizeof(want), "connreg %d.%d", CONNREG_VERSION_MAJOR,
		 CONNREG_VERSION_MINOR);
	cr_expect_eq(RUN(&p, "--version"), 0);
	EXPECT_CONTAINS(p.obuf, want);
	proc_free(&p);

	cr_expect_eq(RUN(&p, "--help"), 0);
	for (size_t i = 0; i < N_ALL_COMMANDS; i++)
		EXPECT_CONTAINS(p.obuf, all_commands[i]);
	EXPECT_CONTAINS(p.obuf, "Exit status");
	proc_free(&p);

	cr_expect_eq(RUN(&p, "help"), 0);
	EXPECT_CONTAINS(p.obuf, "Commands:");
	proc_free(&p);

	for (size_t i = 0; i < N_ALL_COMMANDS; i++) {
		snprintf(usage, sizeof(usage), "Usage: connreg %s", all_commands[i]);
		cr_expect_eq(RUN(&p, all_commands[i], "--help"), 0, "%s --help", all_commands[i]);
		EXPECT_CONTAINS(p.obuf, usage);
		proc_free(&p);
		cr_expect_eq(RUN(&p, "help", all_commands[i]), 0, "help %s", all_commands[i]);
		EXPECT_CONTAINS(p.obuf, usage);
		proc_free(&p);
	}
}

Test(cli, unknown_commands_and_options_are_usage_errors)
{
	struct proc p;

	cr_expect_eq(RUN(&p, "frobnicate"), 2);
	EXPECT_CONTAINS(p.ebuf, "unknown command \"frobnicate\"");
	proc_free(&p);
	cr_expect_eq(cli_run_argv(&p, NULL, 0, (const char *const[]){ NULL }), 2);
	EXPECT_CONTAINS(p.ebuf, "missing command");
	proc_free(&p);
	EXPECT_EXIT(2, "--frob");
	EXPECT_EXIT(2, "help", "frobnicate");
	EXPECT_EXIT(2, "help", "get", "extra");
	EXPECT_EXIT(2, "get", "--frob", "/x", "id");
	EXPECT_EXIT(2, "list", "--text", "/x");	/* id syntax on an id-less command */
	EXPECT_EXIT(2, "stat", "--escaped", "/x");
	EXPECT_EXIT(2, "dump", "--json", "/x");
	EXPECT_EXIT(2, "get", "--text", "--escaped", "/x", "id");
}

Test(cli, missing_and_extra_arguments_are_usage_errors)
{
	static const char *const one_name[] = { "unlink", "list", "dump", "stat", "check", "reap" };
	struct proc p;

	for (size_t i = 0; i < sizeof(one_name) / sizeof(one_name[0]); i++) {
		EXPECT_EXIT(2, one_name[i]);
		EXPECT_EXIT(2, one_name[i], "/a", "/b");
	}
	EXPECT_EXIT(2, "create", "/a");	/* --capacity is required */
	EXPECT_EXIT(2, "create", "--capacity", "5");
	EXPECT_EXIT(2, "create", "--capacity");
	EXPECT_EXIT(2, "get", "/a");
	EXPECT_EXIT(2, "get", "/a", "b", "c");
	EXPECT_EXIT(2, "register", "/a", "id");
	EXPECT_EXIT(2, "register", "/a", "id", "1", "2");
	EXPECT_EXIT(2, "update", "/a", "id");
	EXPECT_EXIT(2, "unregister", "/a");
	EXPECT_EXIT(2, "cas", "/a", "id", "1");
	EXPECT_EXIT(2, "load", "/a");
	EXPECT_EXIT(2, "watch", "/a");

	cr_expect_eq(RUN(&p, "get", "/a"), 2);
	EXPECT_CONTAINS(p.ebuf, "connreg: get: missing arguments");
	EXPECT_CONTAINS(p.ebuf, "Try 'connreg get --help'");
	proc_free(&p);
}

Test(cli, bad_numbers_are_usage_errors)
{
	static const char *const bad[] = {
		"18446744073709551616", "0x10000000000000000", "99999999999999999999999",
		"-1", "+1", " 1", "1 ", "", "0x", "12abc", "0x12g", "1e3", "1.0",
	};
	char name[T_NAME_BUF];
	struct proc p;

	make_reg(name, "cli-badnum", "8");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(RUN(&p, "register", name, "--", "id", bad[i]), 2, "transport \"%s\"",
			     bad[i]);
		proc_free(&p);
		EXPECT_EXIT(2, "cas", name, "--", "id", "1", bad[i]);
		EXPECT_EXIT(2, "cas", name, "--", "id", bad[i], "1");
	}
	cr_expect_eq(RUN(&p, "register", name, "id", "18446744073709551616"), 2);
	EXPECT_CONTAINS(p.ebuf, "bad TRANSPORT \"18446744073709551616\"");
	proc_free(&p);
	cr_expect_eq(live_count(name), 0, "no bad number may register anything");

	EXPECT_EXIT(2, "create", "--capacity", "0", name);
	EXPECT_EXIT(2, "create", "--capacity", "-5", name);
	EXPECT_EXIT(2, "create", "--capacity", "lots", name);
	EXPECT_EXIT(2, "create", "--capacity", "18446744073709551615", name);
	EXPECT_EXIT(2, "create", "--capacity", "8", "--key-max", "0", name);
	EXPECT_EXIT(2, "create", "--capacity", "8", "--key-max", "4097", name);
	EXPECT_EXIT(2, "create", "--capacity", "8", "--mode", "0999", name);
	EXPECT_EXIT(2, "create", "--capacity", "8", "--mode", "rw", name);
	EXPECT_EXIT(2, "create", "--capacity", "8", "--mode", "01777", name);
	EXPECT_EXIT(2, "create", "--capacity", "8", "--max-threads", "0", name);
	EXPECT_EXIT(2, "create", "--capacity", "8", "--max-threads", "4294967296", name);
	EXPECT_EXIT(2, "watch", "--count", "0", name, "id");
	EXPECT_EXIT(2, "watch", "--count", "x", name, "id");
	EXPECT_EXIT(2, "watch", "--timeout", "-1", name, "id");
	EXPECT_EXIT(2, "watch", "--timeout", "99999999999", name, "id");
}

Test(cli, bad_names_and_ids_are_usage_errors)
{
	char long_name[260];
	char name[T_NAME_BUF];
	struct proc p;

	memset(long_name, 'a', sizeof(long_name));
	long_name[0] = '/';
	long_name[202] = '\0';	/* 201 characters after the slash */
	EXPECT_EXIT(2, "stat", "/a/b");
	EXPECT_EXIT(2, "stat", "");
	EXPECT_EXIT(2, "stat", "/");
	EXPECT_EXIT(2, "stat", "/..");
	EXPECT_EXIT(2, "stat", "/bad name");
	EXPECT_EXIT(2, "stat", long_name);
	EXPECT_EXIT(2, "create", "--capacity", "4", "/a*b");
	cr_expect_eq(RUN(&p, "get", "/a/b", "id"), 2);
	EXPECT_CONTAINS(p.ebuf, "bad registry name \"/a/b\"");
	proc_free(&p);

	make_reg(name, "cli-badid", "8");
	EXPECT_EXIT(2, "get", name, "");
	EXPECT_EXIT(2, "get", name, "0x");
	EXPECT_EXIT(2, "get", name, "0x123");	/* odd number of digits */
	EXPECT_EXIT(2, "get", name, "0xzz");
	EXPECT_EXIT(2, "get", "--escaped", name, "a\\q");
	EXPECT_EXIT(2, "get", "--escaped", name, "a\\x4");
	EXPECT_EXIT(2, "get", "--escaped", name, "trailing\\");
	cr_expect_eq(RUN(&p, "get", name, "0xzz"), 2);
	EXPECT_CONTAINS(p.ebuf, "--text");	/* tells how to give such an id literally */
	proc_free(&p);
}

/* ------------------------------------------------------------------ */
/* create, unlink, missing and corrupt registries                       */
/* ------------------------------------------------------------------ */

Test(cli, create_with_options_then_unlink)
{
	char name[T_NAME_BUF], path[T_NAME_BUF + 16];
	struct proc p;
	struct stat sb;

	t_name(name, "cli-create");
	cr_assert_eq(RUN(&p, "create", name, "--capacity", "50", "--key-max", "32", "--mode",
			 "0640", "--max-threads", "8", "--transport-is-pid"),
		     0, "%s", p.ebuf);
	cr_expect_eq(p.olen, 0, "create prints nothing: %s", p.obuf);
	proc_free(&p);

	connreg_t *r = open_reg(name);
	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(r, &st), 0);
	connreg_close(r);
	cr_expect_eq(st.capacity, 50);
	cr_expect_eq(st.key_max, 32);
	cr_expect_eq(st.max_threads, 8);
	cr_expect_eq(st.flags, CONNREG_TRANSPORT_IS_PID);
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	cr_assert_eq(stat(path, &sb), 0, "stat %s: %s", path, strerror(errno));
	cr_expect_eq(sb.st_mode & 0777, 0640, "mode %o", sb.st_mode & 0777);

	/* a taken name: system error 3, EEXIST named */
	cr_expect_eq(RUN(&p, "create", name, "--capacity", "5"), 3);
	EXPECT_CONTAINS(p.ebuf, "EEXIST");
	EXPECT_CONTAINS(p.ebuf, name);
	proc_free(&p);

	/* the leading slash may be left out */
	EXPECT_EXIT(0, "stat", name + 1);

	EXPECT_EXIT(0, "unlink", name);
	cr_expect_eq(RUN(&p, "unlink", name), 3);
	EXPECT_CONTAINS(p.ebuf, "ENOENT");
	proc_free(&p);
}

Test(cli, missing_registry_is_a_system_error)
{
	char name[T_NAME_BUF];
	struct proc p;

	t_name(name, "cli-missing");
	cr_expect_eq(RUN(&p, "get", name, "conn-1"), 3);
	EXPECT_CONTAINS(p.ebuf, "connreg: get ");
	EXPECT_CONTAINS(p.ebuf, name);
	EXPECT_CONTAINS(p.ebuf, "cannot open registry: ENOENT");
	proc_free(&p);
	EXPECT_EXIT(3, "stat", name);
	EXPECT_EXIT(3, "stat", "--json", name);
	EXPECT_EXIT(3, "list", name);
	EXPECT_EXIT(3, "dump", name);
	EXPECT_EXIT(3, "check", name);
	EXPECT_EXIT(3, "reap", name);
	EXPECT_EXIT(3, "register", name, "a", "1");
	EXPECT_EXIT(3, "update", name, "a", "1");
	EXPECT_EXIT(3, "unregister", name, "a");
	EXPECT_EXIT(3, "cas", name, "a", "1", "2");
	EXPECT_EXIT(3, "watch", "--timeout", "10", name, "a");
	cr_expect_eq(RUN_IN(&p, "a\t1\n", 4, "load", name, "-"), 3);
	proc_free(&p);
}

Test(cli, corrupt_registry_is_a_system_error_naming_EPROTO)
{
	char name[T_NAME_BUF], junk[8192];
	struct proc p;
	uint64_t seed = 0xfeed;

	t_name(name, "cli-corrupt");
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert(fd >= 0, "shm_open: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(junk); i += 8) {
		uint64_t x = t_rand(&seed);
		memcpy(junk + i, &x, 8);
	}
	junk[0] = 'J';	/* not zero: a foreign magic, refused at once */
	cr_assert_eq(t_write_all(fd, junk, sizeof(junk)), 0);
	close(fd);

	cr_expect_eq(RUN(&p, "stat", name), 3);
	EXPECT_CONTAINS(p.ebuf, "EPROTO");
	EXPECT_CONTAINS(p.ebuf, name);
	proc_free(&p);
	EXPECT_EXIT(3, "get", name, "x");
	EXPECT_EXIT(3, "check", name);
	/* unlink removes it all the same */
	EXPECT_EXIT(0, "unlink", name);
}

/* ------------------------------------------------------------------ */
/* one id at a time                                                    */
/* ------------------------------------------------------------------ */

Test(cli, register_get_update_unregister)
{
	char name[T_NAME_BUF];
	struct proc p;
	int rc;

	make_reg(name, "cli-crud", "16");
	EXPECT_EXIT(0, "register", name, "conn-1", "42");
	cr_expect_eq(api_get(name, "conn-1", 6, &rc), 42);
	cr_expect_eq(rc, 0);

	cr_expect_eq(RUN(&p, "get", name, "conn-1"), 0);
	cr_expect_str_eq(p.obuf, "42\n");
	proc_free(&p);

	/* full 64-bit range, decimal and hex */
	EXPECT_EXIT(0, "update", name, "conn-1", "18446744073709551615");
	cr_expect_eq(api_get(name, "conn-1", 6, &rc), UINT64_MAX);
	EXPECT_EXIT(0, "update", name, "conn-1", "0xFFFFFFFFFFFFFFFE");
	cr_expect_eq(api_get(name, "conn-1", 6, &rc), UINT64_MAX - 1);
	EXPECT_EXIT(0, "register", name, "conn-1", "0");
	cr_expect_eq(RUN(&p, "get", name, "conn-1"), 0);
	cr_expect_str_eq(p.obuf, "0\n");
	proc_free(&p);

	/* not found: exit 1, message names registry, id and reason */
	cr_expect_eq(RUN(&p, "get", name, "conn-2"), 1);
	cr_expect_eq(p.olen, 0);
	char want[T_NAME_BUF + 64];
	snprintf(want, sizeof(want), "connreg: get %s \"conn-2\": ENOENT", name);
	EXPECT_CONTAINS(p.ebuf, want);
	proc_free(&p);
	EXPECT_EXIT(1, "update", name, "conn-2", "5");
	cr_expect_eq(api_get(name, "conn-2", 6, &rc), 0);
	cr_expect_eq(rc, -ENOENT, "update must not insert");

	EXPECT_EXIT(0, "unregister", name, "conn-1");
	EXPECT_EXIT(1, "get", name, "conn-1");
	EXPECT_EXIT(0, "unregister", name, "conn-1");	/* idempotent */
	cr_expect_eq(live_count(name), 0);

	/* an id starting with '-' after "--" */
	EXPECT_EXIT(0, "register", name, "--", "-dash", "7");
	cr_expect_eq(api_get(name, "-dash", 5, &rc), 7);
}

Test(cli, cas_success_mismatch_and_absent)
{
	char name[T_NAME_BUF];
	struct proc p;
	int rc;

	make_reg(name, "cli-cas", "16");
	EXPECT_EXIT(0, "register", name, "c", "5");
	EXPECT_EXIT(0, "cas", name, "c", "5", "0x10");
	cr_expect_eq(api_get(name, "c", 1, &rc), 16);

	cr_expect_eq(RUN(&p, "cas", name, "c", "5", "6"), 1);
	cr_expect_str_eq(p.obuf, "16\n");
	EXPECT_CONTAINS(p.ebuf, "mismatch: transport is 16, not 5");
	proc_free(&p);
	cr_expect_eq(api_get(name, "c", 1, &rc), 16, "a failed cas changes nothing");

	cr_expect_eq(RUN(&p, "cas", name, "nope", "1", "2"), 1);
	EXPECT_CONTAINS(p.ebuf, "ENOENT");
	proc_free(&p);
}

Test(cli, library_errors_map_to_documented_exit_codes)
{
	char name[T_NAME_BUF];
	struct proc p;

	/* ENOSPC: system error 3 */
	make_reg(name, "cli-nospc", "1");
	EXPECT_EXIT(0, "register", name, "a", "1");
	cr_expect_eq(RUN(&p, "register", name, "b", "2"), 3);
	EXPECT_CONTAINS(p.ebuf, "ENOSPC");
	EXPECT_CONTAINS(p.ebuf, "\"b\"");
	proc_free(&p);

	/* ENAMETOOLONG: the argument was bad, 2 */
	t_name(name, "cli-keymax");
	EXPECT_EXIT(0, "create", "--capacity", "4", "--key-max", "4", name);
	cr_expect_eq(RUN(&p, "register", name, "abcdef", "1"), 2);
	EXPECT_CONTAINS(p.ebuf, "ENAMETOOLONG");
	proc_free(&p);

	/* EOPNOTSUPP: reap on a registry without --transport-is-pid, 3 */
	cr_expect_eq(RUN(&p, "reap", name), 3);
	EXPECT_CONTAINS(p.ebuf, "EOPNOTSUPP");
	proc_free(&p);
}

/* ------------------------------------------------------------------ */
/* binary ids: syntax, escaping, list/dump/load round trip              */
/* ------------------------------------------------------------------ */

struct bin_id {
	const char *bytes;
	size_t len;
};

/* Every kind of byte the escaping treats specially. */
static const struct bin_id tricky_ids[] = {
	{ "\x00\xff\x5c\x09", 4 },
	{ "tab\there", 8 },
	{ "new\nline\r", 9 },
	{ "back\\slash", 10 },
	{ "quote\"d 'x'", 11 },
	{ " spaces ", 8 },
	{ "0xcafe", 6 },
	{ "\x7f\x80\xc3\xa9", 4 },
	{ "\\x41", 4 },
	{ "plain", 5 },
};

#define N_TRICKY (sizeof(tricky_ids) / sizeof(tricky_ids[0]))

static void register_tricky(const char *name)
{
	connreg_t *r = open_reg(name);

	for (size_t i = 0; i < N_TRICKY; i++)
		cr_assert_eq(connreg_register(r, tricky_ids[i].bytes, tricky_ids[i].len, 1000 + i),
			     0);
	connreg_close(r);
}

Test(cli, id_syntax_hex_text_and_escaped)
{
	char name[T_NAME_BUF];
	struct proc p;
	int rc;

	make_reg(name, "cli-idsyntax", "16");
	EXPECT_EXIT(0, "register", name, "0x00ff5c09", "1");
	cr_expect_eq(api_get(name, "\x00\xff\x5c\x09", 4, &rc), 1);
	cr_expect_eq(rc, 0);
	EXPECT_EXIT(0, "register", "--text", name, "0xcafe", "2");
	cr_expect_eq(api_get(name, "0xcafe", 6, &rc), 2);
	cr_expect_eq(rc, 0);
	cr_expect_eq(api_get(name, "\xca\xfe", 2, &rc), 0);
	cr_expect_eq(rc, -ENOENT, "--text must not decode hex");
	EXPECT_EXIT(0, "register", "-e", name, "a\\\\b\\x00\\xFF", "3");
	cr_expect_eq(api_get(name, "a\\b\x00\xff", 5, &rc), 3);
	cr_expect_eq(rc, 0);

	cr_expect_eq(RUN(&p, "get", name, "0X00FF5C09"), 0);
	cr_expect_str_eq(p.obuf, "1\n");
	proc_free(&p);
	cr_expect_eq(RUN(&p, "get", "--escaped", name, "\\x00\\xff\\\\\\x09"), 0);
	cr_expect_str_eq(p.obuf, "1\n");
	proc_free(&p);

	/* binary ids in messages are escaped */
	cr_expect_eq(RUN(&p, "get", name, "0x0001"), 1);
	EXPECT_CONTAINS(p.ebuf, "\"\\x00\\x01\"");
	proc_free(&p);
}

Test(cli, list_escapes_ids_and_sorts)
{
	char name[T_NAME_BUF];
	struct proc p;

	make_reg(name, "cli-list", "32");
	register_tricky(name);
	cr_assert_eq(RUN(&p, "list", name), 0, "%s", p.ebuf);
	const char *want =
		"\\x00\\xff\\\\\\x09\t1000\n"
		" spaces \t1005\n"
		"0xcafe\t1006\n"
		"\\\\x41\t1008\n"
		"back\\\\slash\t1003\n"
		"new\\x0aline\\x0d\t1002\n"
		"plain\t1009\n"
		"quote\"d 'x'\t1004\n"
		"tab\\x09here\t1001\n"
		"\\x7f\\x80\\xc3\\xa9\t1007\n";
	cr_expect_str_eq(p.obuf, want);
	proc_free(&p);

	/* an empty registry lists nothing */
	char empty[T_NAME_BUF];
	make_reg(empty, "cli-list-empty", "4");
	cr_expect_eq(RUN(&p, "list", empty), 0);
	cr_expect_eq(p.olen, 0);
	proc_free(&p);
	cr_expect_eq(RUN(&p, "list", "--json", empty), 0);
	cr_expect(json_valid(p.obuf), "not JSON: %s", p.obuf);
	EXPECT_CONTAINS(p.obuf, "\"count\":0");
	proc_free(&p);
}

Test(cli, list_json_is_valid_and_complete)
{
	char name[T_NAME_BUF];
	struct proc p;

	make_reg(name, "cli-listjson", "32");
	register_tricky(name);
	EXPECT_EXIT(0, "register", name, "max", "18446744073709551615");
	cr_assert_eq(RUN(&p, "list", "--json", name), 0, "%s", p.ebuf);
	cr_expect(json_valid(p.obuf), "not valid JSON:\n%s", p.obuf);
	EXPECT_CONTAINS(p.obuf, "\"registry\":\"");
	EXPECT_CONTAINS(p.obuf, name);
	EXPECT_CONTAINS(p.obuf, "\"count\":11");
	EXPECT_CONTAINS(p.obuf,
			"\"id\":\"\\\\x00\\\\xff\\\\\\\\\\\\x09\",\"id_hex\":\"0x00ff5c09\"");
	EXPECT_CONTAINS(p.obuf, "\"id\":\"quote\\\"d 'x'\"");
	EXPECT_CONTAINS(p.obuf, "\"transport\":18446744073709551615");
	EXPECT_CONTAINS(p.obuf, "\"transport_hex\":\"0xffffffffffffffff\"");
	EXPECT_CONTAINS(p.obuf, "\"transport\":1009");
	proc_free(&p);
}

Test(cli, dump_then_load_round_trips_binary_ids_exactly)
{
	char src[T_NAME_BUF], dst[T_NAME_BUF];
	struct proc p;
	int rc;

	make_reg(src, "cli-dump-src", "32");
	make_reg(dst, "cli-dump-dst", "32");
	register_tricky(src);

	cr_assert_eq(RUN(&p, "dump", src), 0, "%s", p.ebuf);
	cr_expect_eq(p.elen, 0, "no progress bar or noise off a terminal: %s", p.ebuf);
	char *dump = strdup(p.obuf);
	size_t dump_len = p.olen;
	proc_free(&p);
	cr_assert_not_null(dump);
	/* one line per id, each "ID<TAB>TRANSPORT" with exactly one tab */
	size_t lines = 0;
	for (char *s = dump; *s; s++)
		lines += *s == '\n';
	cr_expect_eq(lines, N_TRICKY);

	cr_assert_eq(RUN_IN(&p, dump, dump_len, "load", dst, "-"), 0, "%s", p.ebuf);
	EXPECT_CONTAINS(p.obuf, "loaded 10 ids");
	proc_free(&p);
	free(dump);

	for (size_t i = 0; i < N_TRICKY; i++) {
		uint64_t t = api_get(dst, tricky_ids[i].bytes, tricky_ids[i].len, &rc);
		cr_expect_eq(rc, 0, "id %zu missing after load", i);
		cr_expect_eq(t, 1000 + i);
	}
	cr_expect_eq(live_count(dst), N_TRICKY, "no extra ids");

	/* list of both is identical */
	struct proc a, b;
	cr_assert_eq(RUN(&a, "list", src), 0);
	cr_assert_eq(RUN(&b, "list", dst), 0);
	cr_expect_str_eq(a.obuf, b.obuf);
	proc_free(&a);
	proc_free(&b);
}

Test(cli, load_from_file_accepts_hex_transports_crlf_and_blank_lines)
{
	char name[T_NAME_BUF], path[] = "/tmp/connreg-test-cli-XXXXXX";
	const char *text = "a\t1\r\n\nb\t0x10\nraw\xc3\xa9\t3\nlast\t4";
	struct proc p;
	int rc, fd;

	make_reg(name, "cli-loadfile", "16");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(t_write_all(fd, text, strlen(text)), 0);
	close(fd);
	rc = RUN(&p, "load", name, path);
	unlink(path);
	cr_expect_eq(rc, 0, "%s", p.ebuf);
	EXPECT_CONTAINS(p.obuf, "loaded 4 ids");
	proc_free(&p);
	cr_expect_eq(api_get(name, "a", 1, &rc), 1);
	cr_expect_eq(api_get(name, "b", 1, &rc), 16);
	cr_expect_eq(api_get(name, "raw\xc3\xa9", 5, &rc), 3);
	cr_expect_eq(rc, 0);
	cr_expect_eq(api_get(name, "last", 4, &rc), 4);

	cr_expect_eq(RUN(&p, "load", name, "/nonexistent/connreg-input"), 3);
	EXPECT_CONTAINS(p.ebuf, "No such file");
	proc_free(&p);
}

Test(cli, load_rejects_malformed_input_by_line_and_loads_nothing)
{
	char name[T_NAME_BUF];
	const char *text =
		"good\t1\n"
		"no tab here\n"
		"\t5\n"
		"x\t99999999999999999999\n"
		"bad\\qescape\t1\n"
		"toolongforkeymax\t3\n"
		"y\t\n"
		"z\t1\t2\n"
		"fine\t2\n";
	struct proc p;

	t_name(name, "cli-loadbad");
	EXPECT_EXIT(0, "create", "--capacity", "16", "--key-max", "8", name);
	cr_expect_eq(RUN_IN(&p, text, strlen(text), "load", name, "-"), 2);
	for (int line = 2; line <= 8; line++) {
		char want[32];
		snprintf(want, sizeof(want), "<stdin>:%d:", line);
		EXPECT_CONTAINS(p.ebuf, want);
	}
	cr_expect(strstr(p.ebuf, "<stdin>:1:") == NULL && strstr(p.ebuf, "<stdin>:9:") == NULL,
		  "good lines reported as bad: %s", p.ebuf);
	EXPECT_CONTAINS(p.ebuf, "7 malformed line(s); nothing loaded (0 of 2 ids)");
	proc_free(&p);
	cr_expect_eq(live_count(name), 0, "malformed input must load nothing");
}

Test(cli, load_stopped_by_a_full_registry_says_how_many_went_in)
{
	char name[T_NAME_BUF];
	const char *text = "a\t1\nb\t2\nc\t3\nd\t4\n";
	struct proc p;

	make_reg(name, "cli-loadfull", "2");
	cr_expect_eq(RUN_IN(&p, text, strlen(text), "load", name, "-"), 3);
	EXPECT_CONTAINS(p.ebuf, "\"c\": <stdin>:3: ENOSPC");
	EXPECT_CONTAINS(p.ebuf, "2 of 4 ids loaded before this error");
	proc_free(&p);
	cr_expect_eq(live_count(name), 2);
}

Test(cli, bulk_load_and_dump_of_many_ids_without_a_terminal)
{
	enum { N = 20000 };
	char name[T_NAME_BUF];
	struct proc p;
	size_t cap = (size_t)N * 32, len = 0;
	char *text = malloc(cap);

	cr_assert_not_null(text);
	make_reg(name, "cli-bulk", "20000");
	for (unsigned i = 0; i < N; i++)
		len += (size_t)snprintf(text + len, cap - len, "id-%u\t%u\n", i, i * 3);
	cr_expect_eq(RUN_IN(&p, text, len, "load", name, "-"), 0, "%s", p.ebuf);
	EXPECT_CONTAINS(p.obuf, "loaded 20000 ids");
	cr_expect_eq(p.elen, 0, "no progress bar when stderr is a pipe: %s", p.ebuf);
	proc_free(&p);
	free(text);
	cr_expect_eq(live_count(name), N);

	cr_expect_eq(RUN(&p, "dump", name), 0);
	size_t lines = 0;
	for (size_t i = 0; i < p.olen; i++)
		lines += p.obuf[i] == '\n';
	cr_expect_eq(lines, N);
	EXPECT_CONTAINS(p.obuf, "id-19999\t59997\n");
	cr_expect_eq(p.elen, 0);
	proc_free(&p);
}

/* ------------------------------------------------------------------ */
/* stat, check, reap                                                   */
/* ------------------------------------------------------------------ */

Test(cli, stat_text_and_json_show_counters_and_reader_pids)
{
	char name[T_NAME_BUF], want[64];
	struct proc p;
	uint64_t t;

	t_name(name, "cli-stat");
	EXPECT_EXIT(0, "create", "--capacity", "100", "--key-max", "48", "--max-threads", "16",
		    "--transport-is-pid", name);
	EXPECT_EXIT(0, "register", name, "a", "1");
	EXPECT_EXIT(0, "register", name, "b", "2");
	EXPECT_EXIT(0, "unregister", name, "b");

	/* this process holds a reader slot while the tool looks */
	connreg_t *r = open_reg(name);
	cr_assert_eq(connreg_get_transport(r, "a", 1, &t), 0);

	cr_assert_eq(RUN(&p, "stat", name), 0, "%s", p.ebuf);
	EXPECT_CONTAINS(p.obuf, "capacity         100\n");
	EXPECT_CONTAINS(p.obuf, "live ids         1\n");
	EXPECT_CONTAINS(p.obuf, "key_max          48 bytes");
	EXPECT_CONTAINS(p.obuf, "transport-is-pid");
	EXPECT_CONTAINS(p.obuf, "free entries");
	EXPECT_CONTAINS(p.obuf, "retired entries");
	EXPECT_CONTAINS(p.obuf, "tombstones");
	EXPECT_CONTAINS(p.obuf, "longest probe");
	EXPECT_CONTAINS(p.obuf, "safe epoch");
	EXPECT_CONTAINS(p.obuf, "segment size");
	EXPECT_CONTAINS(p.obuf, "layout version");
	EXPECT_CONTAINS(p.obuf, "of 16 in use");
	snprintf(want, sizeof(want), " %ld ", (long)getpid());
	EXPECT_CONTAINS(p.obuf, want);
	proc_free(&p);

	cr_assert_eq(RUN(&p, "stat", name, "--json"), 0, "%s", p.ebuf);
	cr_expect(json_valid(p.obuf), "not valid JSON:\n%s", p.obuf);
	static const char *const keys[] = {
		"\"registry\":", "\"layout_version\":", "\"segment_size\":", "\"flags\":1",
		"\"transport_is_pid\":true", "\"capacity\":100", "\"key_max\":48", "\"live\":1,",
		"\"free\":", "\"retired\":", "\"entries\":", "\"buckets\":", "\"tombstones\":",
		"\"max_probe\":", "\"epoch\":", "\"safe_epoch\":", "\"max_threads\":16",
		"\"readers\":", "\"reader_slots\":[{",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		EXPECT_CONTAINS(p.obuf, keys[i]);
	snprintf(want, sizeof(want), "\"pid\":%ld,", (long)getpid());
	EXPECT_CONTAINS(p.obuf, want);
	EXPECT_CONTAINS(p.obuf, "\"alive\":true");
	proc_free(&p);
	connreg_close(r);
}

Test(cli, check_sound_registry_exits_0)
{
	char name[T_NAME_BUF];
	struct proc p;

	make_reg(name, "cli-check", "64");
	register_tricky(name);
	cr_expect_eq(RUN(&p, "check", name), 0, "%s%s", p.obuf, p.ebuf);
	EXPECT_CONTAINS(p.obuf, "sound");
	proc_free(&p);
}

Test(cli, check_damaged_registry_exits_1_with_a_list)
{
	static const char marker[] = "CHECK-ME-the-key-bytes-of-one-entry";
	char name[T_NAME_BUF], path[T_NAME_BUF + 16];
	struct proc p;
	struct stat sb;
	int hits = 0;

	make_reg(name, "cli-damaged", "64");
	EXPECT_EXIT(0, "register", name, marker, "5");
	EXPECT_EXIT(0, "register", name, "other", "6");

	/* Scribble on the stored key: the record no longer matches its meta word. */
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	int fd = open(path, O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	char *base = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert(base != MAP_FAILED);
	/* Its first 16 bytes lie in the index line (layout.h, CR_KEY_INLINE). */
	for (char *at = base; (at = memmem(at, (size_t)(base + sb.st_size - at), marker, 16)) != NULL;
	     at++) {
		at[0] = 'X';
		hits++;
	}
	munmap(base, (size_t)sb.st_size);
	cr_assert_gt(hits, 0, "the id's bytes were not found in the segment");

	cr_expect_eq(RUN(&p, "check", name), 1, "%s%s", p.obuf, p.ebuf);
	EXPECT_CONTAINS(p.obuf, "problem");
	EXPECT_CONTAINS(p.obuf, "\n  ");	/* one indented line per problem */
	proc_free(&p);
}

static int sleep_until_killed(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

Test(cli, reap_removes_ids_of_dead_processes)
{
	char name[T_NAME_BUF], dead[16], alive[16];
	struct proc p;
	int rc;

	t_name(name, "cli-reap");
	EXPECT_EXIT(0, "create", "--capacity", "16", "--transport-is-pid", name);
	pid_t child = t_fork(sleep_until_killed, NULL);
	cr_assert_gt(child, 0);
	snprintf(dead, sizeof(dead), "%ld", (long)child);
	snprintf(alive, sizeof(alive), "%ld", (long)getpid());
	EXPECT_EXIT(0, "register", name, "gone", dead);
	EXPECT_EXIT(0, "register", name, "here", alive);
	kill(child, SIGKILL);
	cr_assert_eq(t_wait(child, 5000), T_WAIT_SIGNALED + SIGKILL);

	cr_expect_eq(RUN(&p, "reap", name), 0, "%s", p.ebuf);
	EXPECT_CONTAINS(p.obuf, "removed 1 id");
	proc_free(&p);
	api_get(name, "gone", 4, &rc);
	cr_expect_eq(rc, -ENOENT);
	cr_expect_eq(api_get(name, "here", 4, &rc), (uint64_t)getpid());
	cr_expect_eq(rc, 0);

	cr_expect_eq(RUN(&p, "reap", name), 0);
	EXPECT_CONTAINS(p.obuf, "removed 0 ids");
	proc_free(&p);
}

/* ------------------------------------------------------------------ */
/* watch                                                               */
/* ------------------------------------------------------------------ */

/* Start a watch and wait until it has read the id's state. */
static void start_watch(struct proc *w, const char *const args[])
{
	cli_spawn(w, NULL, 0, args);
	cr_assert(cli_pump(w, 10000, "watching"), "watch did not start: %s",
		  w->ebuf ? w->ebuf : "");
}

Test(cli, watch_sees_an_update_by_another_process)
{
	char name[T_NAME_BUF];
	struct proc w;

	make_reg(name, "cli-watch", "16");
	EXPECT_EXIT(0, "register", name, "conn-1", "41");
	start_watch(&w, (const char *const[]){ "watch", "--count", "1", "--timeout", "20000",
					       name, "conn-1", NULL });
	EXPECT_CONTAINS(w.ebuf, "transport 41");
	EXPECT_EXIT(0, "update", name, "conn-1", "42");
	cr_expect_eq(cli_finish(&w), 0, "watch: %s", w.ebuf);
	EXPECT_CONTAINS(w.obuf, " 41 -> 42\n");
	/* "YYYY-MM-DDTHH:MM:SS.mmm" leads the line */
	cr_expect(w.olen > 24 && w.obuf[4] == '-' && w.obuf[10] == 'T' && w.obuf[19] == '.',
		  "timestamp: %s", w.obuf);
	proc_free(&w);
}

Test(cli, watch_waits_for_an_absent_id)
{
	char name[T_NAME_BUF];
	struct proc w;

	make_reg(name, "cli-watch-absent", "16");
	start_watch(&w, (const char *const[]){ "watch", "--count", "1", "--timeout", "20000",
					       name, "0x00ff", NULL });
	EXPECT_CONTAINS(w.ebuf, "not registered yet");
	EXPECT_EXIT(0, "register", name, "0x00ff", "7");
	cr_expect_eq(cli_finish(&w), 0, "watch: %s", w.ebuf);
	EXPECT_CONTAINS(w.obuf, " - -> 7\n");
	proc_free(&w);
}

Test(cli, watch_reports_register_unregister_and_reregister_with_same_value)
{
	char name[T_NAME_BUF];
	struct proc w;

	make_reg(name, "cli-watch-seq", "16");
	start_watch(&w, (const char *const[]){ "watch", "--count", "3", "--timeout", "20000",
					       name, "0x00ff", NULL });
	EXPECT_EXIT(0, "register", name, "0x00ff", "7");
	/* each change must be seen before the next one is made */
	for (int i = 0; i < 200 && !(w.obuf && strstr(w.obuf, "- -> 7")); i++)
		cli_pump(&w, 50, NULL);
	EXPECT_EXIT(0, "unregister", name, "0x00ff");
	for (int i = 0; i < 200 && !(w.obuf && strstr(w.obuf, "7 -> -")); i++)
		cli_pump(&w, 50, NULL);
	EXPECT_EXIT(0, "register", name, "0x00ff", "7");
	cr_expect_eq(cli_finish(&w), 0, "watch: %s", w.ebuf);
	EXPECT_CONTAINS(w.obuf, " - -> 7\n");
	EXPECT_CONTAINS(w.obuf, " 7 -> -\n");
	const char *second = strstr(w.obuf, " 7 -> -\n");
	cr_expect(second && strstr(second, " - -> 7\n"), "re-register not seen: %s", w.obuf);
	proc_free(&w);
}

Test(cli, watch_timeout_before_count_exits_1)
{
	char name[T_NAME_BUF];
	struct proc p;

	make_reg(name, "cli-watch-timeout", "16");
	EXPECT_EXIT(0, "register", name, "x", "1");
	cr_expect_eq(RUN(&p, "watch", "--count", "1", "--timeout", "300", name, "x"), 1);
	EXPECT_CONTAINS(p.ebuf, "timed out after 300 ms with 0 of 1 changes");
	cr_expect_eq(p.olen, 0);
	proc_free(&p);
	/* without --count a timeout is the end of a bounded watch: 0 */
	EXPECT_EXIT(0, "watch", "--timeout", "100", name, "x");
	/* short options, after the arguments */
	EXPECT_EXIT(1, "watch", name, "x", "-c", "1", "-T", "100");
}

Test(cli, watch_ends_cleanly_on_SIGINT)
{
	char name[T_NAME_BUF];
	struct proc w;

	make_reg(name, "cli-watch-int", "16");
	EXPECT_EXIT(0, "register", name, "x", "1");
	start_watch(&w, (const char *const[]){ "watch", name, "x", NULL });
	cr_assert_eq(kill(w.pid, SIGINT), 0);
	cr_expect_eq(cli_finish(&w), 0, "watch after SIGINT: status %d, %s", w.status, w.ebuf);
	proc_free(&w);

	/* its reader slot was given back: no dead owner left behind */
	struct proc p;
	cr_expect_eq(RUN(&p, "check", name), 0, "%s", p.obuf);
	proc_free(&p);
}

/*
 * A cluster view as connregd --cluster-view keeps it (docs/cluster.md):
 * values are routes, (host number << 48) | transport, and VIEW.hosts maps
 * each host id to its number (bit 16: up). Written here through the
 * library, as connregd writes them, so no Redis is needed to read them.
 */
Test(cli, get_route_and_hosts_read_a_cluster_view)
{
	char view[T_NAME_BUF], hosts[T_NAME_BUF];
	connreg_config_t cfg;
	connreg_t *v, *h;
	struct proc p;

	make_reg(view, "cli-view", "16");
	cr_assert_lt(strlen(view) + sizeof(".hosts"), sizeof(hosts));
	memcpy(hosts, view, strlen(view));
	memcpy(hosts + strlen(view), ".hosts", sizeof(".hosts"));
	t_name_track(hosts);
	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = 16;
	cfg.key_max = 64;
	cr_assert_eq(connreg_create(hosts, &cfg, &h), 0);
	cr_assert_eq(connreg_register(h, "alpha", 5, 1 | (UINT64_C(1) << 16)), 0);	/* up */
	cr_assert_eq(connreg_register(h, "beta.dc-2", 9, 2), 0);			/* down */
	connreg_close(h);
	v = open_reg(view);
	cr_assert_eq(connreg_register(v, "conn-1", 6, (UINT64_C(2) << 48) | 4242), 0);
	cr_assert_eq(connreg_register(v, "conn-2", 6, (UINT64_C(7) << 48) | 99), 0);
	cr_assert_eq(connreg_register(v, "conn-3", 6, (UINT64_C(1) << 48) | 0xFFFFFFFFFFFFu), 0);
	connreg_close(v);

	cr_expect_eq(RUN(&p, "get", "--route", view, "conn-1"), 0, "%s", p.ebuf);
	cr_expect_str_eq(p.obuf, "beta.dc-2 4242\n");
	proc_free(&p);
	cr_expect_eq(RUN(&p, "get", "-r", view, "conn-3"), 0, "%s", p.ebuf);
	cr_expect_str_eq(p.obuf, "alpha 281474976710655\n");
	proc_free(&p);
	/* A host number the hosts registry does not name yet. */
	cr_expect_eq(RUN(&p, "get", "--route", view, "conn-2"), 0, "%s", p.ebuf);
	cr_expect_str_eq(p.obuf, "#7 99\n");
	proc_free(&p);
	/* Without --route: the raw value. */
	cr_expect_eq(RUN(&p, "get", view, "conn-1"), 0);
	cr_expect_str_eq(p.obuf, "562949953425554\n");	/* 2 << 48 | 4242 */
	proc_free(&p);
	EXPECT_EXIT(1, "get", "--route", view, "conn-9");
	EXPECT_EXIT(2, "register", "--route", view, "conn-9", "1");

	cr_expect_eq(RUN(&p, "hosts", view), 0, "%s", p.ebuf);
	cr_expect_str_eq(p.obuf, "1 alpha up\n2 beta.dc-2 down\n");
	proc_free(&p);
	cr_expect_eq(RUN(&p, "hosts", "--json", view), 0, "%s", p.ebuf);
	cr_expect_str_eq(p.obuf, "[{\"number\":1,\"host\":\"alpha\",\"up\":true},"
				 "{\"number\":2,\"host\":\"beta.dc-2\",\"up\":false}]\n");
	cr_expect(json_valid(p.obuf), "not JSON: %s", p.obuf);
	proc_free(&p);

	/* No hosts registry: a system error naming it, for get --route and hosts alike. */
	cr_assert_eq(connreg_unlink(hosts), 0);
	cr_expect_eq(RUN(&p, "get", "--route", view, "conn-1"), 3);
	EXPECT_CONTAINS(p.ebuf, ".hosts");
	proc_free(&p);
	EXPECT_EXIT(3, "hosts", view);
}
