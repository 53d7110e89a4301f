// Waiting for something to happen, in tests: poll a condition until it holds
// or a deadline passes. The deadline only stops a hang; it is not a judgment
// of speed, so it is generous: a slow or shared machine must never make a
// correct program fail. Tests assert what happened (order, counts, close
// codes), never how fast.
//
//   ASSERT_TRUE(test::eventually([&] { return h.opened.load() == 2; }));
//   ASSERT_TRUE(test::eventually([&] { return s.snapshot().links_open == 0; }, test::hang_deadline));
//
// Not part of the library.
#pragma once

#include <chrono>
#include <thread>

namespace ringlink::test {

// Long enough that only a hang reaches it, on any machine that runs the tests.
inline constexpr std::chrono::seconds hang_deadline{30};

// True once `p()` holds; false if it still does not at `limit`. Polls every
// `poll` (a millisecond: it adds about that much to a wait; longer when a look
// costs something, such as a request to a server).
template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = hang_deadline,
                std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(poll);
  }
  return p();
}

}  // namespace ringlink::test
