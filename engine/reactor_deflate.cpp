// permessage-deflate on the reactor: agreeing on it in the upgrade (both
// roles), the process budget for dedicated contexts and the fallback to the
// reactor's shared ones, inflating received messages under the size cap,
// deflating sent ones above the threshold. Every entry point is a no-op
// unless the meson feature `deflate` is built and the config enables it.
#include <cstring>
#include <new>

#include "engine/log.hpp"
#include "engine/reactor_internal.hpp"
#include "protocol/codec.hpp"
#include "protocol/http_parse.hpp"
#include "protocol/utf8.hpp"

namespace ringlink {

namespace {

// A shared output buffer that grew past this (a large message) is freed
// before the next message, so that one large message is not kept.
constexpr std::size_t keep_scratch = 1u << 20;

constexpr std::string_view extensions_field = "Sec-WebSocket-Extensions";

}  // namespace

std::size_t Reactor::negotiate_deflate_for(Link& l, const UpgradeRequestParser& req, std::span<char> out) noexcept {
  if constexpr (!config::deflate) {
    return 0;
  } else {
    const DeflateConfig& dc = cfg_.deflate;
    if (!dc.enabled) return 0;
    DeflateServerOptions opt;
    opt.server_max_window_bits = dc.server_max_window_bits;
    opt.client_max_window_bits = dc.client_max_window_bits;
    opt.server_no_context_takeover = dc.server_no_context_takeover;
    opt.client_no_context_takeover = dc.client_no_context_takeover;
    std::optional<DeflateParams> agreed;
    for (const HeaderField& f : req.headers()) {
      if (http::iequals(f.name, extensions_field) && (agreed = negotiate_deflate(f.value, opt))) break;
    }
    if (!agreed) return 0;
    const std::size_t need = LinkDeflate::dedicated_bytes(*agreed, false, dc.mem_level);
    std::size_t charged = 0;
    if (need != 0) {
      if (DeflateBudget::try_take(need, dc.memory_budget)) {
        charged = need;
      } else {
        // The budget is spent: this link keeps no context, either way. A
        // server may always answer both parameters (RFC 7692 7.1.1).
        agreed->server_no_context_takeover = true;
        agreed->client_no_context_takeover = true;
        metrics_.deflate_shared_fallbacks.add();
      }
    }
    const std::size_t n = write_deflate_response(out, *agreed);
    if (n == 0 || !start_deflate(l, *agreed, false, charged)) return 0;
    return n;
  }
}

DeflateClientOptions Reactor::deflate_offer_for(const ConnectRequest& req) const noexcept {
  DeflateClientOptions offer = req.deflate_offer;
  // Past the budget, ask for no context takeover both ways up front.
  DeflateParams worst;
  const std::size_t need = LinkDeflate::dedicated_bytes(worst, true, cfg_.deflate.mem_level);
  if (DeflateBudget::in_use() + need > cfg_.deflate.memory_budget) {
    offer.server_no_context_takeover = true;
    offer.client_no_context_takeover = true;
  }
  return offer;
}

bool Reactor::accept_deflate_answer(Link& l, const UpgradeResponseParser& resp,
                                    const DeflateClientOptions& offered) noexcept {
  if constexpr (!config::deflate) {
    return true;
  } else {
    DeflateAnswerChecker check(offered);
    for (const HeaderField& f : resp.headers()) {
      if (http::iequals(f.name, extensions_field)) check.add(f.value);
    }
    switch (check.finish()) {
      case DeflateAnswer::none:
        return true;
      case DeflateAnswer::fail:
        RINGLINK_LOG(LogLevel::debug, "reactor %u: bad permessage-deflate answer", index_);
        return false;
      case DeflateAnswer::accepted:
        break;
    }
    const std::size_t need = LinkDeflate::dedicated_bytes(check.params(), true, cfg_.deflate.mem_level);
    // A client cannot take back what the server agreed to: past the budget
    // the contexts are made anyway, uncounted (the offer asked for none).
    const std::size_t charged = need != 0 && DeflateBudget::try_take(need, cfg_.deflate.memory_budget) ? need : 0;
    return start_deflate(l, check.params(), true, charged);
  }
}

bool Reactor::start_deflate(Link& l, const DeflateParams& agreed, bool client, std::size_t charged) noexcept {
  LinkAux* aux = aux_of(l);
  if (aux != nullptr) aux->deflate.reset(new (std::nothrow) LinkDeflate(agreed, client, cfg_.deflate.mem_level, charged));
  if (aux == nullptr || !aux->deflate) {
    if (charged != 0) DeflateBudget::give_back(charged);
    return false;
  }
  metrics_.deflate_links.add();
  return true;
}

// When the link ends: its dedicated contexts leave the gauges (the memory
// goes with LinkAux).
void Reactor::end_deflate(Link& l) noexcept {
  if (!l.compressed()) return;
  const LinkDeflate& d = *l.aux_->deflate;
  metrics_.deflate_links.sub();
  if (d.tx && d.tx->active()) {
    metrics_.deflate_contexts.sub();
    metrics_.deflate_context_bytes.sub(Deflater::state_bytes(d.tx_bits, d.mem_level));
  }
  if (d.rx && d.rx->active()) {
    metrics_.deflate_contexts.sub();
    metrics_.deflate_context_bytes.sub(Inflater::state_bytes(d.rx_bits));
  }
}

Deflater* Reactor::shared_deflater(std::uint8_t bits) noexcept {
  auto& slot = shared_tx_[bits & 15];
  if (!slot) {
    slot.reset(new (std::nothrow) Deflater(bits, cfg_.deflate.mem_level));
    if (slot) {
      metrics_.deflate_contexts.add();
      metrics_.deflate_context_bytes.add(Deflater::state_bytes(bits, cfg_.deflate.mem_level));
    }
  }
  return slot.get();
}

Inflater* Reactor::shared_inflater(std::uint8_t bits) noexcept {
  auto& slot = shared_rx_[bits & 15];
  if (!slot) {
    slot.reset(new (std::nothrow) Inflater(bits));
    if (slot) {
      metrics_.deflate_contexts.add();
      metrics_.deflate_context_bytes.add(Inflater::state_bytes(bits));
    }
  }
  return slot.get();
}

void Reactor::inflate_event(Link& l, Session& session, SessionEvent& ev) noexcept {
  LinkDeflate* d = (l.aux_ != nullptr) ? l.aux_->deflate.get() : nullptr;
  if (d == nullptr) {  // a session allows RSV1 only on such links
    ev = session.fail_message(close_code::internal_error, "no deflate state");
    return;
  }
  Inflater* inf = nullptr;
  if (d->rx_takeover) {
    if (!d->rx) d->rx.emplace(d->rx_bits);
    inf = &*d->rx;
  } else {
    inf = shared_inflater(d->rx_bits);
  }
  if (inf == nullptr) {
    ev = session.fail_message(close_code::internal_error, "out of memory inflating");
    return;
  }
  const bool was_active = inf->active();
  inflate_out_.shrink(keep_scratch);
  const InflateStatus st = inf->inflate_message(ev.payload, inflate_out_, config::max_message_size);
  if (d->rx_takeover && !was_active && inf->active()) {
    metrics_.deflate_contexts.add();
    metrics_.deflate_context_bytes.add(Inflater::state_bytes(d->rx_bits));
  }
  if (!d->rx_takeover) inf->reset();
  switch (st) {
    case InflateStatus::ok:
      break;
    case InflateStatus::too_big:
      metrics_.deflate_too_big.add();
      ev = session.fail_message(close_code::message_too_big, "message too big once inflated");
      return;
    case InflateStatus::corrupt:
      metrics_.deflate_corrupt.add();
      ev = session.fail_message(close_code::invalid_payload, "invalid deflate data");
      return;
    case InflateStatus::no_memory:
      ev = session.fail_message(close_code::internal_error, "out of memory inflating");
      return;
  }
  metrics_.deflate_in_wire_bytes.add(ev.payload.size());
  metrics_.deflate_in_plain_bytes.add(inflate_out_.size());
  if (ev.opcode == Opcode::text && !utf8_valid(inflate_out_.view())) {
    ev = session.fail_message(close_code::invalid_payload, "invalid UTF-8 in text message");
    return;
  }
  ev.payload = inflate_out_.view();
  ev.zero_copy = false;
  ev.compressed = false;
}

bool Reactor::deflate_for(Link& l, std::span<const std::byte> payload, std::span<const std::byte>& out) noexcept {
  if constexpr (!config::deflate) {
    return false;
  } else {
    if (payload.size() < cfg_.deflate.threshold || !l.compressed()) {
      return false;
    }
    LinkDeflate& d = *l.aux_->deflate;
    if (d.tx_bits < 9) return false;  // zlib cannot: uncompressed, as the RFC allows
    Deflater* def = nullptr;
    if (d.tx_takeover) {
      if (!d.tx) d.tx.emplace(d.tx_bits, d.mem_level);
      def = &*d.tx;
    } else {
      def = shared_deflater(d.tx_bits);
    }
    if (def == nullptr) return false;
    const bool was_active = def->active();
    deflate_out_.shrink(keep_scratch);
    const bool ok = def->deflate_message(payload, deflate_out_);
    if (d.tx_takeover && !was_active && def->active()) {
      metrics_.deflate_contexts.add();
      metrics_.deflate_context_bytes.add(Deflater::state_bytes(d.tx_bits, d.mem_level));
    }
    if (!d.tx_takeover) def->reset();
    // Out of memory inside zlib: the context was reset, so this message
    // goes uncompressed and the peer's context stays in step.
    if (!ok) return false;
    metrics_.deflate_calls.add();
    metrics_.deflate_out_plain_bytes.add(payload.size());
    metrics_.deflate_out_wire_bytes.add(deflate_out_.size());
    out = deflate_out_.view();
    return true;
  }
}

const PayloadRef& Reactor::frame_for_many(Link& l, const PayloadRef& plain, Opcode op, CompressedOnce& once) noexcept {
  if constexpr (!config::deflate) {
    return plain;
  } else {
    if (!l.compressed() || plain.size() < cfg_.deflate.threshold) return plain;
    const LinkDeflate& d = *l.aux_->deflate;
    if (d.tx_takeover) return once.none;
    if (d.tx_bits < 9) return plain;   // zlib cannot: uncompressed, as the RFC allows
    const std::size_t b = d.tx_bits & 15;
    if (!once.tried[b]) {
      once.tried[b] = true;
      once.frames[b] = deflate_shared(plain, op, d.tx_bits);
    }
    return once.frames[b] ? once.frames[b] : plain;
  }
}

bool Reactor::deflates_in_own_context(const Link& l, std::size_t size) const noexcept {
  if constexpr (!config::deflate) {
    return false;
  } else {
    if (size < cfg_.deflate.threshold || !l.compressed()) return false;
    const LinkDeflate& d = *l.aux_->deflate;
    return d.tx_takeover && d.tx_bits >= 9;
  }
}

PayloadRef Reactor::deflate_shared(const PayloadRef& plain, Opcode op, std::uint8_t bits) noexcept {
  if constexpr (!config::deflate) {
    return {};
  } else {
    Deflater* def = shared_deflater(bits);
    if (def == nullptr) return {};
    deflate_out_.shrink(keep_scratch);
    const bool ok = def->deflate_message(plain.bytes(), deflate_out_);
    def->reset();
    if (!ok) return {};
    const std::span<const std::byte> z = deflate_out_.view();
    const std::span<std::byte> trailer = plain.trailer();
    PayloadRef p = PayloadRef::allocate(z.size(), trailer.size());
    if (!p) return {};
    if (!z.empty()) std::memcpy(p.data(), z.data(), z.size());
    // The publication's tag goes with the compressed frame, so that a
    // queue dropping it still says which publication was lost.
    if (!trailer.empty()) std::memcpy(p.trailer().data(), trailer.data(), trailer.size());
    FrameHeader h;
    h.opcode = static_cast<std::uint8_t>(op);
    h.rsv = 0x4;
    h.payload_length = p.size();
    FrameEncoder enc;
    p.frame_header_len() = static_cast<std::uint8_t>(enc.encode_header(p.frame_header_storage(), h));
    metrics_.deflate_calls.add();
    metrics_.deflate_out_plain_bytes.add(plain.size());
    metrics_.deflate_out_wire_bytes.add(p.size());
    return p;
  }
}

}  // namespace ringlink
