// URL parsing: schemes, default ports, IPv6 literals, request targets, errors.
#include "check.h"
#include "url.h"

#include <string>
#include <vector>

using namespace ix::detail;

namespace
{
    struct Good
    {
        const char* text;
        const char* scheme;
        const char* host;
        int port;
        const char* path;
        bool tls;
        bool v6;
        const char* hostHeader;
    };

    void testGood()
    {
        const std::vector<Good> cases = {
            {"ws://example.com", "ws", "example.com", 80, "/", false, false, "example.com:80"},
            {"ws://example.com/", "ws", "example.com", 80, "/", false, false, "example.com:80"},
            {"wss://example.com", "wss", "example.com", 443, "/", true, false, "example.com:443"},
            {"http://example.com", "http", "example.com", 80, "/", false, false, "example.com:80"},
            {"https://example.com", "https", "example.com", 443, "/", true, false, "example.com:443"},
            {"WS://Example.COM:8080/Chat", "ws", "Example.COM", 8080, "/Chat", false, false, "Example.COM:8080"},
            {"ws://127.0.0.1:8008/chat?room=1&x=y", "ws", "127.0.0.1", 8008, "/chat?room=1&x=y", false, false, "127.0.0.1:8008"},
            {"ws://127.0.0.1:8008?q=1", "ws", "127.0.0.1", 8008, "/?q=1", false, false, "127.0.0.1:8008"},
            {"ws://h/p#frag", "ws", "h", 80, "/p", false, false, "h:80"},
            {"ws://h/p?q=1#frag", "ws", "h", 80, "/p?q=1", false, false, "h:80"},
            {"ws://h#frag", "ws", "h", 80, "/", false, false, "h:80"},
            {"ws://h:1", "ws", "h", 1, "/", false, false, "h:1"},
            {"ws://h:65535/", "ws", "h", 65535, "/", false, false, "h:65535"},
            {"ws://h:/x", "ws", "h", 80, "/x", false, false, "h:80"},
            {"wss://h:00443/", "wss", "h", 443, "/", true, false, "h:443"},
            {"ws://[::1]", "ws", "::1", 80, "/", false, true, "[::1]:80"},
            {"ws://[::1]:/", "ws", "::1", 80, "/", false, true, "[::1]:80"},
            {"ws://[::1]:9000/a/b", "ws", "::1", 9000, "/a/b", false, true, "[::1]:9000"},
            {"wss://[2001:db8::7]/x?y", "wss", "2001:db8::7", 443, "/x?y", true, true, "[2001:db8::7]:443"},
            {"ws://[::ffff:127.0.0.1]:81", "ws", "::ffff:127.0.0.1", 81, "/", false, true, "[::ffff:127.0.0.1]:81"},
            {"ws://user:pw@host:81/p", "ws", "host", 81, "/p", false, false, "host:81"},
            {"ws://localhost/a/../b", "ws", "localhost", 80, "/a/../b", false, false, "localhost:80"},
        };
        for (const auto& c : cases)
        {
            Url u;
            std::string err = "stale";
            if (!CHECK(parseUrl(c.text, u, err)))
            {
                std::fprintf(stderr, "    url %s: %s\n", c.text, err.c_str());
                continue;
            }
            CHECK_EQ(err, std::string());
            CHECK_EQ(u.scheme, std::string(c.scheme));
            CHECK_EQ(u.host, std::string(c.host));
            CHECK_EQ(u.port, c.port);
            CHECK_EQ(u.path, std::string(c.path));
            CHECK_EQ(u.tls, c.tls);
            CHECK_EQ(u.ipv6Literal, c.v6);
            CHECK_EQ(u.hostHeader(), std::string(c.hostHeader));
        }
    }

    void testBad()
    {
        const std::vector<std::string> cases = {
            "",
            "example.com",
            "ws:/example.com",
            "://example.com",
            "ftp://example.com",
            "wsx://example.com",
            "ws://",
            "ws:///path",
            "ws://:80/",
            "ws://host:0/",
            "ws://host:65536/",
            "ws://host:99999999999/",
            "ws://host:-1/",
            "ws://host:8a/",
            "ws://host:80:81/",
            "ws://::1/",
            "ws://[::1/",
            "ws://[]/",
            "ws://[::1]x/",
            "ws://[::1]:abc/",
            "ws://[hostname]/",
            "ws://ho st/",
            "ws://host/pa th",
            "ws://host/\tx",
            "ws://host/x\r\nInjected: 1",
            std::string("ws://host/\0x", 12),
            "ws://host/\x7F",
            "ws://user@/",
            "ws://ho<st/",
        };
        for (const auto& text : cases)
        {
            Url u;
            u.port = 1234;
            std::string err;
            if (!CHECK(!parseUrl(text, u, err)))
            {
                std::fprintf(stderr, "    accepted %s\n", ixtest::escape(text).c_str());
                continue;
            }
            CHECK_EQ(err, "Could not parse url: '" + text + "'");
            CHECK_EQ(u.port, 1234); // untouched on failure
        }
    }
} // namespace

int main()
{
    testGood();
    testBad();
    return CHECK_REPORT();
}
