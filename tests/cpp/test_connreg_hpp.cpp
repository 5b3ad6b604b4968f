/*
 * test_connreg_hpp.cpp: every call of include/connreg.hpp, its throwing and
 * its std::error_code overloads, and their error paths. Built by
 * tests/cpp/run.sh with g++ and clang++, as C++17 and as C++20 (byte spans).
 */
#include "check.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using connreg::registry;

static constexpr std::uint64_t u64_max = UINT64_MAX;

/* expr must throw std::system_error carrying errno `err` and the library's text. */
#define CHECK_THROWS(expr, err)                                                                    \
	do {                                                                                       \
		bool thrown_ = false;                                                              \
		try {                                                                              \
			(void)(expr);                                                              \
		} catch (const std::system_error &e_) {                                            \
			thrown_ = true;                                                            \
			CHECK(e_.code().value() == (err));                                         \
			CHECK(e_.code().category() == connreg::category());                        \
			CHECK(std::string(e_.what()).find(connreg_strerror(-(err))) !=            \
			      std::string::npos);                                                  \
		}                                                                                  \
		CHECK(thrown_);                                                                    \
	} while (0)

/* The handle's type: move-only, and the error_code overloads are noexcept. */
static_assert(!std::is_copy_constructible_v<registry>);
static_assert(!std::is_copy_assignable_v<registry>);
static_assert(std::is_nothrow_move_constructible_v<registry>);
static_assert(std::is_nothrow_move_assignable_v<registry>);
static_assert(std::is_nothrow_destructible_v<registry>);
static_assert(noexcept(std::declval<registry &>().find("x", std::declval<std::error_code &>())));
static_assert(noexcept(std::declval<registry &>().insert_or_assign(
	"x", 1, std::declval<std::error_code &>())));
static_assert(noexcept(std::declval<registry &>().update("x", 1, std::declval<std::error_code &>())));
static_assert(noexcept(std::declval<registry &>().erase("x", std::declval<std::error_code &>())));
static_assert(noexcept(std::declval<registry &>().wait_for(
	"x", 1, std::declval<const std::chrono::milliseconds &>(), std::declval<std::error_code &>())));
static_assert(noexcept(registry::open("/x", std::declval<std::error_code &>())));
static_assert(!noexcept(std::declval<registry &>().find("x")));
static_assert(std::is_same_v<decltype(std::declval<registry &>().find("x")),
			     std::optional<std::uint64_t>>);

static registry make(std::uint64_t capacity = 64, std::uint32_t key_max = 32)
{
	return registry::create(t::unique_name(), {capacity, key_max});
}

TEST(create_open_share_one_mapping)
{
	std::string n = t::unique_name();
	registry a = registry::create(n, {10});
	CHECK(a);
	registry b = registry::open(n);
	a.insert_or_assign("conn-1", 7);
	CHECK(b.find("conn-1") == 7u);
	b.update(std::string("conn-1"), 8);
	CHECK(a.find(std::string_view("conn-1")) == 8u);
}

TEST(create_errors)
{
	std::string n = t::unique_name();
	registry a = registry::create(n, {4});
	CHECK_THROWS(registry::create(n, {4}), EEXIST);
	try {
		(void)registry::create(n, {4});
	} catch (const std::system_error &e) {
		CHECK(e.code() == std::errc::file_exists);
		CHECK(std::string(e.what()).find("connreg_create") != std::string::npos);
	}
	CHECK_THROWS(registry::create(t::unique_name(), {0}), EINVAL);
	CHECK_THROWS(registry::create(t::unique_name(), {4, CONNREG_KEY_MAX_LIMIT + 1}), EINVAL);
	CHECK_THROWS(registry::create("no-slash", {4}), EINVAL);
	CHECK_THROWS(registry::create("/" + std::string(300, 'x'), {4}), EINVAL);

	std::error_code ec;
	registry r = registry::create(n, {4}, ec);
	CHECK(!r && ec == std::errc::file_exists && ec.value() == EEXIST);
	r = registry::create(t::unique_name(), {4}, ec);
	CHECK(r && !ec);
}

TEST(name_with_nul_byte_is_refused)
{
	std::string n = t::unique_name();
	std::string with_nul = n + std::string("\0junk", 5);
	CHECK_THROWS(registry::create(with_nul, {4}), EINVAL);
	CHECK_THROWS(registry::open(n), ENOENT); /* nothing was created under "n" */
	std::error_code ec;
	connreg::unlink(with_nul, ec);
	CHECK(ec.value() == EINVAL);
}

TEST(open_errors)
{
	CHECK_THROWS(registry::open(t::unique_name()), ENOENT);
	std::error_code ec;
	registry r = registry::open(t::unique_name(), ec);
	CHECK(!r && ec == std::errc::no_such_file_or_directory);
	r = registry::open("bad name", ec);
	CHECK(!r && ec == std::errc::invalid_argument);
}

TEST(open_or_create)
{
	std::string n = t::unique_name();
	bool created = false;
	registry a = registry::open_or_create(n, {8}, &created);
	CHECK(created);
	a.insert_or_assign("x", 1);
	registry b = registry::open_or_create(n, {999, 8}, &created);
	CHECK(!created);
	CHECK(b.find("x") == 1u);
	CHECK(b.get_stats().capacity == 8);
	std::error_code ec;
	registry c = registry::open_or_create("/", {8}, ec, &created);
	CHECK(!c && ec.value() == EINVAL && !created);
}

TEST(unlink)
{
	std::string n = t::unique_name();
	registry a = registry::create(n, {4});
	a.insert_or_assign("x", 3);
	connreg::unlink(n);
	CHECK_THROWS(connreg::unlink(n), ENOENT);
	CHECK_THROWS(registry::open(n), ENOENT);
	CHECK(a.find("x") == 3u); /* attached handles keep working */
	std::error_code ec;
	connreg::unlink(n, ec);
	CHECK(ec == std::errc::no_such_file_or_directory);
}

TEST(move_only_handle)
{
	std::string n = t::unique_name();
	registry a = registry::create(n, {4});
	a.insert_or_assign("x", 1);
	connreg_t *h = a.native_handle();
	registry b(std::move(a));
	CHECK(!a && a.native_handle() == nullptr); // NOLINT(bugprone-use-after-move)
	CHECK(b && b.native_handle() == h);
	CHECK(b.find("x") == 1u);

	/* Move-assigning closes the handle assigned over: this thread's reader
	 * slot through it is given back. */
	registry c = registry::open(n);
	(void)c.find("x");
	auto mine = [&b] {
		auto rs = b.readers();
		return std::count_if(rs.begin(), rs.end(),
				     [](const connreg::reader &r) { return r.pid == getpid(); });
	};
	CHECK(mine() == 2);
	c = registry::create(t::unique_name(), {4});
	CHECK(mine() == 1);
	registry &alias = c;
	c = std::move(alias); /* self-move leaves it usable */
	CHECK(c && !c.find("x"));

	connreg_t *raw = b.release();
	CHECK(!b && raw == h);
	registry d(raw);
	CHECK(d.find("x") == 1u);
	d.close();
	CHECK(!d);
	d.close(); /* idempotent */
}

TEST(every_64_bit_transport_is_valid)
{
	registry r = make();
	for (std::uint64_t t : {std::uint64_t{0}, std::uint64_t{1}, u64_max, u64_max - 1,
				std::uint64_t{1} << 63}) {
		r.insert_or_assign("k", t);
		std::optional<std::uint64_t> got = r.find("k");
		CHECK(got.has_value() && *got == t);
		CHECK(r.contains("k"));
	}
}

TEST(find_absent)
{
	registry r = make();
	CHECK(!r.find("nope").has_value());
	CHECK(!r.contains("nope"));
	std::error_code ec = std::make_error_code(std::errc::io_error);
	CHECK(!r.find("nope", ec) && !ec);
	r.insert_or_assign("yes", 5, ec);
	CHECK(!ec);
	CHECK(r.find("yes", ec) == 5u && !ec);
	CHECK(r.contains("yes", ec) && !ec);
}

TEST(binary_and_string_ids)
{
	registry r = make();
	const std::string_view bin("a\0b", 3);
	r.insert_or_assign(bin, 1);
	CHECK(r.find(bin) == 1u);
	CHECK(!r.find("a")); /* a C string stops at the NUL: another id */
	r.insert_or_assign(connreg::id_view("\xff\x00", 2), 2);
	CHECK(r.find(std::string("\xff\x00", 2)) == 2u);
	char buf[4] = {'k', 'e', 'y', '\0'};
	r.insert_or_assign(buf, 3);
	CHECK(r.find(std::string_view("key")) == 3u);
}

TEST(id_errors)
{
	registry r = make(4, 8);
	const std::string ok(8, 'x'), too_long(9, 'x');
	r.insert_or_assign(ok, 1);
	CHECK(r.find(ok) == 1u);
	std::uint64_t e = 1;
	CHECK_THROWS(r.insert_or_assign(too_long, 1), ENAMETOOLONG);
	CHECK_THROWS(r.find(too_long), ENAMETOOLONG);
	CHECK_THROWS(r.contains(too_long), ENAMETOOLONG);
	CHECK_THROWS(r.update(too_long, 1), ENAMETOOLONG);
	CHECK_THROWS(r.compare_exchange(too_long, e, 2), ENAMETOOLONG);
	CHECK_THROWS(r.erase(too_long), ENAMETOOLONG);
	CHECK_THROWS(r.wait_for(too_long, 1, 0ms), ENAMETOOLONG);
	CHECK_THROWS(r.insert_or_assign("", 1), EINVAL);
	CHECK_THROWS(r.find(""), EINVAL);
	CHECK_THROWS(r.erase(""), EINVAL);
	std::error_code ec;
	CHECK(!r.find(too_long, ec) && ec == std::errc::filename_too_long);
	r.insert_or_assign("", 1, ec);
	CHECK(ec == std::errc::invalid_argument);
	CHECK(ec.message() == connreg_strerror(-EINVAL));
}

TEST(full_registry_is_enospc)
{
	registry r = make(4);
	for (int i = 0; i < 4; i++)
		r.insert_or_assign("id-" + std::to_string(i), static_cast<std::uint64_t>(i));
	CHECK_THROWS(r.insert_or_assign("id-4", 4), ENOSPC);
	std::error_code ec;
	r.insert_or_assign("id-4", 4, ec);
	CHECK(ec == std::errc::no_space_on_device);
	r.insert_or_assign("id-0", 100); /* an update is not a new id */
	r.erase("id-1");
	r.insert_or_assign("id-4", 4);
	CHECK(r.size() == 4);
}

TEST(update)
{
	registry r = make();
	CHECK_THROWS(r.update("k", 1), ENOENT);
	std::error_code ec;
	r.update("k", 1, ec);
	CHECK(ec == std::errc::no_such_file_or_directory);
	CHECK(!r.contains("k"));
	r.insert_or_assign("k", 1);
	r.update("k", 2);
	CHECK(r.find("k") == 2u);
	r.update("k", 3, ec);
	CHECK(!ec && r.find("k") == 3u);
}

TEST(compare_exchange)
{
	registry r = make();
	std::uint64_t expected = 0;
	CHECK_THROWS(r.compare_exchange("k", expected, 1), ENOENT);
	r.insert_or_assign("k", 10);
	expected = 10;
	CHECK(r.compare_exchange("k", expected, 11));
	CHECK(expected == 10 && r.find("k") == 11u);
	expected = 10;
	CHECK(!r.compare_exchange("k", expected, 12));
	CHECK(expected == 11); /* the current transport */
	CHECK(r.find("k") == 11u);
	CHECK(r.compare_exchange("k", expected, u64_max)); /* the usual retry */
	CHECK(r.find("k") == u64_max);

	std::error_code ec;
	expected = 5;
	CHECK(!r.compare_exchange("k", expected, 6, ec) && !ec && expected == u64_max);
	CHECK(!r.compare_exchange("absent", expected, 6, ec));
	CHECK(ec == std::errc::no_such_file_or_directory);
}

TEST(erase)
{
	registry r = make();
	r.insert_or_assign("k", 1);
	r.erase("k");
	CHECK(!r.contains("k"));
	r.erase("k"); /* absent: no error */
	std::error_code ec;
	r.erase("k", ec);
	CHECK(!ec);
	CHECK(r.size() == 0);
}

TEST(find_many)
{
	registry r = make(300);
	for (int i = 0; i < 300; i += 2)
		r.insert_or_assign("id-" + std::to_string(i), static_cast<std::uint64_t>(i) * 1000);
	std::vector<std::string> keys;
	for (int i = 0; i < 300; i++)
		keys.push_back("id-" + std::to_string(i));
	std::vector<connreg::id_view> ids(keys.begin(), keys.end());
	std::vector<std::optional<std::uint64_t>> got = r.find_many(ids);
	CHECK(got.size() == 300);
	bool all = true;
	for (std::size_t i = 0; i < 300; i++)
		all = all && (i % 2 == 0 ? got[i] == i * 1000 : !got[i]);
	CHECK(all);
	CHECK(r.find_many({}).empty());
	CHECK(r.find_many({"id-2", "nope"}) == (std::vector<std::optional<std::uint64_t>>{2000, {}}));
	CHECK_THROWS(r.find_many({"id-2", ""}), EINVAL);
	std::optional<std::uint64_t> out[2];
	const std::string long_id(40, 'x');
	connreg::id_view two[] = {"id-4", long_id};
	std::error_code ec;
	r.find_many(two, 2, out, ec);
	CHECK(ec == std::errc::filename_too_long);
}

TEST(for_each_visits_every_id)
{
	registry r = make(1001);
	std::map<std::string, std::uint64_t> want;
	for (int i = 0; i < 1000; i++) {
		std::string k = "id-" + std::to_string(i);
		want[k] = static_cast<std::uint64_t>(i);
		r.insert_or_assign(k, static_cast<std::uint64_t>(i));
	}
	r.insert_or_assign(std::string_view("\0bin", 4), u64_max);
	want[std::string("\0bin", 4)] = u64_max;
	std::map<std::string, std::uint64_t> got;
	r.for_each([&got](std::string_view id, std::uint64_t t) { got[std::string(id)] = t; });
	CHECK(got == want);

	/* A const callable, and an error_code overload. */
	std::size_t n = 0;
	const auto count = [&n](std::string_view, std::uint64_t) { n++; };
	std::error_code ec;
	r.for_each(count, ec);
	CHECK(!ec && n == 1001);
}

static int g_visits;
static void count_visit(std::string_view, std::uint64_t) { g_visits++; }
static bool first_two(std::string_view, std::uint64_t) { return ++g_visits < 2; }

TEST(for_each_takes_plain_functions)
{
	registry r = make();
	for (int i = 0; i < 5; i++)
		r.insert_or_assign("id-" + std::to_string(i), 1);
	g_visits = 0;
	r.for_each(count_visit);
	CHECK(g_visits == 5);
	g_visits = 0;
	r.for_each(&first_two);
	CHECK(g_visits == 2);
}

TEST(for_each_stops_when_fn_returns_false)
{
	registry r = make();
	for (int i = 0; i < 20; i++)
		r.insert_or_assign("id-" + std::to_string(i), 1);
	int visits = 0;
	r.for_each([&visits](std::string_view, std::uint64_t) { return ++visits < 5; });
	CHECK(visits == 5);
}

TEST(for_each_exception_is_rethrown_after_the_walk)
{
	registry r = make();
	for (int i = 0; i < 20; i++)
		r.insert_or_assign("id-" + std::to_string(i), 1);
	int visits = 0;
	bool caught = false;
	try {
		r.for_each([&visits](std::string_view id, std::uint64_t) {
			if (++visits == 3)
				throw std::runtime_error("stop at " + std::string(id));
		});
	} catch (const std::runtime_error &e) {
		caught = std::string(e.what()).rfind("stop at id-", 0) == 0;
	}
	CHECK(caught);
	CHECK(visits == 3); /* the walk stopped there */
	/* The library is intact: walks, writes and the checker all work. */
	int again = 0;
	r.for_each([&again](std::string_view, std::uint64_t) { again++; });
	CHECK(again == 20);
	r.insert_or_assign("after", 2);
	CHECK(r.check().empty());

	/* The error_code overload is noexcept only for a noexcept callable. */
	auto throwing = [](std::string_view, std::uint64_t) {};
	auto nothrow = [](std::string_view, std::uint64_t) noexcept {};
	std::error_code ec;
	static_assert(!noexcept(r.for_each(throwing, ec)));
	static_assert(noexcept(r.for_each(nothrow, ec)));
	caught = false;
	try {
		r.for_each([](std::string_view, std::uint64_t) { throw 42; }, ec);
	} catch (int v) {
		caught = v == 42;
	}
	CHECK(caught);
}

TEST(for_each_may_call_the_registry)
{
	registry r = make();
	for (int i = 0; i < 10; i++)
		r.insert_or_assign("id-" + std::to_string(i), static_cast<std::uint64_t>(i));
	r.for_each([&r](std::string_view id, std::uint64_t t) { r.update(id, t + 100); });
	bool all = true;
	r.for_each([&all](std::string_view, std::uint64_t t) { all = all && t >= 100; });
	CHECK(all);
}

TEST(wait_for)
{
	registry r = make();
	r.insert_or_assign("k", 5);
	CHECK(r.wait_for("k", 4, 0ms) == 5u);
	CHECK(r.wait_for("k", 4, 10s) == 5u);
	auto t0 = std::chrono::steady_clock::now();
	CHECK(!r.wait_for("k", 5, 150ms));
	auto took = std::chrono::steady_clock::now() - t0;
	CHECK(took >= 150ms && took < 2s);
	CHECK(!r.wait_for("k", 5, std::chrono::duration<double>(0.05)));
	CHECK(!r.wait_for("k", 5, -1s)); /* a past deadline: just check */
	CHECK(!r.wait_for("absent", 0, 0ms));

	std::error_code ec = std::make_error_code(std::errc::io_error);
	CHECK(!r.wait_for("k", 5, 10ms, ec) && !ec); /* a timeout is not an error */
	CHECK(r.wait_for("k", 1, 10ms, ec) == 5u && !ec);
}

TEST(wait_woken_by_another_thread)
{
	registry r = make();
	r.insert_or_assign("k", 1);
	std::thread th([&r] {
		std::this_thread::sleep_for(100ms);
		r.update("k", 2);
	});
	auto t0 = std::chrono::steady_clock::now();
	std::optional<std::uint64_t> got = r.wait_for("k", 1, 10s);
	CHECK(got == 2u);
	CHECK(std::chrono::steady_clock::now() - t0 < 5s);
	th.join();

	std::thread th2([&r] {
		std::this_thread::sleep_for(50ms);
		r.insert_or_assign("new", 9);
	});
	CHECK(r.wait("new", 0) == 9); /* no timeout */
	th2.join();
}

TEST(wait_until)
{
	registry r = make();
	r.insert_or_assign("k", 1);
	auto t0 = std::chrono::steady_clock::now();
	CHECK(!r.wait_until("k", 1, t0 + 120ms));
	CHECK(std::chrono::steady_clock::now() - t0 >= 120ms);
	CHECK(!r.wait_until("k", 1, std::chrono::system_clock::now() + 50ms));
	CHECK(!r.wait_until("k", 1, std::chrono::system_clock::now() - 1h));
	CHECK(r.wait_until("k", 0, std::chrono::steady_clock::now() + 1h) == 1u);
	std::error_code ec;
	CHECK(!r.wait_until("k", 1, std::chrono::steady_clock::now() + 10ms, ec) && !ec);
	CHECK_THROWS(r.wait_until("", 1, std::chrono::steady_clock::now()), EINVAL);
}

TEST(stats_size_readers_check)
{
	registry r = make(64, 17);
	connreg::stats st = r.get_stats();
	CHECK(st.capacity == 64 && st.key_max == 17 && st.live == 0);
	CHECK(st.size >= CONNREG_STATS_SIZE_VER0);
	for (int i = 0; i < 30; i++)
		r.insert_or_assign("id-" + std::to_string(i), 1);
	r.erase("id-3");
	CHECK(r.size() == 29);
	std::error_code ec;
	CHECK(r.size(ec) == 29 && !ec);
	auto rs = r.readers();
	CHECK(std::any_of(rs.begin(), rs.end(),
			  [](const connreg::reader &x) { return x.pid == getpid() && x.alive; }));
	CHECK(r.check().empty());
	CHECK(r.check(ec).empty() && !ec);
}

TEST(reap)
{
	registry plain = make();
	CHECK_THROWS(plain.reap(), EOPNOTSUPP);
	std::error_code ec;
	CHECK(plain.reap(ec) == 0 && ec == std::errc::operation_not_supported);

	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, nullptr, 0);
	connreg::options o;
	o.capacity = 8;
	o.transport_is_pid = true;
	registry r = registry::create(t::unique_name(), o);
	CHECK((r.get_stats().flags & CONNREG_TRANSPORT_IS_PID) != 0);
	r.insert_or_assign("dead", static_cast<std::uint64_t>(dead));
	r.insert_or_assign("alive", static_cast<std::uint64_t>(getpid()));
	CHECK(r.reap() == 1);
	CHECK(!r.contains("dead") && r.contains("alive"));
	CHECK(r.reap(ec) == 0 && !ec);
}

TEST(threads_share_a_handle)
{
	registry r = make(4 * 500);
	std::atomic<int> bad{0};
	std::vector<std::thread> ths;
	for (int t = 0; t < 4; t++)
		ths.emplace_back([&r, &bad, t] {
			for (int i = 0; i < 500; i++) {
				std::string k = std::to_string(t) + "-" + std::to_string(i);
				std::error_code ec;
				r.insert_or_assign(k, static_cast<std::uint64_t>(i), ec);
				if (ec || r.find(k, ec) != static_cast<std::uint64_t>(i))
					bad++;
			}
		});
	for (std::thread &th : ths)
		th.join();
	CHECK(bad == 0);
	CHECK(r.size() == 2000);
	CHECK(r.check().empty());
}

TEST(handle_used_after_fork_throws_echild)
{
	std::string n = t::unique_name();
	registry r = registry::create(n, {8});
	r.insert_or_assign("parent", 1);
	pid_t pid = fork();
	if (pid == 0) {
		int code = 0;
		try {
			(void)r.find("parent");
			code = 10;
		} catch (const std::system_error &e) {
			if (e.code() != std::errc::no_child_process)
				code = 11;
		}
		std::error_code ec;
		r.insert_or_assign("x", 1, ec);
		if (ec.value() != ECHILD)
			code = 12;
		try {
			registry mine = registry::open(n);
			if (mine.find("parent") != 1u)
				code = 13;
			mine.insert_or_assign("child", 2);
		} catch (...) {
			code = 14;
		}
		r.close(); /* the inherited copy: leaves the parent's slots alone */
		_exit(code);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(r.find("child") == 2u);
	r.update("parent", 3);
	CHECK(r.find("parent") == 3u);
	CHECK(r.check().empty());
}

TEST(error_category)
{
	const std::error_category &c = connreg::category();
	CHECK(std::string(c.name()) == "connreg");
	CHECK(c.message(ENOSPC) == connreg_strerror(-ENOSPC));
	CHECK(connreg::make_error_code(-ENOENT) == std::errc::no_such_file_or_directory);
	CHECK(!connreg::make_error_code(0));
	CHECK(std::string(connreg::strerror(-EEXIST)).rfind("EEXIST:", 0) == 0);
}

#if CONNREG_HPP_SPAN
TEST(byte_span_ids)
{
	registry r = make();
	const std::byte key[] = {std::byte{0}, std::byte{0xff}, std::byte{'k'}};
	r.insert_or_assign(std::span<const std::byte>(key), 77);
	CHECK(r.find(std::string_view("\0\xffk", 3)) == 77u);
	std::vector<std::byte> v(key, key + 3);
	CHECK(r.find(std::span(v)) == 77u); /* span<std::byte> */
	CHECK(r.find(std::as_bytes(std::span("\0\xffk", 3))) == 77u);
	CHECK(r.find(std::span<const std::byte, 2>(key, 2)) == std::nullopt);
}
#endif

int main()
{
#if CONNREG_HPP_SPAN
	const char *suite = "test_connreg_hpp (C++20, spans)";
#else
	const char *suite = "test_connreg_hpp (C++17)";
#endif
	return t::run_all(suite);
}
