/*
 * connreg API semantics and error paths, one test per documented behaviour.
 */
#include "common.h"

TestSuite(api, .fini = t_cleanup_names, .timeout = 60);

/* Create a registry (capacity, key_max) under a fresh name; asserts success. */
static connreg_t *make_reg(char *name, const char *tag, uint64_t capacity, uint32_t key_max)
{
	t_name(name, tag);
	connreg_config_t cfg = t_cfg(capacity, key_max, 0);
	connreg_t *r = NULL;
	int rc = connreg_create(name, &cfg, &r);
	cr_assert_eq(rc, 0, "connreg_create(%s) = %d (%s)", name, rc, connreg_strerror(rc));
	cr_assert_not_null(r);
	return r;
}

static void expect_value(connreg_t *r, const void *id, size_t len, uint64_t want)
{
	uint64_t v = ~want;
	int rc = connreg_get_transport(r, id, len, &v);
	cr_assert_eq(rc, 0, "get_transport (len %zu) = %d (%s)", len, rc, connreg_strerror(rc));
	cr_assert_eq(v, want, "get_transport (len %zu) = %#" PRIx64 ", want %#" PRIx64, len, v, want);
}

static void expect_absent(connreg_t *r, const void *id, size_t len)
{
	uint64_t v = 0;
	int rc = connreg_get_transport(r, id, len, &v);
	cr_assert_eq(rc, -ENOENT, "get_transport (len %zu) = %d, want -ENOENT", len, rc);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

Test(api, create_open_close_unlink_basics)
{
	char name[T_NAME_BUF];
	connreg_t *a = make_reg(name, "basics", 16, 0);
	cr_assert_eq(connreg_register(a, "x", 1, 42), 0);

	connreg_t *b = NULL;
	cr_assert_eq(connreg_open(name, &b), 0);
	cr_assert_not_null(b);
	cr_assert_neq(a, b, "open must return a new handle");
	expect_value(b, "x", 1, 42);
	connreg_close(b);
	connreg_close(a);

	/* the data outlives every handle while the name exists */
	cr_assert_eq(connreg_open(name, &b), 0);
	expect_value(b, "x", 1, 42);
	connreg_close(b);

	cr_assert_eq(connreg_unlink(name), 0);
	b = NULL;
	cr_assert_eq(connreg_open(name, &b), -ENOENT);
	cr_assert_eq(connreg_unlink(name), -ENOENT);
}

Test(api, create_on_taken_name_returns_EEXIST)
{
	char name[T_NAME_BUF];
	connreg_t *a = make_reg(name, "eexist", 16, 0);
	cr_assert_eq(connreg_register(a, "k", 1, 7), 0);

	connreg_config_t cfg = t_cfg(16, 0, 0);
	connreg_t *b = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &b), -EEXIST);
	/* a different configuration does not matter either */
	cfg = t_cfg(999, 32, 8);
	cr_assert_eq(connreg_create(name, &cfg, &b), -EEXIST);

	/* the existing registry was not reinitialised */
	expect_value(a, "k", 1, 7);
	cr_assert_eq(connreg_open(name, &b), 0);
	expect_value(b, "k", 1, 7);
	connreg_close(b);
	connreg_close(a);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, open_missing_returns_ENOENT)
{
	char name[T_NAME_BUF];
	t_name(name, "missing");
	connreg_t *r = NULL;
	cr_assert_eq(connreg_open(name, &r), -ENOENT);
}

Test(api, unlink_missing_returns_ENOENT)
{
	char name[T_NAME_BUF];
	t_name(name, "unl-missing");
	cr_assert_eq(connreg_unlink(name), -ENOENT);
}

Test(api, open_or_create_creates_then_opens_existing)
{
	char name[T_NAME_BUF];
	t_name(name, "ooc");
	connreg_config_t cfg = t_cfg(16, 16, 0);
	connreg_t *a = NULL, *b = NULL, *c = NULL;
	int created = -1;
	cr_assert_eq(connreg_open_or_create(name, &cfg, &a, &created), 0);
	cr_assert_eq(created, 1);
	cr_assert_eq(connreg_register(a, "id", 2, 5), 0);

	/* a different configuration is not an error: the existing one opens */
	connreg_config_t cfg2 = t_cfg(1000, 64, 0);
	created = -1;
	cr_assert_eq(connreg_open_or_create(name, &cfg2, &b, &created), 0);
	cr_assert_eq(created, 0);
	expect_value(b, "id", 2, 5);
	/* the existing key_max (16) still applies through the new handle */
	char long_id[17];
	memset(long_id, 'L', sizeof long_id);
	cr_assert_eq(connreg_register(b, long_id, 17, 1), -ENAMETOOLONG);
	cr_assert_eq(connreg_register(b, long_id, 16, 1), 0);

	/* created may be NULL */
	cr_assert_eq(connreg_open_or_create(name, &cfg, &c, NULL), 0);
	expect_value(c, long_id, 16, 1);

	connreg_close(c);
	connreg_close(b);
	connreg_close(a);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, close_null_is_ignored)
{
	connreg_close(NULL);
	/* still alive and the library still works afterwards */
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "closenull", 4, 0);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, unlinked_registry_keeps_working_for_attached_handles)
{
	char name[T_NAME_BUF];
	connreg_t *a = make_reg(name, "unl-att", 16, 0);
	connreg_t *b = NULL;
	cr_assert_eq(connreg_open(name, &b), 0);
	cr_assert_eq(connreg_register(a, "one", 3, 1), 0);
	cr_assert_eq(connreg_unlink(name), 0);

	connreg_t *c = NULL;
	cr_assert_eq(connreg_open(name, &c), -ENOENT);
	/* both attached handles still share the (now nameless) registry */
	cr_assert_eq(connreg_register(a, "two", 3, 2), 0);
	expect_value(b, "one", 3, 1);
	expect_value(b, "two", 3, 2);
	cr_assert_eq(connreg_update_transport(b, "one", 3, 11), 0);
	expect_value(a, "one", 3, 11);

	/* a new registry under the same name is a fresh, empty one */
	connreg_config_t cfg = t_cfg(16, 0, 0);
	cr_assert_eq(connreg_create(name, &cfg, &c), 0);
	expect_absent(c, "one", 3);
	cr_assert_eq(connreg_register(c, "one", 3, 99), 0);
	expect_value(a, "one", 3, 11);
	expect_value(c, "one", 3, 99);

	connreg_close(c);
	connreg_close(b);
	connreg_close(a);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, segment_mode_defaults_to_0600_and_honours_mode)
{
	umask(0);
	char name[T_NAME_BUF], path[T_NAME_BUF + 16];
	struct stat st;

	connreg_t *r = make_reg(name, "mode0", 4, 0);
	snprintf(path, sizeof path, "/dev/shm%s", name);
	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	cr_assert_eq(st.st_mode & 07777, 0600, "default mode %o, want 0600", st.st_mode & 07777);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);

	t_name(name, "mode640");
	connreg_config_t cfg = t_cfg(4, 0, 0);
	cfg.mode = 0640;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	snprintf(path, sizeof path, "/dev/shm%s", name);
	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o, want 0640", st.st_mode & 07777);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* names                                                               */
/* ------------------------------------------------------------------ */

Test(api, invalid_names_rejected_with_EINVAL_by_create_open_unlink)
{
	char n201[1 + 201 + 1];
	n201[0] = '/';
	memset(n201 + 1, 'a', 201);
	n201[202] = '\0';

	const char *bad[] = {
		"",           /* empty */
		"crt-noslash", /* no leading slash */
		"/",          /* nothing after the slash */
		n201,         /* 201 characters */
		"/crt a",     /* space */
		"/crt/a",     /* second slash */
		"//crt",      /* slash right after slash */
		"/crt\t",     /* tab */
		"/crt\n",     /* newline */
		"/crt\x01",   /* control byte */
		"/crt\x7f",   /* DEL */
		"/crt\xff",   /* high byte */
		"/crt\xc3\xa4", /* UTF-8 letter */
		"/crt*",      /* glob characters */
		"/crt?",
		"/crt:x",
		"/crt+x",
		"/crt~",
		"/crt%x",
		"/crt\\x",
		" /crt",
	};
	connreg_config_t cfg = t_cfg(4, 0, 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		connreg_t *r = NULL;
		int created = -1;
		cr_assert_eq(connreg_create(bad[i], &cfg, &r), -EINVAL, "create(bad name #%zu)", i);
		cr_assert_eq(connreg_open(bad[i], &r), -EINVAL, "open(bad name #%zu)", i);
		cr_assert_eq(connreg_open_or_create(bad[i], &cfg, &r, &created), -EINVAL,
			     "open_or_create(bad name #%zu)", i);
		cr_assert_eq(connreg_unlink(bad[i]), -EINVAL, "unlink(bad name #%zu)", i);
	}
}

Test(api, longest_and_all_allowed_character_names_accepted)
{
	/* exactly 200 characters after the slash */
	char n200[T_NAME_BUF];
	t_name(n200, "n200");
	size_t len = strlen(n200);
	cr_assert_lt(len, 201u);
	memset(n200 + len, 'z', 201 - len);
	n200[201] = '\0';
	cr_assert_eq(strlen(n200), 201u);
	connreg_unlink(n200);
	memcpy(t_names[t_names_n - 1], n200, sizeof n200); /* clean this one up */

	connreg_config_t cfg = t_cfg(4, 0, 0);
	connreg_t *r = NULL, *s = NULL;
	cr_assert_eq(connreg_create(n200, &cfg, &r), 0);
	cr_assert_eq(connreg_open(n200, &s), 0);
	connreg_close(s);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(n200), 0);

	/* every character class of [A-Za-z0-9._-] */
	char all[T_NAME_BUF];
	t_name(all, "chars");
	strcat(all, "-AZaz09._-");
	memcpy(t_names[t_names_n - 1], all, sizeof all);
	connreg_unlink(all);
	cr_assert_eq(connreg_create(all, &cfg, &r), 0);
	cr_assert_eq(connreg_open(all, &s), 0);
	connreg_close(s);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(all), 0);
}

/* ------------------------------------------------------------------ */
/* configuration and NULL arguments of create/open                     */
/* ------------------------------------------------------------------ */

Test(api, null_arguments_to_create_open_unlink_return_EINVAL)
{
	char name[T_NAME_BUF];
	t_name(name, "nullargs");
	connreg_config_t cfg = t_cfg(4, 0, 0);
	connreg_t *r = NULL;
	int created;

	cr_assert_eq(connreg_create(NULL, &cfg, &r), -EINVAL);
	cr_assert_eq(connreg_create(name, NULL, &r), -EINVAL);
	cr_assert_eq(connreg_create(name, &cfg, NULL), -EINVAL);
	cr_assert_eq(connreg_open(NULL, &r), -EINVAL);
	cr_assert_eq(connreg_open_or_create(NULL, &cfg, &r, &created), -EINVAL);
	cr_assert_eq(connreg_open_or_create(name, NULL, &r, &created), -EINVAL);
	cr_assert_eq(connreg_open_or_create(name, &cfg, NULL, &created), -EINVAL);
	cr_assert_eq(connreg_unlink(NULL), -EINVAL);
	/* none of the failed calls left a segment behind */
	cr_assert_eq(connreg_open(name, &r), -ENOENT);

	/* open with a NULL out on an existing registry */
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_open(name, NULL), -EINVAL);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, bad_configuration_returns_EINVAL_and_creates_nothing)
{
	char name[T_NAME_BUF];
	t_name(name, "badcfg");
	connreg_t *r = NULL;
	int created;
	connreg_config_t bad[6];
	bad[0] = t_cfg(0, 0, 0);                              /* capacity 0 */
	bad[1] = t_cfg(4, CONNREG_KEY_MAX_LIMIT + 1, 0);      /* key_max too big */
	bad[2] = t_cfg(4, UINT32_MAX, 0);
	bad[3] = t_cfg(CONNREG_CAPACITY_LIMIT + 1, 0, 0);     /* capacity too big */
	bad[4] = t_cfg(4, 0, 0);
	bad[4].flags = 0x80000000u;                            /* unknown flag bit */
	bad[5] = t_cfg(4, 0, 0);
	bad[5].flags = CONNREG_TRANSPORT_IS_PID << 1;          /* next unknown flag bit */

	for (int i = 0; i < 6; i++) {
		cr_assert_eq(connreg_create(name, &bad[i], &r), -EINVAL, "create with bad cfg #%d", i);
		cr_assert_eq(connreg_open_or_create(name, &bad[i], &r, &created), -EINVAL,
			     "open_or_create with bad cfg #%d", i);
		cr_assert_eq(connreg_open(name, &r), -ENOENT, "bad cfg #%d left a segment behind", i);
	}
}

Test(api, key_max_limit_is_accepted_and_enforced)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "kmlimit", 4, CONNREG_KEY_MAX_LIMIT);
	static uint8_t id[CONNREG_KEY_MAX_LIMIT + 1];
	for (size_t i = 0; i < sizeof id; i++)
		id[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(connreg_register(r, id, CONNREG_KEY_MAX_LIMIT, 123), 0);
	expect_value(r, id, CONNREG_KEY_MAX_LIMIT, 123);
	cr_assert_eq(connreg_register(r, id, CONNREG_KEY_MAX_LIMIT + 1, 1), -ENAMETOOLONG);
	/* a one-byte-shorter id is a different id */
	expect_absent(r, id, CONNREG_KEY_MAX_LIMIT - 1);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, key_max_zero_selects_64)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "km64", 4, 0);
	uint8_t id[65];
	memset(id, 'q', sizeof id);
	cr_assert_eq(connreg_register(r, id, 64, 64), 0);
	expect_value(r, id, 64, 64);
	cr_assert_eq(connreg_register(r, id, 65, 65), -ENAMETOOLONG);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* register / get / unregister / update                                 */
/* ------------------------------------------------------------------ */

Test(api, register_then_get_returns_value)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "regget", 16, 0);
	cr_assert_eq(connreg_register(r, "conn-1", 6, 0x1122334455667788ull), 0);
	cr_assert_eq(connreg_register(r, "conn-2", 6, 2), 0);
	expect_value(r, "conn-1", 6, 0x1122334455667788ull);
	expect_value(r, "conn-2", 6, 2);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, register_existing_id_updates_value)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "regtwice", 1, 0);
	cr_assert_eq(connreg_register(r, "c", 1, 1), 0);
	cr_assert_eq(connreg_register(r, "c", 1, 2), 0); /* capacity 1: an update, not an insert */
	expect_value(r, "c", 1, 2);
	cr_assert_eq(connreg_register(r, "c", 1, 3), 0);
	expect_value(r, "c", 1, 3);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, get_missing_returns_ENOENT)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "getmiss", 16, 0);
	expect_absent(r, "nope", 4);
	cr_assert_eq(connreg_register(r, "yes", 3, 1), 0);
	expect_absent(r, "nope", 4);
	expect_absent(r, "ye", 2);
	expect_absent(r, "yes!", 4);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, unregister_returns_0_present_or_absent)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "unreg", 16, 0);
	cr_assert_eq(connreg_unregister(r, "never", 5), 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	cr_assert_eq(connreg_register(r, "b", 1, 2), 0);
	cr_assert_eq(connreg_unregister(r, "a", 1), 0);
	expect_absent(r, "a", 1);
	expect_value(r, "b", 1, 2);
	cr_assert_eq(connreg_unregister(r, "a", 1), 0); /* again */
	expect_absent(r, "a", 1);
	/* re-register after unregister */
	cr_assert_eq(connreg_register(r, "a", 1, 3), 0);
	expect_value(r, "a", 1, 3);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, update_missing_returns_ENOENT_and_inserts_nothing)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "updmiss", 16, 0);
	cr_assert_eq(connreg_update_transport(r, "ghost", 5, 9), -ENOENT);
	expect_absent(r, "ghost", 5);
	/* also after it was registered and unregistered */
	cr_assert_eq(connreg_register(r, "ghost", 5, 1), 0);
	cr_assert_eq(connreg_unregister(r, "ghost", 5), 0);
	cr_assert_eq(connreg_update_transport(r, "ghost", 5, 9), -ENOENT);
	expect_absent(r, "ghost", 5);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, update_present_changes_value)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "updpres", 16, 0);
	cr_assert_eq(connreg_register(r, "u", 1, 10), 0);
	cr_assert_eq(connreg_register(r, "v", 1, 20), 0);
	cr_assert_eq(connreg_update_transport(r, "u", 1, 11), 0);
	expect_value(r, "u", 1, 11);
	expect_value(r, "v", 1, 20);
	for (uint64_t i = 0; i < 100; i++) {
		cr_assert_eq(connreg_update_transport(r, "u", 1, 1000 + i), 0);
		expect_value(r, "u", 1, 1000 + i);
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, null_handle_id_out_and_zero_length_return_EINVAL)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "nullops", 16, 0);
	uint64_t v;
	cr_assert_eq(connreg_register(r, "id", 2, 5), 0);

	cr_assert_eq(connreg_register(NULL, "id", 2, 1), -EINVAL);
	cr_assert_eq(connreg_register(r, NULL, 2, 1), -EINVAL);
	cr_assert_eq(connreg_register(r, "id", 0, 1), -EINVAL);
	cr_assert_eq(connreg_register(r, NULL, 0, 1), -EINVAL);

	cr_assert_eq(connreg_get_transport(NULL, "id", 2, &v), -EINVAL);
	cr_assert_eq(connreg_get_transport(r, NULL, 2, &v), -EINVAL);
	cr_assert_eq(connreg_get_transport(r, "id", 0, &v), -EINVAL);
	cr_assert_eq(connreg_get_transport(r, "id", 2, NULL), -EINVAL);

	cr_assert_eq(connreg_unregister(NULL, "id", 2), -EINVAL);
	cr_assert_eq(connreg_unregister(r, NULL, 2), -EINVAL);
	cr_assert_eq(connreg_unregister(r, "id", 0), -EINVAL);

	cr_assert_eq(connreg_update_transport(NULL, "id", 2, 1), -EINVAL);
	cr_assert_eq(connreg_update_transport(r, NULL, 2, 1), -EINVAL);
	cr_assert_eq(connreg_update_transport(r, "id", 0, 1), -EINVAL);

	/* nothing changed */
	expect_value(r, "id", 2, 5);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, id_longer_than_key_max_returns_ENAMETOOLONG)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "toolong", 16, 16);
	uint8_t id[40];
	for (size_t i = 0; i < sizeof id; i++)
		id[i] = (uint8_t)('a' + i);
	uint64_t v;

	/* exactly key_max works with every call */
	cr_assert_eq(connreg_register(r, id, 16, 16), 0);
	expect_value(r, id, 16, 16);
	cr_assert_eq(connreg_update_transport(r, id, 16, 17), 0);
	expect_value(r, id, 16, 17);

	size_t lens[] = { 17, 18, 40 };
	for (size_t i = 0; i < 3; i++) {
		size_t n = lens[i];
		cr_assert_eq(connreg_register(r, id, n, 1), -ENAMETOOLONG, "register len %zu", n);
		cr_assert_eq(connreg_get_transport(r, id, n, &v), -ENAMETOOLONG, "get len %zu", n);
		cr_assert_eq(connreg_unregister(r, id, n), -ENAMETOOLONG, "unregister len %zu", n);
		cr_assert_eq(connreg_update_transport(r, id, n, 1), -ENAMETOOLONG, "update len %zu", n);
	}
	/* the overlong calls did not touch the 16-byte prefix id */
	expect_value(r, id, 16, 17);
	cr_assert_eq(connreg_unregister(r, id, 16), 0);
	expect_absent(r, id, 16);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, transports_zero_and_uint64_max_round_trip)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "extremes", 16, 0);
	cr_assert_eq(connreg_register(r, "zero", 4, 0), 0);
	cr_assert_eq(connreg_register(r, "max", 3, UINT64_MAX), 0);
	expect_value(r, "zero", 4, 0);
	expect_value(r, "max", 3, UINT64_MAX);

	cr_assert_eq(connreg_update_transport(r, "zero", 4, UINT64_MAX), 0);
	cr_assert_eq(connreg_update_transport(r, "max", 3, 0), 0);
	expect_value(r, "zero", 4, UINT64_MAX);
	expect_value(r, "max", 3, 0);

	cr_assert_eq(connreg_register(r, "zero", 4, 0), 0);
	cr_assert_eq(connreg_register(r, "max", 3, UINT64_MAX), 0);
	expect_value(r, "zero", 4, 0);
	expect_value(r, "max", 3, UINT64_MAX);

	/* other bit patterns that might look like sentinels */
	uint64_t odd[] = { 1, UINT64_MAX - 1, 1ull << 63, (1ull << 63) - 1, 0xdeadbeefdeadbeefull,
			   0xffffffff00000000ull, 0x00000000ffffffffull };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		cr_assert_eq(connreg_update_transport(r, "zero", 4, odd[i]), 0);
		expect_value(r, "zero", 4, odd[i]);
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, all_256_single_byte_ids_are_distinct)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "bytes", 256, 0);
	for (int b = 0; b < 256; b++) {
		uint8_t id = (uint8_t)b;
		cr_assert_eq(connreg_register(r, &id, 1, 0x1000 + (uint64_t)b), 0, "byte %d", b);
	}
	for (int b = 0; b < 256; b++) {
		uint8_t id = (uint8_t)b;
		expect_value(r, &id, 1, 0x1000 + (uint64_t)b);
	}
	/* capacity 256 exactly reached: a 257th id does not fit */
	cr_assert_eq(connreg_register(r, "xx", 2, 1), -ENOSPC);
	/* remove the odd ones and check the even ones are unaffected */
	for (int b = 1; b < 256; b += 2) {
		uint8_t id = (uint8_t)b;
		cr_assert_eq(connreg_unregister(r, &id, 1), 0);
	}
	for (int b = 0; b < 256; b++) {
		uint8_t id = (uint8_t)b;
		if (b & 1)
			expect_absent(r, &id, 1);
		else
			expect_value(r, &id, 1, 0x1000 + (uint64_t)b);
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, ids_with_nul_bytes_are_distinct)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "nulids", 64, 0);
	struct { const char *id; size_t len; } ids[] = {
		{ "\0", 1 },        { "\0\0", 2 },       { "\0\0\0", 3 },    { "a\0b", 3 },
		{ "a\0c", 3 },      { "a\0", 2 },        { "\0a", 2 },       { "a", 1 },
		{ "a\0b\0", 4 },    { "\0\0\0\0\0\0\0\0", 8 },
		{ "\0\0\0\0\0\0\0\0\0", 9 },
	};
	size_t n = sizeof ids / sizeof ids[0];
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(connreg_register(r, ids[i].id, ids[i].len, 500 + i), 0, "id #%zu", i);
	for (size_t i = 0; i < n; i++)
		expect_value(r, ids[i].id, ids[i].len, 500 + i);
	cr_assert_eq(connreg_unregister(r, "\0\0", 2), 0);
	expect_absent(r, "\0\0", 2);
	expect_value(r, "\0", 1, 500);
	expect_value(r, "\0\0\0", 3, 502);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, ids_that_are_prefixes_of_each_other_are_distinct)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "prefix", 64, 64);
	char id[64];
	memset(id, 'p', sizeof id);
	for (size_t len = 1; len <= 64; len++)
		cr_assert_eq(connreg_register(r, id, len, len * 3), 0, "len %zu", len);
	for (size_t len = 1; len <= 64; len++)
		expect_value(r, id, len, len * 3);
	/* remove every third; the others are unaffected */
	for (size_t len = 3; len <= 64; len += 3)
		cr_assert_eq(connreg_unregister(r, id, len), 0);
	for (size_t len = 1; len <= 64; len++) {
		if (len % 3 == 0)
			expect_absent(r, id, len);
		else
			expect_value(r, id, len, len * 3);
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(api, many_ids_round_trip_and_lookups_are_exact)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "many", 5000, 0);
	uint8_t id[T_ID_LEN];
	for (uint64_t i = 0; i < 5000; i++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 1, i), t_enc(1, (uint32_t)i, 1)), 0,
			     "register #%" PRIu64, i);
	for (uint64_t i = 0; i < 5000; i++)
		expect_value(r, id, t_id(id, 1, i), t_enc(1, (uint32_t)i, 1));
	/* same numbers in another namespace are different ids */
	for (uint64_t i = 0; i < 5000; i += 97)
		expect_absent(r, id, t_id(id, 2, i));
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* several handles and processes                                       */
/* ------------------------------------------------------------------ */

Test(api, second_handle_sees_first_handles_writes)
{
	char name[T_NAME_BUF];
	connreg_t *a = make_reg(name, "twohandles", 16, 0);
	connreg_t *b = NULL;
	cr_assert_eq(connreg_open(name, &b), 0);

	cr_assert_eq(connreg_register(a, "k1", 2, 1), 0);
	expect_value(b, "k1", 2, 1);
	cr_assert_eq(connreg_register(b, "k2", 2, 2), 0);
	expect_value(a, "k2", 2, 2);
	cr_assert_eq(connreg_update_transport(a, "k2", 2, 22), 0);
	expect_value(b, "k2", 2, 22);
	cr_assert_eq(connreg_unregister(b, "k1", 2), 0);
	expect_absent(a, "k1", 2);

	connreg_close(b);
	connreg_close(a);
	cr_assert_eq(connreg_unlink(name), 0);
}

struct child_args {
	const char *name;
	connreg_t *parent_handle;
	t_report_t *rep;
};

static int child_reads_and_writes(void *p)
{
	struct child_args *a = p;
	connreg_t *r = NULL;
	uint64_t v = 0;
	int rc = connreg_open(a->name, &r);
	T_CHECK(a->rep, rc == 0, return 1, "child open rc=%d", rc);
	rc = connreg_get_transport(r, "from-parent", 11, &v);
	T_CHECK(a->rep, rc == 0 && v == 0xabcdef, return 1, "child get rc=%d v=%#" PRIx64, rc, v);
	rc = connreg_register(r, "from-child", 10, 0x123456);
	T_CHECK(a->rep, rc == 0, return 1, "child register rc=%d", rc);
	rc = connreg_update_transport(r, "from-parent", 11, 0xfedcba);
	T_CHECK(a->rep, rc == 0, return 1, "child update rc=%d", rc);
	connreg_close(r);
	return 0;
}

Test(api, forked_child_with_own_handle_sees_and_writes_values)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "forkchild", 16, 0);
	cr_assert_eq(connreg_register(r, "from-parent", 11, 0xabcdef), 0);
	t_report_t *rep = t_shared(sizeof *rep);
	cr_assert_not_null(rep);
	struct child_args a = { name, r, rep };
	pid_t pid = t_fork(child_reads_and_writes, &a);
	cr_assert_gt(pid, 0);
	int st = t_wait(pid, 20000);
	T_ASSERT_REPORT_OK(rep);
	cr_assert_eq(st, 0, "child status %d", st);
	expect_value(r, "from-child", 10, 0x123456);
	expect_value(r, "from-parent", 11, 0xfedcba);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

static int child_uses_parent_handle(void *p)
{
	struct child_args *a = p;
	uint64_t v = 0;
	int rc;
	rc = connreg_get_transport(a->parent_handle, "p", 1, &v);
	T_CHECK(a->rep, rc == -ECHILD, return 1, "get via parent handle rc=%d", rc);
	rc = connreg_register(a->parent_handle, "c", 1, 1);
	T_CHECK(a->rep, rc == -ECHILD, return 1, "register via parent handle rc=%d", rc);
	rc = connreg_register(a->parent_handle, "p", 1, 2);
	T_CHECK(a->rep, rc == -ECHILD, return 1, "register(update) via parent handle rc=%d", rc);
	rc = connreg_update_transport(a->parent_handle, "p", 1, 3);
	T_CHECK(a->rep, rc == -ECHILD, return 1, "update via parent handle rc=%d", rc);
	rc = connreg_unregister(a->parent_handle, "p", 1);
	T_CHECK(a->rep, rc == -ECHILD, return 1, "unregister via parent handle rc=%d", rc);
	/* its own handle works */
	connreg_t *own = NULL;
	rc = connreg_open(a->name, &own);
	T_CHECK(a->rep, rc == 0, return 1, "child open rc=%d", rc);
	rc = connreg_get_transport(own, "p", 1, &v);
	T_CHECK(a->rep, rc == 0 && v == 77, return 1, "get via own handle rc=%d v=%" PRIu64, rc, v);
	/* and the parent's handle still refuses afterwards */
	rc = connreg_get_transport(a->parent_handle, "p", 1, &v);
	T_CHECK(a->rep, rc == -ECHILD, return 1, "get via parent handle (2) rc=%d", rc);
	connreg_close(own);
	return 0;
}

Test(api, parent_handle_in_forked_child_returns_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "echild", 16, 0);
	cr_assert_eq(connreg_register(r, "p", 1, 77), 0);
	expect_value(r, "p", 1, 77);
	t_report_t *rep = t_shared(sizeof *rep);
	cr_assert_not_null(rep);
	struct child_args a = { name, r, rep };
	pid_t pid = t_fork(child_uses_parent_handle, &a);
	cr_assert_gt(pid, 0);
	int st = t_wait(pid, 20000);
	T_ASSERT_REPORT_OK(rep);
	cr_assert_eq(st, 0, "child status %d", st);
	/* the child changed nothing, and the parent's handle still works */
	expect_value(r, "p", 1, 77);
	expect_absent(r, "c", 1);
	cr_assert_eq(connreg_register(r, "q", 1, 5), 0);
	expect_value(r, "q", 1, 5);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* invalid segments                                                    */
/* ------------------------------------------------------------------ */

/* Create a raw shm segment of `size` bytes filled by fill(i) (NULL: zeros). */
static void make_raw_segment(const char *name, size_t size, uint8_t (*fill)(size_t))
{
	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	cr_assert_geq(fd, 0, "shm_open(%s): %s", name, strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	if (fill && size) {
		uint8_t *buf = malloc(size);
		cr_assert_not_null(buf);
		for (size_t i = 0; i < size; i++)
			buf[i] = fill(i);
		cr_assert_eq(pwrite(fd, buf, size, 0), (ssize_t)size);
		free(buf);
	}
	close(fd);
}

static uint8_t fill_junk(size_t i)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull + 1;
	return (uint8_t)(t_rand(&s) >> 32);
}

static uint8_t fill_ff(size_t i)
{
	(void)i;
	return 0xff;
}

/* connreg_open must fail with -EPROTO within the open wait plus slack. */
static void expect_eproto(const char *name)
{
	connreg_t *r = NULL;
	uint64_t t0 = t_now_ms();
	int rc = connreg_open(name, &r);
	uint64_t dt = t_now_ms() - t0;
	cr_assert_eq(rc, -EPROTO, "open(%s) = %d (%s), want -EPROTO", name, rc, connreg_strerror(rc));
	cr_assert_leq(dt, (uint64_t)CONNREG_OPEN_WAIT_MS + 2000, "open took %" PRIu64 " ms", dt);
	/* open_or_create does not create over it either */
	connreg_config_t cfg = t_cfg(4, 0, 0);
	int created = -1;
	rc = connreg_open_or_create(name, &cfg, &r, &created);
	cr_assert_eq(rc, -EPROTO, "open_or_create(%s) = %d, want -EPROTO", name, rc);
}

Test(api, open_junk_segment_returns_EPROTO)
{
	char name[T_NAME_BUF];
	t_name(name, "junk");
	make_raw_segment(name, 1 << 20, fill_junk);
	expect_eproto(name);
	shm_unlink(name);

	t_name(name, "junksmall");
	make_raw_segment(name, 4096, fill_junk);
	expect_eproto(name);
	shm_unlink(name);

	t_name(name, "allff");
	make_raw_segment(name, 65536, fill_ff);
	expect_eproto(name);
	shm_unlink(name);

	t_name(name, "tiny");
	make_raw_segment(name, 3, fill_junk);
	expect_eproto(name);
	shm_unlink(name);
}

Test(api, open_zero_size_segment_returns_EPROTO_in_bounded_time)
{
	char name[T_NAME_BUF];
	t_name(name, "zerosize");
	make_raw_segment(name, 0, NULL);
	expect_eproto(name);
	shm_unlink(name);
}

Test(api, open_all_zero_segment_returns_EPROTO_in_bounded_time)
{
	char name[T_NAME_BUF];
	t_name(name, "allzero");
	make_raw_segment(name, 1 << 20, NULL);
	expect_eproto(name);
	shm_unlink(name);
}

/* Create a real registry, close it, and return the segment's size. */
static off_t real_registry_size(const char *name)
{
	connreg_config_t cfg = t_cfg(64, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "x", 1, 1), 0);
	connreg_close(r);
	int fd = shm_open(name, O_RDWR, 0);
	cr_assert_geq(fd, 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	close(fd);
	cr_assert_gt(st.st_size, 0);
	return st.st_size;
}

Test(api, open_truncated_registry_returns_EPROTO)
{
	char name[T_NAME_BUF];
	t_name(name, "trunc");
	off_t size = real_registry_size(name);
	off_t cuts[] = { size - 1, size / 2, 64, 0 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		if (cuts[i] >= size)
			continue;
		int fd = shm_open(name, O_RDWR, 0);
		cr_assert_geq(fd, 0);
		cr_assert_eq(ftruncate(fd, cuts[i]), 0);
		close(fd);
		connreg_t *r = NULL;
		uint64_t t0 = t_now_ms();
		int rc = connreg_open(name, &r);
		uint64_t dt = t_now_ms() - t0;
		cr_assert_eq(rc, -EPROTO, "open after truncating %lld -> %lld bytes = %d, want -EPROTO",
			     (long long)size, (long long)cuts[i], rc);
		cr_assert_leq(dt, (uint64_t)CONNREG_OPEN_WAIT_MS + 2000, "open took %" PRIu64 " ms", dt);
	}
	shm_unlink(name);
}

Test(api, open_registry_with_overwritten_header_returns_EPROTO)
{
	char name[T_NAME_BUF];
	t_name(name, "hdrjunk");
	(void)real_registry_size(name);
	int fd = shm_open(name, O_RDWR, 0);
	cr_assert_geq(fd, 0);
	uint8_t junk[64];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = fill_junk(i + 1000);
	cr_assert_eq(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	close(fd);
	expect_eproto(name);
	shm_unlink(name);
}

Test(api, open_of_registry_segment_grown_larger_is_safe)
{
	/* a valid registry followed by zeros: either opens (size checks may allow
	 * it) or -EPROTO, but the data must be intact if it opens */
	char name[T_NAME_BUF];
	t_name(name, "grown");
	off_t size = real_registry_size(name);
	int fd = shm_open(name, O_RDWR, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, size + 65536), 0);
	close(fd);
	connreg_t *r = NULL;
	int rc = connreg_open(name, &r);
	cr_assert(rc == 0 || rc == -EPROTO, "open of grown segment = %d", rc);
	if (rc == 0) {
		expect_value(r, "x", 1, 1);
		connreg_close(r);
	}
	shm_unlink(name);
}

/* ------------------------------------------------------------------ */
/* strerror                                                            */
/* ------------------------------------------------------------------ */

Test(api, strerror_gives_distinct_named_text_for_each_code)
{
	struct { int code; const char *sym; } codes[] = {
		{ -EINVAL, "EINVAL" }, { -ENAMETOOLONG, "ENAMETOOLONG" }, { -ENOENT, "ENOENT" },
		{ -EEXIST, "EEXIST" }, { -ENOSPC, "ENOSPC" },             { -EPROTO, "EPROTO" },
		{ -EAGAIN, "EAGAIN" }, { -ECHILD, "ECHILD" },             { -ENOMEM, "ENOMEM" },
		{ -ETIMEDOUT, "ETIMEDOUT" }, { -EOPNOTSUPP, "EOPNOTSUPP" },
	};
	size_t n = sizeof codes / sizeof codes[0];
	const char *s0 = connreg_strerror(0);
	cr_assert_not_null(s0);
	cr_assert_gt(strlen(s0), 0u);
	for (size_t i = 0; i < n; i++) {
		const char *s = connreg_strerror(codes[i].code);
		cr_assert_not_null(s, "%s", codes[i].sym);
		cr_assert_gt(strlen(s), 0u, "%s", codes[i].sym);
		cr_assert_not_null(strstr(s, codes[i].sym), "strerror(-%s) = \"%s\"", codes[i].sym, s);
		cr_assert_str_neq(s, s0);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(s, connreg_strerror(codes[j].code), "%s vs %s", codes[i].sym,
					  codes[j].sym);
	}
}

Test(api, strerror_of_unknown_codes_is_sane)
{
	int odd[] = { -9999, 12345, INT_MIN, INT_MAX, -1000000, -EACCES, -EMFILE, 1, -4096 };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		const char *s = connreg_strerror(odd[i]);
		cr_assert_not_null(s, "code %d", odd[i]);
		cr_assert_gt(strlen(s), 0u, "code %d", odd[i]);
		cr_assert_lt(strlen(s), 4096u, "code %d", odd[i]);
	}
	/* stable: the same pointer or at least the same text for a known code */
	cr_assert_str_eq(connreg_strerror(-ENOSPC), connreg_strerror(-ENOSPC));
}

/* ------------------------------------------------------------------ */
/* bad input changes nothing                                           */
/* ------------------------------------------------------------------ */

Test(api, failed_calls_leave_registry_unchanged)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "unchanged", 4, 8);
	cr_assert_eq(connreg_register(r, "aaaaaaaa", 8, 1), 0);
	cr_assert_eq(connreg_register(r, "b", 1, 2), 0);
	cr_assert_eq(connreg_register(r, "c", 1, 3), 0);

	uint64_t v;
	/* overlong ids that start with existing ids */
	cr_assert_eq(connreg_register(r, "aaaaaaaaa", 9, 100), -ENAMETOOLONG);
	cr_assert_eq(connreg_update_transport(r, "aaaaaaaaa", 9, 100), -ENAMETOOLONG);
	cr_assert_eq(connreg_unregister(r, "aaaaaaaaa", 9), -ENAMETOOLONG);
	cr_assert_eq(connreg_get_transport(r, "aaaaaaaaa", 9, &v), -ENAMETOOLONG);
	/* zero length and NULLs */
	cr_assert_eq(connreg_register(r, "b", 0, 100), -EINVAL);
	cr_assert_eq(connreg_unregister(r, "b", 0), -EINVAL);
	cr_assert_eq(connreg_update_transport(r, "c", 0, 100), -EINVAL);
	cr_assert_eq(connreg_register(r, NULL, 1, 100), -EINVAL);
	/* update of a missing id */
	cr_assert_eq(connreg_update_transport(r, "d", 1, 100), -ENOENT);
	/* fill the last place, then -ENOSPC for a new id */
	cr_assert_eq(connreg_register(r, "e", 1, 5), 0);
	cr_assert_eq(connreg_register(r, "f", 1, 100), -ENOSPC);
	/* create over it with a bad and a good config fails */
	connreg_config_t cfg = t_cfg(0, 0, 0);
	connreg_t *x = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &x), -EINVAL);
	cfg = t_cfg(4, 8, 0);
	cr_assert_eq(connreg_create(name, &cfg, &x), -EEXIST);

	expect_value(r, "aaaaaaaa", 8, 1);
	expect_value(r, "b", 1, 2);
	expect_value(r, "c", 1, 3);
	expect_value(r, "e", 1, 5);
	expect_absent(r, "d", 1);
	expect_absent(r, "f", 1);
	/* exactly four live: the failed calls consumed no capacity */
	cr_assert_eq(connreg_unregister(r, "e", 1), 0);
	cr_assert_eq(connreg_register(r, "f", 1, 6), 0);
	cr_assert_eq(connreg_register(r, "g", 1, 7), -ENOSPC);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}
