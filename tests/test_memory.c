/*
 * Memory of a registry (issue #15): create reserves the whole segment, so
 * a registry that does not fit is refused at create (-ENOSPC, no name left
 * behind, the CLI prints the bytes needed and free) and one that fits can
 * be filled to capacity on an otherwise full tmpfs without a signal; the
 * segment directory (CONNREG_SHM_DIR) keeps every guarantee; open with
 * CONNREG_OPEN_PREFAULT leaves no page fault for the lookups, and
 * CONNREG_OPEN_MLOCK fails loudly when RLIMIT_MEMLOCK is too low.
 *
 * The small-tmpfs tests mount one in a private mount namespace (a forked
 * child that calls unshare(CLONE_NEWNS) as root); elsewhere they skip and
 * say why. The other tests need no privilege.
 */
#include "common.h"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/time.h>

static char m_tmpdir[PATH_MAX]; /* a temporary directory of this test process, or "" */

static void m_rm_tmpdir(void)
{
	if (!m_tmpdir[0])
		return;
	t_rm_dir(m_tmpdir);
	m_tmpdir[0] = '\0';
}

static void m_fini(void)
{
	t_cleanup_names();
	m_rm_tmpdir();
}

/*
 * No Criterion .timeout: under ASan its timeout watchdog leaks an entry
 * now and then when tests run with --jobs 2 and some are skipped, which
 * fails the binary. Every wait here is bounded by itself instead (t_wait
 * kills a child that overruns), and ctest bounds the binary.
 */
TestSuite(memory, .fini = m_fini);

static const char *m_mkdtemp(void)
{
	snprintf(m_tmpdir, sizeof(m_tmpdir), "/tmp/crt-mem-%ld-XXXXXX", (long)getpid());
	cr_assert_not_null(mkdtemp(m_tmpdir), "mkdtemp: %s", strerror(errno));
	return m_tmpdir;
}

/* ------------------------------------------------------------------ */
/* the connreg binary, run from a child (no Criterion calls there)     */
/* ------------------------------------------------------------------ */

static void m_cli_path(char *path, size_t len)
{
	const char *p = t_sibling_binary("CONNREG_CLI", "connreg", path, len);

	if (p != path)
		snprintf(path, len, "%s", p);
}

/*
 * Run `connreg args...` to completion; its stdout and stderr (small) into
 * out/err. Returns its exit status, or -1.
 */
static int m_run_cli(const char *const args[], char *out, size_t outlen, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	const char *argv[16];
	int po[2], pe[2], st;
	size_t n = 0;
	pid_t pid;

	m_cli_path(path, sizeof(path));
	argv[n++] = path;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	/* Both outputs are a few hundred bytes: the pipes never fill. */
	st = t_wait(pid, 20000);
	ssize_t k = read(po[0], out, outlen - 1);
	out[k > 0 ? k : 0] = '\0';
	k = read(pe[0], err, errlen - 1);
	err[k > 0 ? k : 0] = '\0';
	close(po[0]);
	close(pe[0]);
	return st < 256 ? st : -1;
}

/* ------------------------------------------------------------------ */
/* sizes                                                               */
/* ------------------------------------------------------------------ */

/*
 * Side entries hold key bytes past 16 and a pid transport's identity:
 * a registry of ids of up to 16 bytes without CONNREG_TRANSPORT_IS_PID
 * has none (80 bytes per unit of capacity instead of 128), and works as
 * any other; the pid flag or a longer key_max brings them back.
 */
Test(memory, short_ids_without_pid_flag_need_no_side_entries)
{
	char name[T_NAME_BUF];
	connreg_config_t plain = t_cfg(100000, 16, 8), pid = plain, longer = t_cfg(100000, 17, 8);
	uint64_t b_plain = 0, b_pid = 0, b_long = 0, v = 0;
	connreg_t *reg;
	uint8_t id[16];

	pid.flags = CONNREG_TRANSPORT_IS_PID;
	cr_assert_eq(connreg_segment_size(&plain, &b_plain), 0);
	cr_assert_eq(connreg_segment_size(&pid, &b_pid), 0);
	cr_assert_eq(connreg_segment_size(&longer, &b_long), 0);
	/* 2 positions per unit of capacity, 24 bytes of side entry each (page rounding aside). */
	cr_assert_geq(b_pid - b_plain, 2ull * 100000 * 24 - 8192, "plain %" PRIu64 ", pid %" PRIu64,
		      b_plain, b_pid);
	cr_assert_gt(b_long, b_pid);
	cr_assert_leq(b_plain, 100000ull * 80 + 64 * 1024, "%" PRIu64 " bytes", b_plain);

	/* Every operation on such a registry, ids of each length class. */
	cr_assert_eq(connreg_create(t_name(name, "noside"), &plain, &reg), 0);
	/* 125 ids of each length 1..16: byte 0 tells them apart, the length the classes. */
	for (uint32_t i = 0; i < 2000; i++) {
		size_t len = 1 + i % 16;

		memset(id, 'x', sizeof id);
		id[0] = (uint8_t)(i / 16);
		cr_assert_eq(connreg_register(reg, id, len, 1000 + i), 0, "register #%u", i);
	}
	for (uint32_t i = 0; i < 2000; i++) {
		size_t len = 1 + i % 16;

		memset(id, 'x', sizeof id);
		id[0] = (uint8_t)(i / 16);
		cr_assert_eq(connreg_get_transport(reg, id, len, &v), 0, "lookup #%u", i);
		cr_assert_eq(v, 1000 + i);
		if (i % 3 == 0)
			cr_assert_eq(connreg_unregister(reg, id, len), 0);
		else if (i % 3 == 1)
			cr_assert_eq(connreg_update_transport(reg, id, len, 5000 + i), 0);
	}
	T_ASSERT_CHECK_CLEAN(reg);
	connreg_close(reg);
}

Test(memory, segment_size_matches_create)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(10000, 16, 8);
	connreg_stats_t st = { .size = sizeof(st) };
	uint64_t bytes = 0;
	connreg_t *reg;

	cr_assert_eq(connreg_segment_size(&cfg, &bytes), 0);
	cr_assert_gt(bytes, 10000ull * 16, "%" PRIu64 " bytes for 10000 ids of 16 bytes", bytes);
	cr_assert_eq(connreg_create(t_name(name, "size"), &cfg, &reg), 0);
	cr_assert_eq(connreg_stats(reg, &st), 0);
	cr_assert_eq(st.segment_size, bytes, "stats say %" PRIu64 ", connreg_segment_size %" PRIu64,
		     st.segment_size, bytes);
	connreg_close(reg);

	/* The same checks as create. */
	connreg_config_t bad = t_cfg(0, 16, 8);
	cr_assert_eq(connreg_segment_size(&bad, &bytes), -EINVAL);
	cr_assert_eq(connreg_segment_size(NULL, &bytes), -EINVAL);
	cr_assert_eq(connreg_segment_size(&cfg, NULL), -EINVAL);
	struct {
		connreg_config_t c;
		uint32_t extra;
	} big = { .c = cfg, .extra = 1 };
	big.c.size = sizeof(big);
	cr_assert_eq(connreg_segment_size(&big.c, &bytes), -E2BIG);

	/* Free space of /dev/shm, as statvfs gives it. */
	uint64_t avail = 0, total = 0;
	struct statvfs sv;
	cr_assert_eq(connreg_shm_space(&avail, &total), 0);
	cr_assert_eq(statvfs("/dev/shm", &sv), 0);
	cr_assert_eq(total, (uint64_t)sv.f_blocks * sv.f_frsize);
}

Test(memory, open_ex_options_checked)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(100, 16, 8);
	connreg_t *reg, *r2;

	cr_assert_eq(connreg_create(t_name(name, "opts"), &cfg, &reg), 0);
	connreg_open_opts_t o = { .size = 4 };
	cr_assert_eq(connreg_open_ex(name, &o, &r2), -EINVAL, "size below VER0");
	o = (connreg_open_opts_t){ .flags = 0x100 };
	cr_assert_eq(connreg_open_ex(name, &o, &r2), -EINVAL, "unknown flag");
	struct {
		connreg_open_opts_t o;
		uint32_t extra;
	} big = { .o = { .size = sizeof(big) }, .extra = 7 };
	cr_assert_eq(connreg_open_ex(name, &big.o, &r2), -E2BIG, "unknown non-zero tail");
	big.extra = 0;
	big.o.flags = CONNREG_OPEN_PREFAULT;
	cr_assert_eq(connreg_open_ex(name, &big.o, &r2), 0, "zero tail is fine");
	connreg_close(r2);
	cr_assert_eq(connreg_open_ex(name, NULL, &r2), 0);
	connreg_close(r2);
	connreg_close(reg);
}

/* ------------------------------------------------------------------ */
/* a small tmpfs in a private mount namespace                          */
/* ------------------------------------------------------------------ */

#define M_SKIP 77
#define M_TMPFS_SIZE (8u << 20)

struct m_ns {
	t_report_t rep;
	char skip[512];
	char dir[128];		/* where the tmpfs goes */
	bool use_env;		/* CONNREG_SHM_DIR=dir, else dir is /dev/shm */
	char big[T_NAME_BUF];	/* names */
	char cli[T_NAME_BUF];
	char fit[T_NAME_BUF];
	uint64_t need_big, need_fit, avail0; /* what the child measured, for messages */
	uint64_t filled;
};

static bool m_exists(const char *dir, const char *name)
{
	char path[PATH_MAX + T_NAME_BUF];

	snprintf(path, sizeof(path), "%s%s", dir, name);
	return access(path, F_OK) == 0;
}

static uint64_t m_avail(const char *dir)
{
	struct statvfs sv;

	return statvfs(dir, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : 0;
}

/*
 * In a child: unshare the mount namespace, mount a tmpfs of M_TMPFS_SIZE
 * on ns->dir, and check the reservation there. Exit M_SKIP (with
 * ns->skip) when this process may not do that.
 */
static int m_ns_child(void *arg)
{
	struct m_ns *ns = arg;
	t_report_t *rep = &ns->rep;
	connreg_config_t big = t_cfg(150000, 16, 16), fit = t_cfg(50000, 16, 16);
	char opt[64], out[4096], err[4096], want[512];
	connreg_t *reg;
	uint64_t a, b, u;
	int rc;

	if (unshare(CLONE_NEWNS) != 0) {
		snprintf(ns->skip, sizeof(ns->skip), "unshare(CLONE_NEWNS): %s", strerror(errno));
		return M_SKIP;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(ns->skip, sizeof(ns->skip), "mount --make-rprivate /: %s",
			 strerror(errno));
		return M_SKIP;
	}
	snprintf(opt, sizeof(opt), "size=%u,mode=1777", M_TMPFS_SIZE);
	if (mount("tmpfs", ns->dir, "tmpfs", MS_NOSUID | MS_NODEV, opt) != 0) {
		snprintf(ns->skip, sizeof(ns->skip), "mount tmpfs on %s: %s", ns->dir,
			 strerror(errno));
		return M_SKIP;
	}
	if (ns->use_env)
		setenv("CONNREG_SHM_DIR", ns->dir, 1);
	ns->avail0 = m_avail(ns->dir);
	T_CHECK(rep, ns->avail0 == M_TMPFS_SIZE, return 1, "fresh tmpfs has %" PRIu64 " free",
		ns->avail0);
	T_CHECK(rep, connreg_shm_space(&a, &b) == 0 && a == ns->avail0 && b == M_TMPFS_SIZE,
		return 1, "connreg_shm_space: %" PRIu64 " of %" PRIu64, a, b);

	/* 1. Larger than the free space: -ENOSPC, no name, no space kept. */
	T_CHECK(rep, connreg_segment_size(&big, &ns->need_big) == 0, return 1);
	T_CHECK(rep, ns->need_big > ns->avail0, return 1, "need %" PRIu64, ns->need_big);
	rc = connreg_create(ns->big, &big, &reg);
	T_CHECK(rep, rc == -ENOSPC, return 1, "create too large: %d (%s)", rc, connreg_strerror(rc));
	T_CHECK(rep, !m_exists(ns->dir, ns->big), return 1, "%s%s left behind", ns->dir, ns->big);
	rc = connreg_open(ns->big, &reg);
	T_CHECK(rep, rc == -ENOENT, return 1, "open after failed create: %d", rc);
	u = m_avail(ns->dir);
	T_CHECK(rep, u == ns->avail0, return 1, "free after failed create %" PRIu64 ", before %" PRIu64,
		u, ns->avail0);

	/* 2. The CLI says how much is needed and how much is free, and the remedy. */
	rc = m_run_cli((const char *const[]){ "create", "--capacity", "150000", "--key-max", "16",
					      "--max-threads", "16", ns->cli, NULL },
		       out, sizeof(out), err, sizeof(err));
	T_CHECK(rep, rc == 3, return 1, "connreg create exit %d, stderr: %s", rc, err);
	snprintf(want, sizeof(want), "needs %" PRIu64 " bytes", ns->need_big);
	T_CHECK(rep, strstr(err, want), return 1, "no \"%s\" in: %s", want, err);
	snprintf(want, sizeof(want), "%s has %" PRIu64 " bytes (8.0 MiB) free", ns->dir,
		 ns->avail0);
	T_CHECK(rep, strstr(err, want), return 1, "no \"%s\" in: %s", want, err);
	T_CHECK(rep, strstr(err, "--shm-size=") && strstr(err, "remount,size="), return 1,
		"no remedy in: %s", err);
	T_CHECK(rep, !m_exists(ns->dir, ns->cli), return 1, "the CLI left %s behind", ns->cli);
	rc = m_run_cli((const char *const[]){ "create", "--dry-run", "--capacity", "150000",
					      "--key-max", "16", "--max-threads", "16", NULL },
		       out, sizeof(out), err, sizeof(err));
	snprintf(want, sizeof(want), "segment size     %" PRIu64 " bytes", ns->need_big);
	T_CHECK(rep, rc == 3 && strstr(out, want) && strstr(out, "fits             no"),
		return 1, "dry-run exit %d, stdout: %s", rc, out);

	/* 3. One that fits holds its memory from create on... */
	T_CHECK(rep, connreg_segment_size(&fit, &ns->need_fit) == 0, return 1);
	rc = connreg_create(ns->fit, &fit, &reg);
	T_CHECK(rep, rc == 0, return 1, "create %" PRIu64 " bytes in %" PRIu64 ": %s", ns->need_fit,
		ns->avail0, connreg_strerror(rc));
	u = m_avail(ns->dir);
	T_CHECK(rep, ns->avail0 - u >= ns->need_fit, return 1,
		"create used %" PRIu64 " bytes of tmpfs, the segment is %" PRIu64 " (sparse?)",
		ns->avail0 - u, ns->need_fit);

	/* ...so even with the tmpfs then filled to the last page by someone else... */
	char filler[PATH_MAX + 32];
	snprintf(filler, sizeof(filler), "%s/filler", ns->dir);
	int fd = open(filler, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	T_CHECK(rep, fd >= 0, return 1, "open %s: %s", filler, strerror(errno));
	T_CHECK(rep, posix_fallocate(fd, 0, (off_t)u) == 0, return 1, "filler of %" PRIu64, u);
	close(fd);
	T_CHECK(rep, m_avail(ns->dir) == 0, return 1, "tmpfs still has %" PRIu64 " free",
		m_avail(ns->dir));

	/* ...it is filled to capacity without a signal (a SIGBUS kills this child). */
	uint8_t id[T_ID_LEN];
	for (uint64_t i = 0; i < fit.capacity; i++) {
		rc = connreg_register(reg, id, t_id(id, 15, i), i + 1);
		T_CHECK(rep, rc == 0, return 1, "register %" PRIu64 ": %s", i, connreg_strerror(rc));
	}
	rc = connreg_register(reg, id, t_id(id, 15, fit.capacity), 1);
	T_CHECK(rep, rc == -ENOSPC, return 1, "register past capacity: %d", rc);
	for (uint64_t i = 0; i < fit.capacity; i += 97) {
		uint64_t v = 0;
		rc = connreg_get_transport(reg, id, t_id(id, 15, i), &v);
		T_CHECK(rep, rc == 0 && v == i + 1, return 1, "get %" PRIu64 ": %d %" PRIu64, i, rc, v);
	}
	connreg_stats_t st = { .size = sizeof(st) };
	T_CHECK(rep, connreg_stats(reg, &st) == 0 && st.live == fit.capacity, return 1,
		"live %" PRIu64, st.live);
	ns->filled = st.live;
	rc = connreg_check(reg, NULL, NULL);
	T_CHECK(rep, rc == 0, return 1, "check: %d problems", rc);
	connreg_close(reg);
	T_CHECK(rep, connreg_unlink(ns->fit) == 0 && !m_exists(ns->dir, ns->fit), return 1);
	unlink(filler);
	return 0;
}

static void m_ns_run(const char *dir, bool use_env)
{
	struct m_ns *ns = t_shared(sizeof(*ns));

	cr_assert_not_null(ns);
	if (geteuid() != 0)
		cr_skip_test("needs root to mount a small tmpfs in a private mount namespace "
			     "(unshare(CLONE_NEWNS)); not root here");
	snprintf(ns->dir, sizeof(ns->dir), "%s", dir);
	ns->use_env = use_env;
	/* Names made in the parent: cleaned up here even if the child dies. */
	t_name(ns->big, "nsbig");
	t_name(ns->cli, "nscli");
	t_name(ns->fit, "nsfit");
	int st = t_wait(t_fork(m_ns_child, ns), 50000);
	if (st == M_SKIP)
		cr_skip_test("cannot mount a tmpfs in a private mount namespace: %s", ns->skip);
	T_ASSERT_REPORT_OK(&ns->rep);
	cr_assert_eq(st, 0, "child: status %d (%d = killed by signal %d)", st, T_WAIT_SIGNALED,
		     st - T_WAIT_SIGNALED);
	cr_assert_eq(ns->filled, 50000);
	munmap(ns, sizeof(*ns));
}

Test(memory, enospc_on_small_dev_shm)
{
	m_ns_run("/dev/shm", false);
}

Test(memory, enospc_on_small_shm_dir)
{
	m_ns_run(m_mkdtemp(), true);
}

/* hugetlbfs: whole huge pages, the same reservation and checks. */
struct m_huge {
	t_report_t rep;
	char skip[512];
	char dir[128];
	char name[T_NAME_BUF], big[T_NAME_BUF];
	uint64_t hpage, big_capacity;
};

static long m_meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(key);

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int m_huge_child(void *arg)
{
	struct m_huge *h = arg;
	t_report_t *rep = &h->rep;
	connreg_config_t small = t_cfg(1000, 16, 8), big = t_cfg(h->big_capacity, 16, 16);
	connreg_t *reg, *r2;
	uint64_t need, v;
	uint8_t id[T_ID_LEN];
	struct stat st;
	char path[PATH_MAX], opt[64];
	int rc;

	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(h->skip, sizeof(h->skip), "private mount namespace: %s", strerror(errno));
		return M_SKIP;
	}
	/*
	 * No size= limit: statvfs reports none, so the big registry gets past
	 * the free-space check and it is fallocate that fails, when the pool
	 * of huge pages runs out: the path that must give back what it took.
	 */
	snprintf(opt, sizeof(opt), "pagesize=%" PRIu64, h->hpage);
	if (mount("none", h->dir, "hugetlbfs", 0, opt) != 0) {
		snprintf(h->skip, sizeof(h->skip), "mount hugetlbfs (%s): %s", opt, strerror(errno));
		return M_SKIP;
	}
	setenv("CONNREG_SHM_DIR", h->dir, 1);
	T_CHECK(rep, connreg_segment_size(&small, &need) == 0 && need == h->hpage, return 1,
		"size %" PRIu64 ", huge page %" PRIu64, need, h->hpage);
	rc = connreg_create(h->name, &small, &reg);
	T_CHECK(rep, rc == 0, return 1, "create on hugetlbfs: %s", connreg_strerror(rc));
	snprintf(path, sizeof(path), "%s%s", h->dir, h->name);
	T_CHECK(rep, stat(path, &st) == 0 && (uint64_t)st.st_size == h->hpage, return 1,
		"file size %lld", (long long)st.st_size);
	T_CHECK(rep, connreg_register(reg, id, t_id(id, 4, 1), 41) == 0, return 1);
	connreg_open_opts_t o = { .flags = CONNREG_OPEN_PREFAULT };
	rc = connreg_open_ex(h->name, &o, &r2);
	T_CHECK(rep, rc == 0, return 1, "open on hugetlbfs: %s", connreg_strerror(rc));
	T_CHECK(rep, connreg_get_transport(r2, id, t_id(id, 4, 1), &v) == 0 && v == 41, return 1);
	connreg_stats_t s = { .size = sizeof(s) };
	T_CHECK(rep, connreg_stats(r2, &s) == 0 && s.segment_size == h->hpage, return 1,
		"stats segment_size %" PRIu64, s.segment_size);
	connreg_close(r2);
	connreg_close(reg);

	/* The big one needs more huge pages than the pool has. */
	rc = connreg_create(h->big, &big, &reg);
	T_CHECK(rep, rc == -ENOSPC, return 1, "too big on hugetlbfs: %d", rc);
	snprintf(path, sizeof(path), "%s%s", h->dir, h->big);
	T_CHECK(rep, access(path, F_OK) != 0, return 1, "%s left behind", path);
	T_CHECK(rep, connreg_unlink(h->name) == 0, return 1);
	return 0;
}

Test(memory, hugetlbfs_dir)
{
	struct m_huge *h = t_shared(sizeof(*h));
	long kb = m_meminfo("Hugepagesize"), free_pages = m_meminfo("HugePages_Free");

	cr_assert_not_null(h);
	if (geteuid() != 0)
		cr_skip_test("needs root to mount hugetlbfs in a private mount namespace");
	if (kb <= 0 || free_pages < 2)
		cr_skip_test("needs 2 free huge pages (HugePages_Free %ld; as root: "
			     "sysctl vm.nr_hugepages=8)",
			     free_pages);
	h->hpage = (uint64_t)kb * 1024;
	/* ~100 bytes per id: more than every free huge page holds. */
	h->big_capacity = (uint64_t)(free_pages + 2) * h->hpage / 90;
	snprintf(h->dir, sizeof(h->dir), "%s", m_mkdtemp());
	t_name(h->name, "huge");
	t_name(h->big, "hugebig");
	int st = t_wait(t_fork(m_huge_child, h), 20000);
	if (st == M_SKIP)
		cr_skip_test("%s", h->skip);
	T_ASSERT_REPORT_OK(&h->rep);
	cr_assert_eq(st, 0, "child status %d", st);
	cr_assert_eq(m_meminfo("HugePages_Free"), free_pages, "huge pages not given back");
}

/*
 * A create interrupted again and again: tmpfs on many kernels abandons a
 * fallocate (EINTR, undoing that call) whenever a signal arrives during
 * it. A timer that fires more often than one piece of the reservation
 * takes must not starve the create. (Recent kernels abandon it only for a
 * fatal signal; there the signals land between the pieces and this test
 * shows only that the create completes under the timer.)
 */
static atomic_long m_alarms;

static void m_on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&m_alarms, 1);
}

struct m_timer {
	t_report_t rep;
	char name[T_NAME_BUF];
	long alarms;
	uint64_t ms, size;
};

static int m_timer_child(void *arg)
{
	struct m_timer *t = arg;
	connreg_config_t cfg = t_cfg(400000, 16, 16);
	struct sigaction sa = { .sa_handler = m_on_alarm }; /* no SA_RESTART */
	struct itimerval on = { .it_interval = { 0, 200 }, .it_value = { 0, 200 } }, off = { 0 };
	uint8_t id[T_ID_LEN];
	connreg_t *reg;
	uint64_t v, t0;
	int rc;

	sigemptyset(&sa.sa_mask);
	T_CHECK(&t->rep, sigaction(SIGALRM, &sa, NULL) == 0, return 1);
	T_CHECK(&t->rep, connreg_segment_size(&cfg, &t->size) == 0, return 1);
	T_CHECK(&t->rep, setitimer(ITIMER_REAL, &on, NULL) == 0, return 1);
	t0 = t_now_ms();
	rc = connreg_create(t->name, &cfg, &reg);
	t->ms = t_now_ms() - t0;
	setitimer(ITIMER_REAL, &off, NULL);
	t->alarms = atomic_load(&m_alarms);
	T_CHECK(&t->rep, rc == 0, return 1, "create under a 200 us timer: %s", connreg_strerror(rc));
	T_CHECK(&t->rep, connreg_register(reg, id, t_id(id, 6, 1), 5) == 0, return 1);
	T_CHECK(&t->rep, connreg_get_transport(reg, id, t_id(id, 6, 1), &v) == 0 && v == 5,
		return 1);
	connreg_close(reg);
	return 0;
}

Test(memory, create_survives_a_fast_timer)
{
	struct m_timer *t = t_shared(sizeof(*t));

	cr_assert_not_null(t);
	t_name(t->name, "timer");
	int st = t_wait(t_fork(m_timer_child, t), 20000);
	T_ASSERT_REPORT_OK(&t->rep);
	cr_assert_eq(st, 0, "child status %d (%d: timed out, the create starved)", st,
		     T_WAIT_TIMEOUT);
	cr_assert_gt(t->alarms, 0, "no timer signal during a %" PRIu64 " ms create", t->ms);
	cr_log_info("create of %" PRIu64 " bytes: %" PRIu64 " ms, %ld timer signals", t->size,
		    t->ms, t->alarms);
}

/* ------------------------------------------------------------------ */
/* CONNREG_SHM_DIR on an ordinary directory                            */
/* ------------------------------------------------------------------ */

struct m_peer {
	t_report_t rep;
	char name[T_NAME_BUF];
	uint32_t n;
};

/* A separate process: open by name (CONNREG_SHM_DIR inherited) and look up. */
static int m_peer_reader(void *arg)
{
	struct m_peer *p = arg;
	connreg_t *reg;
	uint8_t id[T_ID_LEN];
	int rc = connreg_open(p->name, &reg);

	T_CHECK(&p->rep, rc == 0, return 1, "peer open: %s", connreg_strerror(rc));
	for (uint32_t i = 0; i < p->n; i++) {
		uint64_t v = 0;
		rc = connreg_get_transport(reg, id, t_id(id, 3, i), &v);
		T_CHECK(&p->rep, rc == 0 && v == 1000 + i, return 1, "peer get %u: %d", i, rc);
	}
	rc = connreg_register(reg, id, t_id(id, 3, p->n), 77);
	T_CHECK(&p->rep, rc == 0, return 1, "peer register: %d", rc);
	connreg_close(reg);
	return 0;
}

struct m_late {
	const char *name;
	int rc;
	uint64_t ms;
};

static void *m_late_open(void *arg)
{
	struct m_late *l = arg;
	connreg_t *reg = NULL;
	uint64_t t0 = t_now_ms();

	l->rc = connreg_open(l->name, &reg);
	l->ms = t_now_ms() - t0;
	if (l->rc == 0)
		connreg_close(reg);
	return NULL;
}

Test(memory, shm_dir_keeps_every_guarantee)
{
	const char *dir = m_mkdtemp();
	char name[T_NAME_BUF], path[PATH_MAX + T_NAME_BUF], shm[T_NAME_BUF + 16];
	connreg_config_t cfg = t_cfg(1000, 16, 8);
	struct stat st;
	connreg_t *reg;
	uint64_t need;
	uint8_t id[T_ID_LEN];

	cr_assert_eq(setenv("CONNREG_SHM_DIR", dir, 1), 0);
	t_name(name, "dir");
	snprintf(path, sizeof(path), "%s%s", dir, name);
	snprintf(shm, sizeof(shm), "/dev/shm%s", name);

	/* Created in the directory, not in /dev/shm, fully allocated, with its mode. */
	cfg.mode = 0640;
	cr_assert_eq(connreg_segment_size(&cfg, &need), 0);
	cr_assert_eq(connreg_create(name, &cfg, &reg), 0);
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(access(shm, F_OK), -1, "%s exists too", shm);
	cr_assert_eq((uint64_t)st.st_size, need);
	cr_assert_geq((uint64_t)st.st_blocks * 512, need, "%s is sparse: %" PRIu64 " of %" PRIu64,
		      path, (uint64_t)st.st_blocks * 512, need);
	cr_assert_eq(st.st_mode & 0777, 0640);
	connreg_t *again = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &again), -EEXIST);
	for (uint32_t i = 0; i < 500; i++)
		cr_assert_eq(connreg_register(reg, id, t_id(id, 3, i), 1000 + i), 0);

	/* Another process finds it by name through the same variable. */
	struct m_peer *p = t_shared(sizeof(*p));
	cr_assert_not_null(p);
	memcpy(p->name, name, sizeof(p->name));
	p->n = 500;
	int rc = t_wait(t_fork(m_peer_reader, p), 20000);
	T_ASSERT_REPORT_OK(&p->rep);
	cr_assert_eq(rc, 0, "peer status %d", rc);
	uint64_t v = 0;
	cr_assert_eq(connreg_get_transport(reg, id, t_id(id, 3, 500), &v), 0);
	cr_assert_eq(v, 77);
	munmap(p, sizeof(*p));
	connreg_close(reg);

	/* unlink removes the file; open then says -ENOENT. */
	cr_assert_eq(connreg_unlink(name), 0);
	cr_assert_eq(access(path, F_OK), -1);
	cr_assert_eq(connreg_open(name, &reg), -ENOENT);
	cr_assert_eq(connreg_unlink(name), -ENOENT);

	/* Hostile files under a name are refused, as in /dev/shm. */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	char junk[8192];
	memset(junk, 0xa5, sizeof(junk));
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	cr_assert_eq(connreg_open(name, &reg), -EPROTO, "garbage file");
	unlink(path);
	cr_assert_eq(mkfifo(path, 0600), 0);
	uint64_t t0 = t_now_ms();
	cr_assert_eq(connreg_open(name, &reg), -EPROTO, "a FIFO");
	cr_assert_lt(t_now_ms() - t0, 1000, "a FIFO is refused at once, not after the wait");
	unlink(path);
	char target[PATH_MAX + T_NAME_BUF];
	snprintf(target, sizeof(target), "%s/real", dir);
	cr_assert_eq(setenv("CONNREG_SHM_DIR", dir, 1), 0);
	cr_assert_eq(connreg_create("/real", &cfg, &reg), 0);
	connreg_close(reg);
	cr_assert_eq(symlink(target, path), 0);
	cr_assert_eq(connreg_open(name, &reg), -ELOOP, "a symbolic link is not followed");
	unlink(path);
	cr_assert_eq(connreg_unlink("/real"), 0);

	/*
	 * A creator that gives up before its segment is ready (it unlinks the
	 * name) sends a waiting opener away with -ENOENT at once, not -EPROTO
	 * after CONNREG_OPEN_WAIT_MS.
	 */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600); /* a creator before its fallocate */
	cr_assert_geq(fd, 0);
	struct m_late l = { .name = name };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, m_late_open, &l), 0);
	t_sleep_ms(200);
	unlink(path);
	close(fd);
	pthread_join(th, NULL);
	cr_assert_eq(l.rc, -ENOENT, "opener got %d after %" PRIu64 " ms", l.rc, l.ms);
	cr_assert_lt(l.ms, CONNREG_OPEN_WAIT_MS, "opener waited %" PRIu64 " ms", l.ms);

	/* The directory must be absolute; a bad value is refused, not guessed at. */
	cr_assert_eq(setenv("CONNREG_SHM_DIR", "relative/dir", 1), 0);
	cr_assert_eq(connreg_create(name, &cfg, &reg), -EINVAL);
	cr_assert_eq(connreg_open(name, &reg), -EINVAL);
	cr_assert_eq(connreg_segment_size(&cfg, &need), -EINVAL);
	/* A directory that does not exist: -ENOENT from create. */
	cr_assert_eq(setenv("CONNREG_SHM_DIR", "/nonexistent-connreg-dir", 1), 0);
	cr_assert_eq(connreg_create(name, &cfg, &reg), -ENOENT);
	unsetenv("CONNREG_SHM_DIR");
}

/* ------------------------------------------------------------------ */
/* prefault: no page faults on lookups after open                      */
/* ------------------------------------------------------------------ */

#define M_PF_IDS 100000u

struct m_pf {
	t_report_t rep;
	char name[T_NAME_BUF];
	int mode;		/* 0: no prefault, 1: CONNREG_OPEN_PREFAULT, 2: CONNREG_PREFAULT=1 */
	long minflt, majflt;	/* faults over the measured lookups */
	uint32_t bad;		/* lookups that did not return their transport */
};

/* Another process fills the registry. */
static int m_pf_fill(void *arg)
{
	struct m_pf *pf = arg;
	connreg_config_t cfg = t_cfg(M_PF_IDS, 16, 16);
	uint8_t id[T_ID_LEN];
	connreg_t *reg;
	int rc = connreg_create(pf->name, &cfg, &reg);

	T_CHECK(&pf->rep, rc == 0, return 1, "create: %s", connreg_strerror(rc));
	for (uint32_t i = 0; i < M_PF_IDS; i++) {
		rc = connreg_register(reg, id, t_id(id, 9, i), 3ull * i + 1);
		T_CHECK(&pf->rep, rc == 0, return 1, "register %u: %d", i, rc);
	}
	connreg_close(reg);
	return 0;
}

/* A fresh process: open, one warm-up lookup, then count faults over every id. */
static int m_pf_measure(void *arg)
{
	struct m_pf *pf = arg;
	connreg_open_opts_t o = { .size = sizeof(o) };
	struct rusage r0, r1;
	uint8_t id[T_ID_LEN];
	uint32_t bad = 0;
	connreg_t *reg;
	uint64_t v;
	int rc;

	/* Our report area is a shared page this child has not touched: touch it now. */
	pf->bad = 0;
	if (pf->mode == 2) {
		setenv("CONNREG_PREFAULT", "1", 1);
		rc = connreg_open(pf->name, &reg);
	} else {
		unsetenv("CONNREG_PREFAULT");
		o.flags = pf->mode == 1 ? CONNREG_OPEN_PREFAULT : 0;
		rc = connreg_open_ex(pf->name, &o, &reg);
	}
	T_CHECK(&pf->rep, rc == 0, return 1, "open (mode %d): %s", pf->mode, connreg_strerror(rc));
	/*
	 * The thread's first call claims its reader slot and liveness token
	 * and allocates its record (heap pages): not a lookup's cost.
	 */
	rc = connreg_get_transport(reg, id, t_id(id, 9, 0), &v);
	T_CHECK(&pf->rep, rc == 0 && v == 1, return 1, "warm-up: %d", rc);
	/*
	 * That first call ran the full lookup; run the call-free fast path
	 * once too (a hit and a miss), so a first execution of its code page
	 * (a minor fault on the library's text) is not counted as the segment's.
	 */
	rc = connreg_get_transport(reg, id, t_id(id, 9, 0), &v);
	T_CHECK(&pf->rep, rc == 0 && v == 1, return 1, "warm-up: %d", rc);
	(void)connreg_get_transport(reg, id, t_id(id, 11, 0), &v);
	getrusage(RUSAGE_THREAD, &r0);
	for (uint32_t i = 0; i < M_PF_IDS; i++) {
		v = 0;
		rc = connreg_get_transport(reg, id, t_id(id, 9, i), &v);
		bad += rc != 0 || v != 3ull * i + 1;
	}
	/* Misses read whole probe sequences of buckets. */
	for (uint32_t i = 0; i < M_PF_IDS / 4; i++)
		bad += connreg_get_transport(reg, id, t_id(id, 10, i), &v) != -ENOENT;
	getrusage(RUSAGE_THREAD, &r1);
	pf->minflt = r1.ru_minflt - r0.ru_minflt;
	pf->majflt = r1.ru_majflt - r0.ru_majflt;
	pf->bad = bad;
	connreg_close(reg);
	return 0;
}

static struct m_pf *m_pf_run(const char *name, int mode)
{
	struct m_pf *pf = t_shared(sizeof(*pf));

	cr_assert_not_null(pf);
	memcpy(pf->name, name, sizeof(pf->name));
	pf->mode = mode;
	int st = t_wait(t_fork(m_pf_measure, pf), 30000);
	T_ASSERT_REPORT_OK(&pf->rep);
	cr_assert_eq(st, 0, "measuring child (mode %d): status %d", mode, st);
	cr_assert_eq(pf->bad, 0, "mode %d: %u lookups wrong", mode, pf->bad);
	return pf;
}

Test(memory, prefault_leaves_lookups_no_page_fault)
{
	char name[T_NAME_BUF];
	struct m_pf *fill = t_shared(sizeof(*fill));

	cr_assert_not_null(fill);
	memcpy(fill->name, t_name(name, "pf"), sizeof(fill->name));
	int st = t_wait(t_fork(m_pf_fill, fill), 30000);
	T_ASSERT_REPORT_OK(&fill->rep);
	cr_assert_eq(st, 0);

	/* Without prefault the same lookups fault: the measurement can see them. */
	struct m_pf *cold = m_pf_run(name, 0);
	cr_assert_gt(cold->minflt + cold->majflt, 0,
		     "no page fault over %u lookups of a segment mapped just before: "
		     "the fault count measures nothing",
		     M_PF_IDS);
#if defined(__SANITIZE_ADDRESS__)
	connreg_unlink(name); /* a skipped test does not reach the suite's .fini */
	cr_skip_test("AddressSanitizer: lookups fault on its shadow pages, not the segment's "
		     "(%ld faults without prefault); the no-fault check runs in the Release tree",
		     cold->minflt);
#else
	struct m_pf *hot = m_pf_run(name, 1);
	cr_assert_eq(hot->minflt + hot->majflt, 0,
		     "CONNREG_OPEN_PREFAULT: %ld minor + %ld major faults over %u lookups "
		     "(%ld without prefault)",
		     hot->minflt, hot->majflt, M_PF_IDS + M_PF_IDS / 4, cold->minflt);
	struct m_pf *env = m_pf_run(name, 2);
	cr_assert_eq(env->minflt + env->majflt, 0,
		     "CONNREG_PREFAULT=1: %ld minor + %ld major faults (%ld without)", env->minflt,
		     env->majflt, cold->minflt);
#endif
}

/* ------------------------------------------------------------------ */
/* mlock: locked when allowed, a clear error when not                  */
/* ------------------------------------------------------------------ */

struct m_lock {
	t_report_t rep;
	char name[T_NAME_BUF];
	uint64_t size;
	int rc_zero, rc_small, rc_ok;
	long vmlck_kb, vmlck_after_kb;
	char skip[128];
};

static long m_vmlck_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int m_lock_child(void *arg)
{
	struct m_lock *l = arg;
	connreg_open_opts_t o = { .size = sizeof(o), .flags = CONNREG_OPEN_MLOCK };
	struct rlimit rl;
	connreg_t *reg;

	if (geteuid() == 0) {
		/* Root locks past any limit (CAP_IPC_LOCK): become an ordinary uid. */
		rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
		(void)setrlimit(RLIMIT_MEMLOCK, &rl); /* needs CAP_SYS_RESOURCE; else keep it */
		T_CHECK(&l->rep, setgid(65534) == 0 && setuid(65534) == 0, return 1, "%s",
			strerror(errno));
	}
	T_CHECK(&l->rep, getrlimit(RLIMIT_MEMLOCK, &rl) == 0, return 1);
	rlim_t hard = rl.rlim_max;

	rl.rlim_cur = 0;
	T_CHECK(&l->rep, setrlimit(RLIMIT_MEMLOCK, &rl) == 0, return 1);
	l->rc_zero = connreg_open_ex(l->name, &o, &reg);
	if (l->rc_zero == 0)
		connreg_close(reg);

	rl.rlim_cur = 64 << 10;
	T_CHECK(&l->rep, setrlimit(RLIMIT_MEMLOCK, &rl) == 0, return 1);
	l->rc_small = connreg_open_ex(l->name, &o, &reg);
	if (l->rc_small == 0)
		connreg_close(reg);

	if (hard != RLIM_INFINITY && hard < l->size + (1 << 20)) {
		snprintf(l->skip, sizeof(l->skip), "RLIMIT_MEMLOCK hard limit %llu bytes",
			 (unsigned long long)hard);
		return 0;
	}
	rl.rlim_cur = hard;
	T_CHECK(&l->rep, setrlimit(RLIMIT_MEMLOCK, &rl) == 0, return 1);
	l->rc_ok = connreg_open_ex(l->name, &o, &reg);
	if (l->rc_ok == 0) {
		l->vmlck_kb = m_vmlck_kb();
		connreg_close(reg);
		l->vmlck_after_kb = m_vmlck_kb();
	}
	return 0;
}

Test(memory, mlock_locks_or_fails_loudly)
{
	struct m_lock *l = t_shared(sizeof(*l));
	connreg_config_t cfg = t_cfg(2000, 16, 8);
	connreg_t *reg;

	cr_assert_not_null(l);
#if defined(__SANITIZE_ADDRESS__)
	cr_skip_test("AddressSanitizer replaces mlock(2) with a no-op that succeeds; "
		     "the mlock checks run in the Release tree");
#endif
	cfg.mode = 0666; /* the child may drop to another uid */
	cr_assert_eq(connreg_create(t_name(l->name, "lock"), &cfg, &reg), 0);
	cr_assert_eq(connreg_segment_size(&cfg, &l->size), 0);
	int st = t_wait(t_fork(m_lock_child, l), 20000);
	connreg_close(reg);
	T_ASSERT_REPORT_OK(&l->rep);
	cr_assert_eq(st, 0);
	cr_assert_eq(l->rc_zero, -EPERM, "RLIMIT_MEMLOCK 0: %d (%s)", l->rc_zero,
		     connreg_strerror(l->rc_zero));
	cr_assert_eq(l->rc_small, -ENOMEM, "RLIMIT_MEMLOCK 64 KiB < %" PRIu64 ": %d (%s)", l->size,
		     l->rc_small, connreg_strerror(l->rc_small));
	if (l->skip[0]) {
		connreg_unlink(l->name); /* a skipped test does not reach the suite's .fini */
		cr_skip_test("mlock failures checked; a successful mlock needs more: %s", l->skip);
	}
	cr_assert_eq(l->rc_ok, 0, "%s", connreg_strerror(l->rc_ok));
	cr_assert_geq((uint64_t)l->vmlck_kb * 1024, l->size, "VmLck %ld kB for %" PRIu64 " bytes",
		      l->vmlck_kb, l->size);
	cr_assert_eq(l->vmlck_after_kb, 0, "VmLck %ld kB after close", l->vmlck_after_kb);
}
