#pragma once
#include "IXWebSocketHttpHeaders.h"
#include <string>

namespace ix
{
    struct WebSocketInitResult
    {
        bool success;
        int http_status;
        std::string errorStr;
        WebSocketHttpHeaders headers;
        std::string uri;
        std::string protocol;

        WebSocketInitResult(bool s = false,
                            int status = 0,
                            const std::string& e = std::string(),
                            WebSocketHttpHeaders h = WebSocketHttpHeaders(),
                            const std::string& u = std::string())
            : success(s), http_status(status), errorStr(e), headers(std::move(h)), uri(u)
        {
            auto it = headers.find("Sec-WebSocket-Protocol");
            if (it != headers.end()) protocol = it->second;
        }
    };
} // namespace ix
