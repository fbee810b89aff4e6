#pragma once
// The state behind one ix::WebSocket: its configuration, the current
// Connection, reconnection with backoff, and the delivery of events to the
// application's callback. Client objects run on EventLoop::shared(); the
// server's per-connection objects run on their server's loop.
#include "connection.h"
#include "event_loop.h"
#include "ixwebsocket/IXWebSocket.h"
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

namespace ix::detail
{
    class WebSocketCore : public ConnectionOwner, public std::enable_shared_from_this<WebSocketCore>
    {
    public:
        explicit WebSocketCore(EventLoop& loop, bool serverSide);

        // ---- configuration (guarded by configMutex; applied at the next connect)
        mutable std::mutex configMutex;
        std::string url;
        WebSocketHttpHeaders extraHeaders;
        WebSocketPerMessageDeflateOptions deflateOptions;
        SocketTLSOptions tlsOptions;
        std::string pingMessage;
        SendMessageKind pingKind = SendMessageKind::Ping;
        int pingIntervalSecs = -1;
        int pingTimeoutSecs = -1;
        bool pongEnabled = true;
        std::vector<std::string> subprotocols;
        size_t maxMessageSize = 0;
        bool ackDeliveries = false;
        size_t sendBufferLimit = 0;
        SlowConsumerPolicy slowConsumerPolicy = SlowConsumerPolicy::Drop;
        int sendTimeoutMs = 5000;
        std::atomic<int> handshakeTimeoutSecs {60};
        std::atomic<bool> autoReconnect {true};
        std::atomic<uint32_t> minWaitMs {1};
        std::atomic<uint32_t> maxWaitMs {10000};

        // ---- callback
        void setCallback(const OnMessageCallback& callback);
        bool hasCallback() const;
        static void setTrafficTracker(const OnTrafficTrackerCallback& tracker);

        // ---- lifecycle (any thread)
        void start();
        // start(), then waits for the first attempt (handshake budget timeoutSecs)
        // and returns its result; its Open or Error event is delivered as usual.
        WebSocketInitResult startAndWait(int timeoutSecs);
        void stop(uint16_t code, const std::string& reason);
        WebSocketInitResult connect(int timeoutSecs);
        void run();
        void close(uint16_t code, const std::string& reason);
        // Server side: attach the accepted connection.
        void attach(std::shared_ptr<Connection> connection);

        WebSocketSendInfo sendMessage(bool binary, const char* data, size_t size, bool compress = true);
        WebSocketSendInfo sendPing(const std::string& payload);
        ReadyState readyState() const;
        size_t bufferedAmount() const;
        std::shared_ptr<Connection> connection() const;
        EventLoop& loop() { return _loop; }
        bool isServerSide() const { return _serverSide; }

        // ---- ConnectionOwner (loop thread)
        void onConnectionOpen(WebSocketInitResult&& result) override;
        void onConnectionFailed(const WebSocketInitResult& result) override;
        void onSessionEvents(std::vector<SessionEvent>& events) override;

        // Called once the object's events must stop (destructor).
        void detach();

        // Server side: called on the loop once the connection is over (after its
        // Close event, or when the handshake failed). Set before attach().
        std::function<void(const WebSocketInitResult&)> onFinished;

    private:
        // One connection attempt (redirects included) within timeoutMs; a no-op
        // when stop() came after `generation` was taken. Loop thread.
        // Posts an attempt and waits for its result (connect, startAndWait).
        WebSocketInitResult waitForAttempt(std::unique_lock<std::mutex>& lock, int timeoutSecs);
        void attempt(int timeoutMs, uint64_t generation);
        // Connects to urlText for the current attempt. Loop thread.
        void launch(const std::string& urlText, int timeoutMs, uint64_t generation);
        // The attempt was abandoned by stop(): settle a waiting connect()/startAndWait().
        void abandonAttemptLocked();
        // A 3xx with a Location: follow it. Returns true when a new hop started;
        // otherwise `result` may have been replaced by the final error.
        bool followRedirect(WebSocketInitResult& result);
        void deliver(WebSocketMessageType type, const std::string& data, size_t wireSize,
                     WebSocketErrorInfo error, WebSocketOpenInfo open, WebSocketCloseInfo close,
                     bool binary, std::string* movable = nullptr);
        ConnectionOptions buildOptions(const std::string& urlText, int timeoutMs, std::string& error);

        EventLoop& _loop;
        const bool _serverSide;

        std::shared_ptr<const OnMessageCallback> _callback; // atomic_load/store
        static std::shared_ptr<const OnTrafficTrackerCallback> s_tracker;

        mutable std::mutex _stateMutex;
        std::condition_variable _stateChanged;
        std::shared_ptr<Connection> _connection;
        bool _running = false;        // start()ed and not stop()ped: keep reconnecting
        bool _attemptPending = false; // an attempt or a backoff wait is under way
        uint32_t _retries = 0;        // consecutive failures
        EventLoop::TimerId _retryTimer = 0;
        uint64_t _generation = 0;     // bumped by stop(): invalidates attempts and timers
        // The attempt under way: its generation, URL (after redirects), redirect
        // count and overall deadline (the handshake budget covers every hop).
        uint64_t _attemptGeneration = 0;
        std::string _attemptUrl;
        std::string _firstUrl;
        int _redirects = 0;
        std::chrono::steady_clock::time_point _attemptDeadline;
        // connect() / startAndWait(): the first attempt's result
        bool _syncPending = false;
        bool _syncDone = false;
        bool _syncEmits = false;      // startAndWait: events as with start()
        WebSocketInitResult _syncResult;
    };
} // namespace ix::detail
