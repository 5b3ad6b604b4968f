/*
 * connreg.hpp: header-only C++17 interface to connreg (include/connreg.h).
 *
 *     connreg::registry reg = connreg::registry::open_or_create("/gw", {100000, 32});
 *     reg.insert_or_assign("FIX.4.4:ACME->EXCH", 0x1001);
 *     if (std::optional<std::uint64_t> t = reg.find("FIX.4.4:ACME->EXCH"))
 *             route(*t);
 *
 * - connreg::registry is a move-only RAII handle: its destructor closes it.
 *   One handle may be used by many threads at once (as the C handle).
 * - Ids are connreg::id_view: a std::string_view, a std::string, a C string,
 *   or (C++20) a std::span of std::byte. Any bytes, 1..key_max of them.
 * - Every 64-bit value is a valid transport, so lookups return
 *   std::optional<std::uint64_t> rather than a sentinel.
 * - Calls that can fail throw std::system_error whose code() holds the errno
 *   (category connreg::category(), equivalent to std::generic_category, so
 *   `e.code() == std::errc::no_space_on_device` works) and whose what()
 *   carries connreg_strerror's text. Each has a noexcept overload taking a
 *   std::error_code& instead, for hot paths and for -fno-exceptions builds
 *   (where the throwing overloads are not declared).
 * - for_each takes any callable; an exception it throws never crosses the C
 *   library's frames: the walk stops and the exception is rethrown once
 *   connreg_foreach has returned.
 * - wait_for / wait_until take std::chrono durations and time points.
 *
 * connreg.h tags its opaque handle `struct connreg_handle`: a tag named
 * `connreg` would clash with this namespace.
 */
#ifndef CONNREG_HPP
#define CONNREG_HPP

/* connreg.h declares both `struct connreg_stats` and a function of that
 * name, which GCC's -Wshadow reports in C++. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
#include <connreg.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define CONNREG_HPP_EXCEPTIONS 1
#include <exception>
#else
#define CONNREG_HPP_EXCEPTIONS 0
#endif

#if __cplusplus >= 202002L && defined(__has_include)
#if __has_include(<span>)
#include <span>
#endif
#endif
#if defined(__cpp_lib_span)
#define CONNREG_HPP_SPAN 1
#else
#define CONNREG_HPP_SPAN 0
#endif

namespace connreg {

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* connreg's error category: values are errno numbers (positive), messages
 * are connreg_strerror's, conditions are std::generic_category's. */
class error_category_impl final : public std::error_category {
public:
	const char *name() const noexcept override { return "connreg"; }
	std::string message(int ev) const override { return connreg_strerror(-ev); }
	std::error_condition default_error_condition(int ev) const noexcept override
	{
		return std::error_condition(ev, std::generic_category());
	}
};

inline const std::error_category &category() noexcept
{
	static const error_category_impl cat;
	return cat;
}

/* The error_code for a connreg return value (0 or a negative errno). */
inline std::error_code make_error_code(int rc) noexcept
{
	return rc == 0 ? std::error_code() : std::error_code(-rc, category());
}

/* connreg_strerror's text for a return value (0 or a negative errno). */
inline const char *strerror(int rc) noexcept { return connreg_strerror(rc); }

namespace detail {

#if CONNREG_HPP_EXCEPTIONS
[[noreturn]] inline void throw_rc(int rc, const char *call)
{
	throw std::system_error(make_error_code(rc), call);
}

inline void check(int rc, const char *call)
{
	if (rc != 0)
		throw_rc(rc, call);
}

inline void check(const std::error_code &ec, const char *call)
{
	if (ec)
		throw std::system_error(ec, call);
}
#endif

inline bool set_ec(std::error_code &ec, int rc) noexcept
{
	ec = make_error_code(rc);
	return rc == 0;
}

/* A registry name as a C string, without allocating: NUL-free and at most
 * "/" plus CONNREG_NAME_MAX characters (else the library's -EINVAL). */
class name_buf {
public:
	explicit name_buf(std::string_view name) noexcept
	{
		ok_ = name.size() <= CONNREG_NAME_MAX + 1 &&
		      name.find('\0') == std::string_view::npos;
		if (ok_) {
			if (!name.empty())
				std::memcpy(s_, name.data(), name.size());
			s_[name.size()] = '\0';
		}
	}
	bool ok() const noexcept { return ok_; }
	const char *c_str() const noexcept { return s_; }

private:
	char s_[CONNREG_NAME_MAX + 2] = {};
	bool ok_ = false;
};

inline connreg_config_t c_config(std::uint64_t capacity, std::uint32_t key_max, std::uint32_t mode,
				 std::uint32_t max_threads, bool transport_is_pid) noexcept
{
	connreg_config_t cfg;
	std::memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.capacity = capacity;
	cfg.key_max = key_max;
	cfg.mode = mode;
	cfg.max_threads = max_threads;
	cfg.flags = transport_is_pid ? CONNREG_TRANSPORT_IS_PID : 0u;
	return cfg;
}

/* Milliseconds for connreg_wait_transport, rounded up so that a wait never
 * ends before its deadline; at most INT_MAX - 1. */
template <class Rep, class Period>
int timeout_ms(const std::chrono::duration<Rep, Period> &d) noexcept
{
	using ms = std::chrono::duration<long double, std::milli>;
	const long double v = std::chrono::duration_cast<ms>(d).count();
	if (!(v > 0))
		return 0;
	if (v >= static_cast<long double>(INT_MAX - 1))
		return INT_MAX - 1;
	int r = static_cast<int>(v);
	return static_cast<long double>(r) < v ? r + 1 : r;
}

} // namespace detail

/* ------------------------------------------------------------------------ */
/* Ids                                                                      */
/* ------------------------------------------------------------------------ */

/* A connection id: any bytes, not owned. Converts implicitly from
 * std::string_view, std::string, C strings and (C++20) byte spans. */
class id_view {
public:
	constexpr id_view(std::string_view s) noexcept : data_(s.data()), size_(s.size()) {}
	constexpr id_view(const char *s) noexcept : id_view(std::string_view(s)) {}
	id_view(const std::string &s) noexcept : data_(s.data()), size_(s.size()) {}
	constexpr id_view(const void *data, std::size_t size) noexcept : data_(data), size_(size) {}
#if CONNREG_HPP_SPAN
	template <std::size_t N>
	constexpr id_view(std::span<const std::byte, N> b) noexcept : data_(b.data()), size_(b.size())
	{
	}
	template <std::size_t N>
	constexpr id_view(std::span<std::byte, N> b) noexcept : data_(b.data()), size_(b.size())
	{
	}
#endif
	constexpr const void *data() const noexcept { return data_; }
	constexpr std::size_t size() const noexcept { return size_; }

private:
	const void *data_;
	std::size_t size_;
};

/* ------------------------------------------------------------------------ */
/* Creation options                                                         */
/* ------------------------------------------------------------------------ */

/* connreg_config_t for C++: a zero selects the library's default. In C++17
 * `{capacity, key_max}`; in C++20 `{.capacity = 100000, .key_max = 32}`. */
struct options {
	std::uint64_t capacity = 0;    /* live ids the registry holds; > 0 */
	std::uint32_t key_max = 0;     /* longest id in bytes; 0: 64 */
	std::uint32_t mode = 0;        /* permission bits of a new segment; 0: 0600 */
	std::uint32_t max_threads = 0; /* reader slots over every process; 0: 512 */
	bool transport_is_pid = false; /* low 32 bits of transports are pids (reap) */
};

using stats = connreg_stats_t;
using reader = connreg_reader_t;

/* ------------------------------------------------------------------------ */
/* for_each plumbing: a C-linkage trampoline, so that only functions of C  */
/* language linkage are handed to the library, and no exception leaves it. */
/* ------------------------------------------------------------------------ */

namespace detail {

struct walk_ctx {
	using call_t = int (*)(void *fn, const void *a, std::size_t n, std::uint64_t t);

	walk_ctx(void *f, call_t c) noexcept : fn(f), call(c) {}

	void *fn;
	call_t call;
#if CONNREG_HPP_EXCEPTIONS
	std::exception_ptr error;
#endif
};

/* What the trampoline returns to stop the walk (never a negative errno). */
constexpr int walk_stopped = 1;

template <class F>
int walk_call_id(void *fn, const void *id, std::size_t n, std::uint64_t t)
{
	F &f = *static_cast<F *>(fn);
	std::string_view sv(static_cast<const char *>(id), n);
	if constexpr (std::is_convertible_v<std::invoke_result_t<F &, std::string_view, std::uint64_t>,
					    bool>)
		return static_cast<bool>(f(sv, t)) ? 0 : walk_stopped;
	else {
		f(sv, t);
		return 0;
	}
}

template <class F>
int walk_call_reader(void *fn, const void *r, std::size_t, std::uint64_t)
{
	(*static_cast<F *>(fn))(*static_cast<const connreg_reader_t *>(r));
	return 0;
}

template <class F>
int walk_call_problem(void *fn, const void *p, std::size_t, std::uint64_t)
{
	(*static_cast<F *>(fn))(static_cast<const char *>(p));
	return 0;
}

inline int walk_guarded(walk_ctx *c, const void *a, std::size_t n, std::uint64_t t) noexcept
{
#if CONNREG_HPP_EXCEPTIONS
	try {
		return c->call(c->fn, a, n, t);
	} catch (...) {
		c->error = std::current_exception();
		return walk_stopped;
	}
#else
	return c->call(c->fn, a, n, t);
#endif
}

extern "C" {
static inline int connreg_hpp_foreach_cb(const void *id, size_t id_len, uint64_t transport,
					 void *arg) noexcept
{
	return walk_guarded(static_cast<walk_ctx *>(arg), id, id_len, transport);
}

static inline int connreg_hpp_readers_cb(const connreg_reader_t *r, void *arg) noexcept
{
	return walk_guarded(static_cast<walk_ctx *>(arg), r, 0, 0);
}

static inline void connreg_hpp_check_cb(const char *problem, void *arg) noexcept
{
	walk_ctx *c = static_cast<walk_ctx *>(arg);
#if CONNREG_HPP_EXCEPTIONS
	if (c->error)
		return; /* connreg_check cannot be stopped: drop the rest */
#endif
	(void)walk_guarded(c, problem, 0, 0);
}
} // extern "C"

} // namespace detail

/* ------------------------------------------------------------------------ */
/* The handle                                                               */
/* ------------------------------------------------------------------------ */

class registry {
public:
	/* An empty handle (what the error_code constructors return on failure). */
	registry() noexcept = default;
	/* Takes ownership of a handle from the C API. */
	explicit registry(connreg_t *h) noexcept : h_(h) {}

	registry(const registry &) = delete;
	registry &operator=(const registry &) = delete;
	registry(registry &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
	registry &operator=(registry &&o) noexcept
	{
		if (this != &o) {
			close();
			h_ = std::exchange(o.h_, nullptr);
		}
		return *this;
	}
	~registry() { close(); }

	/* Detach (connreg_close). No other thread may be inside a call on it. */
	void close() noexcept
	{
		connreg_close(h_);
		h_ = nullptr;
	}
	/* Gives up ownership: the caller closes the returned C handle. */
	connreg_t *release() noexcept { return std::exchange(h_, nullptr); }
	connreg_t *native_handle() const noexcept { return h_; }
	explicit operator bool() const noexcept { return h_ != nullptr; }

	/* -- attach ------------------------------------------------------------ */

	/* Create a new registry; errc::file_exists if the name is taken. */
	[[nodiscard]] static registry create(std::string_view name, const options &o, std::error_code &ec) noexcept
	{
		detail::name_buf n(name);
		connreg_config_t cfg = detail::c_config(o.capacity, o.key_max, o.mode, o.max_threads,
							o.transport_is_pid);
		connreg_t *h = nullptr;
		int rc = n.ok() ? connreg_create(n.c_str(), &cfg, &h) : -EINVAL;
		detail::set_ec(ec, rc);
		return registry(rc == 0 ? h : nullptr);
	}

	/* Attach to an existing registry; errc::no_such_file_or_directory if none. */
	[[nodiscard]] static registry open(std::string_view name, std::error_code &ec) noexcept
	{
		detail::name_buf n(name);
		connreg_t *h = nullptr;
		int rc = n.ok() ? connreg_open(n.c_str(), &h) : -EINVAL;
		detail::set_ec(ec, rc);
		return registry(rc == 0 ? h : nullptr);
	}

	/* Create it if it does not exist, else open it; *created (if given)
	 * tells which. An existing registry's own configuration stands. */
	[[nodiscard]] static registry open_or_create(std::string_view name, const options &o, std::error_code &ec,
				       bool *created = nullptr) noexcept
	{
		detail::name_buf n(name);
		connreg_config_t cfg = detail::c_config(o.capacity, o.key_max, o.mode, o.max_threads,
							o.transport_is_pid);
		connreg_t *h = nullptr;
		int made = 0;
		int rc = n.ok() ? connreg_open_or_create(n.c_str(), &cfg, &h, &made) : -EINVAL;
		if (created)
			*created = rc == 0 && made != 0;
		detail::set_ec(ec, rc);
		return registry(rc == 0 ? h : nullptr);
	}

#if CONNREG_HPP_EXCEPTIONS
	[[nodiscard]] static registry create(std::string_view name, const options &o)
	{
		std::error_code ec;
		registry r = create(name, o, ec);
		detail::check(ec, "connreg_create");
		return r;
	}
	[[nodiscard]] static registry open(std::string_view name)
	{
		std::error_code ec;
		registry r = open(name, ec);
		detail::check(ec, "connreg_open");
		return r;
	}
	[[nodiscard]] static registry open_or_create(std::string_view name, const options &o,
				       bool *created = nullptr)
	{
		std::error_code ec;
		registry r = open_or_create(name, o, ec, created);
		detail::check(ec, "connreg_open_or_create");
		return r;
	}
#endif

	/* -- lookups (wait-free) ---------------------------------------------- */

	/* The id's transport, or nullopt when it is not registered. */
	[[nodiscard]] std::optional<std::uint64_t> find(id_view id, std::error_code &ec) const noexcept
	{
		std::uint64_t t;
		int rc = connreg_get_transport(h_, id.data(), id.size(), &t);
		if (rc == 0) {
			ec.clear();
			return t;
		}
		detail::set_ec(ec, rc == -ENOENT ? 0 : rc);
		return std::nullopt;
	}

	[[nodiscard]] bool contains(id_view id, std::error_code &ec) const noexcept
	{
		return find(id, ec).has_value();
	}

	/* Up to n lookups at once, overlapping their cache misses: out[i] is
	 * ids[i]'s transport or nullopt. An id the library refuses (empty,
	 * longer than key_max) sets ec, and out[] is then unspecified. */
	void find_many(const id_view *ids, std::size_t n, std::optional<std::uint64_t> *out,
		       std::error_code &ec) const noexcept
	{
		constexpr std::size_t chunk = 64;
		const void *ptrs[chunk];
		std::size_t lens[chunk];
		std::uint64_t ts[chunk];
		int rcs[chunk];

		ec.clear();
		for (std::size_t i = 0; i < n; i += chunk) {
			std::size_t m = n - i < chunk ? n - i : chunk;
			for (std::size_t j = 0; j < m; j++) {
				ptrs[j] = ids[i + j].data();
				lens[j] = ids[i + j].size();
			}
			int rc = connreg_get_transport_bulk(h_, m, ptrs, lens, ts, rcs);
			if (rc != 0) {
				detail::set_ec(ec, rc);
				return;
			}
			for (std::size_t j = 0; j < m; j++) {
				if (rcs[j] == 0)
					out[i + j] = ts[j];
				else if (rcs[j] == -ENOENT)
					out[i + j] = std::nullopt;
				else if (!ec)
					detail::set_ec(ec, rcs[j]);
			}
		}
	}

#if CONNREG_HPP_EXCEPTIONS
	[[nodiscard]] std::optional<std::uint64_t> find(id_view id) const
	{
		std::error_code ec;
		std::optional<std::uint64_t> t = find(id, ec);
		detail::check(ec, "connreg_get_transport");
		return t;
	}
	[[nodiscard]] bool contains(id_view id) const { return find(id).has_value(); }
	[[nodiscard]] std::vector<std::optional<std::uint64_t>> find_many(const std::vector<id_view> &ids) const
	{
		std::vector<std::optional<std::uint64_t>> out(ids.size());
		std::error_code ec;
		find_many(ids.data(), ids.size(), out.data(), ec);
		detail::check(ec, "connreg_get_transport_bulk");
		return out;
	}
#endif

	/* -- writers ------------------------------------------------------------ */

	/* Insert or update (connreg_register). */
	void insert_or_assign(id_view id, std::uint64_t transport, std::error_code &ec) noexcept
	{
		detail::set_ec(ec, connreg_register(h_, id.data(), id.size(), transport));
	}

	/* Re-point a registered id; errc::no_such_file_or_directory if absent. */
	void update(id_view id, std::uint64_t transport, std::error_code &ec) noexcept
	{
		detail::set_ec(ec, connreg_update_transport(h_, id.data(), id.size(), transport));
	}

	/* Like std::atomic::compare_exchange_strong: if the id's transport is
	 * `expected`, make it `desired` and return true; else store the current
	 * transport in `expected` and return false. An absent id is an error
	 * (errc::no_such_file_or_directory). */
	[[nodiscard]] bool compare_exchange(id_view id, std::uint64_t &expected, std::uint64_t desired,
			      std::error_code &ec) noexcept
	{
		std::uint64_t cur = expected;
		int rc = connreg_cas_transport(h_, id.data(), id.size(), expected, desired, &cur);
		if (rc == 0) {
			ec.clear();
			return true;
		}
		/* -EAGAIN with another transport: a mismatch. With `expected`
		 * still there: a stalled reclamation, an error. */
		if (rc == -EAGAIN && cur != expected) {
			ec.clear();
			expected = cur;
			return false;
		}
		detail::set_ec(ec, rc);
		return false;
	}

	/* Remove the id; no error when it is absent. */
	void erase(id_view id, std::error_code &ec) noexcept
	{
		detail::set_ec(ec, connreg_unregister(h_, id.data(), id.size()));
	}

#if CONNREG_HPP_EXCEPTIONS
	void insert_or_assign(id_view id, std::uint64_t transport)
	{
		detail::check(connreg_register(h_, id.data(), id.size(), transport), "connreg_register");
	}
	void update(id_view id, std::uint64_t transport)
	{
		detail::check(connreg_update_transport(h_, id.data(), id.size(), transport),
			      "connreg_update_transport");
	}
	[[nodiscard]] bool compare_exchange(id_view id, std::uint64_t &expected, std::uint64_t desired)
	{
		std::error_code ec;
		bool swapped = compare_exchange(id, expected, desired, ec);
		detail::check(ec, "connreg_cas_transport");
		return swapped;
	}
	void erase(id_view id)
	{
		detail::check(connreg_unregister(h_, id.data(), id.size()), "connreg_unregister");
	}
#endif

	/* -- waiting -------------------------------------------------------------- */

	/* Block until the id is registered with a transport other than `seen`,
	 * or the timeout passes (nullopt, with ec clear). */
	template <class Rep, class Period>
	[[nodiscard]] std::optional<std::uint64_t> wait_for(id_view id, std::uint64_t seen,
					      const std::chrono::duration<Rep, Period> &timeout,
					      std::error_code &ec) const noexcept
	{
		return wait_ms(id, seen, detail::timeout_ms(timeout), ec);
	}

	/* As wait_for, until a time point of any clock (re-armed if the clock
	 * is adjusted meanwhile). */
	template <class Clock, class Duration>
	[[nodiscard]] std::optional<std::uint64_t> wait_until(id_view id, std::uint64_t seen,
						const std::chrono::time_point<Clock, Duration> &deadline,
						std::error_code &ec) const noexcept
	{
		for (;;) {
			auto now = Clock::now();
			int ms = now < deadline ? detail::timeout_ms(deadline - now) : 0;
			std::optional<std::uint64_t> t = wait_ms(id, seen, ms, ec);
			if (t || ec || ms == 0 || Clock::now() >= deadline)
				return t;
		}
	}

	/* Without a timeout. */
	std::uint64_t wait(id_view id, std::uint64_t seen, std::error_code &ec) const noexcept
	{
		std::optional<std::uint64_t> t = wait_ms(id, seen, -1, ec);
		return t ? *t : 0;
	}

#if CONNREG_HPP_EXCEPTIONS
	template <class Rep, class Period>
	[[nodiscard]] std::optional<std::uint64_t> wait_for(id_view id, std::uint64_t seen,
					      const std::chrono::duration<Rep, Period> &timeout) const
	{
		std::error_code ec;
		std::optional<std::uint64_t> t = wait_for(id, seen, timeout, ec);
		detail::check(ec, "connreg_wait_transport");
		return t;
	}
	template <class Clock, class Duration>
	[[nodiscard]] std::optional<std::uint64_t> wait_until(id_view id, std::uint64_t seen,
						const std::chrono::time_point<Clock, Duration> &deadline) const
	{
		std::error_code ec;
		std::optional<std::uint64_t> t = wait_until(id, seen, deadline, ec);
		detail::check(ec, "connreg_wait_transport");
		return t;
	}
	std::uint64_t wait(id_view id, std::uint64_t seen) const
	{
		std::error_code ec;
		std::uint64_t t = wait(id, seen, ec);
		detail::check(ec, "connreg_wait_transport");
		return t;
	}
#endif

	/* -- walks ---------------------------------------------------------------- */

	/* Call fn(std::string_view id, std::uint64_t transport) for every live
	 * id (connreg_foreach: an id registered throughout is visited once). If
	 * fn returns bool, false stops the walk. fn may call this registry. An
	 * exception from fn stops the walk and is rethrown here, after the
	 * library has returned. */
	template <class F>
	void for_each(F &&fn, std::error_code &ec) const
		noexcept(std::is_nothrow_invocable_v<F &, std::string_view, std::uint64_t>)
	{
		/* An object to point at, whatever fn is (a lambda, a const
		 * functor, a function). */
		auto call = [&fn](std::string_view id, std::uint64_t t) -> decltype(auto) {
			return fn(id, t);
		};
		detail::walk_ctx c{&call, &detail::walk_call_id<decltype(call)>};
		int rc = connreg_foreach(h_, &detail::connreg_hpp_foreach_cb, &c);
#if CONNREG_HPP_EXCEPTIONS
		if (c.error)
			std::rethrow_exception(c.error);
#endif
		detail::set_ec(ec, rc == detail::walk_stopped ? 0 : rc);
	}

	/* Every claimed reader slot (connreg_readers). */
	[[nodiscard]] std::vector<reader> readers(std::error_code &ec) const noexcept
	{
		std::vector<reader> out;
		auto add = [&out](const reader &r) { out.push_back(r); };
		detail::walk_ctx c{&add, &detail::walk_call_reader<decltype(add)>};
		int rc = connreg_readers(h_, &detail::connreg_hpp_readers_cb, &c);
#if CONNREG_HPP_EXCEPTIONS
		if (c.error) /* std::bad_alloc from push_back */
			rc = -ENOMEM;
#endif
		detail::set_ec(ec, rc == detail::walk_stopped ? 0 : rc);
		return out;
	}

	/* connreg_check: the problems found (empty: sound). Exact when no
	 * writer runs meanwhile. */
	[[nodiscard]] std::vector<std::string> check(std::error_code &ec) const noexcept
	{
		std::vector<std::string> out;
		auto add = [&out](const char *p) { out.emplace_back(p); };
		detail::walk_ctx c{&add, &detail::walk_call_problem<decltype(add)>};
		int rc = connreg_check(h_, &detail::connreg_hpp_check_cb, &c);
#if CONNREG_HPP_EXCEPTIONS
		if (c.error)
			rc = -ENOMEM;
#endif
		detail::set_ec(ec, rc < 0 ? rc : 0);
		return out;
	}

	/* -- counters and maintenance ----------------------------------------- */

	[[nodiscard]] stats get_stats(std::error_code &ec) const noexcept
	{
		stats st;
		std::memset(&st, 0, sizeof(st));
		st.size = sizeof(st);
		detail::set_ec(ec, connreg_stats(h_, &st));
		return st;
	}

	/* Live ids (0 with ec set on error). */
	[[nodiscard]] std::uint64_t size(std::error_code &ec) const noexcept { return get_stats(ec).live; }

	/* For transport_is_pid registries: unregister ids whose process died;
	 * returns how many. errc::operation_not_supported otherwise. */
	std::uint64_t reap(std::error_code &ec) noexcept
	{
		std::uint64_t removed = 0;
		detail::set_ec(ec, connreg_reap(h_, &removed));
		return removed;
	}

#if CONNREG_HPP_EXCEPTIONS
	template <class F>
	void for_each(F &&fn) const
	{
		std::error_code ec;
		for_each(std::forward<F>(fn), ec);
		detail::check(ec, "connreg_foreach");
	}
	[[nodiscard]] std::vector<reader> readers() const
	{
		std::error_code ec;
		std::vector<reader> r = readers(ec);
		detail::check(ec, "connreg_readers");
		return r;
	}
	[[nodiscard]] std::vector<std::string> check() const
	{
		std::error_code ec;
		std::vector<std::string> p = check(ec);
		detail::check(ec, "connreg_check");
		return p;
	}
	[[nodiscard]] stats get_stats() const
	{
		std::error_code ec;
		stats st = get_stats(ec);
		detail::check(ec, "connreg_stats");
		return st;
	}
	[[nodiscard]] std::uint64_t size() const { return get_stats().live; }
	std::uint64_t reap()
	{
		std::error_code ec;
		std::uint64_t n = reap(ec);
		detail::check(ec, "connreg_reap");
		return n;
	}
#endif

private:
	std::optional<std::uint64_t> wait_ms(id_view id, std::uint64_t seen, int ms,
					     std::error_code &ec) const noexcept
	{
		std::uint64_t t;
		int rc = connreg_wait_transport(h_, id.data(), id.size(), seen, &t, ms);
		if (rc == 0) {
			ec.clear();
			return t;
		}
		detail::set_ec(ec, rc == -ETIMEDOUT ? 0 : rc);
		return std::nullopt;
	}

	connreg_t *h_ = nullptr;
};

/* Remove a registry's name; attached processes keep working. */
inline void unlink(std::string_view name, std::error_code &ec) noexcept
{
	detail::name_buf n(name);
	detail::set_ec(ec, n.ok() ? connreg_unlink(n.c_str()) : -EINVAL);
}

#if CONNREG_HPP_EXCEPTIONS
inline void unlink(std::string_view name)
{
	std::error_code ec;
	unlink(name, ec);
	detail::check(ec, "connreg_unlink");
}
#endif

} // namespace connreg

#endif /* CONNREG_HPP */
