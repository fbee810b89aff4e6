// Incremental HTTP/1.1 head parser (RFC 9112 sections 2-5, the parts a WebSocket
// handshake needs). The head is buffered (bounded by maxHeadSize) until the blank
// line, then parsed in one go; lines are never split, whatever their length.
#include "http_head.h"

#include <algorithm>
#include <cstring>

namespace ix::detail
{
    namespace
    {
        // RFC 9110 tchar: the characters of a token (method, header name).
        bool isTchar(unsigned char c)
        {
            if (c >= '0' && c <= '9') return true;
            if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
            return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
        }

        bool isToken(const std::string& s)
        {
            if (s.empty()) return false;
            for (unsigned char c : s)
            {
                if (!isTchar(c)) return false;
            }
            return true;
        }

        // "HTTP/d.d"
        bool isHttpVersion(const std::string& v)
        {
            return v.size() == 8 && v.compare(0, 5, "HTTP/") == 0 && v[5] >= '0' && v[5] <= '9' &&
                   v[6] == '.' && v[7] >= '0' && v[7] <= '9';
        }

        bool isOws(char c) { return c == ' ' || c == '\t'; }
    } // namespace

    HttpHeadParser::HttpHeadParser(Kind kind, size_t maxHeadSize)
        : _kind(kind), _maxHeadSize(maxHeadSize)
    {
    }

    void HttpHeadParser::fail(int status, const std::string& reason)
    {
        _status = Status::Error;
        _errorStatus = status;
        _error = reason;
        _buffer.clear();
        _buffer.shrink_to_fit();
    }

    HttpHeadParser::Status HttpHeadParser::feed(const char* data, size_t size, size_t& consumed)
    {
        consumed = 0;
        if (_status != Status::NeedMore) return _status;

        const size_t before = _buffer.size();
        const size_t room = _maxHeadSize > before ? _maxHeadSize - before : 0;
        const size_t take = std::min(size, room);
        _buffer.append(data, take);

        // Look for the blank line ("\r\n\r\n", or "\n\n" / "\n\r\n" with bare LF line
        // ends), starting a few bytes back in case it straddles two feeds.
        size_t pos = before >= 3 ? before - 3 : 0;
        size_t headEnd = std::string::npos;
        while (true)
        {
            const size_t lf = _buffer.find('\n', pos);
            if (lf == std::string::npos) break;
            // Is the line that starts right after this LF empty?
            if (lf + 1 < _buffer.size() && _buffer[lf + 1] == '\n')
            {
                headEnd = lf + 2;
                break;
            }
            if (lf + 2 < _buffer.size() && _buffer[lf + 1] == '\r' && _buffer[lf + 2] == '\n')
            {
                headEnd = lf + 3;
                break;
            }
            pos = lf + 1;
        }

        if (headEnd == std::string::npos)
        {
            consumed = take;
            if (_buffer.size() >= _maxHeadSize)
            {
                fail(431, "Request Header Fields Too Large");
                return _status;
            }
            return _status;
        }

        consumed = headEnd - before;
        _buffer.resize(headEnd);
        if (parseHead())
        {
            _status = Status::Done;
            _buffer.clear();
            _buffer.shrink_to_fit();
        }
        return _status;
    }

    bool HttpHeadParser::parseHead()
    {
        // Split into lines (LF, with an optional CR before it); the last two
        // entries are the blank line and the empty remainder.
        size_t pos = 0;
        bool first = true;
        while (pos < _buffer.size())
        {
            size_t lf = _buffer.find('\n', pos);
            if (lf == std::string::npos) lf = _buffer.size(); // cannot happen: head ends with LF
            size_t lineEnd = lf;
            if (lineEnd > pos && _buffer[lineEnd - 1] == '\r') --lineEnd;
            const char* line = _buffer.data() + pos;
            const size_t len = lineEnd - pos;
            pos = lf + 1;

            if (std::memchr(line, '\r', len) != nullptr || std::memchr(line, '\0', len) != nullptr)
            {
                fail(400, "Bad Request: stray CR or NUL in header");
                return false;
            }

            if (first)
            {
                first = false;
                _head.startLine.assign(line, len);
                const std::string& s = _head.startLine;
                const size_t sp1 = s.find(' ');
                if (sp1 == std::string::npos)
                {
                    fail(400, "Bad Request: malformed start line");
                    return false;
                }
                if (_kind == Kind::Request)
                {
                    const size_t sp2 = s.find(' ', sp1 + 1);
                    if (sp2 == std::string::npos || s.find(' ', sp2 + 1) != std::string::npos)
                    {
                        fail(400, "Bad Request: malformed request line");
                        return false;
                    }
                    _head.method = s.substr(0, sp1);
                    _head.target = s.substr(sp1 + 1, sp2 - sp1 - 1);
                    _head.version = s.substr(sp2 + 1);
                    if (!isToken(_head.method) || _head.target.empty())
                    {
                        fail(400, "Bad Request: malformed request line");
                        return false;
                    }
                    for (unsigned char c : _head.target)
                    {
                        if (c < 0x21 || c == 0x7F)
                        {
                            fail(400, "Bad Request: malformed request target");
                            return false;
                        }
                    }
                }
                else
                {
                    _head.version = s.substr(0, sp1);
                    const size_t sp2 = s.find(' ', sp1 + 1);
                    const std::string code =
                        s.substr(sp1 + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1);
                    if (code.size() != 3 || !std::all_of(code.begin(), code.end(),
                                                         [](char c) { return c >= '0' && c <= '9'; }))
                    {
                        fail(400, "Bad Request: malformed status line");
                        return false;
                    }
                    _head.status = std::stoi(code);
                    _head.reasonPhrase = sp2 == std::string::npos ? std::string() : s.substr(sp2 + 1);
                }
                if (!isHttpVersion(_head.version))
                {
                    fail(400, "Bad Request: malformed HTTP version");
                    return false;
                }
                if (_head.version[5] != '1')
                {
                    fail(505, "HTTP Version Not Supported");
                    return false;
                }
                continue;
            }

            if (len == 0) break; // the blank line: end of the head

            if (isOws(line[0]))
            {
                fail(400, "Bad Request: obsolete line folding");
                return false;
            }
            const char* colon = static_cast<const char*>(std::memchr(line, ':', len));
            if (colon == nullptr)
            {
                fail(400, "Bad Request: header line without ':'");
                return false;
            }
            std::string name(line, static_cast<size_t>(colon - line));
            if (!isToken(name))
            {
                fail(400, "Bad Request: invalid header name");
                return false;
            }
            const char* v = colon + 1;
            const char* vend = line + len;
            while (v < vend && isOws(*v)) ++v;
            while (vend > v && isOws(vend[-1])) --vend;
            for (const char* c = v; c < vend; ++c)
            {
                const unsigned char u = static_cast<unsigned char>(*c);
                if ((u < 0x20 && u != '\t') || u == 0x7F)
                {
                    fail(400, "Bad Request: control character in header value");
                    return false;
                }
            }
            std::string& slot = _head.headers[name];
            // Sec-WebSocket-Extensions may be split over several header lines
            // (RFC 6455 9.1): join them as one list. Other duplicates: the last wins.
            if (!slot.empty() && CaseInsensitiveLess::cmp(name, "sec-websocket-extensions") == false &&
                CaseInsensitiveLess::cmp("sec-websocket-extensions", name) == false)
            {
                slot += ", ";
                slot.append(v, static_cast<size_t>(vend - v));
            }
            else
            {
                slot.assign(v, static_cast<size_t>(vend - v));
            }
        }
        return true;
    }
} // namespace ix::detail
