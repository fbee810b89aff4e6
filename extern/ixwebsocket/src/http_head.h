#pragma once
// Incremental parser of an HTTP/1.1 request or response head (start line and
// headers, up to the blank line), with a size limit. Sans-I/O: feed bytes, read
// the result; the bytes after the head belong to the WebSocket stream.
#include "ixwebsocket/IXWebSocketHttpHeaders.h"
#include <cstddef>
#include <string>

namespace ix::detail
{
    struct HttpHead
    {
        // Request
        std::string method;
        std::string target;
        // Response
        int status = 0;
        std::string reasonPhrase;
        // Both
        std::string version;   // "HTTP/1.1"
        std::string startLine; // the first line, without CRLF
        WebSocketHttpHeaders headers; // duplicates: the last one wins, except that
                                      // Sec-WebSocket-Extensions lines are joined with ", "
    };

    class HttpHeadParser
    {
    public:
        enum class Kind { Request, Response };
        enum class Status { NeedMore, Done, Error };

        explicit HttpHeadParser(Kind kind, size_t maxHeadSize = 16384);

        // Consumes bytes up to the end of the head. `consumed` is set to how many
        // of the given bytes belong to the head (the rest are not looked at).
        // Once Done or Error, further calls return the same status and consume 0.
        Status feed(const char* data, size_t size, size_t& consumed);

        Status status() const { return _status; }
        const HttpHead& head() const { return _head; }
        // Moves the parsed head out (Done); the parser is not used afterwards.
        HttpHead takeHead() { return std::move(_head); }
        // On Error: the HTTP status to answer with (400 malformed, 431 too large,
        // 505 wrong version) and a human-readable reason.
        // maxHeadSize bounds the whole head including the blank line; more is never
        // buffered. Lines may end in CRLF or bare LF; a stray CR or NUL, a line
        // without ':', an invalid header name, obs-fold or a control character in a
        // value -> 400. "HTTP/1.x" parses (the handshake decides about 1.0); another
        // major version -> 505.
        int errorStatus() const { return _errorStatus; }
        const std::string& error() const { return _error; }

    private:
        bool parseHead();
        void fail(int status, const std::string& reason);

        Kind _kind;
        size_t _maxHeadSize;
        Status _status = Status::NeedMore;
        std::string _buffer;
        HttpHead _head;
        int _errorStatus = 0;
        std::string _error;
    };
} // namespace ix::detail
