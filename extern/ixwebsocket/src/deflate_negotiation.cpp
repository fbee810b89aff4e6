// RFC 7692 section 7.1 negotiation (see deflate_negotiation.h).
#include "deflate_negotiation.h"

#include <algorithm>

namespace ix::detail
{
    namespace
    {
        constexpr int kMinBits = 8;
        constexpr int kMaxBits = 15;
        // The smallest window zlib can compress with (raw deflate).
        constexpr int kMinDeflateBits = 9;

        bool isTokenChar(char c)
        {
            if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
            switch (c)
            {
                case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
                case '-': case '.': case '^': case '_': case '`': case '|': case '~': return true;
                default: return false;
            }
        }

        bool isSpace(char c) { return c == ' ' || c == '\t'; }

        char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

        bool equalsNoCase(const std::string& a, const char* b)
        {
            size_t i = 0;
            for (; i < a.size() && b[i]; ++i)
                if (lower(a[i]) != lower(b[i])) return false;
            return i == a.size() && b[i] == '\0';
        }

        class Scanner
        {
        public:
            explicit Scanner(const std::string& s) : _s(s) {}
            bool atEnd() const { return _pos >= _s.size(); }
            char peek() const { return _s[_pos]; }
            void skip() { ++_pos; }
            void skipSpace()
            {
                while (!atEnd() && isSpace(peek())) ++_pos;
            }
            bool token(std::string& out)
            {
                const size_t start = _pos;
                while (!atEnd() && isTokenChar(peek())) ++_pos;
                out.assign(_s, start, _pos - start);
                return _pos > start;
            }
            bool quoted(std::string& out)
            {
                out.clear();
                ++_pos; // opening quote
                while (!atEnd())
                {
                    char c = _s[_pos++];
                    if (c == '"') return true;
                    if (c == '\\')
                    {
                        if (atEnd()) return false;
                        c = _s[_pos++];
                    }
                    if (c == '\r' || c == '\n') return false;
                    out.push_back(c);
                }
                return false;
            }

        private:
            const std::string& _s;
            size_t _pos = 0;
        };

        // "8".."15", no leading zero. -1 otherwise.
        int parseBits(const std::string& v)
        {
            if (v.empty() || v.size() > 2 || v[0] == '0') return -1;
            int n = 0;
            for (char c : v)
            {
                if (c < '0' || c > '9') return -1;
                n = n * 10 + (c - '0');
            }
            return (n >= kMinBits && n <= kMaxBits) ? n : -1;
        }

        bool fail(std::string* why, const std::string& reason)
        {
            if (why) *why = reason;
            return false;
        }

        int clampPolicyBits(int bits) { return std::max(kMinDeflateBits, std::min(kMaxBits, bits)); }

        // Whether a response fits one offer; sets `agreed` when it does.
        bool fits(const DeflateParams& offer, const DeflateParams& resp, DeflateAgreement& agreed, std::string& why)
        {
            if (offer.serverNoContextTakeover && !resp.serverNoContextTakeover)
            {
                why = "server_no_context_takeover was requested but not accepted";
                return false;
            }
            if (offer.serverMaxWindowBits != kWindowBitsAbsent)
            {
                if (resp.serverMaxWindowBits == kWindowBitsAbsent)
                {
                    // An offer of 15 limits nothing: a server that leaves it out
                    // uses at most 15 bits anyway.
                    if (offer.serverMaxWindowBits != kMaxBits)
                    {
                        why = "server_max_window_bits was requested but not accepted";
                        return false;
                    }
                }
                else if (resp.serverMaxWindowBits > offer.serverMaxWindowBits)
                {
                    why = "server_max_window_bits above the offered value";
                    return false;
                }
            }
            if (resp.clientMaxWindowBits != kWindowBitsAbsent)
            {
                if (offer.clientMaxWindowBits == kWindowBitsAbsent)
                {
                    why = "client_max_window_bits was not offered";
                    return false;
                }
                if (offer.clientMaxWindowBits > 0 && resp.clientMaxWindowBits > offer.clientMaxWindowBits)
                {
                    why = "client_max_window_bits above the offered value";
                    return false;
                }
            }
            const int clientBits = resp.clientMaxWindowBits != kWindowBitsAbsent ? resp.clientMaxWindowBits
                                   : offer.clientMaxWindowBits > 0          ? offer.clientMaxWindowBits
                                                                            : kMaxBits;
            if (clientBits < kMinDeflateBits)
            {
                why = "client_max_window_bits=8 cannot be honoured (zlib compresses with 9 bits at least)";
                return false;
            }
            agreed.enabled = true;
            agreed.serverNoContextTakeover = resp.serverNoContextTakeover;
            // Offering client_no_context_takeover is our promise not to use it.
            agreed.clientNoContextTakeover = resp.clientNoContextTakeover || offer.clientNoContextTakeover;
            agreed.serverMaxWindowBits =
                resp.serverMaxWindowBits != kWindowBitsAbsent ? resp.serverMaxWindowBits : kMaxBits;
            agreed.clientMaxWindowBits = clientBits;
            return true;
        }
    } // namespace

    bool parseExtensionList(const std::string& value, std::vector<ExtensionElement>& out)
    {
        out.clear();
        Scanner s(value);
        for (;;)
        {
            s.skipSpace();
            if (s.atEnd()) return true;
            if (s.peek() == ',')
            {
                s.skip(); // empty list element
                continue;
            }
            ExtensionElement element;
            if (!s.token(element.name)) return false;
            s.skipSpace();
            while (!s.atEnd() && s.peek() == ';')
            {
                s.skip();
                s.skipSpace();
                ExtensionParam param;
                if (!s.token(param.name)) return false;
                s.skipSpace();
                if (!s.atEnd() && s.peek() == '=')
                {
                    s.skip();
                    s.skipSpace();
                    param.hasValue = true;
                    if (!s.atEnd() && s.peek() == '"')
                    {
                        if (!s.quoted(param.value)) return false;
                    }
                    else if (!s.token(param.value))
                    {
                        return false;
                    }
                    s.skipSpace();
                }
                element.params.push_back(std::move(param));
            }
            out.push_back(std::move(element));
            if (s.atEnd()) return true;
            if (s.peek() != ',') return false;
            s.skip();
        }
    }

    bool readDeflateParams(const ExtensionElement& element, bool isOffer, DeflateParams& out, std::string* why)
    {
        out = DeflateParams();
        if (!equalsNoCase(element.name, "permessage-deflate")) return fail(why, "not permessage-deflate");
        bool seenServerNct = false, seenClientNct = false, seenServerBits = false, seenClientBits = false;
        for (const auto& p : element.params)
        {
            if (equalsNoCase(p.name, "server_no_context_takeover") || equalsNoCase(p.name, "client_no_context_takeover"))
            {
                const bool server = lower(p.name[0]) == 's';
                bool& seen = server ? seenServerNct : seenClientNct;
                if (seen) return fail(why, "duplicated " + p.name);
                if (p.hasValue) return fail(why, p.name + " takes no value");
                seen = true;
                (server ? out.serverNoContextTakeover : out.clientNoContextTakeover) = true;
            }
            else if (equalsNoCase(p.name, "server_max_window_bits") || equalsNoCase(p.name, "client_max_window_bits"))
            {
                const bool server = lower(p.name[0]) == 's';
                bool& seen = server ? seenServerBits : seenClientBits;
                if (seen) return fail(why, "duplicated " + p.name);
                seen = true;
                int& bits = server ? out.serverMaxWindowBits : out.clientMaxWindowBits;
                if (!p.hasValue)
                {
                    // Only a client's offer may leave client_max_window_bits bare.
                    if (server || !isOffer) return fail(why, p.name + " needs a value");
                    bits = kWindowBitsNoValue;
                    continue;
                }
                bits = parseBits(p.value);
                if (bits < 0) return fail(why, "invalid " + p.name + " value '" + p.value + "'");
            }
            else
            {
                return fail(why, "unknown parameter " + p.name);
            }
        }
        return true;
    }

    std::string formatDeflateParams(const DeflateParams& p)
    {
        std::string s = "permessage-deflate";
        if (p.serverNoContextTakeover) s += "; server_no_context_takeover";
        if (p.clientNoContextTakeover) s += "; client_no_context_takeover";
        if (p.serverMaxWindowBits > 0) s += "; server_max_window_bits=" + std::to_string(p.serverMaxWindowBits);
        if (p.clientMaxWindowBits == kWindowBitsNoValue)
            s += "; client_max_window_bits";
        else if (p.clientMaxWindowBits > 0)
            s += "; client_max_window_bits=" + std::to_string(p.clientMaxWindowBits);
        return s;
    }

    bool negotiateDeflateServer(const std::string& offerHeader, const ServerDeflatePolicy& policy,
                                std::string& response, DeflateAgreement& agreed)
    {
        agreed = DeflateAgreement();
        response.clear();
        if (!policy.enabled) return false;
        std::vector<ExtensionElement> elements;
        if (!parseExtensionList(offerHeader, elements)) return false;

        const int serverLimit = clampPolicyBits(policy.serverMaxWindowBits);
        const int clientLimit = clampPolicyBits(policy.clientMaxWindowBits);
        for (const auto& element : elements)
        {
            DeflateParams offer;
            if (!readDeflateParams(element, true, offer)) continue; // declined; try the next offer

            DeflateParams resp;
            resp.serverNoContextTakeover = offer.serverNoContextTakeover || policy.serverNoContextTakeover;
            resp.clientNoContextTakeover = policy.clientNoContextTakeover;

            // Our own window: at most what the client allows and what we allow.
            int serverBits = serverLimit;
            if (offer.serverMaxWindowBits != kWindowBitsAbsent)
            {
                // The response may only lower the client's limit; 8 we cannot do.
                if (offer.serverMaxWindowBits < kMinDeflateBits) continue;
                serverBits = std::min(serverBits, offer.serverMaxWindowBits);
                resp.serverMaxWindowBits = serverBits;
            }
            else if (serverBits < kMaxBits)
            {
                resp.serverMaxWindowBits = serverBits; // RFC 7692 7.1.2.1: a server MAY add it
            }

            // The client's window: only limited when its offer lets us.
            int clientBits = kMaxBits;
            if (offer.clientMaxWindowBits != kWindowBitsAbsent)
            {
                const int offered = offer.clientMaxWindowBits > 0 ? offer.clientMaxWindowBits : kMaxBits;
                if (clientLimit < offered)
                {
                    resp.clientMaxWindowBits = clientLimit;
                    clientBits = clientLimit;
                }
                else
                {
                    clientBits = offered; // the client promised not to exceed its value
                }
            }

            agreed.enabled = true;
            agreed.serverNoContextTakeover = resp.serverNoContextTakeover;
            agreed.clientNoContextTakeover = resp.clientNoContextTakeover;
            agreed.serverMaxWindowBits = serverBits;
            agreed.clientMaxWindowBits = clientBits;
            response = formatDeflateParams(resp);
            return true;
        }
        return false;
    }

    std::string extensionsHeaderValue(const std::string& offerOrLine)
    {
        std::string v = offerOrLine;
        static const char kName[] = "sec-websocket-extensions:";
        const size_t n = sizeof(kName) - 1;
        if (v.size() >= n && equalsNoCase(v.substr(0, n), kName)) v.erase(0, n);
        size_t b = 0, e = v.size();
        while (b < e && (isSpace(v[b]) || v[b] == '\r' || v[b] == '\n')) ++b;
        while (e > b && (isSpace(v[e - 1]) || v[e - 1] == '\r' || v[e - 1] == '\n')) --e;
        return v.substr(b, e - b);
    }

    bool negotiateDeflateClient(const std::string& offerHeader, const std::string& responseHeader,
                                DeflateAgreement& agreed, std::string& error)
    {
        agreed = DeflateAgreement();
        error.clear();
        const std::string responseValue = extensionsHeaderValue(responseHeader);
        std::vector<ExtensionElement> response;
        if (!parseExtensionList(responseValue, response))
        {
            error = "Invalid Sec-WebSocket-Extensions value: " + responseValue;
            return false;
        }
        if (response.empty()) return true; // declined

        std::vector<ExtensionElement> offerElements;
        std::vector<DeflateParams> offers;
        if (parseExtensionList(extensionsHeaderValue(offerHeader), offerElements))
        {
            for (const auto& e : offerElements)
            {
                DeflateParams p;
                if (readDeflateParams(e, true, p)) offers.push_back(p);
            }
        }
        if (response.size() > 1)
        {
            error = "Invalid Sec-WebSocket-Extensions value (more than one extension accepted): " + responseValue;
            return false;
        }
        if (offers.empty() || !equalsNoCase(response[0].name, "permessage-deflate"))
        {
            error = "Invalid Sec-WebSocket-Extensions value (not offered): " + responseValue;
            return false;
        }
        DeflateParams resp;
        std::string why;
        if (!readDeflateParams(response[0], false, resp, &why))
        {
            error = "Invalid Sec-WebSocket-Extensions value (" + why + "): " + responseValue;
            return false;
        }
        for (const auto& offer : offers)
        {
            std::string mismatch;
            if (fits(offer, resp, agreed, mismatch)) return true;
            if (why.empty()) why = mismatch;
        }
        agreed = DeflateAgreement();
        error = "Invalid Sec-WebSocket-Extensions value (" + why + "): " + responseValue;
        return false;
    }
} // namespace ix::detail
