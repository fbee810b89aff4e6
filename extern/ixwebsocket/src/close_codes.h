#pragma once
// RFC 6455 section 7.4: which close codes may appear on the wire.
#include <cstdint>

namespace ix::detail
{
    // True for codes a peer may send in a Close frame: 1000-1003, 1007-1011,
    // 3000-4999. 1004, 1005, 1006, 1015 and 1012-2999 (unassigned or reserved for
    // local use) are rejected; so is anything >= 5000 or < 1000.
    bool isValidWireCloseCode(uint16_t code);
} // namespace ix::detail
