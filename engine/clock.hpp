// Monotonic time for the engine, and a manual clock for tests.
//
//   MonotonicMs clock = steady_now_ms;          // production: CLOCK_MONOTONIC
//   uint64_t now = clock();
//
//   ManualClock manual{1000};                   // tests: time moves only when told
//   MonotonicMs test_clock = manual.source();   // hand this to a reactor or wheel owner
//   manual.advance(250);                        // test_clock() now returns 1250
//
// `MonotonicMs` is a small callable value (two words) rather than a bare function pointer so
// that a ManualClock can be bound without globals; it converts implicitly from any
// `uint64_t(*)() noexcept` and from captureless lambdas, so `MonotonicMs c = steady_now_ms;`
// and `c()` read exactly as a function pointer would.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <type_traits>

namespace ringlink {

// CLOCK_MONOTONIC never fails on Linux for a valid clock id, so the result is not checked.
inline uint64_t steady_now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t steady_now_ms() noexcept { return steady_now_ns() / 1'000'000ULL; }

class MonotonicMs {
 public:
  using PlainFn = uint64_t (*)() noexcept;
  using ContextFn = uint64_t (*)(const void*) noexcept;

  // Defaults to the real monotonic clock, so a default-constructed config is usable.
  constexpr MonotonicMs() noexcept = default;
  constexpr MonotonicMs(PlainFn fn) noexcept : plain_(fn) {}  // NOLINT: implicit on purpose
  constexpr MonotonicMs(ContextFn fn, const void* ctx) noexcept
      : plain_(nullptr), with_ctx_(fn), ctx_(ctx) {}

  // Captureless lambdas: they convert to PlainFn, but two user conversions in a row are not
  // implicit, so this constructor spells the first one out.
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, MonotonicMs> &&
             std::is_convertible_v<F, PlainFn>)
  constexpr MonotonicMs(F f) noexcept : plain_(static_cast<PlainFn>(f)) {}  // NOLINT

  uint64_t operator()() const noexcept { return plain_ != nullptr ? plain_() : with_ctx_(ctx_); }

 private:
  PlainFn plain_ = &steady_now_ms;
  ContextFn with_ctx_ = nullptr;
  const void* ctx_ = nullptr;
};

// Time that moves only when a test says so. Reads and writes are atomic (relaxed) so a test
// thread may move time while a reactor thread reads it.
class ManualClock {
 public:
  explicit ManualClock(uint64_t start_ms = 0) noexcept : now_ms_(start_ms) {}
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  uint64_t now_ms() const noexcept { return now_ms_.load(std::memory_order_relaxed); }
  uint64_t now_ns() const noexcept { return now_ms() * 1'000'000ULL; }
  void set(uint64_t ms) noexcept { now_ms_.store(ms, std::memory_order_relaxed); }
  void advance(uint64_t ms) noexcept { now_ms_.fetch_add(ms, std::memory_order_relaxed); }

  // A clock value reading this ManualClock; valid while *this lives.
  MonotonicMs source() const noexcept { return MonotonicMs(&read, this); }

  // Function-pointer adapter for code that insists on a plain `uint64_t(*)() noexcept`:
  // reads the process-wide instance returned by global().
  static ManualClock& global() noexcept {
    static ManualClock clock;
    return clock;
  }
  static uint64_t global_now_ms() noexcept { return global().now_ms(); }

 private:
  static uint64_t read(const void* self) noexcept {
    return static_cast<const ManualClock*>(self)->now_ms();
  }

  std::atomic<uint64_t> now_ms_;
};

}  // namespace ringlink
