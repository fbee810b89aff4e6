// The User-Agent / Server header value of the public ix API: the engine's
// version, platform, TLS library and zlib version (a pure function of build
// facts, used by the handshake).
#include "IXUserAgent.h"
#include "IXWebSocketVersion.h"

#include <openssl/opensslv.h>
#include <zlib.h>

namespace ix
{
    std::string userAgent()
    {
        // Format of spec 17.1: "ixwebsocket/<version> <platform>[ ssl...| nossl][ zlib <v>]".
        std::string ua = "ixwebsocket/";
        ua += IX_WEBSOCKET_VERSION;
#if defined(__linux__)
        ua += " linux";
#elif defined(__APPLE__)
        ua += " macos";
#elif defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
        ua += " bsd";
#else
        ua += " unknown";
#endif
        ua += " ssl/OpenSSL ";
        ua += OPENSSL_VERSION_TEXT;
        ua += " zlib ";
        ua += zlibVersion();
        return ua;
    }
} // namespace ix
