// WsSession: the RFC 6455 state machine. Every scenario is fed whole, byte by
// byte and split at every point (all 3-way splits for short inputs), and each
// feeding must give the same events, the same bytes out and the same state.
#include "check.h"
#include "ws_session.h"

#include "ixwebsocket/IXWebSocketCloseConstants.h"

#include <cstring>
#include <random>
#include <zlib.h>
#include <string>
#include <vector>

using namespace ix::detail;
using CC = ix::WebSocketCloseConstants;
using State = WsSession::State;
using Kind = SessionEvent::Kind;

namespace
{
    const uint8_t kKey[4] = {0x3A, 0xC1, 0x07, 0x9E};

    enum Rsv : uint8_t
    {
        R1 = 0x40,
        R2 = 0x20,
        R3 = 0x10
    };

    // A frame as a peer would send it: masked unless mask=false.
    std::string frame(uint8_t op, const std::string& payload, bool fin = true, bool mask = true,
                      uint8_t rsv = 0)
    {
        uint8_t h[kMaxFrameHeaderSize];
        const size_t n = writeFrameHeader(h, fin, false, op, payload.size(), mask ? kKey : nullptr);
        h[0] |= rsv;
        std::string f(reinterpret_cast<const char*>(h), n);
        std::string body = payload;
        if (mask && !body.empty()) applyMask(reinterpret_cast<uint8_t*>(&body[0]), body.size(), kKey, 0);
        return f + body;
    }

    std::string closePayload(uint16_t code, const std::string& reason = "")
    {
        std::string p;
        p += static_cast<char>(code >> 8);
        p += static_cast<char>(code & 0xFF);
        return p + reason;
    }

    std::string show(const std::string& s)
    {
        if (s.size() > 40) return "<" + std::to_string(s.size()) + " bytes>";
        return ixtest::escape(s);
    }

    // Parses frames we sent, unmasking them; `masked` tells whether each was.
    std::string describeOut(const std::string& out, bool& allMasked, bool& noneMasked)
    {
        std::string d;
        size_t pos = 0;
        allMasked = true;
        noneMasked = true;
        while (pos < out.size())
        {
            FrameHeader h;
            const auto r = parseFrameHeader(reinterpret_cast<const uint8_t*>(out.data()) + pos, out.size() - pos, h);
            if (r != HeaderParse::Ok || pos + h.headerLength + h.payloadLength > out.size())
            {
                return d + " <garbage>";
            }
            std::string body = out.substr(pos + h.headerLength, h.payloadLength);
            if (h.masked && !body.empty()) applyMask(reinterpret_cast<uint8_t*>(&body[0]), body.size(), h.mask, 0);
            allMasked = allMasked && h.masked;
            noneMasked = noneMasked && !h.masked;
            d += " out(" + std::to_string(h.opcode) + (h.fin ? "" : ",nofin") + (h.rsv1 ? ",rsv1" : "") + "," +
                 show(body) + ")";
            pos += h.headerLength + h.payloadLength;
        }
        return d;
    }

    std::string describeEvents(const std::vector<SessionEvent>& events)
    {
        std::string d;
        for (const auto& e : events)
        {
            switch (e.kind)
            {
                case Kind::Message:
                    d += std::string(" msg(") + (e.binary ? "b," : "t,") + show(e.data) + "," +
                         std::to_string(e.wireSize) + ")";
                    break;
                case Kind::Fragment:
                    d += " frag";
                    if (!e.data.empty() || e.wireSize != 0) d += "(!)";
                    break;
                case Kind::Ping: d += " ping(" + show(e.data) + "," + std::to_string(e.wireSize) + ")"; break;
                case Kind::Pong: d += " pong(" + show(e.data) + "," + std::to_string(e.wireSize) + ")"; break;
                case Kind::Close:
                    d += " close(" + std::to_string(e.code) + "," + show(e.reason) + (e.remote ? ",remote)" : ",local)");
                    break;
            }
        }
        return d;
    }

    const char* stateName(State s)
    {
        switch (s)
        {
            case State::Open: return "Open";
            case State::Closing: return "Closing";
            case State::Closed: return "Closed";
        }
        return "?";
    }

    struct Setup
    {
        WsSession::Config config;
        std::string before; // what the test does first: "close" to start a close handshake
    };

    WsSession::Config server()
    {
        WsSession::Config c;
        c.role = Role::Server;
        return c;
    }
    WsSession::Config client()
    {
        WsSession::Config c;
        c.role = Role::Client;
        return c;
    }

    // Feeds input in the pieces given by cuts (sorted offsets), returns the full
    // description: events, frames out, final state.
    std::string run(const WsSession::Config& cfg, const std::string& input, const std::vector<size_t>& cuts,
                    bool startClosing = false)
    {
        WsSession s(cfg);
        std::string out;
        std::vector<SessionEvent> events;
        if (startClosing)
        {
            CHECK(s.startClose(1000, "bye", out));
        }
        size_t prev = 0;
        for (size_t c : cuts)
        {
            s.receive(input.data() + prev, c - prev, out, events);
            prev = c;
        }
        s.receive(input.data() + prev, input.size() - prev, out, events);
        bool allMasked, noneMasked;
        std::string d = describeEvents(events) + " |" + describeOut(out, allMasked, noneMasked) + " | " +
                        stateName(s.state());
        if (!out.empty())
        {
            if (cfg.role == Role::Client) CHECK(allMasked);
            else CHECK(noneMasked);
        }
        int closes = 0;
        for (const auto& e : events) closes += (e.kind == Kind::Close);
        CHECK(closes <= 1);
        CHECK_EQ(closes == 1, s.state() == State::Closed);
        return d;
    }

    // Checks the expectation for the whole input, byte-by-byte feeding and every
    // split (3-way splits too when the input is short).
    void expect(const WsSession::Config& cfg, const std::string& input, const std::string& expected,
                bool startClosing = false, int line = 0)
    {
        const std::string whole = run(cfg, input, {}, startClosing);
        if (!CHECK_EQ(whole, expected))
        {
            std::fprintf(stderr, "    (scenario at line %d)\n", line);
            return;
        }
        std::vector<size_t> bytewise;
        for (size_t i = 1; i < input.size(); ++i) bytewise.push_back(i);
        if (!CHECK_EQ(run(cfg, input, bytewise, startClosing), expected))
        {
            std::fprintf(stderr, "    byte by byte (scenario at line %d)\n", line);
        }
        int bad = 0;
        for (size_t i = 0; i <= input.size() && bad < 3; ++i)
        {
            if (run(cfg, input, {i}, startClosing) != expected)
            {
                ++bad;
                std::fprintf(stderr, "split at %zu differs (scenario at line %d): %s\n", i, line,
                             run(cfg, input, {i}, startClosing).c_str());
            }
        }
        if (input.size() <= 160)
        {
            for (size_t i = 0; i <= input.size() && bad < 3; ++i)
            {
                for (size_t j = i; j <= input.size() && bad < 3; ++j)
                {
                    if (run(cfg, input, {i, j}, startClosing) != expected)
                    {
                        ++bad;
                        std::fprintf(stderr, "splits at %zu,%zu differ (scenario at line %d)\n", i, j, line);
                    }
                }
            }
        }
        CHECK_EQ(bad, 0);
    }

#define EXPECT(cfg, input, expected) expect(cfg, input, expected, false, __LINE__)
#define EXPECT_CLOSING(cfg, input, expected) expect(cfg, input, expected, true, __LINE__)

    std::string failure(uint16_t code, const std::string& reason)
    {
        return " close(" + std::to_string(code) + "," + show(reason) + ",local) | out(8," +
               show(closePayload(code, reason)) + ") | Closed";
    }

    void testMessages()
    {
        EXPECT(server(), frame(kText, "Hello"), " msg(t,\"Hello\",5) | | Open");
        EXPECT(server(), frame(kBinary, std::string("\x00\xFF\x01", 3)), " msg(b,\"\\x00\\xFF\\x01\",3) | | Open");
        EXPECT(server(), frame(kText, ""), " msg(t,\"\",0) | | Open");
        EXPECT(server(), frame(kBinary, ""), " msg(b,\"\",0) | | Open");
        EXPECT(client(), frame(kText, "Hi", true, false), " msg(t,\"Hi\",2) | | Open");
        EXPECT(server(), frame(kText, "a") + frame(kBinary, "b") + frame(kText, "c"),
               " msg(t,\"a\",1) msg(b,\"b\",1) msg(t,\"c\",1) | | Open");
        // RFC 6455 5.7 masked "Hello".
        EXPECT(server(), std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11), " msg(t,\"Hello\",5) | | Open");

        // Lengths around the 7/16/64-bit boundaries.
        for (size_t len : {125, 126, 127, 65535, 65536, 70001})
        {
            std::string payload(len, 'x');
            for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>('a' + i % 26);
            const std::string input = frame(kText, payload);
            const std::string expected = " msg(t," + show(payload) + "," + std::to_string(len) + ") | | Open";
            CHECK_EQ(run(server(), input, {}), expected);
            CHECK_EQ(run(server(), input, {1, 2, 3, 5, 9, 13, 100, input.size() - 1}), expected);
            // Real contents survive unmasking in pieces.
            WsSession s(server());
            std::string out;
            std::vector<SessionEvent> ev;
            std::mt19937 rng(static_cast<unsigned>(len));
            size_t pos = 0;
            while (pos < input.size())
            {
                const size_t n = std::min<size_t>(1 + rng() % 3000, input.size() - pos);
                s.receive(input.data() + pos, n, out, ev);
                pos += n;
            }
            CHECK_EQ(ev.size(), size_t(1));
            if (!ev.empty()) CHECK(ev[0].data == payload);
        }
    }

    void testFragmentation()
    {
        // Fragments with interleaved control frames (Autobahn 5.x).
        const std::string input = frame(kText, "Hel", false) + frame(kPing, "p1") + frame(kContinuation, "lo ", false) +
                                  frame(kPong, "q") + frame(kContinuation, "", false) +
                                  frame(kContinuation, "World");
        EXPECT(server(), input,
               " frag ping(\"p1\",2) frag pong(\"q\",1) frag msg(t,\"Hello World\",11) | out(10,\"p1\") | Open");
        EXPECT(server(), frame(kBinary, "a", false) + frame(kContinuation, "b", false) + frame(kContinuation, "c"),
               " frag frag msg(b,\"abc\",3) | | Open");
        EXPECT(server(), frame(kText, "", false) + frame(kContinuation, ""), " frag msg(t,\"\",0) | | Open");
        // A code point split across fragments (Autobahn 6.2.x).
        EXPECT(server(), frame(kText, "\xCE", false) + frame(kContinuation, "\xBA\xE1\xBD", false) +
                             frame(kContinuation, "\xB9"),
               " frag frag msg(t,\"\\xCE\\xBA\\xE1\\xBD\\xB9\",5) | | Open");
        // After a complete fragmented message, a new one may start.
        EXPECT(server(), frame(kText, "a", false) + frame(kContinuation, "b") + frame(kText, "c"),
               " frag msg(t,\"ab\",2) msg(t,\"c\",1) | | Open");

        // Out-of-sequence fragments.
        EXPECT(server(), frame(kContinuation, "x"),
               failure(1002, CC::kProtocolErrorCodeContinuationOpCodeOutOfSequence));
        EXPECT(server(), frame(kContinuation, "x", false),
               failure(1002, CC::kProtocolErrorCodeContinuationOpCodeOutOfSequence));
        EXPECT(server(), frame(kText, "a") + frame(kContinuation, "x"),
               " msg(t,\"a\",1)" + failure(1002, CC::kProtocolErrorCodeContinuationOpCodeOutOfSequence));
        EXPECT(server(), frame(kText, "a", false) + frame(kText, "b"),
               " frag" + failure(1002, CC::kProtocolErrorCodeDataOpcodeOutOfSequence));
        EXPECT(server(), frame(kBinary, "a", false) + frame(kText, "b", false),
               " frag" + failure(1002, CC::kProtocolErrorCodeDataOpcodeOutOfSequence));
    }

    void testProtocolErrors()
    {
        // Masking direction.
        EXPECT(server(), frame(kText, "Hello", true, false), failure(1002, CC::kProtocolErrorMessage));
        EXPECT(client(), frame(kText, "Hello", true, true), failure(1002, CC::kProtocolErrorMessage));
        EXPECT(client(), frame(kPing, "", true, true), failure(1002, CC::kProtocolErrorMessage));

        // Reserved bits (Autobahn 3.x).
        EXPECT(server(), frame(kText, "x", true, true, R2), failure(1002, CC::kProtocolErrorReservedBitUsed));
        EXPECT(server(), frame(kText, "x", true, true, R3), failure(1002, CC::kProtocolErrorReservedBitUsed));
        EXPECT(server(), frame(kText, "x", true, true, R1), failure(1002, CC::kProtocolErrorReservedBitUsed));
        EXPECT(server(), frame(kPing, "x", true, true, R1 | R2 | R3), failure(1002, CC::kProtocolErrorReservedBitUsed));
        EXPECT(server(), frame(kText, "ok") + frame(kBinary, "x", true, true, R2 | R3) + frame(kText, "late"),
               " msg(t,\"ok\",2)" + failure(1002, CC::kProtocolErrorReservedBitUsed));
        {
            WsSession::Config c = server();
            c.deflateNegotiated = true;
            c.deflate.enabled = true;
            // RSV1 on a first frame marks a compressed message (see testDeflate).
            EXPECT(c, frame(kText, std::string("\xf2\x48\xcd\xc9\xc9\x07\x00", 7), true, true, R1),
                   " msg(t,\"Hello\",7) | | Open");
            // Never allowed on continuation or control frames.
            EXPECT(c, frame(kText, "a", false) + frame(kContinuation, "b", true, true, R1),
                   " frag" + failure(1002, CC::kProtocolErrorReservedBitUsed));
            EXPECT(c, frame(kPing, "b", true, true, R1), failure(1002, CC::kProtocolErrorReservedBitUsed));
            EXPECT(c, frame(kText, "ok"), " msg(t,\"ok\",2) | | Open");
        }

        // Unknown opcodes (Autobahn 4.x).
        for (uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF})
        {
            EXPECT(server(), frame(op, ""), failure(1002, CC::kProtocolErrorMessage));
            EXPECT(server(), frame(kText, "a") + frame(op, "payload") + frame(kPing, ""),
                   " msg(t,\"a\",1)" + failure(1002, CC::kProtocolErrorMessage));
        }

        // Control frames.
        EXPECT(server(), frame(kPing, "x", false), failure(1002, CC::kProtocolErrorCodeControlMessageFragmented));
        EXPECT(server(), frame(kClose, closePayload(1000), false),
               failure(1002, CC::kProtocolErrorCodeControlMessageFragmented));
        EXPECT(server(), frame(kPong, "", false), failure(1002, CC::kProtocolErrorCodeControlMessageFragmented));
        EXPECT(server(), frame(kPing, std::string(126, 'p')), failure(1002, CC::kProtocolErrorPingPayloadOversized));
        EXPECT(server(), frame(kPong, std::string(126, 'p')), failure(1002, CC::kProtocolErrorMessage));
        EXPECT(server(), frame(kClose, closePayload(1000, std::string(124, 'r'))),
               failure(1002, CC::kProtocolErrorMessage)); // Autobahn 7.3.6
    }

    void testOversizeLength()
    {
        // 64-bit length with the top bit set.
        std::string f = std::string("\x82\xFF\x80\x00\x00\x00\x00\x00\x00\x00", 10) + std::string(4, '\x01');
        EXPECT(server(), f, failure(1002, CC::kProtocolErrorMessage));
        std::string c = std::string("\x82\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 10);
        EXPECT(client(), c, failure(1002, CC::kProtocolErrorMessage));
    }

    void testFailFastHeader()
    {
        // A bad frame is refused on its first two bytes, before the rest arrives.
        struct Case
        {
            std::string bytes;
            std::string reason;
        };
        const std::vector<Case> cases = {
            {std::string("\x81\x7F", 2), CC::kProtocolErrorMessage},          // unmasked to a server
            {std::string("\xA1\xFF", 2), CC::kProtocolErrorReservedBitUsed},  // RSV2
            {std::string("\x83\xFF", 2), CC::kProtocolErrorMessage},          // opcode 3
            {std::string("\x09\x80", 2), CC::kProtocolErrorCodeControlMessageFragmented},
            {std::string("\x89\xFE", 2), CC::kProtocolErrorPingPayloadOversized},
            {std::string("\x80\xFE", 2), CC::kProtocolErrorCodeContinuationOpCodeOutOfSequence},
        };
        for (const auto& c : cases)
        {
            WsSession s(server());
            std::string out;
            std::vector<SessionEvent> ev;
            s.receive(c.bytes.data(), 1, out, ev);
            CHECK(s.state() == State::Open);
            CHECK(ev.empty());
            s.receive(c.bytes.data() + 1, 1, out, ev);
            CHECK(s.state() == State::Closed);
            CHECK_EQ(ev.size(), size_t(1));
            if (!ev.empty())
            {
                CHECK_EQ(ev[0].code, uint16_t(1002));
                CHECK_EQ(ev[0].reason, c.reason);
            }
        }
    }

    void testUtf8()
    {
        const std::string kosme = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";
        EXPECT(server(), frame(kText, kosme), " msg(t," + show(kosme) + ",11) | | Open");
        EXPECT(server(), frame(kText, kosme + "\xED\xA0\x80" + "edited"),
               failure(1007, CC::kInvalidFramePayloadDataMessage));
        EXPECT(server(), frame(kText, "\xF4\x90\x80\x80"), failure(1007, CC::kInvalidFramePayloadDataMessage));
        EXPECT(server(), frame(kText, "ok\xC3"), failure(1007, CC::kInvalidFramePayloadDataMessage)); // truncated
        EXPECT(server(), frame(kText, "\xC3", false) + frame(kContinuation, "A"),
               " frag" + failure(1007, CC::kInvalidFramePayloadDataMessage));
        EXPECT(server(), frame(kText, "a", false) + frame(kContinuation, "\xFF", false) + frame(kContinuation, "b"),
               " frag" + failure(1007, CC::kInvalidFramePayloadDataMessage));
        // Binary is never validated.
        EXPECT(server(), frame(kBinary, "\xFF\xED\xA0\x80"), " msg(b,\"\\xFF\\xED\\xA0\\x80\",4) | | Open");
        // Fragment events of an invalid message before the bad byte are still delivered.
        EXPECT(server(), frame(kText, "ok", false) + frame(kPing, "") + frame(kContinuation, "\xC0\x80"),
               " frag ping(\"\",0) close(1007,\"Invalid frame payload data\",local) | out(10,\"\") out(8," +
                   show(closePayload(1007, CC::kInvalidFramePayloadDataMessage)) + ") | Closed");

        // Fail fast: the frame is far from complete when the bad bytes arrive
        // (Autobahn 6.4.x).
        {
            std::string payload = kosme + "\xF4\x90\x80\x80" + std::string(1000, 'x');
            const std::string f = frame(kText, payload);
            WsSession s(server());
            std::string out;
            std::vector<SessionEvent> ev;
            const size_t headerLen = 8; // 2 + 2 + mask
            s.receive(f.data(), headerLen + 11, out, ev);
            CHECK(s.state() == State::Open);
            s.receive(f.data() + headerLen + 11, 1, out, ev); // F4: still possible
            CHECK(s.state() == State::Open);
            s.receive(f.data() + headerLen + 12, 1, out, ev); // 90: impossible
            CHECK(s.state() == State::Closed);
            CHECK_EQ(ev.size(), size_t(1));
            if (!ev.empty()) CHECK_EQ(ev[0].code, uint16_t(1007));
            // The rest of the stream is ignored.
            const size_t before = out.size();
            s.receive(f.data() + headerLen + 13, f.size() - headerLen - 13, out, ev);
            CHECK_EQ(out.size(), before);
            CHECK_EQ(ev.size(), size_t(1));
        }
    }

    void testMaxMessageSize()
    {
        WsSession::Config c = server();
        c.maxMessageSize = 10;
        EXPECT(c, frame(kText, std::string(10, 'a')), " msg(t,\"aaaaaaaaaa\",10) | | Open");
        EXPECT(c, frame(kText, std::string(11, 'a')), failure(1009, "Message too big"));
        EXPECT(c, frame(kText, "aaaaa", false) + frame(kContinuation, "bbbbb"),
               " frag msg(t,\"aaaaabbbbb\",10) | | Open");
        EXPECT(c, frame(kText, "aaaaa", false) + frame(kContinuation, "bbbbbb"), " frag" + failure(1009, "Message too big"));
        // Control frames do not count.
        EXPECT(c, frame(kText, "aaaaaaaaa", false) + frame(kPing, "pingpingping") + frame(kContinuation, "b"),
               " frag ping(\"pingpingping\",12) msg(t,\"aaaaaaaaab\",10) | out(10,\"pingpingping\") | Open");
        // Refused on the declared length, before any payload is buffered.
        {
            WsSession s(c);
            std::string out;
            std::vector<SessionEvent> ev;
            const std::string f = frame(kBinary, std::string(70000, 'z'));
            s.receive(f.data(), 14, out, ev); // header only (2 + 8 + 4)
            CHECK(s.state() == State::Closed);
            CHECK_EQ(s.bufferedIncoming(), size_t(0));
            CHECK_EQ(ev.size(), size_t(1));
            if (!ev.empty())
            {
                CHECK_EQ(ev[0].code, CC::kMessageTooBigCode);
                CHECK_EQ(ev[0].reason, CC::kMessageTooBigMessage);
            }
        }
        // A huge declared length (no limit) is not reserved up front.
        {
            WsSession s(server());
            std::string out;
            std::vector<SessionEvent> ev;
            const std::string f = std::string("\x82\xFF\x00\x00\x10\x00\x00\x00\x00\x00", 10) + std::string(4, '\0');
            s.receive(f.data(), f.size(), out, ev);
            CHECK(s.state() == State::Open);
            s.receive("abc", 3, out, ev);
            CHECK_EQ(s.bufferedIncoming(), size_t(3));
        }
        // A header announcing 2^62 bytes, nothing after it, as a connection runs
        // the session (failures deferred until earlier events are handled): the
        // failure is decided on the header alone, and committing it sends 1009.
        // The same for a continuation whose length plus what the message holds
        // passes the limit, and for a compressed message (wire-size bound).
        const std::string announce62("\x82\xFF\x40\x00\x00\x00\x00\x00\x00\x00\x3A\xC1\x07\x9E", 14);
        const std::string compressed62("\xC2\xFF\x40\x00\x00\x00\x00\x00\x00\x00\x3A\xC1\x07\x9E", 14);
        WsSession::Config deferred = server();
        deferred.maxMessageSize = 16u << 20;
        deferred.deferFailure = true;
        WsSession::Config deflated = deferred;
        deflated.deflateNegotiated = true;
        struct Case
        {
            WsSession::Config config;
            std::string before; // whole frames fed first
            std::string header; // the header that must fail
        };
        const std::string almost(deferred.maxMessageSize - 1, 'a');
        const Case cases[] = {
            {deferred, "", announce62},
            {deflated, "", compressed62},
            {deferred, frame(kBinary, almost, false), frame(kContinuation, "bb").substr(0, 6)},
        };
        for (const Case& k : cases)
        {
            WsSession s(k.config);
            std::string out;
            std::vector<SessionEvent> ev;
            s.receive(k.before.data(), k.before.size(), out, ev);
            CHECK(s.state() == State::Open);
            CHECK(!s.hasPendingFailure());
            ev.clear();
            s.receive(k.header.data(), k.header.size(), out, ev);
            CHECK(s.hasPendingFailure());
            CHECK(ev.empty());
            s.commitFailure(out, ev);
            CHECK(s.state() == State::Closed);
            CHECK_EQ(s.bufferedIncoming(), size_t(0));
            CHECK_EQ(describeEvents(ev), std::string(" close(1009,\"Message too big\",local)"));
            bool allMasked = false, noneMasked = false;
            CHECK_EQ(describeOut(out, allMasked, noneMasked), " out(8," + show(closePayload(1009, "Message too big")) + ")");
        }
    }

    void testPingPong()
    {
        EXPECT(server(), frame(kPing, "hello"), " ping(\"hello\",5) | out(10,\"hello\") | Open");
        EXPECT(server(), frame(kPing, ""), " ping(\"\",0) | out(10,\"\") | Open");
        EXPECT(client(), frame(kPing, "x", true, false), " ping(\"x\",1) | out(10,\"x\") | Open");
        const std::string p125(125, '\xFE');
        EXPECT(server(), frame(kPing, p125), " ping(<125 bytes>,125) | out(10,<125 bytes>) | Open");
        EXPECT(server(), frame(kPong, "abc"), " pong(\"abc\",3) | | Open");
        EXPECT(server(), frame(kPing, "1") + frame(kPing, "2"), " ping(\"1\",1) ping(\"2\",1) | out(10,\"1\") out(10,\"2\") | Open");
        WsSession::Config c = server();
        c.autoPong = false;
        EXPECT(c, frame(kPing, "hello"), " ping(\"hello\",5) | | Open");
        // Ping payloads are not UTF-8 checked.
        EXPECT(server(), frame(kPing, "\xFF"), " ping(\"\\xFF\",1) | out(10,\"\\xFF\") | Open");
    }

    void testPeerClose()
    {
        // Valid codes are echoed (with the reason), the state is Closed.
        for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
        {
            const std::string p = closePayload(code, "bye");
            EXPECT(server(), frame(kClose, p),
                   " close(" + std::to_string(code) + ",\"bye\",remote) | out(8," + show(p) + ") | Closed");
        }
        EXPECT(server(), frame(kClose, closePayload(1000)), " close(1000,\"\",remote) | out(8,\"\\x03\\xE8\") | Closed");
        EXPECT(client(), frame(kClose, closePayload(4001, "Permission denied"), true, false),
               " close(4001,\"Permission denied\",remote) | out(8,\"\\x0F\\xA1Permission denied\") | Closed");
        // Longest allowed reason (123 bytes).
        EXPECT(server(), frame(kClose, closePayload(1000, std::string(123, 'r'))),
               " close(1000,<123 bytes>,remote) | out(8,<125 bytes>) | Closed");
        // Empty close: empty reply, 1005 "No status code".
        EXPECT(server(), frame(kClose, ""), " close(1005,\"No status code\",remote) | out(8,\"\") | Closed");
        // One byte: protocol error.
        EXPECT(server(), frame(kClose, "\x03"), failure(1002, CC::kProtocolErrorMessage));
        // Invalid codes (Autobahn 7.9.x).
        for (uint16_t code : {0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
        {
            EXPECT(server(), frame(kClose, closePayload(code, "x")),
                   failure(1002, "Invalid close code: " + std::to_string(code)));
        }
        // Reason not UTF-8 (Autobahn 7.5.1).
        EXPECT(server(), frame(kClose, closePayload(1000, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80")),
               failure(1007, CC::kInvalidFramePayloadDataMessage));
        // Anything after the peer's close is ignored (Autobahn 7.1.x).
        EXPECT(server(), frame(kClose, closePayload(1000)) + frame(kText, "late") + frame(kPing, "x"),
               " close(1000,\"\",remote) | out(8,\"\\x03\\xE8\") | Closed");
        // Data before the close is delivered; a close in the middle of a fragmented
        // message is still a close (control frames may interleave).
        EXPECT(server(), frame(kText, "a", false) + frame(kClose, closePayload(1001)),
               " frag close(1001,\"\",remote) | out(8,\"\\x03\\xE9\") | Closed");
    }

    void testLocalClose()
    {
        // We started closing: the out bytes begin with our Close(1000, "bye").
        const std::string ours = " | out(8,\"\\x03\\xE8bye\")";
        // Any valid reply completes the handshake with OUR code and reason.
        EXPECT_CLOSING(server(), frame(kClose, closePayload(1000, "bye")), " close(1000,\"bye\",local)" + ours + " | Closed");
        EXPECT_CLOSING(server(), frame(kClose, closePayload(1000)), " close(1000,\"bye\",local)" + ours + " | Closed");
        EXPECT_CLOSING(server(), frame(kClose, closePayload(3000, "other")), " close(1000,\"bye\",local)" + ours + " | Closed");
        EXPECT_CLOSING(server(), frame(kClose, ""), " close(1000,\"bye\",local)" + ours + " | Closed");
        // Data still arrives while Closing and is delivered; pings get no pong.
        EXPECT_CLOSING(server(),
                       frame(kText, "in flight") + frame(kPing, "p") + frame(kBinary, "x", false) +
                           frame(kContinuation, "y") + frame(kClose, closePayload(1000)),
                       " msg(t,\"in flight\",9) ping(\"p\",1) frag msg(b,\"xy\",2) close(1000,\"bye\",local)" + ours +
                           " | Closed");
        // A bad reply while Closing fails the connection, without a second Close frame.
        EXPECT_CLOSING(server(), frame(kClose, closePayload(999)),
                       " close(1002,\"Invalid close code: 999\",local)" + ours + " | Closed");
        EXPECT_CLOSING(server(), frame(kText, "x", true, false), " close(1002,\"Protocol error\",local)" + ours + " | Closed");
        // Without a reply: still Closing.
        EXPECT_CLOSING(server(), frame(kText, "x"), " msg(t,\"x\",1)" + ours + " | Closing");

        // API rules while Closing.
        WsSession s(client());
        std::string out;
        std::vector<SessionEvent> ev;
        CHECK(s.sendMessage(false, "a", 1, out));
        CHECK(s.startClose(4000, "My reason", out));
        CHECK(s.state() == State::Closing);
        CHECK(!s.startClose(1000, "again", out));
        CHECK(!s.sendMessage(false, "a", 1, out));
        CHECK(!s.sendControl(kPing, "", 0, out));
        bool allMasked, noneMasked;
        CHECK_EQ(describeOut(out, allMasked, noneMasked), std::string(" out(1,\"a\") out(8,\"\\x0F\\xA0My reason\")"));
        CHECK(allMasked);
        const std::string reply = frame(kClose, closePayload(4000, "My reason"), true, false);
        s.receive(reply.data(), reply.size(), out, ev);
        CHECK(s.state() == State::Closed);
        CHECK_EQ(ev.size(), size_t(1));
        if (!ev.empty())
        {
            CHECK(ev[0].kind == Kind::Close);
            CHECK_EQ(ev[0].code, uint16_t(4000));
            CHECK_EQ(ev[0].reason, std::string("My reason"));
            CHECK(!ev[0].remote);
        }
        // No more events, ever.
        s.transportClosed(1006, "Abnormal closure", ev);
        CHECK_EQ(ev.size(), size_t(1));
    }

    void testCloseReasons()
    {
        // Truncation to 123 bytes on a code point boundary.
        WsSession s(server());
        std::string out;
        std::string reason = std::string(122, 'a') + "\xC3\xA9" + "tail";
        CHECK(s.startClose(1000, reason, out));
        FrameHeader h;
        CHECK(parseFrameHeader(reinterpret_cast<const uint8_t*>(out.data()), out.size(), h) == HeaderParse::Ok);
        CHECK_EQ(h.payloadLength, uint64_t(2 + 122));
        CHECK_EQ(out.substr(h.headerLength + 2), std::string(122, 'a'));

        // 123 bytes exactly: kept.
        WsSession s2(server());
        std::string out2;
        CHECK(s2.startClose(1001, std::string(123, 'b'), out2));
        CHECK(parseFrameHeader(reinterpret_cast<const uint8_t*>(out2.data()), out2.size(), h) == HeaderParse::Ok);
        CHECK_EQ(h.payloadLength, uint64_t(125));

        // 1005 (and codes that may not appear on the wire) -> empty payload, but
        // the event reports what was asked for.
        for (uint16_t code : {1005, 1006, 1015, 0})
        {
            WsSession t(server());
            std::string o;
            std::vector<SessionEvent> ev;
            CHECK(t.startClose(code, "why", o));
            CHECK_EQ(o, std::string("\x88\x00", 2));
            const std::string reply = frame(kClose, "");
            t.receive(reply.data(), reply.size(), o, ev);
            CHECK_EQ(ev.size(), size_t(1));
            if (!ev.empty())
            {
                CHECK_EQ(ev[0].code, code);
                CHECK_EQ(ev[0].reason, std::string("why"));
            }
        }
    }

    // A frame prepared once for many server connections (broadcast) must be
    // byte-identical to what each session would have framed itself.
    void testSharedFrames()
    {
        WsSession srv(server());
        CHECK(srv.sharesFrames());
        for (size_t size : {size_t(0), size_t(1), size_t(125), size_t(126), size_t(65535), size_t(65536),
                            size_t(70000)})
        {
            std::string payload(size, 'b');
            for (bool binary : {false, true})
            {
                std::string own, shared;
                CHECK(srv.sendMessage(binary, payload.data(), payload.size(), own));
                appendFrame(shared, binary ? kBinary : kText, true, false, payload.data(), payload.size(), false);
                CHECK_EQ(own, shared);
            }
        }
        std::string out;
        CHECK(srv.startClose(1000, "bye", out));
        CHECK(!srv.sharesFrames()); // Closing: nothing more may be sent
        WsSession::Config deflated = server();
        deflated.deflateNegotiated = true;
        CHECK(!WsSession(deflated).sharesFrames()); // per-connection compression
    }

    void testSendApi()
    {
        WsSession srv(server());
        std::string out;
        CHECK(srv.sendMessage(false, "hello", 5, out));
        CHECK_EQ(out, std::string("\x81\x05hello", 7));
        out.clear();
        CHECK(srv.sendMessage(true, "", 0, out));
        CHECK_EQ(out, std::string("\x82\x00", 2));
        out.clear();
        CHECK(srv.sendControl(kPing, "p", 1, out));
        CHECK(srv.sendControl(kPong, "q", 1, out));
        CHECK_EQ(out, std::string("\x89\x01p\x8A\x01q", 6));
        out.clear();
        CHECK(!srv.sendControl(kPing, std::string(126, 'x').data(), 126, out));
        CHECK(srv.sendControl(kPing, std::string(125, 'x').data(), 125, out));
        CHECK(!srv.sendControl(kText, "x", 1, out));
        CHECK(!srv.sendControl(kClose, "", 0, out));
        out.clear();
        std::string big(70000, 'q');
        CHECK(srv.sendMessage(true, big.data(), big.size(), out));
        CHECK_EQ(out.size(), big.size() + 10);

        // Client frames are masked with a fresh key each time.
        WsSession cl(client());
        std::string o1, o2;
        CHECK(cl.sendMessage(false, "abcdefgh", 8, o1));
        CHECK(cl.sendMessage(false, "abcdefgh", 8, o2));
        CHECK_EQ(static_cast<uint8_t>(o1[1]), 0x88);
        CHECK(o1 != o2);
        bool allMasked, noneMasked;
        CHECK_EQ(describeOut(o1 + o2, allMasked, noneMasked), std::string(" out(1,\"abcdefgh\") out(1,\"abcdefgh\")"));
        CHECK(allMasked);

        // After a failure nothing can be sent and input is ignored.
        WsSession f(server());
        std::string fo;
        std::vector<SessionEvent> fe;
        const std::string bad = frame(kText, "x", true, false);
        f.receive(bad.data(), bad.size(), fo, fe);
        CHECK(f.state() == State::Closed);
        CHECK(!f.sendMessage(false, "a", 1, fo));
        CHECK(!f.startClose(1000, "", fo));
        const std::string good = frame(kText, "x");
        const size_t before = fo.size();
        f.receive(good.data(), good.size(), fo, fe);
        CHECK_EQ(fo.size(), before);
        CHECK_EQ(fe.size(), size_t(1));
    }

    // ------------------------------------------------------------ deflate

    DeflateAgreement agreement(int clientBits = 15, bool clientNct = false, int serverBits = 15,
                               bool serverNct = false)
    {
        DeflateAgreement a;
        a.enabled = true;
        a.clientMaxWindowBits = clientBits;
        a.clientNoContextTakeover = clientNct;
        a.serverMaxWindowBits = serverBits;
        a.serverNoContextTakeover = serverNct;
        return a;
    }

    WsSession::Config withDeflate(WsSession::Config c, const DeflateAgreement& a = agreement())
    {
        c.deflateNegotiated = true;
        c.deflate = a;
        return c;
    }

    std::string bin(std::initializer_list<unsigned> list)
    {
        std::string s;
        for (unsigned b : list) s.push_back(static_cast<char>(b));
        return s;
    }

    const std::string kHello = bin({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}); // RFC 7692 7.2.3.1
    const std::string kHelloAgain = bin({0xf2, 0x00, 0x11, 0x00, 0x00});       // 7.2.3.2

    void testDeflateReceive()
    {
        const WsSession::Config c = withDeflate(server());
        EXPECT(c, frame(kText, kHello, true, true, R1), " msg(t,\"Hello\",7) | | Open");
        EXPECT(c, frame(kBinary, kHello, true, true, R1), " msg(b,\"Hello\",7) | | Open");
        // Context takeover: the second message refers to the first.
        EXPECT(c, frame(kText, kHello, true, true, R1) + frame(kText, kHelloAgain, true, true, R1),
               " msg(t,\"Hello\",7) msg(t,\"Hello\",5) | | Open");
        // Uncompressed messages still flow on a deflate connection.
        EXPECT(c, frame(kText, "plain") + frame(kText, kHello, true, true, R1),
               " msg(t,\"plain\",5) msg(t,\"Hello\",7) | | Open");
        // A fragmented compressed message: RSV1 on the first frame only.
        EXPECT(c, frame(kText, kHello.substr(0, 2), false, true, R1) + frame(kPing, "p") +
                      frame(kContinuation, kHello.substr(2, 3), false) + frame(kContinuation, kHello.substr(5)),
               " frag ping(\"p\",1) frag msg(t,\"Hello\",7) | out(10,\"p\") | Open");
        EXPECT(c, frame(kText, kHello.substr(0, 2), false, true, R1) + frame(kContinuation, kHello.substr(2), true, true, R1),
               " frag" + failure(1002, CC::kProtocolErrorReservedBitUsed));
        EXPECT(c, frame(kPong, "", true, true, R1), failure(1002, CC::kProtocolErrorReservedBitUsed));
        // Empty messages: no payload at all, or the single 00 byte.
        EXPECT(c, frame(kText, "", true, true, R1) + frame(kText, kHello, true, true, R1),
               " msg(t,\"\",0) msg(t,\"Hello\",7) | | Open");
        EXPECT(c, frame(kBinary, std::string(1, '\0'), true, true, R1) + frame(kText, kHello, true, true, R1),
               " msg(b,\"\",1) msg(t,\"Hello\",7) | | Open");
        EXPECT(c, frame(kText, "", false, true, R1) + frame(kContinuation, ""), " frag msg(t,\"\",0) | | Open");
        // RFC 7692 7.2.3.3-5: stored block, BFINAL, two blocks.
        EXPECT(c, frame(kText, bin({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}), true, true, R1),
               " msg(t,\"Hello\",11) | | Open");
        EXPECT(c, frame(kText, bin({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), true, true, R1) +
                      frame(kText, kHelloAgain, true, true, R1),
               " msg(t,\"Hello\",7) msg(t,\"Hello\",5) | | Open");
        EXPECT(c, frame(kText, bin({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}),
                        true, true, R1),
               " msg(t,\"Hello\",13) | | Open");
        // The client side: unmasked compressed frames from the server.
        EXPECT(withDeflate(client()), frame(kText, kHello, true, false, R1), " msg(t,\"Hello\",7) | | Open");
        // Without negotiation RSV1 stays a protocol error.
        EXPECT(server(), frame(kText, kHello, true, true, R1), failure(1002, CC::kProtocolErrorReservedBitUsed));

        // Data that does not inflate: 1007, and nothing of the message is delivered.
        EXPECT(c, frame(kText, "ok") + frame(kBinary, bin({0xff, 0xff, 0xff}), true, true, R1),
               " msg(t,\"ok\",2)" + failure(1007, "Invalid compressed data"));
        EXPECT(c, frame(kBinary, bin({0x00, 0x05, 0x00, 0x00, 0x00, 'H', 'e', 'l', 'l', 'o'}), true, true, R1),
               failure(1007, "Invalid compressed data"));
        // Inflated text is UTF-8 checked as it is produced: the first fragment
        // (a stored block "ab\xFF") fails before the rest arrives.
        EXPECT(c, frame(kText, bin({0x00, 0x03, 0x00, 0xfc, 0xff, 'a', 'b', 0xff}), false, true, R1) +
                      frame(kContinuation, "never"),
               failure(1007, CC::kInvalidFramePayloadDataMessage));
        // A code point split across inflated pieces is fine.
        EXPECT(c, frame(kText, bin({0x00, 0x02, 0x00, 0xfd, 0xff, 'a', 0xCE}), false, true, R1) +
                      frame(kContinuation, bin({0x00, 0x01, 0x00, 0xfe, 0xff, 0xBA})),
               " frag msg(t,\"a\\xCE\\xBA\",13) | | Open");
        // ... but an incomplete one at the end is not.
        EXPECT(c, frame(kText, bin({0x00, 0x02, 0x00, 0xfd, 0xff, 'a', 0xCE}), true, true, R1),
               failure(1007, CC::kInvalidFramePayloadDataMessage));

        // maxMessageSize applies to the inflated size.
        WsSession::Config limited = c;
        limited.maxMessageSize = 5;
        EXPECT(limited, frame(kText, kHello, true, true, R1), " msg(t,\"Hello\",7) | | Open");
        limited.maxMessageSize = 4;
        EXPECT(limited, frame(kText, kHello, true, true, R1), failure(1009, "Message too big"));
    }

    // The inflater of each role uses the peer's window and context setting, the
    // compressor its own (upstream defect 1 swapped them on the server).
    void testDeflateRoundTrips()
    {
        std::vector<std::string> messages = {"", "Hello", "Hello", std::string(100000, 'x'), "\xce\xba\xe1\xbd\xb9"};
        std::string text;
        for (int i = 0; text.size() < 200000; ++i) text += "{\"k\":" + std::to_string(i * 7919 % 10007) + "},";
        messages.push_back(text);
        std::mt19937 rng(42);
        std::string noise(50000, '\0');
        for (auto& ch : noise) ch = static_cast<char>(rng());
        messages.push_back(noise);
        messages.push_back(text);

        for (int cb : {9, 12, 15})
        {
            for (int sb : {9, 11, 15})
            {
                for (int nct = 0; nct < 4; ++nct)
                {
                    const DeflateAgreement a = agreement(cb, nct & 1, sb, nct & 2);
                    WsSession cl(withDeflate(client(), a));
                    WsSession sv(withDeflate(server(), a));
                    for (size_t i = 0; i < messages.size(); ++i)
                    {
                        const std::string& m = messages[i];
                        const bool binary = (i == 6);
                        const bool compress = (i != 2); // one uncompressed message in between
                        for (int dir = 0; dir < 2; ++dir)
                        {
                            WsSession& from = dir ? sv : cl;
                            WsSession& to = dir ? cl : sv;
                            std::string wire, back;
                            const WsSession::SendOutcome r = from.send(binary, m.data(), m.size(), wire, compress);
                            CHECK(r.sent);
                            CHECK(!r.compressionError);
                            FrameHeader h;
                            CHECK(parseFrameHeader(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), h) ==
                                  HeaderParse::Ok);
                            CHECK_EQ(h.rsv1, compress);
                            CHECK_EQ(r.wireSize, static_cast<size_t>(h.payloadLength));
                            if (!compress) CHECK_EQ(r.wireSize, m.size());
                            std::vector<SessionEvent> ev;
                            // In uneven pieces.
                            for (size_t at = 0; at < wire.size();)
                            {
                                const size_t n = std::min<size_t>(1 + rng() % 5000, wire.size() - at);
                                to.receive(wire.data() + at, n, back, ev);
                                at += n;
                            }
                            if (!CHECK_EQ(ev.size(), size_t(1)) || !CHECK(ev[0].kind == Kind::Message))
                            {
                                std::fprintf(stderr, "    agreement c%d s%d nct%d message %zu dir %d: %s\n", cb, sb,
                                             nct, i, dir, describeEvents(ev).c_str());
                                return;
                            }
                            CHECK(ev[0].data == m);
                            CHECK_EQ(ev[0].binary, binary);
                            CHECK_EQ(ev[0].wireSize, r.wireSize);
                            CHECK(back.empty());
                        }
                    }
                    // Compression happened, in both directions.
                    std::string w1, w2;
                    CHECK(cl.send(false, text.data(), text.size(), w1).wireSize < text.size() / 3);
                    CHECK(sv.send(false, text.data(), text.size(), w2).wireSize < text.size() / 3);
                }
            }
        }

        // A server that compressed with the client's 15 bits where 9 was agreed
        // for its own direction would fail the client (defect 1): show the client
        // really inflates with 9 bits.
        {
            const DeflateAgreement a = agreement(15, false, 9, false);
            WsSession wrongServer(withDeflate(server(), agreement(15, false, 15, false)));
            WsSession cl(withDeflate(client(), a));
            std::string big;
            const std::string unit = noise.substr(0, 2000);
            for (int i = 0; i < 60; ++i) big += unit;
            std::string wire, back;
            CHECK(wrongServer.send(true, big.data(), big.size(), wire).sent);
            std::vector<SessionEvent> ev;
            cl.receive(wire.data(), wire.size(), back, ev);
            CHECK_EQ(describeEvents(ev), std::string(" close(1007,\"Invalid compressed data\",local)"));
        }
    }

    // A small frame that would inflate to gigabytes: refused with 1009 once the
    // inflated size passes maxMessageSize; the session never holds more.
    void testDeflateBomb()
    {
        // One unit: 64 MiB of zeros, sync-flushed (starts and ends on a block
        // boundary), repeated 64 times = 4 GiB; the last 4 bytes are the tail.
        z_stream z {};
        deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_RLE);
        std::string zeros(1 << 20, '\0'), unit;
        char buf[1 << 16];
        for (int i = 0; i < 64; ++i)
        {
            z.next_in = reinterpret_cast<Bytef*>(&zeros[0]);
            z.avail_in = static_cast<uInt>(zeros.size());
            do
            {
                z.next_out = reinterpret_cast<Bytef*>(buf);
                z.avail_out = sizeof(buf);
                deflate(&z, i == 63 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
                unit.append(buf, sizeof(buf) - z.avail_out);
            } while (z.avail_out == 0);
        }
        deflateEnd(&z);
        std::string bomb;
        for (int i = 0; i < 64; ++i) bomb += unit;
        bomb.resize(bomb.size() - 4);
        CHECK(bomb.size() < (8u << 20));

        WsSession::Config c = withDeflate(server());
        c.maxMessageSize = 1 << 20;
        WsSession s(c);
        const std::string f = frame(kBinary, bomb, true, true, R1);
        std::string out;
        std::vector<SessionEvent> ev;
        size_t most = 0;
        for (size_t at = 0; at < f.size() && s.state() != State::Closed; at += 65536)
        {
            s.receive(f.data() + at, std::min<size_t>(65536, f.size() - at), out, ev);
            most = std::max(most, s.bufferedIncoming());
        }
        CHECK(most <= c.maxMessageSize + 1);
        CHECK_EQ(describeEvents(ev), std::string(" close(1009,\"Message too big\",local)"));
        CHECK(s.state() == State::Closed);

        // The compressed size alone may not run far past the limit either: the
        // declared length is refused on the header.
        WsSession t(c);
        std::string header = frame(kBinary, std::string((1 << 20) + (1 << 17) + 1025, 'x'), true, true, R1).substr(0, 14);
        ev.clear();
        t.receive(header.data(), header.size(), out, ev);
        CHECK_EQ(describeEvents(ev), std::string(" close(1009,\"Message too big\",local)"));
    }

    void testDeflateSend()
    {
        WsSession srv(withDeflate(server()));
        std::string out;
        WsSession::SendOutcome r = srv.send(false, "Hello", 5, out);
        CHECK(r.sent);
        CHECK_EQ(r.wireSize, size_t(7));
        CHECK_EQ(out, "\xC1\x07" + kHello); // FIN + RSV1 + text
        out.clear();
        r = srv.send(false, "Hello", 5, out);
        CHECK_EQ(out, "\xC1\x05" + kHelloAgain);
        out.clear();
        r = srv.send(true, "Hello", 5, out, false);
        CHECK_EQ(out, std::string("\x82\x05Hello", 7));
        CHECK_EQ(r.wireSize, size_t(5));
        out.clear();
        r = srv.send(true, "", 0, out);
        CHECK_EQ(out, std::string("\xC2\x01\x00", 3));
        // Not negotiated: compress is ignored.
        WsSession plain(server());
        out.clear();
        r = plain.send(false, "Hello", 5, out, true);
        CHECK_EQ(out, std::string("\x81\x05Hello", 7));
        // Not open: nothing.
        std::string o2;
        CHECK(srv.startClose(1000, "", o2));
        r = srv.send(false, "x", 1, o2);
        CHECK(!r.sent);
        CHECK(!r.compressionError);
    }

    void testTransportClosed()
    {
        WsSession s(server());
        std::vector<SessionEvent> ev;
        std::string out;
        const std::string partial = frame(kText, "abcdef").substr(0, 9);
        s.receive(partial.data(), partial.size(), out, ev);
        CHECK_EQ(s.bufferedIncoming(), size_t(3));
        s.transportClosed(CC::kAbnormalCloseCode, CC::kAbnormalCloseMessage, ev);
        CHECK(s.state() == State::Closed);
        CHECK_EQ(ev.size(), size_t(1));
        if (!ev.empty())
        {
            CHECK(ev[0].kind == Kind::Close);
            CHECK_EQ(ev[0].code, uint16_t(1006));
            CHECK_EQ(ev[0].reason, std::string("Abnormal closure"));
            CHECK(!ev[0].remote);
        }
        s.transportClosed(1011, "again", ev);
        CHECK_EQ(ev.size(), size_t(1));
        CHECK_EQ(s.bufferedIncoming(), size_t(0));

        // While Closing (close timeout): the given status.
        WsSession c(client());
        std::string o;
        std::vector<SessionEvent> e2;
        CHECK(c.startClose(1000, "Normal closure", o));
        c.transportClosed(1006, "Abnormal closure", e2);
        CHECK_EQ(e2.size(), size_t(1));
        if (!e2.empty()) CHECK_EQ(e2[0].code, uint16_t(1006));
    }

    // Random streams of valid frames, fed in random chunks, against the same
    // stream fed whole.
    void testRandomStreams()
    {
        std::mt19937 rng(4242);
        int bad = 0;
        for (int iter = 0; iter < 300; ++iter)
        {
            std::string input;
            std::string expectedMessages;
            const int frames = 1 + static_cast<int>(rng() % 8);
            for (int i = 0; i < frames; ++i)
            {
                const int pieces = 1 + static_cast<int>(rng() % 3);
                const bool binary = rng() % 2;
                for (int k = 0; k < pieces; ++k)
                {
                    std::string payload(rng() % 300, 'a');
                    for (char& ch : payload) ch = static_cast<char>('a' + rng() % 26);
                    input += frame(k == 0 ? (binary ? kBinary : kText) : kContinuation, payload, k == pieces - 1);
                    if (rng() % 3 == 0) input += frame(kPing, std::string(rng() % 20, 'p'));
                }
            }
            const std::string whole = run(server(), input, {});
            std::vector<size_t> cuts;
            size_t pos = 0;
            while (true)
            {
                pos += 1 + rng() % 40;
                if (pos >= input.size()) break;
                cuts.push_back(pos);
            }
            if (run(server(), input, cuts) != whole) ++bad;
            if (whole.find("close(") != std::string::npos) ++bad;
        }
        CHECK_EQ(bad, 0);
    }
} // namespace

namespace
{
    // deferFailure: a message before a bad frame is delivered, the failure waits,
    // a reply can still be sent, and commitFailure() then sends the Close.
    void testDeferredFailure()
    {
        WsSession::Config cfg;
        cfg.role = Role::Server;
        cfg.deferFailure = true;
        WsSession session(cfg);
        std::string out;
        std::vector<SessionEvent> events;
        session.receive((frame(kText, "first") + frame(kText, "x", true, true, R2) + frame(kText, "late")).data(),
                        frame(kText, "first").size() + frame(kText, "x").size() + frame(kText, "late").size(), out,
                        events);
        CHECK_EQ(events.size(), static_cast<size_t>(1));
        CHECK(events.size() == 1 && events[0].kind == SessionEvent::Kind::Message && events[0].data == "first");
        CHECK(out.empty());
        CHECK(session.hasPendingFailure());
        CHECK(session.state() == WsSession::State::Open);
        // Input after the failure is ignored.
        events.clear();
        session.receive(frame(kText, "more").data(), frame(kText, "more").size(), out, events);
        CHECK(events.empty());
        // The application's reply still goes out, before the Close.
        CHECK(session.sendMessage(false, "first", 5, out));
        const size_t replySize = out.size();
        session.commitFailure(out, events);
        CHECK(!session.hasPendingFailure());
        CHECK(session.state() == WsSession::State::Closed);
        CHECK(out.size() > replySize);
        CHECK_EQ(static_cast<uint8_t>(out[replySize]), static_cast<uint8_t>(0x80 | kClose));
        CHECK(events.size() == 1 && events[0].kind == SessionEvent::Kind::Close && events[0].code == 1002 &&
              !events[0].remote);
        CHECK(!session.sendMessage(false, "x", 1, out));
    }
} // namespace

int main()
{
    testDeferredFailure();
    testMessages();
    testFragmentation();
    testProtocolErrors();
    testOversizeLength();
    testFailFastHeader();
    testUtf8();
    testMaxMessageSize();
    testPingPong();
    testPeerClose();
    testLocalClose();
    testCloseReasons();
    testSendApi();
    testSharedFrames();
    testTransportClosed();
    testRandomStreams();
    testDeflateReceive();
    testDeflateRoundTrips();
    testDeflateBomb();
    testDeflateSend();
    return CHECK_REPORT();
}
