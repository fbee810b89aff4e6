#pragma once
// Client redirects (spec 17.1: a 3xx response with a Location header is
// followed, up to 10 times), as pure functions: which responses are followed
// and where the next attempt goes.
#include "ixwebsocket/IXWebSocketHttpHeaders.h"
#include <string>

namespace ix::detail
{
    // Redirects followed per connection attempt before giving up.
    constexpr int kMaxRedirects = 10;

    // True for a 3xx status (300..399).
    bool isRedirectStatus(int httpStatus);

    // The Location header of a response, or nullptr when absent or empty.
    const std::string* redirectLocation(const WebSocketHttpHeaders& headers);

    // Resolves a Location value against the URL that produced it. Accepted forms:
    // an absolute URL with scheme ws, wss, http or https (kept as given), a
    // scheme-relative "//host[:port]/path", an absolute path "/path?query", or a
    // relative path resolved against the directory of the base path. The
    // fragment is dropped. Returns false with an error text for anything else
    // (other schemes, control characters or spaces, an empty value); the result
    // is not yet validated as a URL (parseUrl does that).
    bool resolveRedirect(const std::string& baseUrl, const std::string& location,
                         std::string& target, std::string& error);
} // namespace ix::detail
