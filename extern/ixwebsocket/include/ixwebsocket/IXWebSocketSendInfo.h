#pragma once
#include "IXWebSocketVersion.h"
#include <cstddef>

namespace ix
{
    struct WebSocketSendInfo
    {
        bool success;
        bool compressionError;
        size_t payloadSize;
        size_t wireSize;
#ifdef IXWS_ENGINE_EXTENSIONS
        // ixws extension: the send failed because the connection's send buffer
        // was over its limit (setSendBufferLimit), not because it was closed.
        bool bufferFull = false;
#endif

        WebSocketSendInfo(bool s = false, bool c = false, size_t p = 0, size_t w = 0)
            : success(s), compressionError(c), payloadSize(p), wireSize(w)
        {
        }
    };
} // namespace ix
