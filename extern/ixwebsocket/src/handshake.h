#pragma once
// RFC 6455 section 4 opening handshake for both roles, as pure functions.
#include "deflate_negotiation.h"
#include "http_head.h"
#include "url.h"
#include "ixwebsocket/IXWebSocketInitResult.h"
#include <string>
#include <vector>

namespace ix::detail
{
    // base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2.
    std::string computeAcceptKey(const std::string& clientKey);
    // A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
    std::string generateClientKey();

    std::string base64Encode(const uint8_t* data, size_t size);
    // SHA-1 digest (20 bytes) of data.
    void sha1(const uint8_t* data, size_t size, uint8_t digest[20]);

    // ----- client -----
    // The GET request, ending with the blank line. Host, User-Agent and Origin
    // come from extraHeaders when given there (case-insensitively); subprotocols
    // become one comma-separated Sec-WebSocket-Protocol header; extensionsOffer,
    // when not empty, is sent as Sec-WebSocket-Extensions.
    // Order (spec 17.1): request line, Host, Upgrade, Connection, Version, Key,
    // User-Agent, Origin, then the extra headers in map order with the joined
    // subprotocol list merged into that map (overriding a user header of that
    // name), then Sec-WebSocket-Extensions. extensionsOffer may be a bare value or
    // a whole "Sec-WebSocket-Extensions: ...\r\n" line (generateHeader() output);
    // when it is given, a user Sec-WebSocket-Extensions header is dropped. Extra
    // headers whose name or value contains CR/LF are dropped (no injection).
    std::string buildClientRequest(const Url& url,
                                   const std::string& key,
                                   const WebSocketHttpHeaders& extraHeaders,
                                   const std::vector<std::string>& subprotocols,
                                   const std::string& extensionsOffer);

    // Checks a response head against the request. On success: success=true,
    // http_status=101, headers, uri=url.path, protocol=chosen subprotocol.
    // Failures carry upstream's error strings ("Expecting status 101 (Switching
    // Protocol), got 404 status connecting to <url>, HTTP Status line: ...",
    // "Invalid Sec-WebSocket-Accept value", "Missing connection value", ...).
    // A subprotocol not in the offer, or an Upgrade header other than websocket,
    // is rejected (upstream defect 34). Extensions: with no offer, any
    // Sec-WebSocket-Extensions in the response is rejected; with an offer
    // (extensionsOffer, as given to buildClientRequest) the response must be a
    // valid answer to it (negotiateDeflateClient), and `deflate` (if given)
    // receives the agreement.
    WebSocketInitResult checkServerResponse(const HttpHead& response,
                                            const std::string& urlText,
                                            const Url& url,
                                            const std::string& key,
                                            const std::vector<std::string>& subprotocols,
                                            const std::string& extensionsOffer = "",
                                            DeflateAgreement* deflate = nullptr);

    // ----- server -----
    struct ServerHandshakeOptions
    {
        std::vector<std::string> subprotocols; // the server's, in preference order
        std::string serverHeader;              // value of the Server header
        ServerDeflatePolicy deflate;           // permessage-deflate (off by default here)
    };

    struct ServerHandshake
    {
        bool accepted = false;
        int status = 0;        // 101, or the error status (400, 426, ...)
        std::string reason;    // error reason, empty when accepted
        std::string response;  // full HTTP response bytes to write (ends with blank line)
        std::string protocol;  // chosen subprotocol, "" if none
        DeflateAgreement deflate; // accepted permessage-deflate offer, if any
    };

    // Validates an upgrade request (method GET, HTTP/1.1, Upgrade: websocket,
    // Connection containing the "upgrade" token, Sec-WebSocket-Key of 16 bytes
    // base64, Sec-WebSocket-Version 13 -> else 426 with Sec-WebSocket-Version: 13)
    // and builds the 101 response or a proper error response.
    // extraResponseHeaders are appended to a 101. permessage-deflate: when
    // options.deflate allows it, the first acceptable offer of the request's
    // Sec-WebSocket-Extensions is answered (negotiateDeflateServer) and the
    // agreement is returned in `deflate`.
    // Order of checks and reasons: method ("Invalid HTTP method, need GET, got X"),
    // version ("Invalid HTTP version, need HTTP/1.1, got X"), Upgrade ("Missing
    // Upgrade header" / "Invalid Upgrade header, need WebSocket, got X"), Connection
    // ("Missing Connection header" / "Invalid Connection header, need Upgrade, got
    // X"), key ("Missing Sec-WebSocket-Key value" / "Invalid Sec-WebSocket-Key
    // value"): all 400; then Sec-WebSocket-Version missing or not 13 -> 426. Host is
    // not checked (as upstream).
    ServerHandshake evaluateClientRequest(const HttpHead& request,
                                          const ServerHandshakeOptions& options,
                                          const std::string& extraResponseHeaders = "");

    // "HTTP/1.1 <status> <reason>\r\nServer: ...\r\nContent-Type: text/plain\r\n
    //  Content-Length: N\r\nConnection: close\r\n\r\n<reason>" (fixes upstream defect 17).
    std::string httpErrorResponse(int status, const std::string& reason,
                                  const std::string& serverHeader,
                                  const std::string& extraHeaders = "");
} // namespace ix::detail
