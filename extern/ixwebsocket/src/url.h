#pragma once
// ws://, wss://, http:// and https:// URLs as the client uses them.
#include <string>

namespace ix::detail
{
    struct Url
    {
        std::string scheme; // lower-cased
        std::string host;   // without the brackets of an IPv6 literal
        int port = 0;       // explicit or the scheme's default (80 / 443)
        std::string path;   // the request target: "/" + path + "?query", at least "/"
        bool tls = false;   // wss and https
        bool ipv6Literal = false;

        // "host:port" as it belongs in a Host header (brackets for IPv6).
        std::string hostHeader() const;
    };

    // Returns false and sets error ("Could not parse url: '<url>'" style) when the
    // URL is not usable: unknown scheme, empty host, bad port, spaces or control
    // characters. The fragment (#...) is dropped.
    bool parseUrl(const std::string& text, Url& url, std::string& error);
} // namespace ix::detail
