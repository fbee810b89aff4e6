// WebSocketPerMessageDeflateOptions: the negotiated (or offered) parameters of the
// RFC 7692 permessage-deflate extension, and their Sec-WebSocket-Extensions text.
//
// Differences from upstream's parser (deliberate, see README):
//  * the header value is split into offers on ',' and each offer into parameters
//    on ';' (upstream merges the tokens of all offers), with the RFC 6455 9.1
//    syntax of deflate_negotiation.h (whitespace, quoted values);
//  * the first *acceptable* permessage-deflate offer wins; an offer with an
//    unknown parameter, a duplicated parameter, a missing/extra value or a window
//    size outside 8..15 is declined as RFC 7692 section 7.1 requires (upstream
//    clamps silently). If no offer is acceptable, enabled() is false.
#include "IXWebSocketPerMessageDeflateOptions.h"

#include "deflate_negotiation.h"

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
        int normaliseClientBits(int bits) { return bits == 8 ? 9 : bits; }
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
        std::vector<detail::ExtensionElement> offers;
        if (!detail::parseExtensionList(extension, offers)) return;
        for (const auto& offer : offers)
        {
            detail::DeflateParams p;
            if (!detail::readDeflateParams(offer, true, p)) continue;
            _enabled = true;
            _clientNoContextTakeover = p.clientNoContextTakeover;
            _serverNoContextTakeover = p.serverNoContextTakeover;
            // A bare client_max_window_bits only says "you may tell me a size".
            if (p.clientMaxWindowBits > 0) _clientMaxWindowBits = normaliseClientBits(p.clientMaxWindowBits);
            if (p.serverMaxWindowBits > 0) _serverMaxWindowBits = p.serverMaxWindowBits;
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
