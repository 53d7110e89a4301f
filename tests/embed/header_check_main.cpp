// The header self-containment check is the build of this executable: one
// generated translation unit per installed header, each including nothing but
// that header (header_check.cpp.in). Running it only reports the count.
#include <cstdio>

int main() {
  std::printf("%d headers compile alone\n", RINGLINK_HEADER_COUNT);
  return 0;
}
