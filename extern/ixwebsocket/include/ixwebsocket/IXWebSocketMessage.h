#pragma once
#include "IXWebSocketCloseInfo.h"
#include "IXWebSocketErrorInfo.h"
#include "IXWebSocketMessageType.h"
#include "IXWebSocketOpenInfo.h"
#include "IXWebSocketVersion.h"
#include <memory>
#include <string>

namespace ix
{
    struct WebSocketMessage
    {
        WebSocketMessageType type;
        // Refers to engine-owned storage, valid only during the callback.
        const std::string& str;
        size_t wireSize;
        WebSocketErrorInfo errorInfo;
        WebSocketOpenInfo openInfo;
        WebSocketCloseInfo closeInfo;
        bool binary;
#ifdef IXWS_ENGINE_EXTENSIONS
        // ixws extension: the storage behind `str` for Message/Ping/Pong events
        // (nullptr otherwise). The callback may move the payload out of it
        // (`str` is then empty), which saves a copy of every message.
        std::string* movablePayload = nullptr;
#endif

        WebSocketMessage(WebSocketMessageType t,
                         const std::string& s,
                         size_t w,
                         WebSocketErrorInfo e,
                         WebSocketOpenInfo o,
                         WebSocketCloseInfo c,
                         bool b = false)
            : type(t), str(s), wireSize(w), errorInfo(std::move(e)), openInfo(std::move(o)),
              closeInfo(std::move(c)), binary(b)
        {
        }

        // A reference to a temporary would dangle.
        WebSocketMessage(WebSocketMessageType,
                         std::string&&,
                         size_t,
                         WebSocketErrorInfo,
                         WebSocketOpenInfo,
                         WebSocketCloseInfo,
                         bool = false) = delete;
    };

    using WebSocketMessagePtr = std::unique_ptr<WebSocketMessage>;
} // namespace ix
