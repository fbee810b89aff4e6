// ConnectionMachine: every transition of a connection's lifecycle, both roles,
// without sockets. Bytes go in, bytes for the peer come out in `out`, and the
// MachineOutput says what the connection must do; time is a value.
#include "check.h"
#include "connection_machine.h"
#include "frame_codec.h"
#include "handshake.h"

#include "ixwebsocket/IXWebSocketCloseConstants.h"

#include <string>
#include <vector>

using namespace ix::detail;
using CC = ix::WebSocketCloseConstants;
using Phase = ConnectionMachine::Phase;
using Kind = SessionEvent::Kind;
using ix::ReadyState;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace
{
    const TimePoint T0 = TimePoint() + seconds(1000);

    MachineConfig clientConfig(bool tls = false)
    {
        MachineConfig c;
        c.role = Role::Client;
        c.urlText = tls ? "wss://example.test:9443/chat?x=1" : "ws://example.test:9000/chat?x=1";
        std::string error;
        parseUrl(c.urlText, c.url, error);
        c.tls = tls;
        c.handshakeTimeoutMs = 5000;
        c.closeTimeoutMs = 1000;
        return c;
    }

    MachineConfig serverConfig(bool hook = false, bool tls = false)
    {
        MachineConfig c;
        c.role = Role::Server;
        c.serverHandshake.serverHeader = "test-server";
        c.handshakeHook = hook;
        c.tls = tls;
        c.handshakeTimeoutMs = 5000;
        c.closeTimeoutMs = 1000;
        return c;
    }

    // One frame as the peer sends it (clients mask, servers do not).
    std::string frame(uint8_t op, const std::string& payload, bool mask, bool fin = true)
    {
        std::string f;
        appendFrame(f, op, fin, false, payload.data(), payload.size(), mask);
        return f;
    }

    std::string closePayload(uint16_t code, const std::string& reason = "")
    {
        std::string p;
        p += static_cast<char>(code >> 8);
        p += static_cast<char>(code & 0xFF);
        return p + reason;
    }

    struct Frame
    {
        uint8_t opcode = 0;
        std::string payload;
    };

    // The frames in bytes we wrote (unmasked).
    std::vector<Frame> frames(const std::string& out)
    {
        std::vector<Frame> result;
        size_t at = 0;
        while (at < out.size())
        {
            FrameHeader h;
            if (parseFrameHeader(reinterpret_cast<const uint8_t*>(out.data() + at), out.size() - at, h) !=
                HeaderParse::Ok)
                break;
            Frame f;
            f.opcode = h.opcode;
            f.payload = out.substr(at + h.headerLength, h.payloadLength);
            if (h.masked) applyMask(reinterpret_cast<uint8_t*>(&f.payload[0]), f.payload.size(), h.mask, 0);
            result.push_back(f);
            at += h.headerLength + h.payloadLength;
        }
        return result;
    }

    uint16_t closeCodeOf(const Frame& f)
    {
        if (f.payload.size() < 2) return 0;
        return static_cast<uint16_t>((static_cast<uint8_t>(f.payload[0]) << 8) | static_cast<uint8_t>(f.payload[1]));
    }

    // The server's 101 for the request a client machine wrote.
    std::string answerFor(const std::string& request)
    {
        const std::string marker = "Sec-WebSocket-Key: ";
        size_t at = request.find(marker);
        std::string key = request.substr(at + marker.size(), 24);
        return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: " +
               computeAcceptKey(key) + "\r\n\r\n";
    }

    const std::string kRequest = "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n";

    // A client machine up to Handshake; `out` holds its request.
    struct Client
    {
        ConnectionMachine m;
        std::string out;
        explicit Client(MachineConfig c = clientConfig()) : m(std::move(c))
        {
            m.startClient(T0);
            m.resolved();
            m.connected(out, false);
        }
        // Completes the handshake (and afterOpen).
        void open()
        {
            MachineOutput o;
            std::string answer = answerFor(out);
            out.clear();
            m.receive(answer.data(), answer.size(), out, o);
            CHECK(o.opened);
            MachineOutput after;
            m.afterOpen(T0, out, after);
        }
    };

    struct Server
    {
        ConnectionMachine m;
        std::string out;
        explicit Server(MachineConfig c = serverConfig()) : m(std::move(c)) { m.startServer(T0); }
        void open()
        {
            MachineOutput o;
            m.receive(kRequest.data(), kRequest.size(), out, o);
            CHECK(o.opened);
            out.clear();
            MachineOutput after;
            m.afterOpen(T0, out, after);
        }
    };

    // ------------------------------------------------------------------ client

    void testClientPhases()
    {
        ConnectionMachine m(clientConfig());
        CHECK(m.phase() == Phase::Idle);
        CHECK(m.readyState() == ReadyState::Connecting);
        CHECK(m.nextDeadline() == TimePoint::max());
        m.startClient(T0);
        CHECK(m.phase() == Phase::Resolving);
        CHECK(m.nextDeadline() == T0 + milliseconds(5000));
        m.resolved();
        CHECK(m.phase() == Phase::Connecting);
        std::string out;
        m.connected(out, false);
        CHECK(m.phase() == Phase::Handshake);
        CHECK_EQ(out.compare(0, 25, "GET /chat?x=1 HTTP/1.1\r\nH"), 0);
        CHECK(out.find("Host: example.test:9000\r\n") != std::string::npos);
        CHECK_EQ(out, m.clientRequest()); // one key per attempt
        CHECK(m.readyState() == ReadyState::Connecting);
    }

    void testClientRequestWrittenEarly()
    {
        ConnectionMachine m(clientConfig());
        m.startClient(T0);
        m.resolved();
        std::string request = m.clientRequest();
        std::string out;
        m.connected(out, true); // the caller sent it already
        CHECK(out.empty());
        CHECK(m.phase() == Phase::Handshake);
        MachineOutput o;
        std::string answer = answerFor(request);
        m.receive(answer.data(), answer.size(), out, o);
        CHECK(o.opened);
    }

    void testClientOpensWhateverTheSplit()
    {
        for (size_t piece : {size_t(1), size_t(7), size_t(1000)})
        {
            Client c;
            const std::string answer = answerFor(c.out);
            std::string bytes = answer + frame(kText, "hello", false);
            c.out.clear();
            MachineOutput o;
            size_t fed = 0;
            while (fed < bytes.size() && !o.opened)
            {
                size_t n = std::min(piece, bytes.size() - fed);
                c.m.receive(bytes.data() + fed, n, c.out, o);
                fed += n;
            }
            CHECK(o.opened);
            CHECK(fed >= answer.size()); // not before the whole head
            CHECK(o.openResult.success);
            CHECK_EQ(o.openResult.http_status, 101);
            CHECK(o.teardown == Teardown::None);
            CHECK(o.events.empty()); // what followed waits for afterOpen
            CHECK(c.m.phase() == Phase::Open);
            CHECK(c.m.readyState() == ReadyState::Open);
            CHECK(c.m.nextDeadline() == TimePoint::max()); // no heartbeat configured
            MachineOutput after;
            c.m.afterOpen(T0, c.out, after);
            if (fed < bytes.size()) c.m.receive(bytes.data() + fed, bytes.size() - fed, c.out, after);
            CHECK_EQ(after.events.size(), size_t(1));
            if (!after.events.empty())
            {
                CHECK(after.events[0].kind == Kind::Message);
                CHECK_EQ(after.events[0].data, std::string("hello"));
            }
        }
    }

    void testClientRefused()
    {
        Client c;
        MachineOutput o;
        std::string answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        c.m.receive(answer.data(), answer.size(), c.out, o);
        CHECK(o.failed);
        CHECK_EQ(o.failure.http_status, 404);
        CHECK_EQ(o.failure.uri, std::string("/chat?x=1"));
        CHECK(o.teardown == Teardown::Close);
        CHECK(!o.opened);

        Client bad;
        MachineOutput o2;
        std::string garbage = "NOT HTTP\r\n\r\n";
        bad.m.receive(garbage.data(), garbage.size(), bad.out, o2);
        CHECK(o2.failed);
        CHECK_EQ(o2.failure.errorStr.find("Error parsing HTTP headers from ws://example.test:9000/chat?x=1: "),
                 size_t(0));
    }

    void testClientHandshakeTimeout()
    {
        for (Phase at : {Phase::Resolving, Phase::Connecting, Phase::Handshake})
        {
            ConnectionMachine m(clientConfig());
            std::string out;
            m.startClient(T0);
            if (at != Phase::Resolving) m.resolved();
            if (at == Phase::Handshake) m.connected(out, false);
            MachineOutput early;
            m.onTime(T0 + milliseconds(4999), out, early);
            CHECK(early.empty());
            MachineOutput o;
            m.onTime(T0 + milliseconds(5000), out, o);
            CHECK(o.failed);
            CHECK_EQ(o.failure.errorStr,
                     std::string("Timed out after 5000 ms connecting to ws://example.test:9000/chat?x=1"));
            CHECK(o.teardown == Teardown::Close);
            m.closed();
            CHECK(m.phase() == Phase::Done);
            CHECK(m.nextDeadline() == TimePoint::max());
            CHECK(m.readyState() == ReadyState::Closed);
        }
        // TLS: a timeout during the TLS handshake says so.
        ConnectionMachine tls(clientConfig(true));
        std::string out;
        tls.startClient(T0);
        tls.resolved();
        tls.connected(out, false);
        CHECK(tls.phase() == Phase::Securing);
        CHECK(out.empty()); // nothing before the TLS handshake
        MachineOutput o;
        tls.onTime(T0 + seconds(5), out, o);
        CHECK_EQ(o.failure.errorStr, std::string("Timed out after 5000 ms connecting to "
                                                 "wss://example.test:9443/chat?x=1 (TLS handshake timed out)"));
    }

    void testClientTls()
    {
        ConnectionMachine m(clientConfig(true));
        std::string out;
        m.startClient(T0);
        m.resolved();
        m.connected(out, false);
        MachineOutput o;
        m.secured(out, o);
        CHECK(o.empty());
        CHECK(m.phase() == Phase::Handshake);
        CHECK_EQ(out.compare(0, 4, "GET "), 0);

        ConnectionMachine failing(clientConfig(true));
        failing.startClient(T0);
        failing.resolved();
        failing.connected(out, false);
        MachineOutput f;
        failing.secureFailed("unknown CA", f);
        CHECK(f.failed);
        CHECK_EQ(f.failure.errorStr, std::string("TLS handshake with example.test:9443 failed: unknown CA"));

        // A TLS error after the TLS handshake, during the HTTP one.
        MachineOutput g;
        m.peerGone("bad certificate", g);
        CHECK_EQ(g.failure.errorStr, std::string("TLS error from example.test:9443: bad certificate"));
    }

    void testClientCancelAndLoss()
    {
        {
            ConnectionMachine m(clientConfig());
            std::string out;
            MachineOutput o;
            CHECK(!m.close(1000, "bye", T0, true, out, o));
            CHECK(o.failed);
            CHECK_EQ(o.failure.errorStr, std::string("Cancelled"));
            m.startClient(T0); // cancelled before it started: never starts
            CHECK(m.phase() == Phase::Idle);
            CHECK(m.nextDeadline() == TimePoint::max());
            m.closed();
            CHECK(m.phase() == Phase::Done);
        }
        {
            Client c;
            MachineOutput o;
            CHECK(!c.m.close(1000, "bye", T0, true, c.out, o));
            CHECK(o.failed);
            CHECK_EQ(o.failure.errorStr, std::string("Cancelled"));
            CHECK(o.teardown == Teardown::Close);
        }
        {
            Client c;
            MachineOutput o;
            c.m.peerGone("", o);
            CHECK_EQ(o.failure.errorStr,
                     std::string("Failed reading HTTP status line from ws://example.test:9000/chat?x=1"));
        }
        {
            ConnectionMachine m(clientConfig());
            m.startClient(T0);
            MachineOutput o;
            m.fail(0, "Unable to connect", o);
            CHECK(o.failed);
            CHECK_EQ(o.failure.errorStr, std::string("Unable to connect"));
            // Once failed, nothing more is reported.
            MachineOutput again;
            m.fail(0, "again", again);
            CHECK(!again.failed);
        }
    }

    // ------------------------------------------------------------------ server

    void testServerOpens()
    {
        for (size_t piece : {size_t(1), size_t(13), size_t(4096)})
        {
            Server s;
            CHECK(s.m.phase() == Phase::Handshake);
            CHECK(s.m.nextDeadline() == T0 + milliseconds(5000));
            std::string bytes = kRequest + frame(kText, "early", true);
            MachineOutput o;
            size_t fed = 0;
            while (fed < bytes.size() && !o.opened)
            {
                size_t n = std::min(piece, bytes.size() - fed);
                s.m.receive(bytes.data() + fed, n, s.out, o);
                fed += n;
            }
            CHECK(o.opened);
            CHECK_EQ(o.openResult.uri, std::string("/chat"));
            CHECK_EQ(s.out.compare(0, 12, "HTTP/1.1 101"), 0);
            CHECK(s.m.nextDeadline() == TimePoint::max());
            MachineOutput after;
            s.m.afterOpen(T0, s.out, after);
            if (fed < bytes.size()) s.m.receive(bytes.data() + fed, bytes.size() - fed, s.out, after);
            CHECK_EQ(after.events.size(), size_t(1));
        }
    }

    void testServerRefuses()
    {
        {
            Server s;
            std::string bad = "GET /chat HTTP/1.1\r\nHost: x\r\n\r\n";
            MachineOutput o;
            s.m.receive(bad.data(), bad.size(), s.out, o);
            CHECK(o.failed);
            CHECK_EQ(o.failure.http_status, 400);
            CHECK_EQ(s.out.compare(0, 12, "HTTP/1.1 400"), 0);
            CHECK(o.teardown == Teardown::DrainIfUnsent);
        }
        {
            MachineConfig c = serverConfig();
            c.maxHeadSize = 64;
            Server s(c);
            MachineOutput o;
            s.m.receive(kRequest.data(), kRequest.size(), s.out, o);
            CHECK(o.failed);
            CHECK_EQ(o.failure.http_status, 431);
            CHECK_EQ(s.out.compare(0, 12, "HTTP/1.1 431"), 0);
        }
        {
            Server s;
            MachineOutput o;
            s.m.receive(kRequest.data(), 10, s.out, o);
            s.m.peerGone("", o);
            CHECK_EQ(o.failure.errorStr, std::string("Connection closed during handshake"));
        }
    }

    void testServerHandshakeTimeout()
    {
        Server s;
        MachineOutput o;
        s.m.onTime(T0 + seconds(5), s.out, o);
        CHECK(o.failed);
        CHECK_EQ(o.failure.http_status, 408);
        CHECK_EQ(o.failure.errorStr, std::string("Handshake timed out"));
        CHECK(o.teardown == Teardown::DrainIfUnsent);

        ConnectionMachine tls(serverConfig(false, true));
        tls.startServer(T0);
        CHECK(tls.phase() == Phase::Securing);
        std::string out;
        MachineOutput t;
        tls.onTime(T0 + seconds(5), out, t);
        CHECK_EQ(t.failure.errorStr, std::string("TLS handshake timed out"));
        CHECK_EQ(t.failure.http_status, 0);

        ConnectionMachine secured(serverConfig(false, true));
        secured.startServer(T0);
        MachineOutput none;
        secured.secured(out, none);
        CHECK(none.empty());
        CHECK(secured.phase() == Phase::Handshake);
        MachineOutput tlsError;
        secured.peerGone("decrypt error", tlsError);
        CHECK_EQ(tlsError.failure.errorStr, std::string("TLS error: decrypt error"));
    }

    void testHandshakeHook()
    {
        // Accepted: nothing is written until the answer; early bytes wait.
        {
            Server s(serverConfig(true));
            std::string bytes = kRequest + frame(kText, "early", true);
            MachineOutput o;
            s.m.receive(bytes.data(), bytes.size(), s.out, o);
            CHECK(o.askHook);
            CHECK(!o.opened);
            CHECK(s.out.empty());
            CHECK(s.m.phase() == Phase::AwaitingHook);
            CHECK(s.m.readyState() == ReadyState::Connecting);
            CHECK_EQ(s.m.request().target, std::string("/chat"));
            std::string more = frame(kText, "more", true);
            MachineOutput waiting;
            s.m.receive(more.data(), more.size(), s.out, waiting);
            CHECK(waiting.empty());
            MachineOutput answer;
            s.m.answerHook(true, 0, "", s.out, answer);
            CHECK(answer.opened);
            CHECK_EQ(s.out.compare(0, 12, "HTTP/1.1 101"), 0);
            MachineOutput after;
            s.m.afterOpen(T0, s.out, after);
            CHECK_EQ(after.events.size(), size_t(2));
            // A second answer is ignored.
            MachineOutput twice;
            s.m.answerHook(false, 403, "no", s.out, twice);
            CHECK(twice.empty());
        }
        // Rejected, with a status out of range.
        for (int status : {403, 42})
        {
            Server s(serverConfig(true));
            MachineOutput o;
            s.m.receive(kRequest.data(), kRequest.size(), s.out, o);
            MachineOutput answer;
            s.m.answerHook(false, status, "Go away", s.out, answer);
            const int expected = status == 42 ? 500 : status;
            CHECK(answer.failed);
            CHECK_EQ(answer.failure.http_status, expected);
            CHECK_EQ(s.out.compare(0, 12, "HTTP/1.1 " + std::to_string(expected)), 0);
            CHECK(answer.teardown == Teardown::DrainIfUnsent);
        }
        // No answer in time: 503.
        {
            Server s(serverConfig(true));
            MachineOutput o;
            s.m.receive(kRequest.data(), kRequest.size(), s.out, o);
            MachineOutput late;
            s.m.onTime(T0 + seconds(5), s.out, late);
            CHECK(late.failed);
            CHECK_EQ(late.failure.http_status, 503);
            CHECK_EQ(late.failure.errorStr, std::string("Handshake hook timed out"));
            CHECK_EQ(s.out.compare(0, 12, "HTTP/1.1 503"), 0);
        }
        // Too much before the answer: 400.
        {
            Server s(serverConfig(true));
            MachineOutput o;
            s.m.receive(kRequest.data(), kRequest.size(), s.out, o);
            std::string flood(20000, 'x');
            MachineOutput tooMuch;
            s.m.receive(flood.data(), flood.size(), s.out, tooMuch);
            CHECK(tooMuch.failed);
            CHECK_EQ(tooMuch.failure.http_status, 400);
            CHECK_EQ(tooMuch.failure.errorStr, std::string("Too much data before the handshake was answered"));
        }
    }

    void testRejecting()
    {
        ConnectionMachine plain(serverConfig());
        std::string out;
        MachineOutput o;
        plain.startRejecting(T0, "HTTP/1.1 503 Busy\r\n\r\n", out, o);
        CHECK_EQ(out, std::string("HTTP/1.1 503 Busy\r\n\r\n"));
        CHECK(o.teardown == Teardown::Drain);
        MachineOutput ignored;
        plain.receive(kRequest.data(), kRequest.size(), out, ignored);
        CHECK(ignored.empty());

        ConnectionMachine tls(serverConfig(false, true));
        std::string tout;
        MachineOutput t;
        tls.startRejecting(T0, "HTTP/1.1 503 Busy\r\n\r\n", tout, t);
        CHECK(t.teardown == Teardown::None);
        CHECK(tls.nextDeadline() == T0 + milliseconds(1000)); // bounded by closeTimeoutMs
        MachineOutput done;
        tls.secured(tout, done);
        CHECK(done.teardown == Teardown::Drain);

        ConnectionMachine slow(serverConfig(false, true));
        MachineOutput s;
        slow.startRejecting(T0, "x", tout, s);
        MachineOutput timeout;
        slow.onTime(T0 + seconds(1), tout, timeout);
        CHECK(timeout.failed);
        CHECK_EQ(timeout.failure.errorStr, std::string("TLS handshake timed out"));
    }

    // ------------------------------------------------------------------ open

    void testPeerClosesThenDrain()
    {
        Server s;
        s.open();
        std::string close = frame(kClose, closePayload(1000, "done"), true);
        MachineOutput o;
        s.m.receive(close.data(), close.size(), s.out, o);
        CHECK_EQ(o.events.size(), size_t(1));
        CHECK(o.events[0].kind == Kind::Close);
        CHECK(o.events[0].remote);
        CHECK(o.teardown == Teardown::Drain);
        auto echoed = frames(s.out);
        CHECK_EQ(echoed.size(), size_t(1));
        CHECK_EQ(closeCodeOf(echoed[0]), uint16_t(1000));
        s.m.draining(T0);
        CHECK(s.m.phase() == Phase::Draining);
        CHECK(s.m.readyState() == ReadyState::Closed);
        CHECK(s.m.nextDeadline() == T0 + milliseconds(1000));
        // Input while draining is dropped; the peer's FIN or the deadline ends it.
        MachineOutput drop;
        std::string more = frame(kText, "late", true);
        s.m.receive(more.data(), more.size(), s.out, drop);
        CHECK(drop.empty());
        MachineOutput fin;
        s.m.peerGone("", fin);
        CHECK(fin.teardown == Teardown::Close);
        MachineOutput deadline;
        s.m.onTime(T0 + milliseconds(1000), s.out, deadline);
        CHECK(deadline.teardown == Teardown::Close);
    }

    void testOurCloseAnsweredOrNot()
    {
        // Answered: the peer's Close completes the handshake.
        {
            Client c;
            c.open();
            c.out.clear();
            MachineOutput o;
            CHECK(c.m.close(1000, "bye", T0, true, c.out, o));
            CHECK(o.empty());
            CHECK(c.m.readyState() == ReadyState::Closing);
            CHECK(c.m.nextDeadline() == T0 + milliseconds(1000));
            auto sent = frames(c.out);
            CHECK_EQ(sent.size(), size_t(1));
            CHECK_EQ(sent[0].opcode, uint8_t(kClose));
            std::string reply = frame(kClose, closePayload(1000), false);
            MachineOutput r;
            c.m.receive(reply.data(), reply.size(), c.out, r);
            CHECK(r.teardown == Teardown::Drain);
            CHECK_EQ(r.events.size(), size_t(1));
            CHECK_EQ(r.events[0].code, uint16_t(1000));
            CHECK(c.m.nextDeadline() == TimePoint::max()); // until draining() starts its own
        }
        // Unanswered: at the deadline our status is reported and the socket closes.
        {
            Client c;
            c.open();
            MachineOutput o;
            c.m.close(4000, "custom", T0, true, c.out, o);
            MachineOutput early;
            c.m.onTime(T0 + milliseconds(999), c.out, early);
            CHECK(early.empty());
            MachineOutput t;
            c.m.onTime(T0 + milliseconds(1000), c.out, t);
            CHECK(t.teardown == Teardown::Close);
            CHECK_EQ(t.events.size(), size_t(1));
            CHECK_EQ(t.events[0].code, uint16_t(4000));
            CHECK_EQ(t.events[0].reason, std::string("custom"));
        }
        // Without a deadline (the caller bounds the wait), and a second close.
        {
            Client c;
            c.open();
            MachineOutput o;
            c.m.close(1000, "", T0, false, c.out, o);
            CHECK(c.m.nextDeadline() == TimePoint::max());
            c.out.clear();
            CHECK(c.m.close(1000, "", T0, true, c.out, o));
            CHECK(c.out.empty()); // closing already
        }
        // The peer goes away while we wait: our status stands.
        {
            Client c;
            c.open();
            MachineOutput o;
            c.m.close(1001, "away", T0, true, c.out, o);
            MachineOutput gone;
            c.m.peerGone("", gone);
            CHECK(gone.teardown == Teardown::Close);
            CHECK_EQ(gone.events[0].code, uint16_t(1001));
        }
    }

    void testPeerLost()
    {
        Server s;
        s.open();
        MachineOutput o;
        s.m.peerGone("", o);
        CHECK(o.teardown == Teardown::Close);
        CHECK_EQ(o.events.size(), size_t(1));
        CHECK_EQ(o.events[0].code, uint16_t(CC::kAbnormalCloseCode));
        CHECK_EQ(o.events[0].reason, CC::kAbnormalCloseMessage);
        s.m.closed();
        CHECK(s.m.readyState() == ReadyState::Closed);
        MachineOutput after;
        s.m.peerGone("", after);
        CHECK(after.empty());
    }

    void testHeldFailure()
    {
        // A valid message, then a bad frame: the message is delivered first and
        // the failure waits for afterDelivery().
        std::string bytes = frame(kText, "first", true) + frame(0x3, "", true);
        {
            Server s;
            s.open();
            MachineOutput o;
            s.m.receive(bytes.data(), bytes.size(), s.out, o);
            CHECK_EQ(o.events.size(), size_t(1));
            CHECK(o.heldFailure);
            CHECK(o.teardown == Teardown::None);
            CHECK(s.out.empty()); // no Close yet: replies may precede it
            MachineOutput after;
            s.m.afterDelivery(T0, s.out, after);
            CHECK(after.teardown == Teardown::Drain);
            CHECK_EQ(after.events.size(), size_t(1));
            CHECK(after.events[0].kind == Kind::Close);
            CHECK_EQ(after.events[0].code, uint16_t(1002));
            auto sent = frames(s.out);
            CHECK_EQ(sent.size(), size_t(1));
            CHECK_EQ(closeCodeOf(sent[0]), uint16_t(1002));
        }
        // With acknowledgements: it waits for them...
        {
            MachineConfig c = serverConfig();
            c.ackDeliveries = true;
            Server s(c);
            s.open();
            MachineOutput o;
            s.m.receive(bytes.data(), bytes.size(), s.out, o);
            MachineOutput after;
            s.m.afterDelivery(T0, s.out, after);
            CHECK(after.empty());
            CHECK(s.m.nextDeadline() == T0 + milliseconds(1000));
            CHECK(s.m.acknowledge(1)); // a failure waits: the caller must call acknowledged()
            MachineOutput acked;
            s.m.acknowledged(T0, s.out, acked);
            CHECK(acked.teardown == Teardown::Drain);
            CHECK_EQ(closeCodeOf(frames(s.out).at(0)), uint16_t(1002));
        }
        // ...or for the deadline.
        {
            MachineConfig c = serverConfig();
            c.ackDeliveries = true;
            Server s(c);
            s.open();
            CHECK(!s.m.acknowledge(5)); // nothing waits; more than delivered is harmless
            MachineOutput o;
            s.m.receive(bytes.data(), bytes.size(), s.out, o);
            MachineOutput after;
            s.m.afterDelivery(T0, s.out, after);
            MachineOutput t;
            s.m.onTime(T0 + milliseconds(1000), s.out, t);
            CHECK(t.teardown == Teardown::Drain);
        }
    }

    void testHeartbeatUpstreamRule()
    {
        MachineConfig c = clientConfig();
        c.pingIntervalSecs = 10;
        Client cl(c);
        cl.out.clear();
        MachineOutput o;
        std::string answer = answerFor(cl.m.clientRequest());
        cl.m.receive(answer.data(), answer.size(), cl.out, o);
        MachineOutput after;
        cl.m.afterOpen(T0, cl.out, after);
        auto sent = frames(cl.out);
        CHECK_EQ(sent.size(), size_t(1));
        CHECK_EQ(sent[0].opcode, uint8_t(kPing));
        CHECK_EQ(sent[0].payload, std::string("ixwebsocket::heartbeat::10s::0"));
        CHECK(cl.m.nextDeadline() == T0 + seconds(10));
        // A pong came: the next heartbeat pings again.
        std::string pong = frame(kPong, sent[0].payload, false);
        MachineOutput p;
        cl.m.receive(pong.data(), pong.size(), cl.out, p);
        cl.out.clear();
        MachineOutput beat;
        cl.m.onTime(T0 + seconds(10), cl.out, beat);
        CHECK_EQ(frames(cl.out).at(0).payload, std::string("ixwebsocket::heartbeat::10s::1"));
        // No pong by the next one: close 1011 "Ping timeout".
        cl.out.clear();
        MachineOutput timeout;
        cl.m.onTime(T0 + seconds(20), cl.out, timeout);
        auto closing = frames(cl.out);
        CHECK_EQ(closing.size(), size_t(1));
        CHECK_EQ(closeCodeOf(closing[0]), uint16_t(1011));
        CHECK_EQ(closing[0].payload.substr(2), CC::kPingTimeoutMessage);
        CHECK(cl.m.nextDeadline() == T0 + seconds(21)); // the close handshake's deadline
    }

    void testHeartbeatDeadlineRule()
    {
        MachineConfig c = serverConfig();
        c.pingIntervalSecs = 10;
        c.pingTimeoutSecs = 3;
        c.pingMessage = "hb";
        // Traffic before the deadline keeps the connection.
        {
            Server s(c);
            s.open();
            CHECK_EQ(frames(s.out).at(0).payload, std::string("hb"));
            CHECK(s.m.nextDeadline() == T0 + seconds(3));
            std::string msg = frame(kText, "alive", true);
            MachineOutput o;
            s.m.receive(msg.data(), msg.size(), s.out, o);
            s.out.clear();
            MachineOutput t;
            s.m.onTime(T0 + seconds(3), s.out, t);
            CHECK(s.out.empty());
            CHECK(s.m.nextDeadline() == T0 + seconds(10));
            MachineOutput beat;
            s.m.onTime(T0 + seconds(10), s.out, beat);
            CHECK_EQ(frames(s.out).at(0).opcode, uint8_t(kPing));
            CHECK(s.m.nextDeadline() == T0 + seconds(13)); // a new deadline
        }
        // Silence: close 1011 at the deadline.
        {
            Server s(c);
            s.open();
            s.out.clear();
            MachineOutput t;
            s.m.onTime(T0 + seconds(3), s.out, t);
            auto sent = frames(s.out);
            CHECK_EQ(sent.size(), size_t(1));
            CHECK_EQ(closeCodeOf(sent[0]), uint16_t(1011));
            CHECK(s.m.readyState() == ReadyState::Closing);
        }
    }

    void testSessionDeadlinesEndWithTheSession()
    {
        MachineConfig c = serverConfig();
        c.pingIntervalSecs = 10;
        Server s(c);
        s.open();
        std::string close = frame(kClose, closePayload(1000), true);
        MachineOutput o;
        s.m.receive(close.data(), close.size(), s.out, o);
        CHECK(o.teardown == Teardown::Drain);
        CHECK(s.m.nextDeadline() == TimePoint::max()); // no more heartbeats
        s.m.draining(T0 + seconds(1));
        CHECK(s.m.nextDeadline() == T0 + seconds(2));
        s.m.closed();
        CHECK(s.m.nextDeadline() == TimePoint::max());
    }
} // namespace

int main()
{
    testClientPhases();
    testClientRequestWrittenEarly();
    testClientOpensWhateverTheSplit();
    testClientRefused();
    testClientHandshakeTimeout();
    testClientTls();
    testClientCancelAndLoss();
    testServerOpens();
    testServerRefuses();
    testServerHandshakeTimeout();
    testHandshakeHook();
    testRejecting();
    testPeerClosesThenDrain();
    testOurCloseAnsweredOrNot();
    testPeerLost();
    testHeldFailure();
    testHeartbeatUpstreamRule();
    testHeartbeatDeadlineRule();
    testSessionDeadlinesEndWithTheSession();
    return CHECK_REPORT();
}
