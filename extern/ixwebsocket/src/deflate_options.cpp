// WebSocketPerMessageDeflateOptions: the negotiated (or offered) parameters of the
// RFC 7692 permessage-deflate extension, and their Sec-WebSocket-Extensions text.
//
// Differences from upstream's parser (deliberate, see README):
//  * the header value is split into offers on ',' and each offer into parameters
//    on ';' (upstream merges the tokens of all offers);
//  * the first *acceptable* permessage-deflate offer wins; an offer with an
//    unknown parameter, a duplicated parameter, a missing/extra value or a window
//    size outside 8..15 is declined as RFC 7692 section 5.1 requires (upstream
//    clamps silently). If no offer is acceptable, enabled() is false;
//  * whitespace around tokens and a quoted value ("10") are tolerated.
#include "IXWebSocketPerMessageDeflateOptions.h"

#include <cctype>
#include <vector>

namespace ix
{
    uint8_t const WebSocketPerMessageDeflateOptions::kDefaultClientMaxWindowBits = 15;
    uint8_t const WebSocketPerMessageDeflateOptions::kDefaultServerMaxWindowBits = 15;

    namespace
    {
        // zlib cannot produce a raw deflate stream with a 256-byte window, so a
        // client window of 8 bits is used (and announced) as 9.
        constexpr int kMinWindowBits = 8;
        constexpr int kMaxWindowBits = 15;

        int normaliseClientBits(int bits) { return bits == kMinWindowBits ? kMinWindowBits + 1 : bits; }

        std::vector<std::string> split(const std::string& s, char sep)
        {
            std::vector<std::string> out;
            std::string cur;
            for (char c : s)
            {
                if (c == sep)
                {
                    out.push_back(cur);
                    cur.clear();
                }
                else
                {
                    cur.push_back(c);
                }
            }
            out.push_back(cur);
            return out;
        }

        std::string lowerAscii(std::string s)
        {
            for (auto& c : s)
            {
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
            }
            return s;
        }

        // Parses "8".."15" (optionally quoted). Returns -1 when not a valid window size.
        int parseWindowBits(std::string v)
        {
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            if (v.empty() || v.size() > 2) return -1;
            int n = 0;
            for (char c : v)
            {
                if (c < '0' || c > '9') return -1;
                n = n * 10 + (c - '0');
            }
            // RFC 7692 forbids leading zeros ("010" is already excluded by length).
            if (v.size() == 2 && v[0] == '0') return -1;
            if (n < kMinWindowBits || n > kMaxWindowBits) return -1;
            return n;
        }

        struct ParsedOffer
        {
            bool ok = false;
            bool clientNoContextTakeover = false;
            bool serverNoContextTakeover = false;
            int clientMaxWindowBits = kMaxWindowBits;
            int serverMaxWindowBits = kMaxWindowBits;
        };

        // One offer is "permessage-deflate; param[=value]; ...", already without
        // whitespace.
        ParsedOffer parseOffer(const std::string& offer)
        {
            ParsedOffer result;
            std::vector<std::string> params = split(offer, ';');
            if (params.empty() || lowerAscii(params[0]) != "permessage-deflate") return result;

            bool seenClientNct = false, seenServerNct = false;
            bool seenClientBits = false, seenServerBits = false;

            for (size_t i = 1; i < params.size(); ++i)
            {
                const std::string& p = params[i];
                if (p.empty()) continue; // tolerate "permessage-deflate;" and ";;"

                std::string name = p, value;
                bool hasValue = false;
                auto eq = p.find('=');
                if (eq != std::string::npos)
                {
                    name = p.substr(0, eq);
                    value = p.substr(eq + 1);
                    hasValue = true;
                }
                name = lowerAscii(name);

                if (name == "client_no_context_takeover" || name == "server_no_context_takeover")
                {
                    bool& seen = name[0] == 'c' ? seenClientNct : seenServerNct;
                    if (seen || hasValue) return result;
                    seen = true;
                    if (name[0] == 'c')
                        result.clientNoContextTakeover = true;
                    else
                        result.serverNoContextTakeover = true;
                }
                else if (name == "client_max_window_bits")
                {
                    if (seenClientBits) return result;
                    seenClientBits = true;
                    // A bare client_max_window_bits only says "you may tell me a
                    // size": the default of 15 stays.
                    if (hasValue)
                    {
                        int bits = parseWindowBits(value);
                        if (bits < 0) return result;
                        result.clientMaxWindowBits = normaliseClientBits(bits);
                    }
                }
                else if (name == "server_max_window_bits")
                {
                    if (seenServerBits || !hasValue) return result;
                    seenServerBits = true;
                    int bits = parseWindowBits(value);
                    if (bits < 0) return result;
                    result.serverMaxWindowBits = bits;
                }
                else
                {
                    return result; // unknown parameter: decline this offer
                }
            }
            result.ok = true;
            return result;
        }
    } // namespace

    WebSocketPerMessageDeflateOptions::WebSocketPerMessageDeflateOptions(bool enabled,
                                                                         bool clientNoContextTakeover,
                                                                         bool serverNoContextTakeover,
                                                                         uint8_t clientMaxWindowBits,
                                                                         uint8_t serverMaxWindowBits,
                                                                         bool sendClientServerMaxWindowBits)
        : _enabled(enabled)
        , _clientNoContextTakeover(clientNoContextTakeover)
        , _serverNoContextTakeover(serverNoContextTakeover)
        , _clientMaxWindowBits(normaliseClientBits(clientMaxWindowBits))
        , _serverMaxWindowBits(serverMaxWindowBits)
        , _sendClientServerMaxWindowBits(sendClientServerMaxWindowBits)
    {
    }

    WebSocketPerMessageDeflateOptions::WebSocketPerMessageDeflateOptions(std::string extension)
        : _enabled(false)
        , _clientNoContextTakeover(false)
        , _serverNoContextTakeover(false)
        , _clientMaxWindowBits(kDefaultClientMaxWindowBits)
        , _serverMaxWindowBits(kDefaultServerMaxWindowBits)
        , _sendClientServerMaxWindowBits(true)
    {
        const std::string compact = removeSpaces(extension);
        for (const std::string& offer : split(compact, ','))
        {
            ParsedOffer parsed = parseOffer(offer);
            if (!parsed.ok) continue;
            _enabled = true;
            _clientNoContextTakeover = parsed.clientNoContextTakeover;
            _serverNoContextTakeover = parsed.serverNoContextTakeover;
            _clientMaxWindowBits = parsed.clientMaxWindowBits;
            _serverMaxWindowBits = parsed.serverMaxWindowBits;
            break;
        }
    }

    std::string WebSocketPerMessageDeflateOptions::generateHeader()
    {
        std::string header = "Sec-WebSocket-Extensions: permessage-deflate";
        if (_clientNoContextTakeover) header += "; client_no_context_takeover";
        if (_serverNoContextTakeover) header += "; server_no_context_takeover";
        if (_sendClientServerMaxWindowBits)
        {
            header += "; server_max_window_bits=";
            header += std::to_string(_serverMaxWindowBits);
            header += "; client_max_window_bits=";
            header += std::to_string(_clientMaxWindowBits);
        }
        header += "\r\n";
        return header;
    }

    bool WebSocketPerMessageDeflateOptions::enabled() const { return _enabled; }

    bool WebSocketPerMessageDeflateOptions::getClientNoContextTakeover() const
    {
        return _clientNoContextTakeover;
    }

    bool WebSocketPerMessageDeflateOptions::getServerNoContextTakeover() const
    {
        return _serverNoContextTakeover;
    }

    uint8_t WebSocketPerMessageDeflateOptions::getClientMaxWindowBits() const
    {
        return static_cast<uint8_t>(_clientMaxWindowBits);
    }

    uint8_t WebSocketPerMessageDeflateOptions::getServerMaxWindowBits() const
    {
        return static_cast<uint8_t>(_serverMaxWindowBits);
    }

    bool WebSocketPerMessageDeflateOptions::getSendClientServerMaxWindowBits() const
    {
        return _sendClientServerMaxWindowBits;
    }

    bool WebSocketPerMessageDeflateOptions::startsWith(const std::string& str, const std::string& start)
    {
        return str.size() >= start.size() && str.compare(0, start.size(), start) == 0;
    }

    std::string WebSocketPerMessageDeflateOptions::removeSpaces(const std::string& str)
    {
        std::string out;
        out.reserve(str.size());
        for (char c : str)
        {
            if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(c);
        }
        return out;
    }
} // namespace ix
