#include "engine/backend_uring.hpp"

#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "engine/log.hpp"

namespace ringlink {

namespace {

constexpr unsigned queue_entries = 4096;
constexpr std::size_t initial_fill = 64;  // chunks in the ring at start

bool kernel_at_least(int major, int minor) noexcept {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

// The reason is a courtesy for the log; open()'s return value is the error,
// so out of memory here leaves it empty rather than ending the process.
void set_reason(std::string* why, const char* what, int err) noexcept {
  if (why == nullptr) return;
  try {
    *why = what;
    if (err != 0) {
      *why += ": ";
      *why += std::strerror(err);
    }
  } catch (...) {
    why->clear();
  }
}

}  // namespace

UringBackend::~UringBackend() { close(); }

int UringBackend::open(ChunkPool& pool, std::string* why) noexcept {
  pool_ = &pool;
  io_uring_params p{};
  p.cq_entries = queue_entries * 4;
  if constexpr (config::uring_sqpoll) {
    // A kernel thread polls the submission queue: submissions cost no
    // syscall while it is awake, at the price of a core spinning for
    // sq_thread_idle ms after the last one.
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 50;
  } else {
    // Completions are processed only when this thread waits: no interrupts
    // of the reactor for task work it would run at the next turn anyway.
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  }
  int r = io_uring_queue_init_params(queue_entries, &ring_, &p);
  if (r == -EINVAL && !config::uring_sqpoll) {  // kernels before 6.1
    p = io_uring_params{};
    p.cq_entries = queue_entries * 4;
    p.flags = IORING_SETUP_CQSIZE;
    r = io_uring_queue_init_params(queue_entries, &ring_, &p);
  }
  if (r < 0) {
    set_reason(why, "io_uring_setup", -r);
    return r;
  }
  ring_open_ = true;

  // Probe every operation the engine submits.
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) {
    set_reason(why, "io_uring probe failed", 0);
    close();
    return -ENOTSUP;
  }
  static constexpr int needed[] = {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SENDMSG, IORING_OP_ASYNC_CANCEL,
                                   IORING_OP_READ};
  for (int op : needed) {
    if (!io_uring_opcode_supported(probe, op)) {
      io_uring_free_probe(probe);
      set_reason(why, "io_uring lacks an operation the engine needs (accept, recv, sendmsg, cancel, read)", 0);
      close();
      return -ENOTSUP;
    }
  }
  zc_supported_ = io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);
  io_uring_free_probe(probe);
  // Multishot receive with provided buffer rings (the probe cannot see it).
  if (!kernel_at_least(6, 0)) {
    set_reason(why, "kernel older than 6.0: no multishot receive", 0);
    close();
    return -ENOTSUP;
  }
  if (!(p.features & IORING_FEAT_EXT_ARG)) {
    set_reason(why, "io_uring cannot wait with a timeout in one call (IORING_FEAT_EXT_ARG)", 0);
    close();
    return -ENOTSUP;
  }

  // Receive bundles (6.10): one completion for as many ring buffers as the
  // socket had bytes for, instead of one per buffer.
  bundles_ = (p.features & IORING_FEAT_RECVSEND_BUNDLE) != 0;
  static std::atomic<bool> told{false};  // once per process, not per reactor
  if (!told.exchange(true))
    RINGLINK_LOG(LogLevel::info, "io_uring: receive bundles %s", bundles_ ? "on" : "off (the kernel has none)");

  // The provided buffer ring: its memory is page aligned and shared with the
  // kernel; its buffers are pool chunks.
  const unsigned entries = static_cast<unsigned>(config::uring_buffers);
  buf_ring_bytes_ = entries * sizeof(io_uring_buf);
  void* mem = ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    set_reason(why, "mmap of the buffer ring", errno);
    close();
    return -ENOMEM;
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(buf_ring_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(buf_ring_);
  reg.ring_entries = entries;
  reg.bgid = buffer_group;
  r = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (r < 0) {
    set_reason(why, "io_uring_register_buf_ring", -r);
    close();
    return r;
  }
  try {
    buffers_.assign(entries, nullptr);
    cold_.assign(entries, 0);
    id_at_.assign(entries, 0);
    pos_of_.assign(entries, 0);
    // Never more ids than buffers: complete() hands ids back without growing it.
    free_ids_.reserve(entries);
  } catch (...) {
    set_reason(why, "buffer ring bookkeeping", ENOMEM);
    close();
    return -ENOMEM;
  }
  free_ids_.clear();
  ring_tail_ = 0;
  // A new ring holds no request of any link.
  std::fill(slots_.begin(), slots_.end(), std::uint8_t{0});
  starved_count_ = 0;
  for (unsigned i = entries; i > 0; --i) free_ids_.push_back(static_cast<std::uint16_t>(i - 1));
  fill_target_ = std::min<std::size_t>(entries, initial_fill);
  pool_->set_max_cached(fill_target_);
  refill();

  r = wakeup_.open();
  if (r < 0) {
    set_reason(why, "eventfd", -r);
    close();
    return r;
  }
  arm_wake();
  return 0;
}

void UringBackend::close() noexcept {
  if (!ring_open_) return;
  // Ask the kernel to drop every request, then wait (bounded) until each has
  // reported: until then it may still write into our chunks.
  if (io_uring_sqe* sqe = get_sqe()) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    sqe->user_data = op_cancel << op_shift;
    ++in_flight_;
  }
  ring_open_ = false;  // no re-arming from here on
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (in_flight_ > 0 && std::chrono::steady_clock::now() < until) {
    __kernel_timespec ts{};
    ts.tv_nsec = 50'000'000;
    io_uring_cqe* cqe = nullptr;
    int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    if (r < 0 && r != -ETIME && r != -EINTR) break;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      const std::uint64_t op = cqe->user_data >> op_shift;
      if ((cqe->flags & IORING_CQE_F_BUFFER) && op == op_recv) {
        const auto id = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (buffers_[id] != nullptr) pool_->release(buffers_[id]);
        buffers_[id] = nullptr;
      }
      if (!(cqe->flags & IORING_CQE_F_MORE) && in_flight_ > 0) --in_flight_;
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
  }
  io_uring_queue_exit(&ring_);
  for (std::byte*& b : buffers_) {
    if (b != nullptr) pool_->release(b);
    b = nullptr;
  }
  if (buf_ring_ != nullptr) ::munmap(buf_ring_, buf_ring_bytes_);
  buf_ring_ = nullptr;
  wakeup_.close();
}

io_uring_sqe* UringBackend::get_sqe() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {  // queue full: hand it over now and take a fresh one
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

// Room for the slot's zero-copy result, made when its first zero-copy send
// goes out rather than for every link: most links never send one. Without
// memory for it the send goes the copying way.
bool UringBackend::zc_room(std::uint32_t slot) noexcept {
  if (slot < zc_results_.size()) return true;
  try {
    zc_results_.resize(std::max<std::size_t>(slot + 1, zc_results_.size() * 2), 0);
  } catch (...) {
    return false;
  }
  return true;
}

int UringBackend::grow_slots(std::uint32_t slot) noexcept {
  if (slot < slots_.size()) return 0;
  const std::size_t n = std::max<std::size_t>(slot + 1, slots_.size() * 2);
  try {
    slots_.resize(n, 0);
  } catch (...) {
    return -ENOMEM;
  }
  return 0;
}

// The slot's next link starts with a receive of its own.
void UringBackend::forget_starved(std::uint32_t slot) noexcept {
  slots_[slot] &= static_cast<std::uint8_t>(~s_starved);
  --starved_count_;
}

void UringBackend::refill() noexcept {
  // The kernel walks the ring in order, so every chunk in it gets touched:
  // keep only as many as the load uses.
  if (taken_this_turn_ * 2 >= fill_target_) grow_fill();
  peak_turn_taken_ = std::max(peak_turn_taken_, taken_this_turn_);
  taken_this_turn_ = 0;
  if (free_ids_.empty() || buf_ring_ == nullptr) return;
  const int mask = io_uring_buf_ring_mask(static_cast<std::uint32_t>(buffers_.size()));
  int added = 0;
  while (!free_ids_.empty() && lent_buffers() < fill_target_) {
    std::byte* chunk = pool_->acquire();
    if (chunk == nullptr) break;  // pool at its cap: links hold the rest
    const std::uint16_t id = free_ids_.back();
    free_ids_.pop_back();
    buffers_[id] = chunk;
    cold_[id] = 0;
    const std::uint16_t pos = static_cast<std::uint16_t>(ring_tail_ + added);
    id_at_[pos & mask] = id;
    pos_of_[id] = pos;
    io_uring_buf_ring_add(buf_ring_, chunk, static_cast<unsigned>(pool_->chunk_size()), id, mask, added++);
  }
  if (added > 0) {
    io_uring_buf_ring_advance(buf_ring_, added);
    ring_tail_ = static_cast<std::uint16_t>(ring_tail_ + added);
  }
}

// A turn's consumed chunks come back to the pool before the next refill takes
// them again: the pool keeps as many as the ring holds, so a busy ring reuses
// its chunks instead of freeing and reallocating them every turn.
void UringBackend::grow_fill() noexcept {
  fill_target_ = std::min(buffers_.size(), fill_target_ * 2);
  pool_->set_max_cached(fill_target_);
}

std::size_t UringBackend::trim(bool quiet) noexcept {
  if (buf_ring_ == nullptr) return 0;
  if (peak_turn_taken_ * 4 < fill_target_ && fill_target_ > min_fill) {
    // The ring keeps what it holds; consumed chunks are not replaced until
    // it is down to the new fill.
    // The pool's cache keeps its room: lowering it would free warm chunks
    // into the allocator, which keeps their pages; trimmed, they cost none.
    fill_target_ = std::max(min_fill, fill_target_ / 2);
  }
  peak_turn_taken_ = 0;
  if (!quiet || config::uring_sqpoll) return 0;
  std::size_t pages = 0;
  for (std::size_t id = 0; id < buffers_.size(); ++id) {
    if (buffers_[id] == nullptr || cold_[id]) continue;
    pages += pool_->drop_pages(buffers_[id]);
    cold_[id] = 1;
  }
  return pages;
}

void UringBackend::arm_recv(int fd, std::uint64_t key) noexcept {
  if (!ring_open_) return;
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  if (bundles_) {
    sqe->ioprio |= IORING_RECVSEND_BUNDLE;
    // At most read_budget bytes per invocation (the same 6.10 series): past
    // it the kernel requeues the receive behind the other links' instead of
    // letting one flooding link take every buffer of the ring.
    sqe->len = static_cast<unsigned>(config::read_budget);
  }
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = buffer_group;
  sqe->user_data = (op_recv << op_shift) | (key & low_mask);
  slot_state(slot_of(key)) |= s_recv;
  ++in_flight_;
}

void UringBackend::arm_accept(std::uint32_t index) noexcept {
  if (!ring_open_) return;
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_multishot_accept(sqe, listen_fds_[index], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  sqe->user_data = (op_accept << op_shift) | index;
  accept_armed_[index] = true;
  ++in_flight_;
}

void UringBackend::arm_wake() noexcept {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_read(sqe, wakeup_.fd(), &wake_value_, sizeof wake_value_, 0);
  sqe->user_data = op_wake << op_shift;
  ++in_flight_;
}

void UringBackend::cancel(std::uint64_t user_data) noexcept {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_cancel64(sqe, user_data, IORING_ASYNC_CANCEL_ALL);
  sqe->user_data = op_cancel << op_shift;
  ++in_flight_;
}

int UringBackend::add_listener(int fd, std::uint32_t index) noexcept {
  if (index >= max_listeners) return -EINVAL;
  listen_fds_[index] = fd;
  accept_wanted_[index] = true;
  arm_accept(index);
  return 0;
}

int UringBackend::set_accepting(int, std::uint32_t index, bool on) noexcept {
  if (index >= max_listeners) return -EINVAL;
  accept_wanted_[index] = on;
  if (on && !accept_armed_[index]) arm_accept(index);
  if (!on && accept_armed_[index]) cancel((op_accept << op_shift) | index);
  return 0;
}

int UringBackend::add_link(int fd, std::uint64_t key) noexcept {
  const std::uint32_t slot = slot_of(key);
  if (int r = grow_slots(slot); r < 0) return r;
  reactor_bits_ = key & ~low_mask;
  if (slots_[slot] & s_starved) forget_starved(slot);
  slots_[slot] = 0;
  arm_recv(fd, key);
  return 0;
}

void UringBackend::remove_link(int, std::uint64_t key) noexcept {
  const std::uint32_t slot = slot_of(key);
  if (slot >= slots_.size()) return;  // add_link() refused it: nothing armed
  if (slots_[slot] & s_starved) forget_starved(slot);
  std::uint8_t& st = slot_state(slot);
  if ((st & s_recv) && !(st & s_cancel)) cancel((op_recv << op_shift) | (key & low_mask));
  if (st & s_send) cancel((op_send << op_shift) | (key & low_mask));
  st |= s_cancel;
}

ssize_t UringBackend::send(std::uint64_t key, int fd, msghdr& msg, bool zero_copy) noexcept {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return -EBUSY;
  if (zero_copy && zc_supported_ && zc_room(slot_of(key))) {
    io_uring_prep_sendmsg_zc(sqe, fd, &msg, MSG_NOSIGNAL);
  } else {
    io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
  }
  sqe->user_data = (op_send << op_shift) | (key & low_mask);
  slot_state(slot_of(key)) |= s_send;
  ++in_flight_;
  return -EINPROGRESS;
}

}  // namespace ringlink
