// main() of the GoogleTest binaries (tests/meson.build links it in place of
// gtest_main): GoogleTest's own, except for the exit status of a run in which
// every test was skipped (tests/gtest_status.hpp).
#include <gtest/gtest.h>

#include "tests/gtest_status.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return ringlink::test::gtest_exit_status(RUN_ALL_TESTS());
}
