// Unit tests for the small public value types and helpers of the ix API:
// CaseInsensitiveLess, WebSocketCloseConstants, net shims, getFreePort, userAgent,
// calculateRetryWaitMilliseconds, WebSocketPerMessageDeflateOptions,
// SocketTLSOptions and ConnectionState.
#include "check.h"

#include <ixwebsocket/IXConnectionState.h>
#include <ixwebsocket/IXExponentialBackoff.h>
#include <ixwebsocket/IXGetFreePort.h>
#include <ixwebsocket/IXNetSystem.h>
#include <ixwebsocket/IXSocketTLSOptions.h>
#include <ixwebsocket/IXStrCaseCompare.h>
#include <ixwebsocket/IXUserAgent.h>
#include <ixwebsocket/IXWebSocketCloseConstants.h>
#include <ixwebsocket/IXWebSocketHttpHeaders.h>
#include <ixwebsocket/IXWebSocketPerMessageDeflateOptions.h>
#include <ixwebsocket/IXWebSocketVersion.h>

#include <openssl/opensslv.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace ix;

namespace
{
    using DO = WebSocketPerMessageDeflateOptions;

    void testCaseInsensitiveLess()
    {
        CHECK(CaseInsensitiveLess::cmp("abc", "abd"));
        CHECK(!CaseInsensitiveLess::cmp("abd", "abc"));
        CHECK(!CaseInsensitiveLess::cmp("Host", "host"));
        CHECK(!CaseInsensitiveLess::cmp("host", "HOST"));
        CHECK(CaseInsensitiveLess::cmp("Host", "hostname"));
        CHECK(!CaseInsensitiveLess::cmp("hostname", "Host"));
        CHECK(CaseInsensitiveLess::cmp("", "a"));
        CHECK(!CaseInsensitiveLess::cmp("", ""));
        CHECK(CaseInsensitiveLess::cmp("A", "b"));
        CHECK(CaseInsensitiveLess::cmp("a", "B"));
        // Comparison is on lowered bytes: 'X' -> 'x', then '_' (0x5F) < 'a' (0x61).
        CHECK(CaseInsensitiveLess::cmp("X_", "xa"));
        CaseInsensitiveLess less;
        CHECK(less("Connection", "upgrade"));

        WebSocketHttpHeaders h;
        h["Sec-WebSocket-Key"] = "1";
        h["sec-websocket-key"] = "2";
        h["Upgrade"] = "websocket";
        CHECK_EQ(h.size(), size_t(2));
        CHECK_EQ(h.begin()->first, std::string("Sec-WebSocket-Key")); // first spelling kept
        CHECK_EQ(h["SEC-WEBSOCKET-KEY"], std::string("2"));
        CHECK(h.find("UPGRADE") != h.end());
    }

    void testCloseConstants()
    {
        CHECK_EQ(WebSocketCloseConstants::kNormalClosureCode, 1000);
        CHECK_EQ(WebSocketCloseConstants::kInternalErrorCode, 1011);
        CHECK_EQ(WebSocketCloseConstants::kAbnormalCloseCode, 1006);
        CHECK_EQ(WebSocketCloseConstants::kProtocolErrorCode, 1002);
        CHECK_EQ(WebSocketCloseConstants::kNoStatusCodeErrorCode, 1005);
        CHECK_EQ(WebSocketCloseConstants::kInvalidFramePayloadData, 1007);
        CHECK_EQ(WebSocketCloseConstants::kNormalClosureMessage, std::string("Normal closure"));
        CHECK_EQ(WebSocketCloseConstants::kInternalErrorMessage, std::string("Internal error"));
        CHECK_EQ(WebSocketCloseConstants::kAbnormalCloseMessage, std::string("Abnormal closure"));
        CHECK_EQ(WebSocketCloseConstants::kPingTimeoutMessage, std::string("Ping timeout"));
        CHECK_EQ(WebSocketCloseConstants::kSendTimeoutMessage, std::string("Send timeout"));
        CHECK_EQ(WebSocketCloseConstants::kProtocolErrorMessage, std::string("Protocol error"));
        CHECK_EQ(WebSocketCloseConstants::kNoStatusCodeErrorMessage, std::string("No status code"));
        CHECK_EQ(WebSocketCloseConstants::kProtocolErrorReservedBitUsed,
                 std::string("Reserved bit used"));
        CHECK_EQ(WebSocketCloseConstants::kProtocolErrorPingPayloadOversized,
                 std::string("Ping reason control frame with payload length > 125 octets"));
        CHECK_EQ(WebSocketCloseConstants::kProtocolErrorCodeControlMessageFragmented,
                 std::string("Control message fragmented"));
        CHECK_EQ(WebSocketCloseConstants::kProtocolErrorCodeDataOpcodeOutOfSequence,
                 std::string("Fragmentation: data message out of sequence"));
        CHECK_EQ(WebSocketCloseConstants::kProtocolErrorCodeContinuationOpCodeOutOfSequence,
                 std::string("Fragmentation: continuation opcode out of sequence"));
        CHECK_EQ(WebSocketCloseConstants::kInvalidFramePayloadDataMessage,
                 std::string("Invalid frame payload data"));
        CHECK_EQ(WebSocketCloseConstants::kInvalidCloseCodeMessage, std::string("Invalid close code"));
#ifdef IXWS_ENGINE_EXTENSIONS
        CHECK_EQ(WebSocketCloseConstants::kGoingAwayCode, 1001);
        CHECK_EQ(WebSocketCloseConstants::kPolicyViolationCode, 1008);
        CHECK_EQ(WebSocketCloseConstants::kMessageTooBigCode, 1009);
        CHECK_EQ(WebSocketCloseConstants::kMessageTooBigMessage, std::string("Message too big"));
#endif
        // Addresses must be usable (out-of-line definitions exist).
        const uint16_t* p = &WebSocketCloseConstants::kNormalClosureCode;
        CHECK_EQ(*p, 1000);
    }

    void testNetSystem()
    {
        CHECK(initNetSystem());
        CHECK(uninitNetSystem());

        in_addr a4;
        CHECK_EQ(ix::inet_pton(AF_INET, "127.0.0.1", &a4), 1);
        char buf[INET6_ADDRSTRLEN];
        CHECK(ix::inet_ntop(AF_INET, &a4, buf, sizeof(buf)) != nullptr);
        CHECK_EQ(std::string(buf), std::string("127.0.0.1"));
        CHECK_EQ(ix::inet_pton(AF_INET, "localhost", &a4), 0);

        in6_addr a6;
        CHECK_EQ(ix::inet_pton(AF_INET6, "::1", &a6), 1);
        CHECK(ix::inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) != nullptr);
        CHECK_EQ(std::string(buf), std::string("::1"));

        CHECK_EQ(ix::network_to_host_short(htons(8080)), 8080);

        // poll with no fds and a zero timeout returns immediately with 0.
        CHECK_EQ(ix::poll(nullptr, 0, 0), 0);
    }

    void testGetFreePort()
    {
        int port = getFreePort();
        CHECK(port > 0 && port < 65536);

        // The port is free: we can bind it ourselves.
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        CHECK(fd >= 0);
        sockaddr_in addr;
        std::memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        CHECK_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        ::close(fd);
    }

    void testUserAgent()
    {
        std::string expected = std::string("ixwebsocket/") + IX_WEBSOCKET_VERSION + " linux ssl/OpenSSL " +
                               OPENSSL_VERSION_TEXT + " zlib " + zlibVersion();
        CHECK_EQ(userAgent(), expected);
        CHECK(DO::startsWith(userAgent(), "ixwebsocket/11.4.6 "));
    }

    void testBackoff()
    {
        const uint32_t expected[] = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000};
        for (uint32_t n = 0; n < 10; ++n)
        {
            CHECK_EQ(calculateRetryWaitMilliseconds(n, 10000, 1), expected[n]);
        }
        CHECK_EQ(calculateRetryWaitMilliseconds(25, 10000, 1), 10000u);
        CHECK_EQ(calculateRetryWaitMilliseconds(26, 10000, 1), 10000u);
        CHECK_EQ(calculateRetryWaitMilliseconds(1000, 10000, 1), 10000u);
        CHECK_EQ(calculateRetryWaitMilliseconds(0xFFFFFFFFu, 10000, 1), 10000u);
        // minWait raises the early waits.
        CHECK_EQ(calculateRetryWaitMilliseconds(0, 10000, 500), 500u);
        CHECK_EQ(calculateRetryWaitMilliseconds(3, 10000, 500), 800u);
        // A large cap lets the doubling run on (no overflow before n = 26).
        CHECK_EQ(calculateRetryWaitMilliseconds(20, 0xFFFFFFFFu, 1), 100u * (1u << 20));
        CHECK_EQ(calculateRetryWaitMilliseconds(25, 0xFFFFFFFFu, 1), 3355443200u); // 100 * 2^25
        CHECK_EQ(calculateRetryWaitMilliseconds(26, 0xFFFFFFFFu, 1), 0xFFFFFFFFu);
        // Small cap.
        CHECK_EQ(calculateRetryWaitMilliseconds(0, 50, 1), 50u);
    }

    void testDeflateCtor()
    {
        DO d;
        CHECK(!d.enabled());
        CHECK(!d.getClientNoContextTakeover());
        CHECK(!d.getServerNoContextTakeover());
        CHECK_EQ(d.getClientMaxWindowBits(), 15);
        CHECK_EQ(d.getServerMaxWindowBits(), 15);
        CHECK(d.getSendClientServerMaxWindowBits());
        CHECK_EQ(DO::kDefaultClientMaxWindowBits, 15);
        CHECK_EQ(DO::kDefaultServerMaxWindowBits, 15);

        DO fromBool = true; // implicit conversion from bool
        CHECK(fromBool.enabled());

        DO e(true, true, false, 8, 8);
        CHECK(e.enabled());
        CHECK(e.getClientNoContextTakeover());
        CHECK(!e.getServerNoContextTakeover());
        CHECK_EQ(e.getClientMaxWindowBits(), 9); // zlib cannot do 8
        CHECK_EQ(e.getServerMaxWindowBits(), 8); // the server value is not clamped

        DO f(true, false, true, 10, 12, false);
        CHECK_EQ(f.getClientMaxWindowBits(), 10);
        CHECK_EQ(f.getServerMaxWindowBits(), 12);
        CHECK(!f.getSendClientServerMaxWindowBits());
    }

    void testDeflateHeader()
    {
        DO d(true);
        CHECK_EQ(d.generateHeader(),
                 std::string("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15; "
                             "client_max_window_bits=15\r\n"));

        DO e(true, true, true, 10, 11);
        CHECK_EQ(e.generateHeader(),
                 std::string("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
                             "server_no_context_takeover; server_max_window_bits=11; "
                             "client_max_window_bits=10\r\n"));

        DO f(true, false, true, 15, 15, false);
        CHECK_EQ(f.generateHeader(),
                 std::string("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"));
    }

    // The value part of a generated header, to round-trip through the parser.
    std::string headerValue(DO o)
    {
        std::string h = o.generateHeader();
        const std::string prefix = "Sec-WebSocket-Extensions: ";
        CHECK(DO::startsWith(h, prefix));
        return h.substr(prefix.size(), h.size() - prefix.size() - 2);
    }

    void testDeflateParse()
    {
        DO a(std::string("permessage-deflate"));
        CHECK(a.enabled());
        CHECK(!a.getClientNoContextTakeover());
        CHECK(!a.getServerNoContextTakeover());
        CHECK_EQ(a.getClientMaxWindowBits(), 15);
        CHECK_EQ(a.getServerMaxWindowBits(), 15);

        DO b(std::string("permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
                         "server_max_window_bits=10; client_max_window_bits=12"));
        CHECK(b.enabled());
        CHECK(b.getClientNoContextTakeover());
        CHECK(b.getServerNoContextTakeover());
        CHECK_EQ(b.getClientMaxWindowBits(), 12);
        CHECK_EQ(b.getServerMaxWindowBits(), 10);

        // Bare client_max_window_bits (as browsers send it): stays 15.
        DO c(std::string("permessage-deflate; client_max_window_bits"));
        CHECK(c.enabled());
        CHECK_EQ(c.getClientMaxWindowBits(), 15);

        // Client 8 becomes 9; server 8 stays.
        DO d(std::string("permessage-deflate; client_max_window_bits=8; server_max_window_bits=8"));
        CHECK(d.enabled());
        CHECK_EQ(d.getClientMaxWindowBits(), 9);
        CHECK_EQ(d.getServerMaxWindowBits(), 8);

        // Whitespace tolerance, case of the extension token, quoted values.
        DO e(std::string("  Permessage-Deflate ;\tserver_max_window_bits = \"11\" ;client_no_context_takeover "));
        CHECK(e.enabled());
        CHECK_EQ(e.getServerMaxWindowBits(), 11);
        CHECK(e.getClientNoContextTakeover());

        // Several offers: the first permessage-deflate one wins, commas are split.
        DO f(std::string("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=9, "
                         "permessage-deflate; client_no_context_takeover"));
        CHECK(f.enabled());
        CHECK_EQ(f.getServerMaxWindowBits(), 9);
        CHECK(!f.getClientNoContextTakeover());

        // Invalid values decline the offer.
        const char* invalid[] = {
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits=",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown_param",
            "",
            "x-webkit-deflate-frame",
            "permessage-deflatex",
        };
        for (const char* s : invalid)
        {
            DO o{std::string(s)};
            if (o.enabled()) std::fprintf(stderr, "  offer should be declined: '%s'\n", s);
            CHECK(!o.enabled());
            CHECK_EQ(o.getClientMaxWindowBits(), 15);
            CHECK_EQ(o.getServerMaxWindowBits(), 15);
            CHECK(!o.getClientNoContextTakeover());
            CHECK(!o.getServerNoContextTakeover());
        }

        // An invalid first offer falls back to a later acceptable one.
        DO g(std::string("permessage-deflate; server_max_window_bits=16, permessage-deflate; "
                         "server_max_window_bits=12"));
        CHECK(g.enabled());
        CHECK_EQ(g.getServerMaxWindowBits(), 12);

        // Round trip.
        DO h(true, true, false, 11, 13);
        DO back{headerValue(h)};
        CHECK(back.enabled());
        CHECK(back.getClientNoContextTakeover());
        CHECK(!back.getServerNoContextTakeover());
        CHECK_EQ(back.getClientMaxWindowBits(), 11);
        CHECK_EQ(back.getServerMaxWindowBits(), 13);
    }

    void testStringHelpers()
    {
        CHECK(DO::startsWith("permessage-deflate", "permessage"));
        CHECK(DO::startsWith("abc", ""));
        CHECK(!DO::startsWith("ab", "abc"));
        CHECK(!DO::startsWith("xabc", "abc"));
        CHECK_EQ(DO::removeSpaces(" a b\tc\r\n "), std::string("abc"));
        CHECK_EQ(DO::removeSpaces(""), std::string(""));
    }

    void testTlsOptions()
    {
        SocketTLSOptions o;
        CHECK_EQ(o.certFile, std::string(""));
        CHECK_EQ(o.keyFile, std::string(""));
        CHECK_EQ(o.caFile, std::string("SYSTEM"));
        CHECK_EQ(o.ciphers, std::string("DEFAULT"));
        CHECK(!o.tls);
        CHECK(!o.disable_hostname_validation);
        CHECK(o.isUsingSystemDefaults());
        CHECK(!o.isPeerVerifyDisabled());
        CHECK(!o.isUsingInMemoryCAs());
        CHECK(o.isUsingDefaultCiphers());
        CHECK(!o.hasCertAndKey());
        CHECK(o.isValid());
        CHECK_EQ(o.getErrorMsg(), std::string(""));

        SocketTLSOptions none;
        none.caFile = "NONE";
        none.ciphers = "";
        CHECK(none.isPeerVerifyDisabled());
        CHECK(!none.isUsingSystemDefaults());
        CHECK(none.isUsingDefaultCiphers());

        SocketTLSOptions mem;
        mem.caFile = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n";
        mem.ciphers = "ECDHE-RSA-AES128-GCM-SHA256";
        CHECK(mem.isUsingInMemoryCAs());
        CHECK(!mem.isUsingDefaultCiphers());
        CHECK(mem.isValid());
        CHECK(mem.getDescription().find("BEGIN") == std::string::npos);

        SocketTLSOptions halfPair;
        halfPair.certFile = "/etc/hostname";
        CHECK(!halfPair.hasCertAndKey());
        CHECK(!halfPair.isValid());
        CHECK(!halfPair.getErrorMsg().empty());

        SocketTLSOptions missing;
        missing.certFile = "/nonexistent/cert.pem";
        missing.keyFile = "/nonexistent/key.pem";
        CHECK(missing.hasCertAndKey());
        CHECK(!missing.isValid());
        CHECK(missing.getErrorMsg().find("/nonexistent/cert.pem") != std::string::npos);

        SocketTLSOptions badCa;
        badCa.caFile = "/nonexistent/ca.pem";
        CHECK(!badCa.isValid());

        // Existing files are accepted (the content is not inspected here).
        char path[] = "/tmp/ixws_tls_test_XXXXXX";
        int fd = ::mkstemp(path);
        CHECK(fd >= 0);
        ::close(fd);
        SocketTLSOptions ok;
        ok.certFile = path;
        ok.keyFile = path;
        ok.caFile = path;
        ok.tls = true;
        CHECK(ok.isValid());
        std::string desc = ok.getDescription();
        CHECK(desc.find(path) != std::string::npos);
        CHECK(desc.find("tls") != std::string::npos);
        ::unlink(path);
    }

    struct CustomState : ConnectionState
    {
        void computeId() override { _id = "custom"; }
    };

    void testConnectionState()
    {
        auto a = ConnectionState::createConnectionState();
        auto b = ConnectionState::createConnectionState();
        CHECK(a && b);
        unsigned long ia = std::stoul(a->getId());
        unsigned long ib = std::stoul(b->getId());
        CHECK_EQ(ib, ia + 1);
        CHECK(!a->isTerminated());
        CHECK_EQ(a->getRemoteIp(), std::string(""));
        a->setTerminated(); // no callback set: just the flag
        CHECK(a->isTerminated());

        // The base constructor's computeId is not virtual-dispatched...
        CustomState c;
        CHECK(c.getId() != "custom");
        CHECK_EQ(std::stoul(c.getId()), ib + 1);
        // ...but an explicit call is.
        c.computeId();
        CHECK_EQ(c.getId(), std::string("custom"));
    }
} // namespace

// Reaches the private setters the way SocketServer does (it is a friend). This
// stand-in is only valid because this executable links the protocol library
// alone, never the I/O library that defines the real SocketServer.
namespace ix
{
    class SocketServer
    {
    public:
        static void wire(ConnectionState& s, int* counter)
        {
            s.setOnSetTerminatedCallback([counter] { ++*counter; });
            s.setRemoteIp("10.1.2.3");
            s.setRemotePort(4242);
        }
    };
} // namespace ix

namespace
{
    void testConnectionStateCallback()
    {
        ConnectionState s;
        int calls = 0;
        ix::SocketServer::wire(s, &calls);
        CHECK_EQ(s.getRemoteIp(), std::string("10.1.2.3"));
        CHECK_EQ(s.getRemotePort(), 4242);
        s.setTerminated();
        CHECK(s.isTerminated());
        CHECK_EQ(calls, 1);
    }
} // namespace

int main()
{
    testCaseInsensitiveLess();
    testCloseConstants();
    testNetSystem();
    testGetFreePort();
    testUserAgent();
    testBackoff();
    testDeflateCtor();
    testDeflateHeader();
    testDeflateParse();
    testStringHelpers();
    testTlsOptions();
    testConnectionState();
    testConnectionStateCallback();
    return CHECK_REPORT();
}
