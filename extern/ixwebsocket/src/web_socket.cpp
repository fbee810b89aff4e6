// ix::WebSocket, the public client class: configuration setters and getters,
// and calls forwarded to its WebSocketCore (web_socket_core.cpp).
#include "web_socket_core.h"
#include "send_batch.h"
#include "frame_codec.h"
#include "resolver.h"
#include "utf8.h"

namespace ix
{
    using detail::WebSocketCore;

    WebSocket::WebSocket() : _core(std::make_shared<WebSocketCore>(detail::EventLoop::shared(), false)) {}

    WebSocket::WebSocket(std::shared_ptr<WebSocketCore> core) : _core(std::move(core)) {}

    WebSocket::~WebSocket()
    {
        _core->stop(WebSocketCloseConstants::kNormalClosureCode, WebSocketCloseConstants::kNormalClosureMessage);
        _core->detach();
    }

    void WebSocket::setUrl(const std::string& url)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->url = url;
    }

    const std::string WebSocket::getUrl() const
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->url;
    }

    void WebSocket::setExtraHeaders(const WebSocketHttpHeaders& headers)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->extraHeaders = headers;
    }

    void WebSocket::setPerMessageDeflateOptions(const WebSocketPerMessageDeflateOptions& options)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->deflateOptions = options;
    }

    const WebSocketPerMessageDeflateOptions WebSocket::getPerMessageDeflateOptions() const
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->deflateOptions;
    }

    void WebSocket::enablePerMessageDeflate() { setPerMessageDeflateOptions(WebSocketPerMessageDeflateOptions(true)); }
    void WebSocket::disablePerMessageDeflate() { setPerMessageDeflateOptions(WebSocketPerMessageDeflateOptions(false)); }

    void WebSocket::setTLSOptions(const SocketTLSOptions& options)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->tlsOptions = options;
    }

    void WebSocket::setPingMessage(const std::string& message, SendMessageKind kind)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->pingMessage = message;
        _core->pingKind = kind;
    }

    const std::string WebSocket::getPingMessage() const
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->pingMessage;
    }

    void WebSocket::setPingInterval(int secs)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->pingIntervalSecs = secs;
    }

    int WebSocket::getPingInterval() const
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->pingIntervalSecs;
    }

    void WebSocket::enablePong()
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->pongEnabled = true;
    }

    void WebSocket::disablePong()
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->pongEnabled = false;
    }

    void WebSocket::addSubProtocol(const std::string& subProtocol)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->subprotocols.push_back(subProtocol);
    }

    const std::vector<std::string>& WebSocket::getSubProtocols()
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->subprotocols;
    }

    void WebSocket::setHandshakeTimeout(int secs) { _core->handshakeTimeoutSecs = secs > 0 ? secs : 1; }

    void WebSocket::start() { _core->start(); }

    void WebSocket::stop(uint16_t code, const std::string& reason) { _core->stop(code, reason); }

    WebSocketInitResult WebSocket::connect(int timeoutSecs) { return _core->connect(timeoutSecs); }

    void WebSocket::run() { _core->run(); }

    WebSocketSendInfo WebSocket::send(const std::string& data, bool binary, const OnProgressCallback& onProgress)
    {
        return binary ? sendBinary(data, onProgress) : sendText(data, onProgress);
    }

    namespace
    {
        WebSocketSendInfo sendWithProgress(WebSocketCore& core, bool binary, const char* data, size_t size,
                                           const OnProgressCallback& onProgress)
        {
            WebSocketSendInfo info = core.sendMessage(binary, data, size);
            // Messages go out as one frame: one progress step.
            if (info.success && onProgress) onProgress(0, 1);
            return info;
        }
    } // namespace

    WebSocketSendInfo WebSocket::sendBinary(const std::string& data, const OnProgressCallback& onProgress)
    {
        return sendWithProgress(*_core, true, data.data(), data.size(), onProgress);
    }

    WebSocketSendInfo WebSocket::sendBinary(const IXWebSocketSendData& data, const OnProgressCallback& onProgress)
    {
        return sendWithProgress(*_core, true, data.data(), data.size(), onProgress);
    }

    WebSocketSendInfo WebSocket::sendText(const std::string& text, const OnProgressCallback& onProgress)
    {
        // Invalid UTF-8 fails this call only; the connection stays open (upstream
        // closes it with 1007, defect 14).
        if (!detail::isValidUtf8(text.data(), text.size())) return WebSocketSendInfo(false);
        return sendWithProgress(*_core, false, text.data(), text.size(), onProgress);
    }

    WebSocketSendInfo WebSocket::sendUtf8Text(const std::string& text, const OnProgressCallback& onProgress)
    {
        return sendWithProgress(*_core, false, text.data(), text.size(), onProgress);
    }

    WebSocketSendInfo WebSocket::sendUtf8Text(const IXWebSocketSendData& text, const OnProgressCallback& onProgress)
    {
        return sendWithProgress(*_core, false, text.data(), text.size(), onProgress);
    }

    WebSocketSendInfo WebSocket::ping(const std::string& text, SendMessageKind kind)
    {
        if (kind == SendMessageKind::Ping)
        {
            if (text.size() > 125) return WebSocketSendInfo(false);
            return _core->sendPing(text);
        }
        return _core->sendMessage(kind == SendMessageKind::Binary, text.data(), text.size());
    }

    WebSocketSendInfo WebSocket::sendMessage(const IXWebSocketSendData& data, bool binary, bool compress)
    {
        return _core->sendMessage(binary, data.data(), data.size(), compress);
    }

    void WebSocket::close(uint16_t code, const std::string& reason) { _core->close(code, reason); }

    void WebSocket::setOnMessageCallback(const OnMessageCallback& callback) { _core->setCallback(callback); }

    bool WebSocket::isOnMessageCallbackRegistered() const { return _core->hasCallback(); }

    void WebSocket::setTrafficTrackerCallback(const OnTrafficTrackerCallback& callback)
    {
        WebSocketCore::setTrafficTracker(callback);
    }

    void WebSocket::resetTrafficTrackerCallback() { WebSocketCore::setTrafficTracker(nullptr); }

    ReadyState WebSocket::getReadyState() const { return _core->readyState(); }

    std::string WebSocket::readyStateToString(ReadyState readyState)
    {
        switch (readyState)
        {
            case ReadyState::Open: return "OPEN";
            case ReadyState::Connecting: return "CONNECTING";
            case ReadyState::Closing: return "CLOSING";
            case ReadyState::Closed: return "CLOSED";
        }
        return "UNKNOWN";
    }

    size_t WebSocket::bufferedAmount() const { return _core->bufferedAmount(); }

    void WebSocket::enableAutomaticReconnection() { _core->autoReconnect = true; }
    void WebSocket::disableAutomaticReconnection() { _core->autoReconnect = false; }
    bool WebSocket::isAutomaticReconnectionEnabled() const { return _core->autoReconnect; }

    void WebSocket::setMaxWaitBetweenReconnectionRetries(uint32_t ms) { _core->maxWaitMs = ms; }
    void WebSocket::setMinWaitBetweenReconnectionRetries(uint32_t ms) { _core->minWaitMs = ms; }
    uint32_t WebSocket::getMaxWaitBetweenReconnectionRetries() const { return _core->maxWaitMs; }
    uint32_t WebSocket::getMinWaitBetweenReconnectionRetries() const { return _core->minWaitMs; }

    void WebSocket::setAutoThreadName(bool) {} // the loop thread is shared; nothing to name

    void WebSocket::setMaxMessageSize(size_t bytes)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->maxMessageSize = bytes;
    }

    size_t WebSocket::getMaxMessageSize() const
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->maxMessageSize;
    }

    void WebSocket::setPingTimeout(int secs)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->pingTimeoutSecs = secs;
    }

    void WebSocket::setDeliveryAcknowledgement(bool enabled)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->ackDeliveries = enabled;
    }

    void WebSocket::acknowledgeDeliveries(size_t count)
    {
        if (auto conn = _core->connection()) conn->acknowledge(count);
    }

    void WebSocket::setSendBufferLimit(size_t bytes, SlowConsumerPolicy policy, int sendTimeoutMs)
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        _core->sendBufferLimit = bytes;
        _core->slowConsumerPolicy = policy;
        _core->sendTimeoutMs = sendTimeoutMs;
    }

    size_t WebSocket::getSendBufferLimit() const
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->sendBufferLimit;
    }

    std::shared_ptr<const WebSocket::PreparedMessage> WebSocket::prepareMessage(const char* data, size_t size,
                                                                                bool binary)
    {
        auto msg = std::make_shared<PreparedMessage>();
        detail::appendFrame(msg->frame, binary ? detail::kBinary : detail::kText, true, false, data, size, false);
        msg->payloadSize = size;
        msg->binary = binary;
        msg->headerSize = msg->frame.size() - size;
        return msg;
    }

    WebSocketSendInfo WebSocket::sendPrepared(const PreparedMessage& message)
    {
        // Frames are unmasked: only the server side may share them.
        if (!_core->isServerSide())
            return _core->sendMessage(message.binary, message.frame.data() + message.headerSize,
                                      message.payloadSize);
        auto conn = _core->connection();
        if (!conn) return WebSocketSendInfo(false);
        return conn->sendPrepared(message.frame, message.headerSize, message.binary);
    }

    void WebSocket::beginSendBatch() { detail::sendBatchBegin(); }
    void WebSocket::endSendBatch() { detail::sendBatchEnd(); }
    void WebSocket::setLoopPassHook(LoopPassHook hook) { detail::EventLoop::setPassHook(hook); }
    bool WebSocket::onEngineThread() { return detail::EventLoop::onAnyLoopThread(); }

    size_t WebSocket::getResolverThreadCount() { return detail::Resolver::shared().threadCount(); }

    size_t WebSocket::getResolverMaxThreads() { return detail::Resolver::shared().maxThreads(); }

    WebSocket::WaitInterruptCheck WebSocket::setThreadWaitInterrupt(WaitInterruptCheck check)
    {
        return detail::EventLoop::setThreadInterruptCheck(check);
    }
    WebSocketInitResult WebSocket::startAndWait(int timeoutSecs) { return _core->startAndWait(timeoutSecs); }

    int WebSocket::getPingTimeout() const
    {
        std::lock_guard<std::mutex> lock(_core->configMutex);
        return _core->pingTimeoutSecs;
    }
} // namespace ix
