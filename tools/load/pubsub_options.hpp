// The command line of ringlink-load --pubsub (tools/load/pubsub.hpp): the
// flags only this mode takes. options.cpp hands them here.
//
//   PubsubOptions p;
//   switch (parse_pubsub_option("--subs", "100", p, error)) { case PubsubParse::not_mine: ... }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringlink::load {

enum class SubscribeWith : std::uint8_t { path, message };

struct PubsubOptions {
  bool enabled = false;                // --pubsub
  bool flags_seen = false;             // a flag below was given (an error without --pubsub)
  std::vector<std::string> urls;       // every node, the first URL included
  std::uint32_t subscribers = 1;       // --subs
  std::uint32_t publishers = 1;        // --pubs
  std::uint32_t topics = 1;            // --topics
  std::uint32_t topics_per_sub = 1;    // --sub-topics
  std::uint32_t pub_nodes = 0;         // --pub-nodes K: publishers on the last K URLs only, subscribers on the others
  SubscribeWith subscribe_with = SubscribeWith::path;
  double confirm_timeout_s = 10;       // --confirm-timeout
};

enum class PubsubParse : std::uint8_t { not_mine, ok, error };
PubsubParse parse_pubsub_option(std::string_view flag, std::string_view value, PubsubOptions& out, std::string& error);
// The pubsub part of usage_text().
const char* pubsub_usage_text() noexcept;

}  // namespace ringlink::load
