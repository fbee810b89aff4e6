// ConnectionMachine up to the open session, both roles, without sockets:
// resolving, connecting, TLS, the HTTP upgrade fed whole and in pieces, the
// handshake hook, rejections, timeouts, cancellation and a lost peer.
#include "machine_fixtures.h"

using namespace machine_test;

namespace
{
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
            // Over the server's limit on established connections: 503 at admission.
            MachineConfig c = serverConfig(true);
            int asked = 0;
            c.admitSession = [&asked] { return ++asked > 1; };
            Server s(c);
            MachineOutput o;
            s.m.receive(kRequest.data(), kRequest.size(), s.out, o);
            CHECK_EQ(asked, 1);
            CHECK(o.failed && !o.askHook);
            CHECK_EQ(o.failure.http_status, 503);
            CHECK_EQ(o.failure.errorStr, std::string("Too many connections"));
            CHECK(s.out.find("Retry-After: 1\r\n") != std::string::npos);
            Server admitted(c);
            MachineOutput ok;
            admitted.m.receive(kRequest.data(), kRequest.size(), admitted.out, ok);
            CHECK(ok.askHook);
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
        CHECK_EQ(s.out.compare(0, 28, "HTTP/1.1 408 Request Timeout"), 0); // answered, not a silent close
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
    return CHECK_REPORT();
}
