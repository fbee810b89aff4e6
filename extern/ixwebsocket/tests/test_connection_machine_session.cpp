// ConnectionMachine once open, without sockets: the close handshake in both
// directions and its deadline, draining, a lost peer, a protocol failure held
// back for the events before it (and acknowledgements), and the heartbeat
// under both ping rules.
#include "machine_fixtures.h"

using namespace machine_test;

namespace
{
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
    testPeerClosesThenDrain();
    testOurCloseAnsweredOrNot();
    testPeerLost();
    testHeldFailure();
    testHeartbeatUpstreamRule();
    testHeartbeatDeadlineRule();
    testSessionDeadlinesEndWithTheSession();
    return CHECK_REPORT();
}
