// The backend seam. The reactor sees completions: a connection accepted,
// bytes received into a buffer for a link, bytes sent, a link's read side
// ended, a wake-up from another thread. The compile-time `backend` flag picks
// the implementation; the reactor is written once against this alias.
#pragma once

#include <type_traits>

#include "engine/backend_epoll.hpp"
#include "ringlink_config.hpp"

namespace ringlink {

using Backend = EpollBackend;

}  // namespace ringlink
