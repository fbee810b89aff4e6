#pragma once
// ix::WebSocket: a client connection, or the server's object for one accepted
// connection. Same public API as upstream IXWebSocket; the implementation runs
// on a shared event loop instead of a thread per object.
#include "IXProgressCallback.h"
#include "IXSocketTLSOptions.h"
#include "IXWebSocketCloseConstants.h"
#include "IXWebSocketErrorInfo.h"
#include "IXWebSocketHttpHeaders.h"
#include "IXWebSocketInitResult.h"
#include "IXWebSocketMessage.h"
#include "IXWebSocketPerMessageDeflateOptions.h"
#include "IXWebSocketSendData.h"
#include "IXWebSocketSendInfo.h"
#include "IXWebSocketTransport.h"
#include "IXWebSocketVersion.h"
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ix
{
    enum class ReadyState
    {
        Connecting = 0,
        Open = 1,
        Closing = 2,
        Closed = 3
    };

#ifdef IXWS_ENGINE_EXTENSIONS
    // What a send does when the connection's send buffer is over its limit.
    enum class SlowConsumerPolicy
    {
        Drop = 0,
        Block = 1,
        Close = 2
    };
#endif

    using OnMessageCallback = std::function<void(const WebSocketMessagePtr&)>;
    using OnTrafficTrackerCallback = std::function<void(size_t size, bool incoming)>;

    namespace detail
    {
        class WebSocketCore;
        class Connection;
    }

    class WebSocket
    {
    public:
        WebSocket();
        ~WebSocket();
        WebSocket(const WebSocket&) = delete;
        WebSocket& operator=(const WebSocket&) = delete;

        void setUrl(const std::string& url);
        const std::string getUrl() const;
        void setExtraHeaders(const WebSocketHttpHeaders& headers);
        void setPerMessageDeflateOptions(const WebSocketPerMessageDeflateOptions& perMessageDeflateOptions);
        const WebSocketPerMessageDeflateOptions getPerMessageDeflateOptions() const;
        void enablePerMessageDeflate();
        void disablePerMessageDeflate();
        void setTLSOptions(const SocketTLSOptions& socketTLSOptions);
        void setPingMessage(const std::string& sendMessage, SendMessageKind pingType = SendMessageKind::Ping);
        const std::string getPingMessage() const;
        void setPingInterval(int pingIntervalSecs);
        int getPingInterval() const;
        void enablePong();
        void disablePong();
        void addSubProtocol(const std::string& subProtocol);
        const std::vector<std::string>& getSubProtocols();
        void setHandshakeTimeout(int handshakeTimeoutSecs);

        // Starts connecting (and reconnecting) in the background. Non-blocking.
        void start();
        // Closes and waits for the close handshake (bounded). Safe from callbacks.
        void stop(uint16_t code = WebSocketCloseConstants::kNormalClosureCode,
                  const std::string& reason = WebSocketCloseConstants::kNormalClosureMessage);
        // Synchronous handshake with a timeout in seconds.
        WebSocketInitResult connect(int timeoutSecs);
        // Blocks until the connection is closed and will not reconnect.
        void run();

        WebSocketSendInfo send(const std::string& data, bool binary = false,
                               const OnProgressCallback& onProgressCallback = nullptr);
        WebSocketSendInfo sendBinary(const std::string& data,
                                     const OnProgressCallback& onProgressCallback = nullptr);
        WebSocketSendInfo sendBinary(const IXWebSocketSendData& data,
                                     const OnProgressCallback& onProgressCallback = nullptr);
        WebSocketSendInfo sendText(const std::string& text,
                                   const OnProgressCallback& onProgressCallback = nullptr);
        WebSocketSendInfo sendUtf8Text(const std::string& text,
                                       const OnProgressCallback& onProgressCallback = nullptr);
        WebSocketSendInfo sendUtf8Text(const IXWebSocketSendData& text,
                                       const OnProgressCallback& onProgressCallback = nullptr);
        WebSocketSendInfo ping(const std::string& text, SendMessageKind pingType = SendMessageKind::Ping);

        void close(uint16_t code = WebSocketCloseConstants::kNormalClosureCode,
                   const std::string& reason = WebSocketCloseConstants::kNormalClosureMessage);

        void setOnMessageCallback(const OnMessageCallback& callback);
        bool isOnMessageCallbackRegistered() const;
        static void setTrafficTrackerCallback(const OnTrafficTrackerCallback& callback);
        static void resetTrafficTrackerCallback();

        ReadyState getReadyState() const;
        static std::string readyStateToString(ReadyState readyState);

        size_t bufferedAmount() const;

        void enableAutomaticReconnection();
        void disableAutomaticReconnection();
        bool isAutomaticReconnectionEnabled() const;
        void setMaxWaitBetweenReconnectionRetries(uint32_t maxWaitBetweenReconnectionRetries);
        void setMinWaitBetweenReconnectionRetries(uint32_t minWaitBetweenReconnectionRetries);
        uint32_t getMaxWaitBetweenReconnectionRetries() const;
        uint32_t getMinWaitBetweenReconnectionRetries() const;
        void setAutoThreadName(bool enabled);

#ifdef IXWS_ENGINE_EXTENSIONS
        // ----- ixws extensions (not in upstream) -----
        // Largest incoming message (bytes, after reassembly); 0 = unlimited.
        // A larger message fails the connection with 1009 "Message too big".
        void setMaxMessageSize(size_t bytes);
        size_t getMaxMessageSize() const;
        // Seconds without a pong after a heartbeat ping before closing with 1011
        // "Ping timeout"; <= 0 means upstream's rule (one ping interval).
        void setPingTimeout(int pingTimeoutSecs);
        int getPingTimeout() const;
        // For bindings whose callback hands events to another thread: when enabled
        // (before the connection starts), a protocol failure detected after some
        // delivered events is held back -- no Close sent, sends still allowed --
        // until acknowledgeDeliveries() has covered those events (or 1 s passed),
        // so the application's replies to earlier messages precede the Close.
        void setDeliveryAcknowledgement(bool enabled);
        // The application has finished handling `count` more delivered events.
        void acknowledgeDeliveries(size_t count);
        // Sends one message: text (not validated, like sendUtf8Text) or binary.
        // With compress=false it goes out uncompressed (RSV1 clear) even when
        // permessage-deflate was negotiated; otherwise like send(). In the result,
        // wireSize is the compressed size and payloadSize the original one.
        WebSocketSendInfo sendMessage(const IXWebSocketSendData& data, bool binary, bool compress = true);

        // Slow consumers: once more than `bytes` are waiting to be written to
        // this connection (0: no limit), a send applies `policy`: Drop fails it
        // (WebSocketSendInfo::bufferFull), Block waits up to sendTimeoutMs for
        // room and then fails it like Drop, Close fails it and closes the
        // connection with 1008. A message is always accepted when nothing is
        // buffered. Applied to the next connection (server: set in the
        // connection callback). Block waits on a loop thread only inside the
        // loop-pass hook (setLoopPassHook), turning that loop meanwhile.
        void setSendBufferLimit(size_t bytes, SlowConsumerPolicy policy = SlowConsumerPolicy::Drop,
                                int sendTimeoutMs = 5000);
        size_t getSendBufferLimit() const;

        // A message framed once, to be written to many server-side connections
        // (broadcast). Connections that cannot share frames (e.g. compression
        // negotiated) frame the payload themselves.
        struct PreparedMessage
        {
            std::string frame;   // the unmasked frame (header + payload)
            size_t payloadSize = 0;
            bool binary = false;
            size_t headerSize = 0;
        };
        static std::shared_ptr<const PreparedMessage> prepareMessage(const char* data, size_t size, bool binary);
        WebSocketSendInfo sendPrepared(const PreparedMessage& message);

        // Send batching for the calling thread: between beginSendBatch() and
        // endSendBatch(), messages sent from this thread are queued (up to 64 KiB
        // per connection) and written at endSendBatch() with one write per
        // connection. Used by bindings around a batch of application callbacks.
        static void beginSendBatch();
        static void endSendBatch();
        // Engine threads (the event loops that run sockets, timers and every
        // callback) call `hook(false)` each time they have handled what was
        // ready and are about to wait again, and `hook(true)` when they exit. A
        // binding that collects the events of a pass can deliver them together
        // there. One hook per process; nullptr removes it.
        using LoopPassHook = void (*)(bool loopExiting);
        static void setLoopPassHook(LoopPassHook hook);
        // True on an engine thread (where event callbacks run).
        static bool onEngineThread();
        // Client host names are resolved on a small pool of threads (a storm
        // of reconnecting clients queues lookups): the threads alive now, and
        // their bound.
        static size_t getResolverThreadCount();
        static size_t getResolverMaxThreads();
        // For the calling thread (not an engine thread): blocking calls
        // (startAndWait, connect, stop, a send blocked by the slow-consumer
        // policy, WebSocketServer::stop) wait in slices of a few tens of ms and
        // call `check` between them, with no engine lock held; when it returns
        // true the call stops waiting as if its timeout had passed (stop()
        // then drops the connection). A binding uses it to run signal
        // handlers. nullptr removes it; returns the previous check.
        using WaitInterruptCheck = bool (*)();
        static WaitInterruptCheck setThreadWaitInterrupt(WaitInterruptCheck check);
        // start(), then waits for the outcome of the first attempt, whose
        // handshake budget is timeoutSecs (later attempts use the handshake
        // timeout), and returns it. Unlike connect(), a failure is reported with
        // an Error event and, with automatic reconnection, the backoff goes on
        // exactly as after start(). Returns success=false, "Already started",
        // while started. Not from an event callback.
        WebSocketInitResult startAndWait(int timeoutSecs);
#endif

    private:
        friend class WebSocketServer;
        // The server's per-connection objects run on the server's loop.
        explicit WebSocket(std::shared_ptr<detail::WebSocketCore> core);
        std::shared_ptr<detail::WebSocketCore> _core;
    };
} // namespace ix
