#include "tools/echo/shared_metrics.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <vector>

namespace echo_metrics {

namespace {

// ReactorMetrics is nothing but Counters (one 8-byte atomic each), so a copy
// goes counter by counter with the engine's own single-writer operations.
static_assert(sizeof(ringlink::Counter) == sizeof(std::uint64_t));
static_assert(sizeof(ringlink::ReactorMetrics) % sizeof(ringlink::Counter) == 0);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free,
              "shared between processes: must not hide a lock");
constexpr std::size_t counters_per_reactor = sizeof(ringlink::ReactorMetrics) / sizeof(ringlink::Counter);

std::size_t header_bytes(unsigned processes) {
  const std::size_t raw = sizeof(std::atomic<std::uint32_t>) * std::max(1u, processes);
  return (raw + alignof(ringlink::ReactorMetrics) - 1) / alignof(ringlink::ReactorMetrics) * alignof(ringlink::ReactorMetrics);
}

void copy(ringlink::ReactorMetrics& to, const ringlink::ReactorMetrics& from) noexcept {
  auto* dst = reinterpret_cast<ringlink::Counter*>(&to);
  const auto* src = reinterpret_cast<const ringlink::Counter*>(&from);
  for (std::size_t i = 0; i < counters_per_reactor; ++i) dst[i].set(src[i].get());
}

}  // namespace

SharedMetrics::~SharedMetrics() {
  if (base_ != nullptr) ::munmap(base_, bytes_);
}

bool SharedMetrics::create(unsigned processes, unsigned reactors_per_process) {
  processes_ = processes;
  per_process_ = std::max(1u, reactors_per_process);
  bytes_ = header_bytes(processes) + sizeof(ringlink::ReactorMetrics) * processes_ * per_process_;
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  base_ = p;
  auto* counts = static_cast<std::atomic<std::uint32_t>*>(base_);
  for (unsigned i = 0; i < processes_; ++i) new (&counts[i]) std::atomic<std::uint32_t>(0);
  for (unsigned i = 0; i < processes_ * per_process_; ++i) new (row(i / per_process_, i % per_process_)) ringlink::ReactorMetrics();
  return true;
}

ringlink::ReactorMetrics* SharedMetrics::row(unsigned process, unsigned reactor) const noexcept {
  auto* rows = reinterpret_cast<ringlink::ReactorMetrics*>(static_cast<char*>(base_) + header_bytes(processes_));
  return rows + process * per_process_ + reactor;
}

void SharedMetrics::publish(unsigned index, ringlink::Server& server) {
  if (base_ == nullptr || index >= processes_) return;
  std::lock_guard<std::mutex> lock(publishing_);
  const auto n = static_cast<unsigned>(std::min<std::size_t>(server.reactor_count(), per_process_));
  for (unsigned r = 0; r < n; ++r)
    copy(*row(index, r), server.reactor(r).metrics());
  static_cast<std::atomic<std::uint32_t>*>(base_)[index].store(n, std::memory_order_release);
}

void SharedMetrics::write(std::string& out) const {
  if (base_ == nullptr) return;
  const auto* counts = static_cast<const std::atomic<std::uint32_t>*>(base_);
  std::vector<const ringlink::ReactorMetrics*> all;
  for (unsigned p = 0; p < processes_; ++p) {
    const std::uint32_t n = counts[p].load(std::memory_order_acquire);
    for (unsigned r = 0; r < n; ++r) all.push_back(row(p, r));
  }
  ringlink::write_prometheus(out, all);
}

}  // namespace echo_metrics
