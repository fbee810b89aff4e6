// Opening handshake: SHA-1, base64, accept key, client request, response checks,
// server evaluation and error responses.
#include "check.h"
#include "handshake.h"

#include "ixwebsocket/IXUserAgent.h"

#include <cstring>
#include <set>
#include <string>
#include <vector>

using namespace ix::detail;

namespace
{
    std::string hex(const uint8_t* d, size_t n)
    {
        static const char* digits = "0123456789abcdef";
        std::string s;
        for (size_t i = 0; i < n; ++i)
        {
            s += digits[d[i] >> 4];
            s += digits[d[i] & 15];
        }
        return s;
    }

    std::string sha1Hex(const std::string& s)
    {
        uint8_t d[20];
        sha1(reinterpret_cast<const uint8_t*>(s.data()), s.size(), d);
        return hex(d, 20);
    }

    std::string b64(const std::string& s)
    {
        return base64Encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    }

    HttpHead parse(HttpHeadParser::Kind kind, const std::string& text)
    {
        HttpHeadParser p(kind);
        size_t c = 0;
        p.feed(text.data(), text.size(), c);
        CHECK(p.status() == HttpHeadParser::Status::Done);
        return p.head();
    }

    void testSha1Base64()
    {
        // FIPS 180 / RFC 3174 test vectors.
        CHECK_EQ(sha1Hex(""), std::string("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
        CHECK_EQ(sha1Hex("abc"), std::string("a9993e364706816aba3e25717850c26c9cd0d89d"));
        CHECK_EQ(sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                 std::string("84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
        CHECK_EQ(sha1Hex(std::string(1000000, 'a')), std::string("34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
        CHECK_EQ(sha1Hex("The quick brown fox jumps over the lazy dog"),
                 std::string("2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"));
        // Lengths around the padding boundaries must not crash and must differ.
        std::set<std::string> digests;
        for (size_t n = 50; n < 140; ++n) digests.insert(sha1Hex(std::string(n, 'x')));
        CHECK_EQ(digests.size(), size_t(90));

        // RFC 4648 section 10.
        CHECK_EQ(b64(""), std::string(""));
        CHECK_EQ(b64("f"), std::string("Zg=="));
        CHECK_EQ(b64("fo"), std::string("Zm8="));
        CHECK_EQ(b64("foo"), std::string("Zm9v"));
        CHECK_EQ(b64("foob"), std::string("Zm9vYg=="));
        CHECK_EQ(b64("fooba"), std::string("Zm9vYmE="));
        CHECK_EQ(b64("foobar"), std::string("Zm9vYmFy"));
        CHECK_EQ(b64("\xFB\xFF\xBF"), std::string("+/+/"));
    }

    void testAcceptKey()
    {
        // RFC 6455 section 1.3.
        CHECK_EQ(computeAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        std::set<std::string> keys;
        for (int i = 0; i < 50; ++i)
        {
            const std::string k = generateClientKey();
            CHECK_EQ(k.size(), size_t(24));
            CHECK_EQ(k.substr(22), std::string("=="));
            keys.insert(k);
        }
        CHECK_EQ(keys.size(), size_t(50));
    }

    std::vector<std::string> lines(const std::string& req)
    {
        std::vector<std::string> out;
        size_t pos = 0;
        while (pos < req.size())
        {
            const size_t e = req.find("\r\n", pos);
            if (e == std::string::npos)
            {
                out.push_back(req.substr(pos));
                break;
            }
            out.push_back(req.substr(pos, e - pos));
            pos = e + 2;
        }
        return out;
    }

    void testClientRequest()
    {
        Url url;
        std::string err;
        CHECK(parseUrl("ws://127.0.0.1:8008/chat?x=1", url, err));
        const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
        std::string req = buildClientRequest(url, key, {}, {}, "");
        std::vector<std::string> l = lines(req);
        const std::vector<std::string> expect = {
            "GET /chat?x=1 HTTP/1.1",
            "Host: 127.0.0.1:8008",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "User-Agent: " + ix::userAgent(),
            "Origin: ws://127.0.0.1:8008",
            "",
        };
        CHECK(l == expect);
        CHECK(req.size() >= 4 && req.compare(req.size() - 4, 4, "\r\n\r\n") == 0);

        // Default ports are written; IPv6 is bracketed; wss origin.
        CHECK(parseUrl("wss://[::1]/", url, err));
        req = buildClientRequest(url, key, {}, {}, "");
        l = lines(req);
        CHECK_EQ(l[0], std::string("GET / HTTP/1.1"));
        CHECK_EQ(l[1], std::string("Host: [::1]:443"));
        CHECK_EQ(l[7], std::string("Origin: wss://[::1]:443"));
        CHECK(parseUrl("ws://example.com", url, err));
        CHECK_EQ(lines(buildClientRequest(url, key, {}, {}, ""))[1], std::string("Host: example.com:80"));

        // Extra headers replace Host/User-Agent/Origin and come in map order;
        // subprotocols override a user header of that name; then extensions.
        CHECK(parseUrl("ws://h:1/", url, err));
        ix::WebSocketHttpHeaders extra;
        extra["user-agent"] = "custom-agent";
        extra["X-B"] = "2";
        extra["x-a"] = "1";
        extra["HOST"] = "virtual:1";
        extra["origin"] = "http://o";
        extra["Sec-WebSocket-Protocol"] = "ignored";
        extra["Sec-WebSocket-Extensions"] = "user-ext";
        extra["X-Evil"] = "a\r\nInjected: yes";
        req = buildClientRequest(url, key, extra, {"chat", "superchat"},
                                 "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        l = lines(req);
        const std::vector<std::string> expect2 = {
            "GET / HTTP/1.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "HOST: virtual:1",
            "origin: http://o",
            "Sec-WebSocket-Protocol: chat,superchat",
            "user-agent: custom-agent",
            "x-a: 1",
            "X-B: 2",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            "",
        };
        if (!CHECK(l == expect2)) std::fprintf(stderr, "%s\n", req.c_str());
        CHECK(req.find("Injected") == std::string::npos);

        // A bare extension value works too; no extensions -> the user's header stays.
        req = buildClientRequest(url, key, {}, {}, "permessage-deflate");
        CHECK(req.find("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n") != std::string::npos);
        ix::WebSocketHttpHeaders only;
        only["Sec-WebSocket-Extensions"] = "x";
        req = buildClientRequest(url, key, only, {}, "");
        CHECK(req.find("\r\nSec-WebSocket-Extensions: x\r\n") != std::string::npos);
        CHECK(req.find("Sec-WebSocket-Protocol") == std::string::npos);

        // The request parses back as a valid upgrade.
        req = buildClientRequest(url, key, {}, {"a", "b"}, "");
        HttpHead h = parse(HttpHeadParser::Kind::Request, req);
        ServerHandshakeOptions opts;
        opts.subprotocols = {"b"};
        ServerHandshake hs = evaluateClientRequest(h, opts);
        CHECK(hs.accepted);
        CHECK_EQ(hs.protocol, std::string("b"));
    }

    std::string response(const std::string& extra, const std::string& status = "HTTP/1.1 101 Switching Protocols")
    {
        return status + "\r\n" + extra + "\r\n";
    }

    void testServerResponse()
    {
        Url url;
        std::string err;
        const std::string urlText = "ws://127.0.0.1:8008/chat?x=1";
        CHECK(parseUrl(urlText, url, err));
        const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
        const std::string good = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        using K = HttpHeadParser::Kind;

        ix::WebSocketInitResult r = checkServerResponse(parse(K::Response, response(good)), urlText, url, key, {});
        CHECK(r.success);
        CHECK_EQ(r.http_status, 101);
        CHECK_EQ(r.errorStr, std::string());
        CHECK_EQ(r.uri, std::string("/chat?x=1"));
        CHECK_EQ(r.protocol, std::string());
        CHECK_EQ(r.headers.at("upgrade"), std::string("websocket"));

        // Token lists, any case (fixes upstream defects 23a/34).
        r = checkServerResponse(parse(K::Response, response("Upgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n"
                                                            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")),
                                urlText, url, key, {});
        CHECK(r.success);
        r = checkServerResponse(parse(K::Response, response("Upgrade: websocket\r\nConnection: Upgrade, keep-alive\r\n"
                                                            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")),
                                urlText, url, key, {});
        CHECK(r.success);

        // Subprotocol chosen from the offer.
        r = checkServerResponse(parse(K::Response, response(good + "Sec-WebSocket-Protocol: b\r\n")), urlText, url,
                                key, {"a", "b"});
        CHECK(r.success);
        CHECK_EQ(r.protocol, std::string("b"));

        struct Bad
        {
            std::string text;
            std::vector<std::string> offer;
            int status;
            std::string error;
        };
        const std::vector<Bad> bad = {
            {response("Content-Length: 0\r\n", "HTTP/1.1 404 Not Found"), {}, 404,
             "Expecting status 101 (Switching Protocol), got 404 status connecting to " + urlText +
                 ", HTTP Status line: HTTP/1.1 404 Not Found"},
            {response("Location: ws://x/\r\n", "HTTP/1.1 301 Moved"), {}, 301,
             "Expecting status 101 (Switching Protocol), got 301 status connecting to " + urlText +
                 ", HTTP Status line: HTTP/1.1 301 Moved"},
            {response(good, "HTTP/1.0 101 Switching Protocols"), {}, 101, "Expecting HTTP/1.1, got HTTP/1.0"},
            {response("Upgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), {}, 101,
             "Missing connection value"},
            {response("Upgrade: websocket\r\nConnection: keep-alive\r\n"
                      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
             {}, 101, "Invalid connection value: keep-alive"},
            {response("Upgrade: websocket\r\nConnection: Upgradex\r\n"
                      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
             {}, 101, "Invalid connection value: Upgradex"},
            {response("Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), {}, 101,
             "Missing upgrade value"},
            {response("Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
             {}, 101, "Invalid upgrade value: h2c"},
            {response("Upgrade: websocket\r\nConnection: Upgrade\r\n"), {}, 101, "Invalid Sec-WebSocket-Accept value"},
            {response("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n"), {}, 101,
             "Invalid Sec-WebSocket-Accept value"},
            {response(good + "Sec-WebSocket-Protocol: c\r\n"), {"a", "b"}, 101,
             "Invalid Sec-WebSocket-Protocol value: c"},
            {response(good + "Sec-WebSocket-Protocol: a\r\n"), {}, 101, "Invalid Sec-WebSocket-Protocol value: a"},
            {response(good + "Sec-WebSocket-Protocol: a,b\r\n"), {"a", "b"}, 101,
             "Invalid Sec-WebSocket-Protocol value: a,b"},
        };
        for (const auto& b : bad)
        {
            HttpHeadParser p(K::Response);
            size_t c = 0;
            p.feed(b.text.data(), b.text.size(), c);
            if (!CHECK(p.status() == HttpHeadParser::Status::Done)) continue;
            r = checkServerResponse(p.head(), urlText, url, key, b.offer);
            CHECK(!r.success);
            CHECK_EQ(r.http_status, b.status);
            CHECK_EQ(r.errorStr, b.error);
            CHECK(!r.headers.empty());
        }
    }

    std::string request(const std::string& headers, const std::string& startLine = "GET /chat HTTP/1.1")
    {
        return startLine + "\r\n" + headers + "\r\n";
    }

    // Head/body split and Content-Length agreement of an HTTP response.
    void checkWellFormedError(const std::string& resp, int status)
    {
        const size_t blank = resp.find("\r\n\r\n");
        if (!CHECK(blank != std::string::npos)) return;
        const std::string body = resp.substr(blank + 4);
        HttpHeadParser p(HttpHeadParser::Kind::Response);
        size_t c = 0;
        p.feed(resp.data(), resp.size(), c);
        CHECK(p.status() == HttpHeadParser::Status::Done);
        CHECK_EQ(c, blank + 4);
        CHECK_EQ(p.head().status, status);
        CHECK_EQ(p.head().headers.at("Content-Length"), std::to_string(body.size()));
        CHECK_EQ(p.head().headers.at("Connection"), std::string("close"));
        CHECK_EQ(p.head().headers.at("Content-Type"), std::string("text/plain"));
    }

    void testEvaluate()
    {
        using K = HttpHeadParser::Kind;
        const std::string base = "Host: h:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        ServerHandshakeOptions opts;
        opts.serverHeader = "ixwebsocket/11.4.6 test";

        ServerHandshake hs = evaluateClientRequest(parse(K::Request, request(base)), opts);
        CHECK(hs.accepted);
        CHECK_EQ(hs.status, 101);
        CHECK_EQ(hs.reason, std::string());
        CHECK_EQ(hs.protocol, std::string());
        CHECK_EQ(hs.response, std::string("HTTP/1.1 101 Switching Protocols\r\n"
                                          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                          "Upgrade: websocket\r\n"
                                          "Connection: Upgrade\r\n"
                                          "Server: ixwebsocket/11.4.6 test\r\n"
                                          "\r\n"));

        // Extra response headers (with or without the trailing CRLF).
        hs = evaluateClientRequest(parse(K::Request, request(base)), opts,
                                   "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        CHECK(hs.response.find("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n") != std::string::npos);
        hs = evaluateClientRequest(parse(K::Request, request(base)), opts, "X-A: 1");
        CHECK(hs.response.find("\r\nX-A: 1\r\n\r\n") != std::string::npos);

        // Token checks are case-insensitive list checks (Firefox sends "keep-alive, Upgrade").
        hs = evaluateClientRequest(
            parse(K::Request, request("Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")),
            opts);
        CHECK(hs.accepted);
        hs = evaluateClientRequest(
            parse(K::Request, request("Upgrade: websocket, foo\r\nConnection: upgrade\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")),
            opts);
        CHECK(hs.accepted);

        // Subprotocol: the first of the server's list that the client offered.
        opts.subprotocols = {"superchat", "chat"};
        hs = evaluateClientRequest(parse(K::Request, request(base + "Sec-WebSocket-Protocol: chat, superchat\r\n")), opts);
        CHECK(hs.accepted);
        CHECK_EQ(hs.protocol, std::string("superchat"));
        CHECK(hs.response.find("\r\nSec-WebSocket-Protocol: superchat\r\n") != std::string::npos);
        hs = evaluateClientRequest(parse(K::Request, request(base + "Sec-WebSocket-Protocol: chat,other\r\n")), opts);
        CHECK_EQ(hs.protocol, std::string("chat"));
        hs = evaluateClientRequest(parse(K::Request, request(base + "Sec-WebSocket-Protocol: other\r\n")), opts);
        CHECK(hs.accepted);
        CHECK_EQ(hs.protocol, std::string());
        CHECK(hs.response.find("Sec-WebSocket-Protocol") == std::string::npos);
        opts.subprotocols.clear();
        hs = evaluateClientRequest(parse(K::Request, request(base + "Sec-WebSocket-Protocol: chat\r\n")), opts);
        CHECK_EQ(hs.protocol, std::string());

        struct Bad
        {
            std::string text;
            int status;
            std::string reason;
        };
        const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        const std::string v13 = "Sec-WebSocket-Version: 13\r\n";
        const std::string upg = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
        const std::vector<Bad> bad = {
            {request(base, "POST /chat HTTP/1.1"), 400, "Invalid HTTP method, need GET, got POST"},
            {request(base, "GET /chat HTTP/1.0"), 400, "Invalid HTTP version, need HTTP/1.1, got HTTP/1.0"},
            {request("Connection: Upgrade\r\n" + key + v13), 400, "Missing Upgrade header"},
            {request("Upgrade: h2c\r\nConnection: Upgrade\r\n" + key + v13), 400,
             "Invalid Upgrade header, need WebSocket, got h2c"},
            {request("Upgrade: websocketx\r\nConnection: Upgrade\r\n" + key + v13), 400,
             "Invalid Upgrade header, need WebSocket, got websocketx"},
            {request("Upgrade: websocket\r\n" + key + v13), 400, "Missing Connection header"},
            {request("Upgrade: websocket\r\nConnection: keep-alive\r\n" + key + v13), 400,
             "Invalid Connection header, need Upgrade, got keep-alive"},
            {request(upg + v13), 400, "Missing Sec-WebSocket-Key value"},
            {request(upg + "Sec-WebSocket-Key: short\r\n" + v13), 400, "Invalid Sec-WebSocket-Key value"},
            {request(upg + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" + v13), 400,
             "Invalid Sec-WebSocket-Key value"},
            {request(upg + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=A\r\n" + v13), 400,
             "Invalid Sec-WebSocket-Key value"},
            {request(upg + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2*jZQ==\r\n" + v13), 400,
             "Invalid Sec-WebSocket-Key value"},
            {request(upg + key + "Sec-WebSocket-Version: 8\r\n"), 426, "Invalid Sec-WebSocket-Version, need 13, got 8"},
            {request(upg + key), 426, "Invalid Sec-WebSocket-Version, need 13, got "},
            {request(upg + key + "Sec-WebSocket-Version: 13, 8\r\n"), 426,
             "Invalid Sec-WebSocket-Version, need 13, got 13, 8"},
        };
        for (const auto& b : bad)
        {
            hs = evaluateClientRequest(parse(K::Request, b.text), opts);
            CHECK(!hs.accepted);
            CHECK_EQ(hs.status, b.status);
            CHECK_EQ(hs.reason, b.reason);
            CHECK_EQ(hs.response.compare(0, 13, "HTTP/1.1 " + std::to_string(b.status) + " "), 0);
            CHECK(hs.response.find("\r\nServer: ixwebsocket/11.4.6 test\r\n") != std::string::npos);
            checkWellFormedError(hs.response, b.status);
            const bool has426Header = hs.response.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos;
            CHECK_EQ(has426Header, b.status == 426);
        }
    }

    // permessage-deflate through the handshake functions (the negotiation itself
    // is covered by test_deflate_negotiation).
    void testDeflateHandshake()
    {
        using K = HttpHeadParser::Kind;
        const std::string base = "Host: h:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        ServerHandshakeOptions opts;
        const std::string offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n";

        // Policy off (the default here): no answer.
        ServerHandshake hs = evaluateClientRequest(parse(K::Request, request(base + offer)), opts);
        CHECK(hs.accepted);
        CHECK(!hs.deflate.enabled);
        CHECK(hs.response.find("Sec-WebSocket-Extensions") == std::string::npos);

        opts.deflate.enabled = true;
        hs = evaluateClientRequest(parse(K::Request, request(base + offer)), opts);
        CHECK(hs.accepted);
        CHECK(hs.deflate.enabled);
        CHECK_EQ(hs.deflate.serverMaxWindowBits, 10);
        CHECK(hs.response.find("\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n") !=
              std::string::npos);
        // Offers split over several header lines form one list.
        hs = evaluateClientRequest(parse(K::Request, request(base + "Sec-WebSocket-Extensions: permessage-deflate; "
                                                                    "server_max_window_bits=8\r\n"
                                                                    "Sec-WebSocket-Extensions: permessage-deflate; "
                                                                    "server_no_context_takeover\r\n")),
                                   opts);
        CHECK(hs.deflate.enabled && hs.deflate.serverNoContextTakeover);
        CHECK(hs.response.find("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n") !=
              std::string::npos);
        // Nothing acceptable: declined, the handshake still succeeds.
        hs = evaluateClientRequest(
            parse(K::Request, request(base + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n")),
            opts);
        CHECK(hs.accepted);
        CHECK(!hs.deflate.enabled);
        CHECK(hs.response.find("Sec-WebSocket-Extensions") == std::string::npos);
        // A failed handshake negotiates nothing.
        hs = evaluateClientRequest(parse(K::Request, request(base + offer, "POST /chat HTTP/1.1")), opts);
        CHECK(!hs.accepted);
        CHECK(!hs.deflate.enabled);

        // Client side.
        Url url;
        std::string err;
        const std::string urlText = "ws://127.0.0.1:8008/chat";
        CHECK(parseUrl(urlText, url, err));
        const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
        const std::string good = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        const std::string myOffer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15; "
                                    "client_max_window_bits=15\r\n"; // generateHeader() form
        DeflateAgreement agreed;
        agreed.enabled = true;
        ix::WebSocketInitResult r =
            checkServerResponse(parse(K::Response, response(good)), urlText, url, key, {}, myOffer, &agreed);
        CHECK(r.success);
        CHECK(!agreed.enabled); // declined by the server
        r = checkServerResponse(
            parse(K::Response, response(good + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n")),
            urlText, url, key, {}, myOffer, &agreed);
        CHECK(r.success);
        CHECK(agreed.enabled);
        CHECK_EQ(agreed.clientMaxWindowBits, 9);
        CHECK_EQ(agreed.serverMaxWindowBits, 15);
        r = checkServerResponse(
            parse(K::Response, response(good + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n")),
            urlText, url, key, {}, myOffer, &agreed);
        CHECK(!r.success);
        CHECK(!agreed.enabled);
        CHECK_EQ(r.http_status, 101);
        CHECK(r.errorStr.find("client_max_window_bits=8 cannot be honoured") != std::string::npos);
        // Nothing offered: any extension fails the handshake (RFC 6455 4.1).
        r = checkServerResponse(parse(K::Response, response(good + "Sec-WebSocket-Extensions: permessage-deflate\r\n")),
                                urlText, url, key, {}, "", &agreed);
        CHECK(!r.success);
        CHECK_EQ(r.errorStr, std::string("Invalid Sec-WebSocket-Extensions value: permessage-deflate"));
        r = checkServerResponse(parse(K::Response, response(good + "Sec-WebSocket-Extensions: x-other\r\n")), urlText,
                                url, key, {}, myOffer, &agreed);
        CHECK(!r.success);
        CHECK_EQ(r.errorStr, std::string("Invalid Sec-WebSocket-Extensions value (not offered): x-other"));
    }

    void testErrorResponse()
    {
        const std::string r = httpErrorResponse(503, "Service Unavailable", "srv");
        CHECK_EQ(r, std::string("HTTP/1.1 503 Service Unavailable\r\n"
                                "Server: srv\r\n"
                                "Content-Type: text/plain\r\n"
                                "Content-Length: 19\r\n"
                                "Connection: close\r\n"
                                "\r\n"
                                "Service Unavailable"));
        checkWellFormedError(r, 503);
        const std::string e = httpErrorResponse(431, "Too large", "", "Retry-After: 1\r\n");
        CHECK(e.find("Server:") == std::string::npos);
        CHECK(e.find("\r\nRetry-After: 1\r\n") != std::string::npos);
        checkWellFormedError(e, 431);
        // A reason with line breaks cannot split the status line.
        const std::string inj = httpErrorResponse(400, "a\r\nX-Injected: 1", "s");
        CHECK(inj.find("\r\nX-Injected") == std::string::npos);
        checkWellFormedError(inj, 400);
    }
} // namespace

int main()
{
    testSha1Base64();
    testAcceptKey();
    testClientRequest();
    testServerResponse();
    testEvaluate();
    testErrorResponse();
    testDeflateHandshake();
    return CHECK_REPORT();
}
