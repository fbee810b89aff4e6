#include "redirect.h"

#include "url.h"
#include <cctype>

namespace ix::detail
{
    namespace
    {
        std::string lowerScheme(const std::string& text, size_t end)
        {
            std::string s = text.substr(0, end);
            for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return s;
        }

        bool isKnownScheme(const std::string& s) { return s == "ws" || s == "wss" || s == "http" || s == "https"; }

        // "scheme://authority" of an absolute URL text (without path).
        std::string originOf(const std::string& url, size_t schemeEnd)
        {
            size_t authStart = schemeEnd + 3;
            size_t end = url.find_first_of("/?#", authStart);
            return url.substr(0, end == std::string::npos ? url.size() : end);
        }

        // The base URL's path without query and fragment, "/" when it has none.
        std::string pathOf(const std::string& url, size_t schemeEnd)
        {
            size_t authStart = schemeEnd + 3;
            size_t start = url.find_first_of("/?#", authStart);
            if (start == std::string::npos || url[start] != '/') return "/";
            size_t end = url.find_first_of("?#", start);
            return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
        }
    } // namespace

    bool isRedirectStatus(int httpStatus) { return httpStatus >= 300 && httpStatus <= 399; }

    const std::string* redirectLocation(const WebSocketHttpHeaders& headers)
    {
        auto it = headers.find("Location");
        if (it == headers.end() || it->second.empty()) return nullptr;
        return &it->second;
    }

    bool resolveRedirect(const std::string& baseUrl, const std::string& location,
                         std::string& target, std::string& error)
    {
        auto fail = [&](const std::string& why) {
            error = "Invalid redirect Location '" + location + "': " + why;
            return false;
        };
        if (location.empty()) return fail("empty");
        for (char c : location)
        {
            const unsigned char u = static_cast<unsigned char>(c);
            if (u <= 0x20 || u == 0x7F) return fail("contains spaces or control characters");
        }
        std::string value = location.substr(0, location.find('#'));
        if (value.empty()) return fail("no target");

        const size_t baseSchemeEnd = baseUrl.find("://");
        if (baseSchemeEnd == std::string::npos || baseSchemeEnd == 0) return fail("the base URL has no scheme");

        const size_t schemeEnd = value.find("://");
        const size_t firstSpecial = value.find_first_of("/?");
        if (schemeEnd != std::string::npos && schemeEnd > 0 &&
            (firstSpecial == std::string::npos || schemeEnd < firstSpecial))
        {
            if (!isKnownScheme(lowerScheme(value, schemeEnd))) return fail("unsupported scheme");
            target = value;
            return true;
        }
        if (value.compare(0, 2, "//") == 0)
        {
            target = baseUrl.substr(0, baseSchemeEnd + 1) + value;
            return true;
        }
        const std::string origin = originOf(baseUrl, baseSchemeEnd);
        if (value[0] == '/')
        {
            target = origin + value;
            return true;
        }
        if (value[0] == '?')
        {
            target = origin + pathOf(baseUrl, baseSchemeEnd) + value;
            return true;
        }
        // A relative path: replace the last segment of the base path.
        std::string dir = pathOf(baseUrl, baseSchemeEnd);
        dir.erase(dir.rfind('/') + 1);
        target = origin + dir + value;
        return true;
    }
} // namespace ix::detail
