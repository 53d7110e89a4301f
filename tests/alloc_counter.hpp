// Counts heap allocations in a test binary (include it in exactly one .cpp of
// that binary), so tests can show that a path allocates nothing or gives its
// memory back. Under a sanitizer the runtime owns operator new, so no
// replacement is installed and kAllocationsCounted is false: such tests skip.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RINGLINK_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RINGLINK_TEST_SANITIZED 1
#endif
#endif

namespace ringlink::test {
inline std::atomic<long> live_allocations{0};
inline std::atomic<long> total_allocations{0};
#ifdef RINGLINK_TEST_SANITIZED
inline constexpr bool kAllocationsCounted = false;
#else
inline constexpr bool kAllocationsCounted = true;
#endif
}  // namespace ringlink::test

#ifndef RINGLINK_TEST_SANITIZED
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // malloc/free pairs on purpose
#endif
// Out of line, so that the compiler does not pair an inlined malloc with a
// delete-expression and warn about a mismatch that is not one.
[[gnu::noinline]] void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  ++ringlink::test::live_allocations;
  ++ringlink::test::total_allocations;
  return p;
}
[[gnu::noinline]] void* operator new[](std::size_t n) { return operator new(n); }
[[gnu::noinline]] void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  --ringlink::test::live_allocations;
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p) noexcept { operator delete(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }
#endif
