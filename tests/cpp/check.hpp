/*
 * check.hpp: the C++ tests' tiny harness. TEST(name) defines a test; CHECK
 * records a failure and carries on; main() (run_all) runs every test and
 * exits non-zero if any check failed. Registry names are unique per process
 * and test, and every registry a test names is unlinked when it ends.
 */
#ifndef CONNREG_TEST_CHECK_HPP
#define CONNREG_TEST_CHECK_HPP

#include <connreg.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace t {

struct test_case {
	const char *name;
	void (*fn)();
};

inline std::vector<test_case> &registry_of_tests()
{
	static std::vector<test_case> v;
	return v;
}

inline int &failures()
{
	static int n = 0;
	return n;
}

inline std::vector<std::string> &names_to_unlink()
{
	static std::vector<std::string> v;
	return v;
}

struct add_test {
	add_test(const char *name, void (*fn)()) { registry_of_tests().push_back({name, fn}); }
};

inline void fail(const char *file, int line, const char *what)
{
	std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
	failures()++;
}

/* A registry name unique to this process and call; unlinked after the test. */
inline std::string unique_name(const char *tag = "t")
{
	static int seq = 0;
	std::string n = "/connreg-cxx-" + std::string(tag) + "-" + std::to_string(getpid()) + "-" +
			std::to_string(seq++);
	names_to_unlink().push_back(n);
	return n;
}

inline void cleanup()
{
	for (const std::string &n : names_to_unlink())
		(void)connreg_unlink(n.c_str());
	names_to_unlink().clear();
}

inline int run_all(const char *suite)
{
	int failed_tests = 0;
	for (const test_case &tc : registry_of_tests()) {
		int before = failures();
#if CONNREG_HPP_EXCEPTIONS
		try {
			tc.fn();
		} catch (const std::exception &e) {
			std::fprintf(stderr, "%s: unexpected exception: %s\n", tc.name, e.what());
			failures()++;
		}
#else
		tc.fn();
#endif
		cleanup();
		bool ok = failures() == before;
		failed_tests += !ok;
		std::printf("  %-4s %s\n", ok ? "ok" : "FAIL", tc.name);
	}
	std::printf("%s: %zu tests, %d failed\n", suite, registry_of_tests().size(), failed_tests);
	return failed_tests == 0 ? 0 : 1;
}

} // namespace t

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			::t::fail(__FILE__, __LINE__, #cond);                                      \
	} while (0)

#define TEST(name)                                                                                 \
	static void name();                                                                        \
	static const ::t::add_test add_##name(#name, &name);                                       \
	static void name()

#endif
