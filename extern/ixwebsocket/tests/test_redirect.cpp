// Client redirects: which statuses are followed, the Location header, and how a
// Location value is resolved against the URL that answered it.
#include "check.h"
#include "redirect.h"
#include "url.h"

#include <string>
#include <vector>

using namespace ix::detail;

namespace
{
    void testStatus()
    {
        CHECK(!isRedirectStatus(0));
        CHECK(!isRedirectStatus(101));
        CHECK(!isRedirectStatus(200));
        CHECK(!isRedirectStatus(299));
        for (int s : {300, 301, 302, 303, 304, 307, 308, 399}) CHECK(isRedirectStatus(s));
        CHECK(!isRedirectStatus(400));
        CHECK(!isRedirectStatus(404));
        CHECK(!isRedirectStatus(500));
        CHECK_EQ(kMaxRedirects, 10);
    }

    void testLocationHeader()
    {
        ix::WebSocketHttpHeaders h;
        CHECK(redirectLocation(h) == nullptr);
        h["location"] = "";
        CHECK(redirectLocation(h) == nullptr);
        h["LOCATION"] = "ws://x/"; // same key, case-insensitively
        const std::string* loc = redirectLocation(h);
        if (CHECK(loc != nullptr)) CHECK_EQ(*loc, std::string("ws://x/"));
    }

    struct Case
    {
        const char* base;
        const char* location;
        const char* target;
    };

    void testResolve()
    {
        const std::vector<Case> cases = {
            // absolute URLs are kept as given (any of the four schemes, any case)
            {"ws://a:1/x", "ws://b:2/y?z", "ws://b:2/y?z"},
            {"ws://a:1/x", "wss://b/y", "wss://b/y"},
            {"ws://a:1/x", "http://b:8/y", "http://b:8/y"},
            {"ws://a:1/x", "HTTPS://B/y", "HTTPS://B/y"},
            {"ws://a:1/x", "ws://b:2/y#frag", "ws://b:2/y"},
            // scheme-relative
            {"ws://a:1/x", "//b:2/y", "ws://b:2/y"},
            {"wss://a/x", "//b/y", "wss://b/y"},
            // absolute path: same scheme and authority
            {"ws://a:1/x/y?q=1", "/z", "ws://a:1/z"},
            {"ws://a:1", "/z?k=v", "ws://a:1/z?k=v"},
            {"ws://[::1]:9/x", "/z", "ws://[::1]:9/z"},
            {"ws://u@a:1/x", "/z", "ws://u@a:1/z"},
            {"ws://a:1?q", "/z", "ws://a:1/z"},
            // query only: same path
            {"ws://a:1/x/y?q=1", "?q=2", "ws://a:1/x/y?q=2"},
            {"ws://a:1", "?q=2", "ws://a:1/?q=2"},
            // relative path: against the base directory
            {"ws://a:1/x/y?q=1", "z", "ws://a:1/x/z"},
            {"ws://a:1/x/", "z/w", "ws://a:1/x/z/w"},
            {"ws://a:1", "z", "ws://a:1/z"},
            {"ws://a:1/x", "z", "ws://a:1/z"},
            {"ws://a:1/x#f", "z", "ws://a:1/z"},
            // a relative value that merely contains "://" later on
            {"ws://a:1/x/y", "p?u=ws://b", "ws://a:1/x/p?u=ws://b"},
        };
        for (const auto& c : cases)
        {
            std::string target = "stale", error;
            if (!CHECK(resolveRedirect(c.base, c.location, target, error)))
            {
                std::fprintf(stderr, "    %s + %s: %s\n", c.base, c.location, error.c_str());
                continue;
            }
            if (!CHECK_EQ(target, std::string(c.target)))
                std::fprintf(stderr, "    %s + %s\n", c.base, c.location);
            // Every resolved target of these cases is a usable URL.
            Url u;
            std::string err;
            CHECK(parseUrl(target, u, err));
        }
    }

    void testResolveErrors()
    {
        const std::vector<std::string> bad = {
            "",
            "#only-a-fragment",
            "ftp://b/y",
            "mailto://x",
            "javascript://alert",
            "ws://b/has space",
            std::string("ws://b/\x01"),
            "/a\r\nX-Injected: 1",
            "/tab\there",
            std::string("/del\x7f"),
        };
        for (const auto& loc : bad)
        {
            std::string target = "untouched", error;
            if (!CHECK(!resolveRedirect("ws://a:1/x", loc, target, error)))
            {
                std::fprintf(stderr, "    accepted %s\n", ixtest::escape(loc).c_str());
                continue;
            }
            CHECK_EQ(target, std::string("untouched"));
            CHECK(error.find("Invalid redirect Location") == 0);
        }
        std::string target, error;
        CHECK(!resolveRedirect("no-scheme", "/x", target, error));
    }
} // namespace

int main()
{
    testStatus();
    testLocationHeader();
    testResolve();
    testResolveErrors();
    return CHECK_REPORT();
}
