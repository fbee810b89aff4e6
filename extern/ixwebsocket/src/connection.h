#pragma once
// One WebSocket connection on an event loop, for either role: it wires a
// ConnectionMachine (the lifecycle, Sans-I/O) to a Stream (plain or TLS), an
// OutputBuffer and, for clients, a Dialer, and tells its owner what happened.
// How a connection comes up (client dialing, server accept and reject, TLS
// start) is in connection_setup.cpp; the rest in connection.cpp.
//
// Threads: I/O, timers and owner notifications happen on the loop thread.
// sendMessage/sendControl/close/readyState/bufferedAmount may be called from any
// thread; they take the connection's mutex and write directly to the socket when
// nothing is queued (write-first; EPOLLOUT is armed only after a short write).
// Owner callbacks never run with that mutex held, so they may call back in.
#include "connection_machine.h"
#include "dialer.h"
#include "event_loop.h"
#include "output_buffer.h"
#include "send_batch.h"
#include "stream.h"
#include "tls_context.h"
#include "ixwebsocket/IXWebSocket.h"
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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
        SlowConsumerPolicy slowConsumerPolicy = SlowConsumerPolicy::Drop;
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

    class Connection : public IoHandler, public BatchedWriter, public std::enable_shared_from_this<Connection>
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
        void flushBatched() override;
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
        using Phase = ConnectionMachine::Phase;

        Connection(EventLoop& loop, ConnectionOptions options, std::shared_ptr<ConnectionOwner> owner);

        // ---- coming up (connection_setup.cpp)
        void onResolved(addrinfo* list, const std::string& error);
        void connectNext();
        // Plain TCP, just after connect(): sends the request if the socket is
        // connected already (then Handshake); see connection_setup.cpp.
        bool sendRequestIfConnected(int& error);
        void onConnected(uint32_t events);
        void adoptSocket(int fd, bool writeInterest); // registers fd on the loop
        bool startTls();
        void driveTlsHandshake();

        // ---- running (connection.cpp)
        // Runs one machine call under the mutex, writes what it queued, then
        // acts on its output without the mutex (settle).
        template <class MachineCall>
        void step(MachineCall&& call)
        {
            // Owner code run by settle() may start another step: that one gets
            // its own output.
            MachineOutput nested;
            MachineOutput& o = _stepping ? nested : _step;
            const bool outermost = !_stepping;
            _stepping = true;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                call(o);
                // A server's 101 waits until the owner has seen the connection
                // open: a client that has it finds the connection in getClients().
                if (!o.opened) _output.flushAndUpdate();
            }
            settle(o);
            if (outermost) _stepping = false;
        }
        void settle(MachineOutput& o);
        void applyTeardown(Teardown teardown);
        void startDraining();
        void finish(); // close the socket, leave the loop, release the owner
        void syncTimer();
        void onDeadline();
        void readAvailable(); // the read loop, plain or TLS
        void handleWritable();
        void postPeerGone(); // after a failed write on another thread

        // The result of a send refused by the slow-consumer policy (closes first
        // for the Close policy). Without _mutex.
        WebSocketSendInfo refuseFull(size_t payloadSize, bool closeNow);
        // After appending to the output: write now, or enlist in the thread's batch.
        void writeOrBatchLocked();

        EventLoop& _loop;
        ConnectionOptions _options;
        std::shared_ptr<ConnectionOwner> _owner; // reset when Done

        mutable std::mutex _mutex;
        // Taken before _mutex by sendMessage: compression runs outside _mutex (the
        // loop thread keeps reading) yet frames leave in compression order.
        std::mutex _sendMutex;
        // Under _mutex; phase changes happen on the loop thread only, which may
        // therefore read the phase without it.
        ConnectionMachine _machine;
        OutputBuffer _output;          // under _mutex
        std::unique_ptr<Stream> _stream; // set and reset under _mutex, on the loop thread
        int _fd = -1;
        bool _registered = false;
        bool _peerShutDown = false; // EPOLLRDHUP/EPOLLHUP seen: the peer's FIN is in (loop thread)
        std::unique_ptr<Dialer> _dialer; // client (loop thread)

        // Loop thread
        MachineOutput _step;    // reused by the outermost step (no allocation per read)
        bool _stepping = false; // a step is being settled (owner code may start another)
        EventLoop::TimerId _timer = 0;
        TimePoint _timerAt = TimePoint::max();
    };
} // namespace ix::detail
