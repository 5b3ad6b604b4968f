/*
 * test_noexcept.cpp: connreg.hpp in a -fno-exceptions build. Only the
 * std::error_code overloads exist there; this uses each of them.
 */
#include "check.hpp"

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>

#if CONNREG_HPP_EXCEPTIONS
#error "build this test with -fno-exceptions"
#endif

using namespace std::chrono_literals;
using connreg::registry;

TEST(error_code_calls)
{
	std::error_code ec;
	const std::string n = t::unique_name("noexc");
	registry r = registry::create(n, {4, 16}, ec);
	CHECK(r && !ec);
	registry again = registry::create(n, {4}, ec);
	CHECK(!again && ec == std::errc::file_exists);
	registry other = registry::open(n, ec);
	CHECK(other && !ec);
	bool created = true;
	registry third = registry::open_or_create(n, {4}, ec, &created);
	CHECK(third && !ec && !created);

	r.insert_or_assign("k", 1, ec);
	CHECK(!ec);
	CHECK(other.find("k", ec) == 1u && !ec);
	CHECK(!other.find("absent", ec) && !ec);
	CHECK(other.contains("k", ec) && !ec);
	r.update("k", 2, ec);
	CHECK(!ec && r.find("k", ec) == 2u);
	r.update("absent", 2, ec);
	CHECK(ec.value() == ENOENT);
	std::uint64_t expected = 2;
	CHECK(r.compare_exchange("k", expected, 3, ec) && !ec);
	CHECK(!r.compare_exchange("k", expected, 4, ec) && !ec && expected == 3);
	CHECK(r.wait_for("k", 2, 0ms, ec) == 3u && !ec);
	CHECK(!r.wait_for("k", 3, 20ms, ec) && !ec);
	CHECK(!r.wait_until("k", 3, std::chrono::steady_clock::now() + 10ms, ec) && !ec);
	connreg::id_view ids[] = {"k", "absent"};
	std::optional<std::uint64_t> out[2];
	r.find_many(ids, 2, out, ec);
	CHECK(!ec && out[0] == 3u && !out[1]);
	int visits = 0;
	r.for_each([&visits](std::string_view id, std::uint64_t t) noexcept {
		visits += id == "k" && t == 3;
	}, ec);
	CHECK(!ec && visits == 1);
	CHECK(r.size(ec) == 1 && !ec);
	CHECK(r.get_stats(ec).key_max == 16 && !ec);
	CHECK(!r.readers(ec).empty() && !ec);
	CHECK(r.check(ec).empty() && !ec);
	CHECK(r.reap(ec) == 0 && ec == std::errc::operation_not_supported);
	r.insert_or_assign(std::string(17, 'x'), 1, ec);
	CHECK(ec == std::errc::filename_too_long);
	r.erase("k", ec);
	CHECK(!ec && !r.contains("k", ec));
	connreg::unlink(n, ec);
	CHECK(!ec);
	connreg::unlink(n, ec);
	CHECK(ec == std::errc::no_such_file_or_directory);
}

int main()
{
	return t::run_all("test_noexcept (-fno-exceptions)");
}
