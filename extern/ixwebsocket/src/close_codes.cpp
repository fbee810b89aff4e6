// RFC 6455 section 7.4.1 (defined codes) and 7.4.2 (ranges).
#include "close_codes.h"

namespace ix::detail
{
    bool isValidWireCloseCode(uint16_t code)
    {
        if (code >= 1000 && code <= 1003) return true;  // normal, going away, protocol, unsupported
        if (code >= 1007 && code <= 1011) return true;  // bad data, policy, too big, extension, internal
        if (code >= 3000 && code <= 4999) return true;  // registered (3xxx) and private (4xxx) use
        return false; // 1004 reserved; 1005/1006/1015 never on the wire; the rest unassigned
    }
} // namespace ix::detail
