// Link's methods: the application's calls, on the link's reactor thread.
#include "engine/reactor_internal.hpp"

namespace ringlink {

LinkId Link::id() const noexcept {
  return LinkId{reactor_->index(), slot_, generation_.load(std::memory_order_relaxed)};
}

SendResult Link::send(std::span<const std::byte> payload, Opcode op) {
  if (is_control(static_cast<std::uint8_t>(op)) && op != Opcode::ping && op != Opcode::pong) return SendResult::closed;
  return reactor_->send_frame(*this, op, payload, {});
}

SendResult Link::send_text(std::string_view text) {
  return send(std::as_bytes(std::span<const char>(text.data(), text.size())), Opcode::text);
}

SendResult Link::send(PayloadRef payload, Opcode op) {
  auto bytes = payload.bytes();
  return reactor_->send_frame(*this, op, bytes, std::move(payload));
}

void Link::close(std::uint16_t code, std::string_view reason) {
  reactor_->send_close_and_wait(*this, sendable_or_normal(code), reason, CloseReason::local_close);
}

void Link::abort() { reactor_->abort_link(*this, CloseReason::local_close, close_code::abnormal); }

void Link::pause_reading() {
  if (!closed()) reactor_->pause(*this, p_app);
}

void Link::resume_reading() {
  if (!closed()) reactor_->resume(*this, p_app);
}

void Link::set_timer(std::uint32_t ms) {
  if (ms == 0) {
    if (aux_ != nullptr) aux_->app_timer_armed = false;
    reactor_->trim_aux(*this);
  } else if (LinkAux* aux = reactor_->aux_of(*this)) {
    aux->app_timer_armed = true;
    aux->app_timer_ms = reactor_->ms32() + ms;
  } else {
    reactor_->out_of_memory(*this);
    return;
  }
  reactor_->arm_timer(*this);
}

void Link::set_nodelay(bool on) {
  if (fd_ >= 0) ringlink::set_nodelay(fd_, on);
  if (on) {
    set(f_nodelay);
  } else {
    clear(f_nodelay);
  }
}

std::size_t Link::queued_bytes() const noexcept { return sendq_ != nullptr ? sendq_->bytes() : 0; }

const char* to_string(SendResult r) noexcept {
  switch (r) {
    case SendResult::queued: return "queued";
    case SendResult::backpressured: return "backpressured";
    case SendResult::queued_dropping_older: return "queued_dropping_older";
    case SendResult::not_posted: return "not_posted";
    case SendResult::closed: return "closed";
  }
  return "unknown";
}

const char* to_string(SubscribeResult r) noexcept {
  switch (r) {
    case SubscribeResult::subscribed: return "subscribed";
    case SubscribeResult::posted: return "posted";
    case SubscribeResult::already: return "already";
    case SubscribeResult::invalid_topic: return "invalid_topic";
    case SubscribeResult::refused_link_cap: return "refused_link_cap";
    case SubscribeResult::refused_server_cap: return "refused_server_cap";
    case SubscribeResult::not_posted: return "not_posted";
    case SubscribeResult::closed: return "closed";
  }
  return "unknown";
}

bool Link::compressed() const noexcept { return aux_ != nullptr && aux_->deflate != nullptr; }

const DeflateParams* Link::deflate_params() const noexcept {
  if (!compressed()) return nullptr;
  return &aux_->deflate->params;
}

}  // namespace ringlink
