// Client URL parsing: scheme://[userinfo@]host[:port][/path][?query][#fragment]
#include "url.h"

#include <cctype>

namespace ix::detail
{
    std::string Url::hostHeader() const
    {
        std::string h;
        h.reserve(host.size() + 8);
        if (ipv6Literal)
        {
            h += '[';
            h += host;
            h += ']';
        }
        else
        {
            h += host;
        }
        h += ':';
        h += std::to_string(port);
        return h;
    }

    namespace
    {
        bool isDigits(const std::string& s)
        {
            if (s.empty()) return false;
            for (char c : s)
            {
                if (c < '0' || c > '9') return false;
            }
            return true;
        }

        bool isHostChar(char c)
        {
            // Registered-name / IPv4 characters (RFC 3986 unreserved, sub-delims, pct).
            const unsigned char u = static_cast<unsigned char>(c);
            if (std::isalnum(u)) return true;
            switch (c)
            {
                case '-': case '.': case '_': case '~': case '%':
                case '!': case '$': case '&': case '\'': case '(': case ')':
                case '*': case '+': case ',': case ';': case '=':
                    return true;
                default:
                    return u >= 0x80; // allow raw UTF-8 (IDN) bytes through
            }
        }

        bool isIpv6Char(char c)
        {
            const unsigned char u = static_cast<unsigned char>(c);
            return std::isxdigit(u) || c == ':' || c == '.' || c == '%' || std::isalnum(u);
        }

        bool parse(const std::string& text, Url& url)
        {
            for (char c : text)
            {
                const unsigned char u = static_cast<unsigned char>(c);
                if (u <= 0x20 || u == 0x7F) return false; // spaces and control characters
            }

            const size_t schemeEnd = text.find("://");
            if (schemeEnd == std::string::npos || schemeEnd == 0) return false;
            std::string scheme = text.substr(0, schemeEnd);
            for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

            int defaultPort;
            bool tls;
            if (scheme == "ws" || scheme == "http")
            {
                defaultPort = 80;
                tls = false;
            }
            else if (scheme == "wss" || scheme == "https")
            {
                defaultPort = 443;
                tls = true;
            }
            else
            {
                return false;
            }

            const size_t authStart = schemeEnd + 3;
            size_t authEnd = text.find_first_of("/?#", authStart);
            if (authEnd == std::string::npos) authEnd = text.size();
            std::string authority = text.substr(authStart, authEnd - authStart);

            // Drop userinfo (credentials are not sent by this client).
            const size_t at = authority.rfind('@');
            if (at != std::string::npos) authority.erase(0, at + 1);
            if (authority.empty()) return false;

            std::string host;
            std::string portText;
            bool hasPort = false;
            bool v6 = false;
            if (authority[0] == '[')
            {
                const size_t close = authority.find(']');
                if (close == std::string::npos) return false;
                host = authority.substr(1, close - 1);
                if (host.empty()) return false;
                for (char c : host)
                {
                    if (!isIpv6Char(c)) return false;
                }
                if (host.find(':') == std::string::npos) return false;
                v6 = true;
                const std::string rest = authority.substr(close + 1);
                if (!rest.empty())
                {
                    if (rest[0] != ':') return false;
                    hasPort = true;
                    portText = rest.substr(1);
                }
            }
            else
            {
                const size_t colon = authority.find(':');
                if (colon != std::string::npos)
                {
                    if (authority.find(':', colon + 1) != std::string::npos)
                        return false; // an IPv6 literal needs brackets
                    host = authority.substr(0, colon);
                    hasPort = true;
                    portText = authority.substr(colon + 1);
                }
                else
                {
                    host = authority;
                }
                if (host.empty()) return false;
                for (char c : host)
                {
                    if (!isHostChar(c)) return false;
                }
            }

            int port = defaultPort;
            if (hasPort && !portText.empty()) // "host:" means the default port (RFC 3986)
            {
                if (!isDigits(portText) || portText.size() > 5) return false;
                port = std::stoi(portText);
                if (port < 1 || port > 65535) return false;
            }

            // Request target: path and query, without the fragment.
            std::string target;
            if (authEnd < text.size())
            {
                size_t fragment = text.find('#', authEnd);
                if (fragment == std::string::npos) fragment = text.size();
                target = text.substr(authEnd, fragment - authEnd);
            }
            if (target.empty() || target[0] != '/') target.insert(0, "/");

            url.scheme = std::move(scheme);
            url.host = std::move(host);
            url.port = port;
            url.path = std::move(target);
            url.tls = tls;
            url.ipv6Literal = v6;
            return true;
        }
    } // namespace

    bool parseUrl(const std::string& text, Url& url, std::string& error)
    {
        Url parsed;
        if (!parse(text, parsed))
        {
            error = "Could not parse url: '" + text + "'";
            return false;
        }
        url = std::move(parsed);
        error.clear();
        return true;
    }
} // namespace ix::detail
