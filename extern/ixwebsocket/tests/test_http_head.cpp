// HTTP head parser: requests and responses, every split point, consumed counts,
// size limits (431), malformed input (400), version (505), header details.
#include "check.h"
#include "http_head.h"

#include <string>
#include <vector>

using namespace ix::detail;
using P = HttpHeadParser;

namespace
{
    const std::string kRequest =
        "GET /chat?x=1 HTTP/1.1\r\n"
        "Host: server.example.com:80\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n";

    const std::string kResponse =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n";

    void checkRequest(const HttpHead& h)
    {
        CHECK_EQ(h.method, std::string("GET"));
        CHECK_EQ(h.target, std::string("/chat?x=1"));
        CHECK_EQ(h.version, std::string("HTTP/1.1"));
        CHECK_EQ(h.startLine, std::string("GET /chat?x=1 HTTP/1.1"));
        CHECK_EQ(h.headers.size(), size_t(5));
        CHECK_EQ(h.headers.at("host"), std::string("server.example.com:80"));
        CHECK_EQ(h.headers.at("SEC-WEBSOCKET-KEY"), std::string("dGhlIHNhbXBsZSBub25jZQ=="));
        CHECK_EQ(h.headers.at("Sec-WebSocket-Version"), std::string("13"));
    }

    P::Status parseAll(P& p, const std::string& s, size_t& consumed)
    {
        return p.feed(s.data(), s.size(), consumed);
    }

    void testWhole()
    {
        P p(P::Kind::Request);
        size_t consumed = 99;
        const std::string input = kRequest + "\x81\x85rest-of-stream";
        CHECK(parseAll(p, input, consumed) == P::Status::Done);
        CHECK_EQ(consumed, kRequest.size());
        CHECK(p.status() == P::Status::Done);
        checkRequest(p.head());
        // Done is sticky and consumes nothing.
        CHECK(parseAll(p, "more", consumed) == P::Status::Done);
        CHECK_EQ(consumed, size_t(0));

        P r(P::Kind::Response);
        CHECK(parseAll(r, kResponse, consumed) == P::Status::Done);
        CHECK_EQ(consumed, kResponse.size());
        CHECK_EQ(r.head().status, 101);
        CHECK_EQ(r.head().reasonPhrase, std::string("Switching Protocols"));
        CHECK_EQ(r.head().version, std::string("HTTP/1.1"));
        CHECK_EQ(r.head().startLine, std::string("HTTP/1.1 101 Switching Protocols"));
        CHECK_EQ(r.head().headers.at("sec-websocket-accept"), std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));

        // takeHead() hands the parsed head over whole (moved, for the open result).
        HttpHead taken = p.takeHead();
        checkRequest(taken);
    }

    void testSplits()
    {
        const std::string trailer = "\x82\x00tail";
        const std::string input = kRequest + trailer;
        for (size_t cut = 0; cut <= input.size(); ++cut)
        {
            P p(P::Kind::Request);
            size_t c1 = 0, c2 = 0;
            P::Status s1 = p.feed(input.data(), cut, c1);
            if (cut < kRequest.size())
            {
                CHECK(s1 == P::Status::NeedMore);
                CHECK_EQ(c1, cut);
                P::Status s2 = p.feed(input.data() + cut, input.size() - cut, c2);
                CHECK(s2 == P::Status::Done);
                CHECK_EQ(c1 + c2, kRequest.size());
            }
            else
            {
                CHECK(s1 == P::Status::Done);
                CHECK_EQ(c1, kRequest.size());
            }
            checkRequest(p.head());
        }
        // Byte by byte.
        P p(P::Kind::Request);
        size_t total = 0;
        for (size_t i = 0; i < input.size(); ++i)
        {
            size_t c = 0;
            const P::Status s = p.feed(&input[i], 1, c);
            total += c;
            if (i + 1 < kRequest.size()) CHECK(s == P::Status::NeedMore);
            else CHECK(s == P::Status::Done);
        }
        CHECK_EQ(total, kRequest.size());
        checkRequest(p.head());
    }

    void testLfOnly()
    {
        const std::string input = "GET / HTTP/1.1\nHost: a\nUpgrade: websocket\n\nX";
        for (size_t cut = 0; cut <= input.size(); ++cut)
        {
            P p(P::Kind::Request);
            size_t c1 = 0, c2 = 0;
            p.feed(input.data(), cut, c1);
            p.feed(input.data() + c1, input.size() - c1, c2);
            CHECK(p.status() == P::Status::Done);
            CHECK_EQ(c1 + c2, input.size() - 1);
            CHECK_EQ(p.head().headers.at("upgrade"), std::string("websocket"));
        }
        // Mixed CRLF and LF ends.
        P p(P::Kind::Request);
        size_t c = 0;
        CHECK(parseAll(p, "GET / HTTP/1.1\r\nA: 1\n\r\n", c) == P::Status::Done);
        CHECK_EQ(p.head().headers.at("a"), std::string("1"));
    }

    void testLimits()
    {
        // A head of exactly the limit passes; one byte more is 431.
        std::string base = "GET / HTTP/1.1\r\nX-Pad: \r\n\r\n";
        const size_t limit = 200;
        std::string exact = "GET / HTTP/1.1\r\nX-Pad: " + std::string(limit - base.size(), 'a') + "\r\n\r\n";
        CHECK_EQ(exact.size(), limit);
        {
            P p(P::Kind::Request, limit);
            size_t c = 0;
            CHECK(parseAll(p, exact + "after", c) == P::Status::Done);
            CHECK_EQ(c, limit);
        }
        {
            std::string over = "GET / HTTP/1.1\r\nX-Pad: " + std::string(limit - base.size() + 1, 'a') + "\r\n\r\n";
            P p(P::Kind::Request, limit);
            size_t c = 0;
            CHECK(parseAll(p, over, c) == P::Status::Error);
            CHECK_EQ(p.errorStatus(), 431);
            CHECK(!p.error().empty());
            // Error is sticky.
            CHECK(parseAll(p, "x", c) == P::Status::Error);
            CHECK_EQ(c, size_t(0));
        }
        {
            // Byte by byte without a blank line: fails once the limit is reached,
            // without buffering more than the limit.
            P p(P::Kind::Request, limit);
            size_t i = 0;
            P::Status s = P::Status::NeedMore;
            const std::string endless(1000, 'a');
            for (; i < endless.size() && s == P::Status::NeedMore; ++i)
            {
                size_t c = 0;
                s = p.feed(&endless[i], 1, c);
            }
            CHECK(s == P::Status::Error);
            CHECK_EQ(i, limit);
            CHECK_EQ(p.errorStatus(), 431);
        }
        {
            // Default limit 16384; a long single line (> 1023 bytes) is not split.
            const std::string value(5000, 'v');
            P p(P::Kind::Request);
            size_t c = 0;
            CHECK(parseAll(p, "GET / HTTP/1.1\r\nX-Long: " + value + "\r\nY: 1\r\n\r\n", c) == P::Status::Done);
            CHECK_EQ(p.head().headers.at("x-long"), value);
            CHECK_EQ(p.head().headers.at("y"), std::string("1"));
            CHECK_EQ(p.head().headers.size(), size_t(2));
        }
    }

    void expectError(P::Kind kind, const std::string& input, int status)
    {
        P p(kind);
        size_t c = 0;
        const P::Status s = parseAll(p, input, c);
        if (!CHECK(s == P::Status::Error) || !CHECK_EQ(p.errorStatus(), status))
        {
            std::fprintf(stderr, "    input %s\n", ixtest::escape(input).c_str());
        }
    }

    void testMalformed()
    {
        using K = P::Kind;
        expectError(K::Request, "GET / HTTP/1.1\r\nNoColonHere\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1\r\nA: 1\r\n\tfolded\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1\r\n: empty-name\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1\r\nBad\tName: x\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1\r\nA : x\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1\r\nA: x\ry\r\n\r\n", 400);
        expectError(K::Request, std::string("GET / HTTP/1.1\r\nA: x\0y\r\n\r\n", 27), 400);
        expectError(K::Request, "GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n", 400);
        expectError(K::Request, "GET /\r\n\r\n", 400);
        expectError(K::Request, "GET\r\n\r\n", 400);
        expectError(K::Request, "GET  / HTTP/1.1\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1 extra\r\n\r\n", 400);
        expectError(K::Request, "G(T / HTTP/1.1\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTP/1.1x\r\n\r\n", 400);
        expectError(K::Request, "GET / http/1.1\r\n\r\n", 400);
        expectError(K::Request, "GET / HTTX/1.1\r\n\r\n", 400);
        expectError(K::Request, "\x16\x03\x01\x02\x05\x01\x07\x01\xfc\x03\x03\r\n\r\n", 400); // TLS hello
        expectError(K::Request, "GET / HTTP/2.0\r\n\r\n", 505);
        expectError(K::Request, "GET / HTTP/0.9\r\n\r\n", 505);
        expectError(K::Response, "HTTP/1.1 1O1 Switching\r\n\r\n", 400);
        expectError(K::Response, "HTTP/1.1 1010 Switching\r\n\r\n", 400);
        expectError(K::Response, "HTTP/1.1\r\n\r\n", 400);
        expectError(K::Response, "HTTP/1.1 \r\n\r\n", 400);
        expectError(K::Response, "garbage 101 x\r\n\r\n", 400);
        expectError(K::Response, "HTTP/3.0 101 x\r\n\r\n", 505);
    }

    void testDetails()
    {
        P p(P::Kind::Request);
        size_t c = 0;
        CHECK(parseAll(p,
                       "GET / HTTP/1.0\r\n"
                       "A:    spaced value \t \r\n"
                       "B:\r\n"
                       "C:no-space\r\n"
                       "Dup: first\r\n"
                       "dup: second\r\n"
                       "E: has: colons: inside\r\n"
                       "\r\n",
                       c) == P::Status::Done);
        const HttpHead& h = p.head();
        CHECK_EQ(h.version, std::string("HTTP/1.0")); // the handshake decides about 1.0
        CHECK_EQ(h.headers.at("a"), std::string("spaced value"));
        CHECK_EQ(h.headers.at("b"), std::string());
        CHECK_EQ(h.headers.at("c"), std::string("no-space"));
        CHECK_EQ(h.headers.at("DUP"), std::string("second")); // the last one wins
        CHECK_EQ(h.headers.find("dup")->first, std::string("Dup"));
        CHECK_EQ(h.headers.at("e"), std::string("has: colons: inside"));

        P r(P::Kind::Response);
        CHECK(parseAll(r, "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", c) == P::Status::Done);
        CHECK_EQ(r.head().status, 404);
        CHECK_EQ(r.head().reasonPhrase, std::string());
        P r2(P::Kind::Response);
        CHECK(parseAll(r2, "HTTP/1.0 301 Moved Permanently Now\r\nLocation: ws://x/\r\n\r\n", c) ==
              P::Status::Done);
        CHECK_EQ(r2.head().status, 301);
        CHECK_EQ(r2.head().version, std::string("HTTP/1.0"));
        CHECK_EQ(r2.head().reasonPhrase, std::string("Moved Permanently Now"));
        CHECK_EQ(r2.head().headers.at("location"), std::string("ws://x/"));

        // Nothing fed yet / empty feeds.
        P e(P::Kind::Request);
        CHECK(e.status() == P::Status::NeedMore);
        CHECK(e.feed("", 0, c) == P::Status::NeedMore);
        CHECK_EQ(c, size_t(0));
    }
} // namespace

int main()
{
    testWhole();
    testSplits();
    testLfOnly();
    testLimits();
    testMalformed();
    testDetails();
    return CHECK_REPORT();
}
