// Frame codec microbenchmarks: each native/wslay pair runs in the same binary
// and run, so their ratio is taken under the same conditions.
//   BM_decode_small/{native,wslay}   masked client frames, payload 2..125 B
//   BM_decode_large/{native,wslay}   masked 64 KiB frames
//   BM_encode_small/{native,wslay}   unmasked server headers, payload 2..125 B
//   BM_encode_small_masked/{...}     masked client headers, payload 2..125 B
//   BM_encode_large/{native,wslay}   unmasked 64 KiB frame headers
//   BM_apply_mask/65536              unmasking in place
// items/s counts frames; bytes/s counts only bytes the code under test
// touched: the whole frame for the decoders and the mask, the header alone
// for the encoders (the payload is sent where it lies, the encoder never
// reads it, so counting it would report a rate no memory can reach).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "protocol/codec_native.hpp"
#include "protocol/codec_wslay.hpp"

namespace ringlink {
namespace {

constexpr MaskKey bench_key{0x5c, 0x1f, 0xa3, 0x07};

std::vector<std::uint64_t> small_lengths(std::size_t count) {
  std::mt19937 rng(1);
  std::vector<std::uint64_t> lengths(count);
  for (auto& n : lengths) {
    n = 2 + rng() % 124;  // 2..125
  }
  return lengths;
}

// A buffer of back-to-back masked frames with the given payload lengths.
std::vector<std::byte> build_stream(const std::vector<std::uint64_t>& lengths) {
  NativeEncoder enc;
  std::vector<std::byte> out;
  std::mt19937 rng(2);
  for (std::uint64_t len : lengths) {
    FrameHeader h;
    h.opcode = static_cast<std::uint8_t>(Opcode::binary);
    h.masked = true;
    h.mask = bench_key;
    h.payload_length = len;
    std::array<std::byte, max_frame_header> hdr{};
    const std::size_t n = enc.encode_header(hdr, h);
    out.insert(out.end(), hdr.begin(), hdr.begin() + static_cast<std::ptrdiff_t>(n));
    for (std::uint64_t i = 0; i < len; ++i) {
      out.push_back(std::byte{static_cast<std::uint8_t>(rng())});
    }
  }
  return out;
}

// Decodes the whole stream each iteration. The native decoder unmasks in
// place, so every other pass sees the payload masked back: headers are
// untouched and the work per pass is the same.
template <typename Decoder>
void decode_stream(benchmark::State& state, const std::vector<std::uint64_t>& lengths) {
  std::vector<std::byte> stream = build_stream(lengths);
  Decoder dec;
  std::uint64_t frames = 0;
  for (auto _ : state) {
    std::span<std::byte> in(stream);
    std::uint64_t sum = 0;
    for (;;) {
      const DecodeResult r = dec.decode(in, 0);
      in = in.subspan(r.consumed);
      if (r.status != DecodeStatus::chunk) {
        break;
      }
      sum += r.chunk.data.size();
      frames += r.chunk.last ? 1 : 0;
    }
    benchmark::DoNotOptimize(sum);
    if (!in.empty()) {
      state.SkipWithError("stream not fully decoded");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(static_cast<std::int64_t>(stream.size()) * state.iterations());
}

template <typename Decoder>
void bm_decode_small(benchmark::State& state) {
  decode_stream<Decoder>(state, small_lengths(1024));
}

template <typename Decoder>
void bm_decode_large(benchmark::State& state) {
  decode_stream<Decoder>(state, std::vector<std::uint64_t>(8, 65536));
}

template <typename Encoder>
void encode_headers(benchmark::State& state, const std::vector<std::uint64_t>& lengths,
                    bool masked) {
  Encoder enc;
  std::array<std::byte, max_frame_header> out{};
  std::uint64_t header_bytes = 0;
  for (std::uint64_t len : lengths) {
    FrameHeader h;
    h.opcode = static_cast<std::uint8_t>(Opcode::text);
    h.masked = masked;
    h.mask = bench_key;
    h.payload_length = len;
    header_bytes += enc.encode_header(out, h);
  }
  for (auto _ : state) {
    for (std::uint64_t len : lengths) {
      FrameHeader h;
      h.opcode = static_cast<std::uint8_t>(Opcode::text);
      h.masked = masked;
      h.mask = bench_key;
      h.payload_length = len;
      benchmark::DoNotOptimize(enc.encode_header(out, h));
      benchmark::ClobberMemory();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(lengths.size()) * state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(header_bytes) * state.iterations());
}

template <typename Encoder>
void bm_encode_small(benchmark::State& state) {
  encode_headers<Encoder>(state, small_lengths(256), false);
}

template <typename Encoder>
void bm_encode_small_masked(benchmark::State& state) {
  encode_headers<Encoder>(state, small_lengths(256), true);
}

template <typename Encoder>
void bm_encode_large(benchmark::State& state) {
  encode_headers<Encoder>(state, std::vector<std::uint64_t>(16, 65536), false);
}

void bm_apply_mask(benchmark::State& state) {
  std::vector<std::byte> data(static_cast<std::size_t>(state.range(0)), std::byte{0x42});
  std::uint64_t offset = 0;
  for (auto _ : state) {
    // The offset moves so that every key rotation is exercised.
    apply_mask(data, bench_key, offset++);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(data.size()) * state.iterations());
}

BENCHMARK(bm_decode_small<NativeDecoder>)->Name("BM_decode_small/native");
BENCHMARK(bm_decode_small<WslayDecoder>)->Name("BM_decode_small/wslay");
BENCHMARK(bm_decode_large<NativeDecoder>)->Name("BM_decode_large/native");
BENCHMARK(bm_decode_large<WslayDecoder>)->Name("BM_decode_large/wslay");
BENCHMARK(bm_encode_small<NativeEncoder>)->Name("BM_encode_small/native");
BENCHMARK(bm_encode_small<WslayEncoder>)->Name("BM_encode_small/wslay");
BENCHMARK(bm_encode_small_masked<NativeEncoder>)->Name("BM_encode_small_masked/native");
BENCHMARK(bm_encode_small_masked<WslayEncoder>)->Name("BM_encode_small_masked/wslay");
BENCHMARK(bm_encode_large<NativeEncoder>)->Name("BM_encode_large/native");
BENCHMARK(bm_encode_large<WslayEncoder>)->Name("BM_encode_large/wslay");
BENCHMARK(bm_apply_mask)->Name("BM_apply_mask")->Arg(65536);

}  // namespace
}  // namespace ringlink
