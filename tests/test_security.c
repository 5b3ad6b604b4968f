/*
 * Security properties (issue 3, section 3).
 *
 * (a) Permissions. A segment carries the mode given at create (default
 *     0600), exactly: connreg_create fchmods it, so the umask neither
 *     narrows nor widens it. connreg_open opens with O_RDWR (every
 *     process writes its reader slot), so what another uid gets is:
 *         0600, 0640, 0644, 0660 (other uid, not in the group): -EACCES
 *         0666:                                                 opens, reads, writes
 *     Read permission alone is not enough to attach. /dev/shm is sticky
 *     (mode 1777), so another uid cannot remove the name either (the
 *     kernel's EPERM, which glibc's shm_unlink reports as -EACCES).
 *     These tests drop a forked child to `nobody`; they need root and are
 *     skipped otherwise.
 *
 * (b) Hash flooding. Ids chosen to collide under an unkeyed hash (the
 *     public XXH3_64bits, reduced to a home bucket exactly as the library
 *     does) all have one home there; the registry hashes with a random
 *     per-segment 192-byte secret, so they spread like any other ids: the
 *     probe bound stays small and every lookup succeeds. Two registries
 *     created with the same configuration get different secrets. (Anyone
 *     who can read the segment can read the secret; permissions, above,
 *     are what keep it from an attacker.)
 */
#include "common.h"

#include "layout.h"

#include <grp.h>
#include <pwd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

TestSuite(security, .fini = t_cleanup_names, .timeout = 60);

/* ------------------------------------------------------------------ */
/* (a) permissions                                                     */
/* ------------------------------------------------------------------ */

struct sec_result {
	int drop_rc;	/* 0, or which privilege-drop step failed */
	int open_rc;
	int get_rc;
	uint64_t got;
	int reg_rc;
	int unlink_rc;
	int ooc_rc;	/* connreg_open_or_create */
	int still_root;	/* setuid(0) succeeded after the drop: the drop did not stick */
};

struct sec_arg {
	const char *name;
	uid_t uid;
	gid_t gid;
	struct sec_result *res;
	bool try_unlink;
};

static int sec_drop(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) != 0)
		return 1;
	if (setgid(gid) != 0)
		return 2;
	if (setuid(uid) != 0)
		return 3;
	if (geteuid() != uid || getegid() != gid)
		return 4;
	return 0;
}

/* In a child: become `nobody`, then try what an unprivileged process would. */
static int sec_child(void *argp)
{
	struct sec_arg *a = argp;
	struct sec_result *r = a->res;
	connreg_t *reg = NULL;

	r->drop_rc = sec_drop(a->uid, a->gid);
	if (r->drop_rc)
		return 1;
	r->still_root = setuid(0) == 0;
	r->open_rc = connreg_open(a->name, &reg);
	if (r->open_rc == 0) {
		r->get_rc = connreg_get_transport(reg, "owner", 5, &r->got);
		r->reg_rc = connreg_register(reg, "guest", 5, 77);
		connreg_close(reg);
	}
	connreg_config_t cfg = t_cfg(16, 0, 0);
	r->ooc_rc = connreg_open_or_create(a->name, &cfg, &reg, NULL);
	if (r->ooc_rc == 0)
		connreg_close(reg);
	if (a->try_unlink)
		r->unlink_rc = connreg_unlink(a->name);
	return 0;
}

static void sec_need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root (to drop a child to another uid)");
}

static void sec_nobody(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam("nobody");

	if (!pw)
		cr_skip_test("no user 'nobody' on this system");
	cr_assert_neq(pw->pw_uid, 0);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

/* Create `name` with `mode` holding id "owner" -> 4242; returns its st_mode & 07777. */
static unsigned sec_create(char *name, const char *tag, uint32_t mode)
{
	connreg_config_t cfg = t_cfg(16, 0, 0);
	connreg_t *r = NULL;
	struct stat st;

	cfg.mode = mode;
	t_name(name, tag);
	cr_assert_eq(connreg_create(name, &cfg, &r), 0, "create mode %o", mode);
	cr_assert_eq(connreg_register(r, "owner", 5, 4242), 0);
	connreg_close(r);
	int fd = shm_open(name, O_RDONLY, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	close(fd);
	cr_assert_eq(st.st_uid, geteuid());
	return st.st_mode & 07777;
}

static struct sec_result sec_run_as_nobody(const char *name, bool try_unlink)
{
	uid_t uid;
	gid_t gid;
	struct sec_result *res = t_shared(sizeof *res);

	sec_nobody(&uid, &gid);
	cr_assert_not_null(res);
	memset(res, 0, sizeof *res);
	struct sec_arg a = { name, uid, gid, res, try_unlink };
	int st = t_wait(t_fork(sec_child, &a), 10000);
	cr_assert_eq(st, 0, "child status %d (drop step %d)", st, res->drop_rc);
	cr_assert_eq(res->drop_rc, 0);
	cr_assert_eq(res->still_root, 0, "the child could become root again");
	struct sec_result out = *res;
	munmap(res, sizeof *res);
	return out;
}

/* Modes that deny another uid read+write: open is -EACCES, nothing is written. */
Test(security, other_uid_cannot_open_unless_mode_grants_read_write)
{
	static const uint32_t modes[] = { 0, 0600, 0640, 0644, 0660, 0604, 0606 };
	char name[T_NAME_BUF];

	sec_need_root();
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		unsigned want = modes[i] ? modes[i] : 0600;
		unsigned got = sec_create(name, "perm", modes[i]);

		cr_assert_eq(got, want, "mode %o: segment has mode %o", modes[i], got);
		int fd = shm_open(name, O_RDONLY, 0);
		cr_assert_geq(fd, 0);
		size_t len = (size_t)lseek(fd, 0, SEEK_END);
		uint8_t *before = malloc(len), *after = malloc(len);
		cr_assert_eq(pread(fd, before, len, 0), (ssize_t)len);

		struct sec_result r = sec_run_as_nobody(name, false);
		/* 0604 grants other read only: O_RDWR still fails; 0606 grants read+write */
		int want_rc = (want & 06) == 06 ? 0 : -EACCES;
		cr_assert_eq(r.open_rc, want_rc, "mode %o: nobody's connreg_open = %d (%s)", want,
			     r.open_rc, connreg_strerror(r.open_rc));
		cr_assert_eq(r.ooc_rc, want_rc, "mode %o: nobody's connreg_open_or_create = %d", want,
			     r.ooc_rc);
		if (want_rc == 0) {
			cr_assert_eq(r.get_rc, 0);
			cr_assert_eq(r.got, 4242);
			cr_assert_eq(r.reg_rc, 0);
		} else {
			cr_assert_eq(pread(fd, after, len, 0), (ssize_t)len);
			cr_assert_eq(memcmp(before, after, len), 0,
				     "mode %o: a refused process changed the segment", want);
		}
		close(fd);
		free(before);
		free(after);
		cr_assert_eq(connreg_unlink(name), 0);
	}
}

/* Umask does not change the mode asked for, in either direction. */
Test(security, create_mode_is_exact_whatever_the_umask)
{
	char name[T_NAME_BUF];
	mode_t old = umask(077);

	cr_assert_eq(sec_create(name, "umask", 0666), 0666, "umask 077 narrowed 0666");
	connreg_unlink(name);
	umask(0);
	cr_assert_eq(sec_create(name, "umask", 0), 0600, "default mode with umask 0");
	connreg_unlink(name);
	cr_assert_eq(sec_create(name, "umask", 0640), 0640);
	connreg_unlink(name);
	umask(old);
}

Test(security, world_read_write_mode_lets_another_uid_in)
{
	char name[T_NAME_BUF];

	sec_need_root();
	cr_assert_eq(sec_create(name, "world", 0666), 0666);
	struct sec_result r = sec_run_as_nobody(name, false);
	cr_assert_eq(r.open_rc, 0, "nobody's open of a 0666 segment = %d (%s)", r.open_rc,
		     connreg_strerror(r.open_rc));
	cr_assert_eq(r.get_rc, 0);
	cr_assert_eq(r.got, 4242);
	cr_assert_eq(r.reg_rc, 0, "nobody's register = %d", r.reg_rc);
	cr_assert_eq(r.ooc_rc, 0);

	connreg_t *reg = NULL;
	uint64_t v = 0;
	cr_assert_eq(connreg_open(name, &reg), 0);
	cr_assert_eq(connreg_get_transport(reg, "guest", 5, &v), 0);
	cr_assert_eq(v, 77);
	cr_assert_eq(connreg_check(reg, NULL, NULL), 0);
	connreg_close(reg);
}

Test(security, other_uid_cannot_unlink_the_name)
{
	char name[T_NAME_BUF];
	struct stat dir;

	sec_need_root();
	if (stat("/dev/shm", &dir) != 0 || !(dir.st_mode & S_ISVTX))
		cr_skip_test("/dev/shm is not sticky here: unlink protection is not the kernel's");
	/* even a segment everyone may write keeps its name */
	cr_assert_eq(sec_create(name, "unl", 0666), 0666);
	struct sec_result r = sec_run_as_nobody(name, true);
	/* the kernel says EPERM; glibc's shm_unlink reports it as EACCES (POSIX) */
	cr_assert(r.unlink_rc == -EACCES || r.unlink_rc == -EPERM,
		  "nobody's connreg_unlink = %d (%s)", r.unlink_rc, connreg_strerror(r.unlink_rc));
	connreg_t *reg = NULL;
	cr_assert_eq(connreg_open(name, &reg), 0, "the name must survive");
	connreg_close(reg);
}

/* ------------------------------------------------------------------ */
/* (b) crafted collisions                                              */
/* ------------------------------------------------------------------ */

#define SEC_CAPACITY 8192u
#define SEC_KEY_MAX 32u
#define SEC_CRAFTED 3000u
/*
 * Random homes at these loads displace an id a few buckets of two records
 * at most (5-6 seen); piled on one home they would need 1500.
 */
#define SEC_PROBE_LIMIT 12u

/* The library's documented reduction of a hash to a home bucket (design.md). */
static uint32_t sec_home(uint64_t h, uint32_t n_buckets)
{
	return (uint32_t)(((h & 0xffffffffu) * n_buckets) >> 32);
}

struct sec_ids {
	char (*id)[SEC_KEY_MAX];
	size_t *len;
	size_t n;
};

/*
 * Find `want` ids whose UNKEYED XXH3_64bits lands in bucket 0 of n_buckets:
 * what an attacker who does not know the secret would send.
 */
static struct sec_ids sec_craft_unkeyed(uint32_t n_buckets, size_t want, uint64_t *tried)
{
	struct sec_ids s = { calloc(want, SEC_KEY_MAX), calloc(want, sizeof(size_t)), 0 };
	/* cheap candidates: a fixed prefix and a 10-digit hex counter, stepped in place */
	char buf[] = "flood-0000000000";
	const size_t len = sizeof buf - 1, first = 6;

	cr_assert(s.id && s.len);
	*tried = 0;
	while (s.n < want) {
		for (size_t i = len; i-- > first;) {
			if (buf[i] == '9') {
				buf[i] = 'a';
				break;
			}
			if (buf[i] != 'f') {
				buf[i]++;
				break;
			}
			buf[i] = '0';
		}
		(*tried)++;
		if (sec_home(XXH3_64bits(buf, len), n_buckets) != 0)
			continue;
		memcpy(s.id[s.n], buf, len);
		s.len[s.n] = len;
		s.n++;
	}
	return s;
}

/* Ids that collide under any commutative hash (sum, xor of bytes): permutations of one string. */
static struct sec_ids sec_craft_permutations(void)
{
	char p[] = "abcdefg";	/* 7! = 5040 permutations */
	const size_t L = sizeof p - 1, n = 5040;
	struct sec_ids s = { calloc(n, SEC_KEY_MAX), calloc(n, sizeof(size_t)), 0 };

	cr_assert(s.id && s.len);
	/* Heap's algorithm, iterative */
	size_t c[8] = { 0 };
	memcpy(s.id[s.n], p, L), s.len[s.n++] = L;
	for (size_t i = 1; i < L;) {
		if (c[i] < i) {
			size_t j = i % 2 ? c[i] : 0;
			char t = p[j];
			p[j] = p[i];
			p[i] = t;
			memcpy(s.id[s.n], p, L), s.len[s.n++] = L;
			c[i]++;
			i = 1;
		} else {
			c[i++] = 0;
		}
	}
	cr_assert_eq(s.n, n);
	return s;
}

static void sec_ids_free(struct sec_ids *s)
{
	free(s->id);
	free(s->len);
}

/* A copy of a registry's header (read through a read-only mapping). */
static void sec_header(const char *name, struct cr_header *out)
{
	int fd = shm_open(name, O_RDONLY, 0);
	cr_assert_geq(fd, 0);
	void *p = mmap(NULL, sizeof *out, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	memcpy(out, p, sizeof *out);
	munmap(p, sizeof *out);
	close(fd);
}

/* Register all ids; every lookup succeeds; max_probe small; check sound. */
static void sec_flood(const char *name, const struct sec_ids *s, connreg_stats_t *st)
{
	connreg_config_t cfg = t_cfg(SEC_CAPACITY, SEC_KEY_MAX, 4);
	connreg_t *r = NULL;
	uint64_t v;

	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	for (size_t i = 0; i < s->n; i++)
		cr_assert_eq(connreg_register(r, s->id[i], s->len[i], i), 0, "register %zu", i);
	for (size_t i = 0; i < s->n; i++) {
		cr_assert_eq(connreg_get_transport(r, s->id[i], s->len[i], &v), 0, "lookup %zu", i);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(connreg_stats(r, st), 0);
	cr_assert_eq(st->live, s->n);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0);
	connreg_close(r);
}

/* Distinct home buckets of the ids under a registry's keyed hash. */
static size_t sec_keyed_homes(const struct cr_header *h, const struct sec_ids *s,
			      uint32_t *homes)
{
	uint32_t nb = h->geo.n_buckets;
	uint8_t *seen = calloc(nb, 1);
	size_t distinct = 0;

	cr_assert_not_null(seen);
	for (size_t i = 0; i < s->n; i++) {
		uint32_t b = sec_home(XXH3_64bits_withSecret(s->id[i], s->len[i], h->secret,
							      CR_SECRET_SIZE), nb);
		if (homes)
			homes[i] = b;
		distinct += !seen[b];
		seen[b] = 1;
	}
	free(seen);
	return distinct;
}

Test(security, ids_colliding_under_an_unkeyed_hash_spread_under_the_secret)
{
	char name[T_NAME_BUF];
	connreg_stats_t st = { .size = sizeof(st) };
	struct cr_header h;
	uint64_t tried = 0, t0 = t_now_ms();
	uint32_t nb = (uint32_t)((2 * SEC_CAPACITY + CR_BUCKET_SLOTS - 1) / CR_BUCKET_SLOTS);

	struct sec_ids s = sec_craft_unkeyed(nb, SEC_CRAFTED, &tried);
	uint64_t craft_ms = t_now_ms() - t0;
	/* the premise: one home for all of them under the unkeyed hash */
	for (size_t i = 0; i < s.n; i++)
		cr_assert_eq(sec_home(XXH3_64bits(s.id[i], s.len[i]), nb), 0);

	t_name(name, "flood");
	sec_flood(name, &s, &st);
	cr_assert_eq(st.buckets, nb, "the registry has %" PRIu64 " buckets, crafted for %u",
		     st.buckets, nb);
	/* Unkeyed, they would need 3000 / CR_BUCKET_SLOTS = 1500 buckets of probing from one home. */
	cr_assert_leq(st.max_probe, SEC_PROBE_LIMIT, "max_probe %u: the crafted ids piled up",
		      st.max_probe);
	sec_header(name, &h);
	size_t distinct = sec_keyed_homes(&h, &s, NULL);
	/* 3000 random homes among 8192 buckets: ~2500 distinct expected */
	cr_assert_geq(distinct, 1200, "only %zu distinct home buckets under the secret", distinct);
	cr_log_info("crafted %zu unkeyed collisions from %" PRIu64 " candidates in %" PRIu64
		    " ms; under the secret: %zu distinct homes, max_probe %u",
		    s.n, tried, craft_ms, distinct, st.max_probe);
	sec_ids_free(&s);
}

Test(security, ids_colliding_under_a_trivial_hash_spread_too)
{
	char name[T_NAME_BUF];
	connreg_stats_t st = { .size = sizeof(st) };

	struct sec_ids s = sec_craft_permutations();
	t_name(name, "perm");
	sec_flood(name, &s, &st);
	cr_assert_leq(st.max_probe, SEC_PROBE_LIMIT, "max_probe %u for 5040 permutations",
		      st.max_probe);
	sec_ids_free(&s);
}

Test(security, same_config_gives_each_registry_its_own_secret)
{
	char a[T_NAME_BUF], b[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(SEC_CAPACITY, SEC_KEY_MAX, 4);
	connreg_t *ra = NULL, *rb = NULL;
	struct cr_header ha, hb;
	static const uint8_t zero[CR_SECRET_SIZE];

	t_name(a, "seca");
	t_name(b, "secb");
	cr_assert_eq(connreg_create(a, &cfg, &ra), 0);
	cr_assert_eq(connreg_create(b, &cfg, &rb), 0);
	sec_header(a, &ha);
	sec_header(b, &hb);
	cr_assert_neq(memcmp(ha.secret, zero, CR_SECRET_SIZE), 0, "secret is all zero");
	cr_assert_neq(memcmp(hb.secret, zero, CR_SECRET_SIZE), 0, "secret is all zero");
	size_t same = 0;
	for (size_t i = 0; i < CR_SECRET_SIZE; i++)
		same += ha.secret[i] == hb.secret[i];
	/* two random 192-byte strings agree in ~0.75 bytes on average */
	cr_assert_lt(same, 16, "the two secrets agree in %zu of %u bytes", same, CR_SECRET_SIZE);

	/* The same re-created name gets a new secret too. */
	connreg_close(ra);
	cr_assert_eq(connreg_unlink(a), 0);
	cr_assert_eq(connreg_create(a, &cfg, &ra), 0);
	struct cr_header ha2;
	sec_header(a, &ha2);
	cr_assert_neq(memcmp(ha.secret, ha2.secret, CR_SECRET_SIZE), 0,
		      "re-creating the name reused the secret");

	/* So one set of ids lands on unrelated buckets in the two registries. */
	struct sec_ids s = sec_craft_permutations();
	uint32_t *ho_a = calloc(s.n, sizeof *ho_a), *ho_b = calloc(s.n, sizeof *ho_b);
	cr_assert(ho_a && ho_b);
	sec_keyed_homes(&ha, &s, ho_a);
	sec_keyed_homes(&hb, &s, ho_b);
	size_t agree = 0;
	for (size_t i = 0; i < s.n; i++)
		agree += ho_a[i] == ho_b[i];
	/* chance agreement: 5040 / 2341 ~ 2 ids */
	cr_assert_lt(agree, 50, "%zu of %zu ids share a home bucket in both registries", agree, s.n);
	free(ho_a);
	free(ho_b);
	sec_ids_free(&s);
	connreg_close(ra);
	connreg_close(rb);
}
