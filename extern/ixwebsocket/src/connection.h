#pragma once
// One WebSocket connection on an event loop, for either role: the TCP socket,
// the opening handshake, then a WsSession, and an orderly TCP teardown.
//
// Threads: I/O, timers and owner notifications happen on the loop thread.
// sendMessage/sendControl/close/readyState/bufferedAmount may be called from any
// thread; they take the connection's mutex and write directly to the socket when
// nothing is queued (write-first; EPOLLOUT is armed only after a short write).
// Owner callbacks never run with that mutex held, so they may call back in.
#include "event_loop.h"
#include "handshake.h"
#include "tls_context.h"
#include "url.h"
#include "ws_session.h"
#include "ixwebsocket/IXWebSocket.h"
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

struct addrinfo;

namespace ix::detail
{
    // What a connection reports, on the loop thread.
    class ConnectionOwner
    {
    public:
        virtual ~ConnectionOwner() = default;
        // Handshake done; the session is open. Client: the response; server: the request.
        // The result is the owner's to keep (moved, not copied).
        virtual void onConnectionOpen(WebSocketInitResult&& result) = 0;
        // The attempt ended before a session existed (connect, TLS or HTTP failure,
        // timeout, or close() during the handshake).
        virtual void onConnectionFailed(const WebSocketInitResult& result) = 0;
        // Session events in order; the last one of a connection is its Close.
        virtual void onSessionEvents(std::vector<SessionEvent>& events) = 0;
    };

    class Connection;

    struct ConnectionOptions
    {
        Role role = Role::Client;
        bool autoPong = true;
        uint64_t maxMessageSize = 0;
        int handshakeTimeoutMs = 60000;
        int closeTimeoutMs = 1000;   // wait for the peer's Close, then for its FIN
        int pingIntervalSecs = -1;   // heartbeat; <= 0: off
        int pingTimeoutSecs = -1;    // <= 0: the interval (upstream's rule)
        std::string pingMessage;     // empty: "ixwebsocket::heartbeat::<i>s::<n>"
        size_t maxHeadSize = 16384;  // HTTP head limit (431 above it)
        // Set: the socket is wrapped in TLS (client: wss/https URLs; server: tls on).
        std::shared_ptr<TlsContext> tls;
        // The owner acknowledges delivered events (acknowledge()); a protocol
        // failure then waits for the acknowledgements of the events before it.
        bool ackDeliveries = false;
        // Slow consumers (see WebSocket::setSendBufferLimit); 0: no limit.
        size_t sendBufferLimit = 0;
        int slowConsumerPolicy = 0; // SlowConsumerPolicy: 0 drop, 1 block, 2 close
        int sendTimeoutMs = 5000;
        // Server: the accepted socket has TCP_NODELAY already (inherited from
        // the listening socket), so acceptServer() need not set it.
        bool noDelayInherited = false;

        // Client
        std::string urlText;
        Url url;
        WebSocketHttpHeaders extraHeaders;
        std::vector<std::string> subprotocols;
        std::string extensionsOffer; // Sec-WebSocket-Extensions offer ("" = none)

        // Server (serverHandshake.deflate: the permessage-deflate policy)
        ServerHandshakeOptions serverHandshake;
        // When set, an upgrade request that passed validation is shown to the hook
        // (loop thread) before anything is answered; the connection then waits,
        // still bounded by handshakeTimeoutMs, for answerHandshake().
        std::function<void(const std::shared_ptr<Connection>&, const HttpHead& request)> handshakeHook;
        // When set, asked (loop thread) once an upgrade request passed validation,
        // before the hook or the 101: false answers 503 and fails the handshake
        // (the server's limit on established connections).
        std::function<bool()> admitSession;
    };

    class TlsStream;

    class Connection : public IoHandler, public std::enable_shared_from_this<Connection>
    {
    public:
        // Starts a client attempt (DNS, TCP connect, handshake). Any thread.
        static std::shared_ptr<Connection> connectClient(EventLoop& loop,
                                                         ConnectionOptions options,
                                                         std::shared_ptr<ConnectionOwner> owner);
        // The same in two steps for an owner on the loop thread: createClient()
        // makes the connection, startClient() (loop thread, after the owner has
        // stored the pointer: owner callbacks may run inside) starts it now,
        // saving connectClient's posted task and its loop round.
        static std::shared_ptr<Connection> createClient(EventLoop& loop,
                                                        ConnectionOptions options,
                                                        std::shared_ptr<ConnectionOwner> owner);
        void startClient();
        // Adopts an accepted, non-blocking socket and runs the server handshake.
        // Loop thread.
        static std::shared_ptr<Connection> acceptServer(EventLoop& loop,
                                                        int fd,
                                                        ConnectionOptions options,
                                                        std::shared_ptr<ConnectionOwner> owner);

        // Answers an accepted, non-blocking socket with an HTTP error (e.g. 503 over
        // maxConnections) and closes it gracefully. Loop thread.
        // With `tls`, the answer goes out after a TLS handshake (bounded by
        // closeTimeoutMs).
        static void rejectServer(EventLoop& loop, int fd, const std::string& response, int closeTimeoutMs,
                                 std::shared_ptr<TlsContext> tls = nullptr);

        ~Connection() override;

        // compress: deflate the message when permessage-deflate was negotiated.
        WebSocketSendInfo sendMessage(bool binary, const char* data, size_t size, bool compress = true);
        WebSocketSendInfo sendControl(uint8_t opcode, const char* data, size_t size);
        // Writes a frame prepared once for many connections (broadcast); frames
        // the payload itself when this session cannot share frames.
        WebSocketSendInfo sendPrepared(const std::string& frame, size_t headerSize, bool binary);
        // Writes what a send batch left queued (send_batch.cpp). Any thread.
        void flushBatched();
        // Starts the closing handshake (Open), or cancels the attempt (handshake).
        void close(uint16_t code, const std::string& reason);
        // Open connections only, any thread but the loop's: writes our Close now
        // from the calling thread (no loop wake-up) and arms no close timer, so
        // the caller bounds the wait for the peer's Close itself (then abort()).
        // Returns false, doing nothing, when the connection is not Open.
        bool closeOpenNow(uint16_t code, const std::string& reason);
        // Drops the TCP connection without a closing handshake (Close 1006).
        void abort(const std::string& reason);

        // The application has processed `count` more delivered events. Any thread.
        void acknowledge(size_t count);

        // Server with a handshake hook: writes the 101 and opens the session, or
        // answers an HTTP error (status 100..599, else 500) and closes. Loop
        // thread; ignored unless the connection waits for this answer.
        void answerHandshake(bool accept, int status, const std::string& reason);

        ReadyState readyState() const;
        size_t bufferedAmount() const;
        bool isOpen() const { return readyState() == ReadyState::Open; }

        void onIoEvents(uint32_t events) override;

    private:
        enum class Phase
        {
            Resolving,
            Connecting,
            Handshake,
            Open,     // the session decides Open/Closing
            Draining, // close handshake done: flush, FIN, wait for the peer's FIN
            Done
        };

        Connection(EventLoop& loop, ConnectionOptions options, std::shared_ptr<ConnectionOwner> owner);

        // Client phases
        void startResolve();
        void onResolved(addrinfo* list, const std::string& error);
        void connectNext();
        void onConnected(uint32_t events);
        void sendClientRequest();
        // Plain TCP, just after connect(): sends the request if the socket is
        // connected already (then Handshake); see connection.cpp.
        bool sendRequestIfConnected(int& error);
        void onClientHandshakeData(const char* data, size_t size);
        // Server phase
        void onServerHandshakeData(const char* data, size_t size);

        void openSession(WebSocketInitResult&& result, const char* rest, size_t restSize);
        void onSessionData(const char* data, size_t size);
        void afterSessionStep(std::vector<SessionEvent>& events);
        void handleReadable();
        void handleWritable();
        void onInput(const char* data, size_t size);
        // TLS (tls_stream): the handshake and reads, driven by readiness events.
        bool startTls();
        void driveTlsHandshake();
        void handleTlsReadable();
        void discardInput();
        void failHandshake(int httpStatus, const std::string& reason);
        void startDraining();
        // Reads to the peer's FIN (known to be in); false if it is not there yet.
        bool readUntilPeerEof();
        void finish(); // close the fd, leave the loop, release the owner
        void onTransportLost(const std::string& reason);
        void armCloseTimer();
        void heartbeat();
        void onPingDeadline();
        void commitPendingFailure();

        // The result of a send refused by the slow-consumer policy (closes first
        // for the Close policy). Without _mutex.
        WebSocketSendInfo refuseFull(size_t payloadSize, bool closeNow);

        // Under _mutex
        // Room for `bytes` more under the send-buffer limit, applying the slow
        // consumer policy (may wait on _drained, or start a 1008 close).
        bool admitLocked(std::unique_lock<std::mutex>& lock, size_t bytes, bool& closeNow);
        // After appending to _out: write now, or leave it to the thread's send batch.
        void writeOrBatchLocked();
        void writeDirectLocked(bool binary, const char* data, size_t size);
        bool flushLocked();
        ssize_t writeSomeLocked(const char* data, size_t size);
        void queueLocked(const std::string& bytes);
        void updateInterestLocked();
        // Our side is done (Draining): TLS close_notify and FIN, once.
        void shutdownWriteLocked();

        EventLoop& _loop;
        ConnectionOptions _options;
        std::shared_ptr<ConnectionOwner> _owner; // reset when Done

        mutable std::mutex _mutex;
        // Taken before _mutex by sendMessage: compression runs outside _mutex (the
        // loop thread keeps reading) yet frames leave in compression order.
        std::mutex _sendMutex;
        DeflateAgreement _deflate;   // negotiated in the handshake (loop thread)
        std::condition_variable _drained; // _out shrank (Block policy waits on it)
        bool _batched = false;            // queued in a thread's send batch
        int _fd = -1;
        std::atomic<Phase> _phase {Phase::Resolving};
        std::string _out;          // bytes not yet written
        size_t _outOffset = 0;
        bool _wantWrite = false;   // EPOLLOUT armed
        bool _writeFailed = false;
        bool _registered = false;
        bool _shutdownSent = false; // shutdownWriteLocked() ran
        bool _peerShutDown = false; // EPOLLRDHUP/EPOLLHUP seen: the peer's FIN is in (loop thread)
        std::unique_ptr<WsSession> _session;
        std::unique_ptr<TlsStream> _tls; // with options.tls; reset when the fd closes
        bool _tlsPending = false;        // TLS handshake not finished yet (set under _mutex)
        std::vector<SessionEvent> _events; // reused per step (loop thread)

        // Handshake
        std::unique_ptr<HttpHeadParser> _head;
        std::string _clientKey;
        addrinfo* _addresses = nullptr;
        addrinfo* _nextAddress = nullptr;
        std::string _connectError;
        EventLoop::TimerId _handshakeTimer = 0;
        EventLoop::TimerId _closeTimer = 0;
        EventLoop::TimerId _pingTimer = 0;
        bool _cancelled = false;
        uint16_t _closeCode = 0;     // our Close, for a timed-out handshake
        std::string _closeReason;
        bool _pongReceived = true;
        bool _peerActive = false;    // bytes received since the deadline was armed
        EventLoop::TimerId _pingDeadlineTimer = 0; // pingTimeoutSecs after a heartbeat
        // Server handshake hook: waiting for answerHandshake()
        bool _awaitingHook = false;
        std::string _pendingResponse; // the 101 to write on accept
        WebSocketInitResult _pendingResult;
        std::string _early;           // bytes that followed the request
        uint64_t _heartbeatCount = 0;
        // Delivered, not yet acknowledged. Atomic so that acknowledge() needs no
        // loop wake-up unless a failure is waiting for it (_awaitingAcks).
        std::atomic<size_t> _unacked {0};
        std::atomic<bool> _awaitingAcks {false};
        EventLoop::TimerId _failureTimer = 0;
    };
} // namespace ix::detail
