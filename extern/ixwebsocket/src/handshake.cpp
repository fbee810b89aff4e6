// RFC 6455 section 4: the opening handshake for both roles. SHA-1 follows
// FIPS 180-4 section 6.1; base64 follows RFC 4648 section 4.
#include "handshake.h"

#include "frame_codec.h"
#include "ixwebsocket/IXUserAgent.h"

#include <cstring>

namespace ix::detail
{
    // ------------------------------------------------------------------ SHA-1
    namespace
    {
        inline uint32_t rotl(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

        struct Sha1
        {
            uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};

            void block(const uint8_t* p)
            {
                uint32_t w[80];
                for (int t = 0; t < 16; ++t)
                {
                    w[t] = (uint32_t(p[4 * t]) << 24) | (uint32_t(p[4 * t + 1]) << 16) |
                           (uint32_t(p[4 * t + 2]) << 8) | uint32_t(p[4 * t + 3]);
                }
                for (int t = 16; t < 80; ++t) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);

                uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
                for (int t = 0; t < 80; ++t)
                {
                    uint32_t f, k;
                    if (t < 20)
                    {
                        f = (b & c) | (~b & d);
                        k = 0x5A827999u;
                    }
                    else if (t < 40)
                    {
                        f = b ^ c ^ d;
                        k = 0x6ED9EBA1u;
                    }
                    else if (t < 60)
                    {
                        f = (b & c) | (b & d) | (c & d);
                        k = 0x8F1BBCDCu;
                    }
                    else
                    {
                        f = b ^ c ^ d;
                        k = 0xCA62C1D6u;
                    }
                    const uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
                    e = d;
                    d = c;
                    c = rotl(b, 30);
                    b = a;
                    a = tmp;
                }
                h[0] += a;
                h[1] += b;
                h[2] += c;
                h[3] += d;
                h[4] += e;
            }
        };

        const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

        bool isB64Char(char c)
        {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '/';
        }
    } // namespace

    void sha1(const uint8_t* data, size_t size, uint8_t digest[20])
    {
        Sha1 s;
        size_t i = 0;
        for (; i + 64 <= size; i += 64) s.block(data + i);

        // Padding: 0x80, zeros, then the bit length as a 64-bit big-endian number.
        uint8_t tail[128] = {};
        const size_t rest = size - i;
        if (rest) std::memcpy(tail, data + i, rest);
        tail[rest] = 0x80;
        const size_t tailLen = (rest + 1 + 8 <= 64) ? 64 : 128;
        const uint64_t bits = uint64_t(size) * 8;
        for (int b = 0; b < 8; ++b) tail[tailLen - 1 - b] = static_cast<uint8_t>(bits >> (8 * b));
        s.block(tail);
        if (tailLen == 128) s.block(tail + 64);

        for (int j = 0; j < 5; ++j)
        {
            digest[4 * j] = static_cast<uint8_t>(s.h[j] >> 24);
            digest[4 * j + 1] = static_cast<uint8_t>(s.h[j] >> 16);
            digest[4 * j + 2] = static_cast<uint8_t>(s.h[j] >> 8);
            digest[4 * j + 3] = static_cast<uint8_t>(s.h[j]);
        }
    }

    std::string base64Encode(const uint8_t* data, size_t size)
    {
        std::string out;
        out.reserve((size + 2) / 3 * 4);
        size_t i = 0;
        for (; i + 3 <= size; i += 3)
        {
            const uint32_t v = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8) | data[i + 2];
            out += kB64[(v >> 18) & 63];
            out += kB64[(v >> 12) & 63];
            out += kB64[(v >> 6) & 63];
            out += kB64[v & 63];
        }
        if (size - i == 1)
        {
            const uint32_t v = uint32_t(data[i]) << 16;
            out += kB64[(v >> 18) & 63];
            out += kB64[(v >> 12) & 63];
            out += "==";
        }
        else if (size - i == 2)
        {
            const uint32_t v = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8);
            out += kB64[(v >> 18) & 63];
            out += kB64[(v >> 12) & 63];
            out += kB64[(v >> 6) & 63];
            out += '=';
        }
        return out;
    }

    std::string computeAcceptKey(const std::string& clientKey)
    {
        std::string input = clientKey;
        input += kGuid;
        uint8_t digest[20];
        sha1(reinterpret_cast<const uint8_t*>(input.data()), input.size(), digest);
        return base64Encode(digest, sizeof(digest));
    }

    std::string generateClientKey()
    {
        uint8_t nonce[16];
        randomBytes(nonce, sizeof(nonce));
        return base64Encode(nonce, sizeof(nonce));
    }

    // ------------------------------------------------------------------ helpers
    namespace
    {
        char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

        bool equalsNoCase(const char* a, size_t n, const std::string& b)
        {
            if (n != b.size()) return false;
            for (size_t i = 0; i < n; ++i)
            {
                if (lower(a[i]) != lower(b[i])) return false;
            }
            return true;
        }

        // True if the comma-separated list `value` contains `token` (case-insensitive,
        // optional whitespace around elements, empty elements ignored).
        bool hasToken(const std::string& value, const std::string& token)
        {
            size_t pos = 0;
            while (pos <= value.size())
            {
                size_t comma = value.find(',', pos);
                if (comma == std::string::npos) comma = value.size();
                size_t b = pos, e = comma;
                while (b < e && (value[b] == ' ' || value[b] == '\t')) ++b;
                while (e > b && (value[e - 1] == ' ' || value[e - 1] == '\t')) --e;
                if (equalsNoCase(value.data() + b, e - b, token)) return true;
                pos = comma + 1;
            }
            return false;
        }

        // The elements of a comma-separated list, trimmed, empty ones dropped.
        std::vector<std::string> splitList(const std::string& value)
        {
            std::vector<std::string> items;
            size_t pos = 0;
            while (pos <= value.size())
            {
                size_t comma = value.find(',', pos);
                if (comma == std::string::npos) comma = value.size();
                size_t b = pos, e = comma;
                while (b < e && (value[b] == ' ' || value[b] == '\t')) ++b;
                while (e > b && (value[e - 1] == ' ' || value[e - 1] == '\t')) --e;
                if (e > b) items.emplace_back(value, b, e - b);
                pos = comma + 1;
            }
            return items;
        }

        const std::string* findHeader(const WebSocketHttpHeaders& headers, const char* name)
        {
            auto it = headers.find(name);
            return it == headers.end() ? nullptr : &it->second;
        }

        bool hasCrLf(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

        // A well-formed Sec-WebSocket-Key: base64 of exactly 16 bytes.
        bool isValidClientKey(const std::string& key)
        {
            if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
            for (size_t i = 0; i < 22; ++i)
            {
                if (!isB64Char(key[i])) return false;
            }
            return true;
        }

        void appendHeader(std::string& out, const std::string& name, const std::string& value)
        {
            out += name;
            out += ": ";
            out += value;
            out += "\r\n";
        }
    } // namespace

    // ------------------------------------------------------------------ client
    std::string buildClientRequest(const Url& url,
                                   const std::string& key,
                                   const WebSocketHttpHeaders& extraHeaders,
                                   const std::vector<std::string>& subprotocols,
                                   const std::string& extensionsOffer)
    {
        // The extensions offer may be given as a bare value or as a whole header
        // line (what WebSocketPerMessageDeflateOptions::generateHeader() returns).
        const std::string offer = extensionsHeaderValue(extensionsOffer);

        // Extra headers in map order, with the subprotocol list merged in (it
        // overrides a user-supplied header of that name).
        WebSocketHttpHeaders extra = extraHeaders;
        if (!subprotocols.empty())
        {
            std::string joined;
            for (size_t i = 0; i < subprotocols.size(); ++i)
            {
                if (i) joined += ',';
                joined += subprotocols[i];
            }
            extra["Sec-WebSocket-Protocol"] = joined;
        }
        if (!offer.empty()) extra.erase("Sec-WebSocket-Extensions");

        std::string req;
        req.reserve(512);
        req += "GET ";
        req += url.path.empty() ? std::string("/") : url.path;
        req += " HTTP/1.1\r\n";
        if (!extra.count("Host")) appendHeader(req, "Host", url.hostHeader());
        req += "Upgrade: websocket\r\n";
        req += "Connection: Upgrade\r\n";
        req += "Sec-WebSocket-Version: 13\r\n";
        appendHeader(req, "Sec-WebSocket-Key", key);
        if (!extra.count("User-Agent")) appendHeader(req, "User-Agent", userAgent());
        if (!extra.count("Origin"))
        {
            appendHeader(req, "Origin", std::string(url.tls ? "wss" : "ws") + "://" + url.hostHeader());
        }
        for (const auto& kv : extra)
        {
            // A name or value with CR/LF would inject lines into the request.
            if (kv.first.empty() || hasCrLf(kv.first) || hasCrLf(kv.second)) continue;
            appendHeader(req, kv.first, kv.second);
        }
        if (!offer.empty()) appendHeader(req, "Sec-WebSocket-Extensions", offer);
        req += "\r\n";
        return req;
    }

    WebSocketInitResult checkServerResponse(const HttpHead& response,
                                            const std::string& urlText,
                                            const Url& url,
                                            const std::string& key,
                                            const std::vector<std::string>& subprotocols,
                                            const std::string& extensionsOffer,
                                            DeflateAgreement* deflate)
    {
        if (deflate) *deflate = DeflateAgreement();
        const int status = response.status;
        if (response.version != "HTTP/1.1")
        {
            return WebSocketInitResult(false, status, "Expecting HTTP/1.1, got " + response.version,
                                       response.headers);
        }
        if (status != 101)
        {
            return WebSocketInitResult(false, status,
                                       "Expecting status 101 (Switching Protocol), got " +
                                           std::to_string(status) + " status connecting to " +
                                           urlText + ", HTTP Status line: " + response.startLine,
                                       response.headers);
        }

        const std::string* connection = findHeader(response.headers, "Connection");
        if (!connection)
        {
            return WebSocketInitResult(false, status, "Missing connection value", response.headers);
        }
        if (!hasToken(*connection, "upgrade"))
        {
            return WebSocketInitResult(false, status, "Invalid connection value: " + *connection,
                                       response.headers);
        }

        const std::string* upgrade = findHeader(response.headers, "Upgrade");
        if (!upgrade)
        {
            return WebSocketInitResult(false, status, "Missing upgrade value", response.headers);
        }
        if (!hasToken(*upgrade, "websocket"))
        {
            return WebSocketInitResult(false, status, "Invalid upgrade value: " + *upgrade,
                                       response.headers);
        }

        const std::string* accept = findHeader(response.headers, "Sec-WebSocket-Accept");
        if (!accept || *accept != computeAcceptKey(key))
        {
            return WebSocketInitResult(false, status, "Invalid Sec-WebSocket-Accept value",
                                       response.headers);
        }

        const std::string* protocol = findHeader(response.headers, "Sec-WebSocket-Protocol");
        if (protocol)
        {
            bool offered = false;
            for (const auto& p : subprotocols)
            {
                if (p == *protocol) offered = true;
            }
            if (!offered)
            {
                return WebSocketInitResult(false, status,
                                           "Invalid Sec-WebSocket-Protocol value: " + *protocol,
                                           response.headers);
            }
        }

        // RFC 6455 4.1: an extension the client did not offer fails the connection;
        // an answer to our offer must fit it (RFC 7692 7.1).
        const std::string* extensions = findHeader(response.headers, "Sec-WebSocket-Extensions");
        if (extensions && !extensions->empty())
        {
            const std::string offer = extensionsHeaderValue(extensionsOffer);
            if (offer.empty())
            {
                return WebSocketInitResult(false, status,
                                           "Invalid Sec-WebSocket-Extensions value: " + *extensions,
                                           response.headers, url.path);
            }
            DeflateAgreement agreed;
            std::string error;
            if (!negotiateDeflateClient(offer, *extensions, agreed, error))
            {
                return WebSocketInitResult(false, status, error, response.headers, url.path);
            }
            if (deflate) *deflate = agreed;
        }
        return WebSocketInitResult(true, status, "", response.headers, url.path);
    }

    // ------------------------------------------------------------------ server
    std::string httpErrorResponse(int status, const std::string& reason,
                                  const std::string& serverHeader,
                                  const std::string& extraHeaders)
    {
        // The reason goes into the status line: keep it on one line.
        std::string phrase = reason;
        for (char& c : phrase)
        {
            if (c == '\r' || c == '\n') c = ' ';
        }
        std::string r;
        r.reserve(160 + phrase.size() * 2 + extraHeaders.size());
        r += "HTTP/1.1 ";
        r += std::to_string(status);
        r += ' ';
        r += phrase;
        r += "\r\n";
        if (!serverHeader.empty()) appendHeader(r, "Server", serverHeader);
        r += extraHeaders;
        if (!extraHeaders.empty() && extraHeaders.back() != '\n') r += "\r\n";
        r += "Content-Type: text/plain\r\n";
        appendHeader(r, "Content-Length", std::to_string(phrase.size()));
        r += "Connection: close\r\n\r\n";
        r += phrase;
        return r;
    }

    ServerHandshake evaluateClientRequest(const HttpHead& request,
                                          const ServerHandshakeOptions& options,
                                          const std::string& extraResponseHeaders)
    {
        ServerHandshake hs;
        auto reject = [&](int status, const std::string& reason, const std::string& extra = "") {
            hs.accepted = false;
            hs.status = status;
            hs.reason = reason;
            hs.response = httpErrorResponse(status, reason, options.serverHeader, extra);
            return hs;
        };

        if (request.method != "GET")
        {
            return reject(400, "Invalid HTTP method, need GET, got " + request.method);
        }
        if (request.version != "HTTP/1.1")
        {
            return reject(400, "Invalid HTTP version, need HTTP/1.1, got " + request.version);
        }

        const std::string* upgrade = findHeader(request.headers, "Upgrade");
        if (!upgrade) return reject(400, "Missing Upgrade header");
        if (!hasToken(*upgrade, "websocket"))
        {
            return reject(400, "Invalid Upgrade header, need WebSocket, got " + *upgrade);
        }

        const std::string* connection = findHeader(request.headers, "Connection");
        if (!connection) return reject(400, "Missing Connection header");
        if (!hasToken(*connection, "upgrade"))
        {
            return reject(400, "Invalid Connection header, need Upgrade, got " + *connection);
        }

        const std::string* key = findHeader(request.headers, "Sec-WebSocket-Key");
        if (!key) return reject(400, "Missing Sec-WebSocket-Key value");
        if (!isValidClientKey(*key)) return reject(400, "Invalid Sec-WebSocket-Key value");

        const std::string* version = findHeader(request.headers, "Sec-WebSocket-Version");
        if (!version || *version != "13")
        {
            return reject(426, "Invalid Sec-WebSocket-Version, need 13, got " +
                                   (version ? *version : std::string()),
                          "Sec-WebSocket-Version: 13\r\n");
        }

        // Subprotocol: the first of the server's, in its preference order, that the
        // client offered.
        const std::string* offered = findHeader(request.headers, "Sec-WebSocket-Protocol");
        if (offered && !options.subprotocols.empty())
        {
            const std::vector<std::string> offer = splitList(*offered);
            for (const auto& mine : options.subprotocols)
            {
                bool found = false;
                for (const auto& theirs : offer)
                {
                    if (theirs == mine) found = true;
                }
                if (found)
                {
                    hs.protocol = mine;
                    break;
                }
            }
        }

        // permessage-deflate: the first offer we can honour, if any.
        std::string extensionsAnswer;
        const std::string* extensionsOffer = findHeader(request.headers, "Sec-WebSocket-Extensions");
        if (extensionsOffer && options.deflate.enabled)
        {
            std::string answer;
            if (negotiateDeflateServer(*extensionsOffer, options.deflate, answer, hs.deflate))
                extensionsAnswer = answer;
        }

        std::string& r = hs.response;
        r.reserve(256 + extraResponseHeaders.size());
        r += "HTTP/1.1 101 Switching Protocols\r\n";
        appendHeader(r, "Sec-WebSocket-Accept", computeAcceptKey(*key));
        r += "Upgrade: websocket\r\n";
        r += "Connection: Upgrade\r\n";
        if (!options.serverHeader.empty()) appendHeader(r, "Server", options.serverHeader);
        if (!hs.protocol.empty()) appendHeader(r, "Sec-WebSocket-Protocol", hs.protocol);
        if (!extensionsAnswer.empty()) appendHeader(r, "Sec-WebSocket-Extensions", extensionsAnswer);
        r += extraResponseHeaders;
        if (!extraResponseHeaders.empty() && extraResponseHeaders.back() != '\n') r += "\r\n";
        r += "\r\n";

        hs.accepted = true;
        hs.status = 101;
        hs.reason.clear();
        return hs;
    }
} // namespace ix::detail
