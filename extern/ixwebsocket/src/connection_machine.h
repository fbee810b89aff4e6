#pragma once
// The lifecycle of one WebSocket connection, either role, Sans-I/O: fed the
// transport's milestones (resolved, connected, secured), bytes from the peer,
// the peer's end and the current time; it appends bytes for the peer to the
// caller's output string and reports, in a MachineOutput, what the caller must
// do: tell the owner (opened, failed, session events, a handshake hook), and
// how to end the transport (drain: FIN after our last byte, then wait for the
// peer's FIN; or close now). It owns every deadline of a connection (handshake
// in both roles, the handshake hook's answer, the close handshake, a failure
// held back for acknowledgements, draining, heartbeat pings and their
// timeout); nextDeadline() says when to call onTime() next.
//
// After the opening handshake it drives a WsSession (ws_session.h). Threads:
// none of its own. The caller serialises calls (connection.cpp holds its mutex)
// except acknowledge(), which is thread-safe.
#include "handshake.h"
#include "http_head.h"
#include "url.h"
#include "ws_session.h"
#include "ixwebsocket/IXWebSocket.h"
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ix::detail
{
    using MachineClock = std::chrono::steady_clock;
    using TimePoint = MachineClock::time_point;

    // How the transport ends after a step.
    enum class Teardown
    {
        None,
        Drain,         // flush, FIN after the last byte, discard input until the peer's FIN (bounded)
        DrainIfUnsent, // a server's failed handshake: Drain while its answer (HTTP
                       // error or TLS alert) may still be in flight, else Close
        Close          // close the socket now
    };

    // What the caller does after a step, in this order: teardown, failure,
    // hook, opened (then afterOpen()), events (then afterDelivery() when
    // heldFailure).
    struct MachineOutput
    {
        Teardown teardown = Teardown::None;
        bool failed = false;
        WebSocketInitResult failure;
        bool askHook = false; // show request() to the handshake hook
        bool opened = false;
        WebSocketInitResult openResult;
        std::vector<SessionEvent> events;
        bool heldFailure = false; // a protocol failure waits for the events before it

        bool empty() const
        {
            return teardown == Teardown::None && !failed && !askHook && !opened && events.empty() &&
                   !heldFailure;
        }
    };

    struct MachineConfig
    {
        Role role = Role::Client;
        bool autoPong = true;
        uint64_t maxMessageSize = 0;
        int handshakeTimeoutMs = 60000;
        int closeTimeoutMs = 1000;  // wait for the peer's Close, then for its FIN
        int pingIntervalSecs = -1;  // heartbeat; <= 0: off
        int pingTimeoutSecs = -1;   // <= 0: a pong by the next heartbeat (upstream's rule)
        std::string pingMessage;    // empty: "ixwebsocket::heartbeat::<i>s::<n>"
        size_t maxHeadSize = 16384; // HTTP head limit (431 above it)
        bool tls = false;           // a TLS handshake precedes the HTTP one
        // Failures after delivered events wait for acknowledge() of those
        // events (or closeTimeoutMs); otherwise for the owner's callbacks.
        bool ackDeliveries = false;
        // Client
        std::string urlText;
        Url url;
        WebSocketHttpHeaders extraHeaders;
        std::vector<std::string> subprotocols;
        std::string extensionsOffer;
        // Server
        ServerHandshakeOptions serverHandshake;
        bool handshakeHook = false; // a valid request waits for answerHook()
        // Asked once a request passed validation, before the hook or the 101:
        // false answers 503 (the server's limit on established connections).
        std::function<bool()> admitSession;
    };

    class ConnectionMachine
    {
    public:
        enum class Phase
        {
            Idle,         // created, not started
            Resolving,    // client: name resolution
            Connecting,   // client: TCP connect
            Securing,     // TLS handshake
            Handshake,    // HTTP upgrade
            AwaitingHook, // server: the hook has the request
            Open,         // the session decides Open/Closing
            Draining,     // our side is done: FIN after the last byte, wait for the peer's
            Done
        };

        explicit ConnectionMachine(MachineConfig config);

        // ---- client
        void startClient(TimePoint now); // Idle -> Resolving; the handshake deadline starts
        void resolved();                 // Resolving -> Connecting
        // The upgrade request of this attempt (its key is made once).
        const std::string& clientRequest();
        // The TCP connection is up. Plain: the request goes to `out` unless the
        // caller wrote it already; TLS: Securing.
        void connected(std::string& out, bool requestWritten);
        // ---- server
        void startServer(TimePoint now); // Idle -> Securing (TLS) or Handshake
        // Answers with `response` and ends (503 over maxConnections): over TLS
        // after the TLS handshake, bounded by closeTimeoutMs.
        void startRejecting(TimePoint now, const std::string& response, std::string& out, MachineOutput& o);
        // The handshake hook's answer (status 100..599, else 500).
        void answerHook(bool accept, int status, const std::string& reason, std::string& out, MachineOutput& o);
        // The request shown to the hook (valid while AwaitingHook).
        const HttpHead& request() const;
        // ---- both
        void secured(std::string& out, MachineOutput& o); // the TLS handshake is done
        void receive(const char* data, size_t size, std::string& out, MachineOutput& o);
        // After `opened` was reported: the heartbeat starts and bytes that came
        // with the handshake are processed.
        void afterOpen(TimePoint now, std::string& out, MachineOutput& o);
        // After events were delivered with heldFailure set: the failure goes out
        // now, or waits for acknowledgements (bounded by closeTimeoutMs).
        void afterDelivery(TimePoint now, std::string& out, MachineOutput& o);
        // The attempt failed in the transport (DNS, connect, TLS setup).
        void fail(int httpStatus, const std::string& reason, MachineOutput& o);
        // The TLS handshake failed with `error`.
        void secureFailed(const std::string& error, MachineOutput& o);
        // The peer is gone: EOF, reset or a failed write. `tlsError`: a TLS
        // error that ended it (reported as such during the HTTP handshake).
        void peerGone(const std::string& tlsError, MachineOutput& o);
        // Starts the closing handshake (Open; with a deadline unless
        // armDeadline is false: the caller then bounds the wait itself), or
        // cancels the attempt. Returns false when not Open (nothing written)
        // for the caller of closeOpenNow.
        bool close(uint16_t code, const std::string& reason, TimePoint now, bool armDeadline, std::string& out,
                   MachineOutput& o);
        // Deadlines due at `now`.
        void onTime(TimePoint now, std::string& out, MachineOutput& o);
        // The caller applied the teardown: draining (deadline closeTimeoutMs) or closed.
        void draining(TimePoint now);
        void closed();

        // The application has handled `count` more delivered events. Thread-safe.
        // True when a held failure waits for them: call acknowledged() on the
        // caller's thread of record.
        bool acknowledge(size_t count);
        void acknowledged(TimePoint now, std::string& out, MachineOutput& o);

        // TimePoint::max() when nothing is due.
        TimePoint nextDeadline() const;
        Phase phase() const { return _phase; }
        ReadyState readyState() const;
        // Set once when Open begins; lives as long as the machine.
        WsSession* session() const { return _session.get(); }
        const MachineConfig& config() const { return _config; }

    private:
        void clientHandshakeData(const char* data, size_t size, std::string& out, MachineOutput& o);
        void serverHandshakeData(const char* data, size_t size, std::string& out, MachineOutput& o);
        bool tooEarly(size_t bytes, std::string& out, MachineOutput& o);
        void failHandshake(int httpStatus, const std::string& reason, MachineOutput& o);
        void answerError(int status, const std::string& reason, std::string& out, MachineOutput& o);
        void open(WebSocketInitResult&& result, const char* rest, size_t restSize, MachineOutput& o);
        void sessionData(const char* data, size_t size, std::string& out, MachineOutput& o);
        void afterSessionStep(MachineOutput& o);
        void commitFailure(std::string& out, MachineOutput& o);
        void startClose(uint16_t code, const std::string& reason, TimePoint now, bool armDeadline,
                        std::string& out);
        void heartbeat(TimePoint now, std::string& out);
        void clearSessionDeadlines();

        MachineConfig _config;
        Phase _phase = Phase::Idle;
        bool _rejecting = false; // startRejecting(): no handshake, only the answer
        bool _failed = false;    // the handshake failure was reported
        std::unique_ptr<HttpHeadParser> _head;
        std::string _clientKey;
        std::string _request;    // the client's upgrade request
        std::unique_ptr<WsSession> _session;
        DeflateAgreement _deflate;
        // Server with a hook: what accepting writes and reports.
        std::string _pendingResponse;
        WebSocketInitResult _pendingResult;
        std::string _early; // bytes that followed the handshake (hook wait, or until afterOpen)
        uint16_t _closeCode = 0; // our Close, reported when the peer never answers
        std::string _closeReason;
        // Heartbeat
        bool _pongReceived = true;
        bool _peerActive = false; // bytes received since the ping deadline was armed
        uint64_t _heartbeatCount = 0;
        // Deadlines (TimePoint::max(): not armed)
        TimePoint _handshakeDeadline = TimePoint::max();
        TimePoint _closeDeadline = TimePoint::max();
        TimePoint _failureDeadline = TimePoint::max();
        TimePoint _pingDue = TimePoint::max();
        TimePoint _pingDeadline = TimePoint::max();
        // Delivered, not yet acknowledged (ackDeliveries). Atomic so that
        // acknowledge() needs no lock unless a failure waits for it.
        std::atomic<size_t> _unacked {0};
        std::atomic<bool> _awaitingAcks {false};
    };
} // namespace ix::detail
