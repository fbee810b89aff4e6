#include "ixwebsocket/IXWebSocketServer.h"

#include "connection.h"
#include "event_loop.h"
#include "web_socket_core.h"
#include "ixwebsocket/IXUserAgent.h"
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <unordered_map>
#include <unordered_set>
#include <unistd.h>

namespace ix
{
    const int WebSocketServer::kDefaultHandShakeTimeoutSecs = 3;
    const int WebSocketServer::kPingIntervalSeconds = -1;

    namespace
    {
        constexpr int kCloseTimeoutMs = 1000;
    }

    struct WebSocketServer::Impl
    {
        int handshakeTimeoutSecs;
        int pingIntervalSecs;
        std::atomic<bool> pongEnabled {true};
        mutable std::mutex deflateMutex;
        WebSocketPerMessageDeflateOptions deflate {true}; // under deflateMutex
        std::atomic<size_t> maxMessageSize {0};
        std::vector<std::string> subprotocols; // set before start()
        OnHandshakeCallback handshakeHook;     // set before start()
        OnConnectionCallback onConnection;
        OnClientMessageCallback onClientMessage;

        // 0: connections in the opening handshake count against maxConnections
        // (upstream). Else they have this limit of their own, and a connection
        // takes one of the maxConnections slots only once its upgrade request
        // is complete and valid (admitSession).
        std::atomic<size_t> maxPendingHandshakes {0};

        // Every connection from accept to its end, handshaking ones included.
        std::mutex mutex;
        std::condition_variable changed;
        std::unordered_map<WebSocket*, std::shared_ptr<WebSocket>> connections;
        // With maxPendingHandshakes: the connections holding a maxConnections slot.
        std::unordered_set<WebSocket*> admitted;
        bool stopping = false;
    };

    // ---------------------------------------------------------- handshake hook

    struct HandshakeResponder::State
    {
        State(std::weak_ptr<detail::EventLoop> l, std::weak_ptr<detail::Connection> c)
            : loop(std::move(l)), connection(std::move(c))
        {
        }
        ~State() { send(false, 500, "Handshake not answered"); }

        void send(bool accept, int status, const std::string& reason)
        {
            if (answered.exchange(true)) return;
            auto l = loop.lock();
            if (!l) return; // the server has stopped
            auto weak = connection;
            l->post([weak, accept, status, reason] {
                if (auto conn = weak.lock()) conn->answerHandshake(accept, status, reason);
            });
        }

        std::weak_ptr<detail::EventLoop> loop;
        std::weak_ptr<detail::Connection> connection;
        std::atomic<bool> answered {false};
    };

    HandshakeResponder::HandshakeResponder(std::shared_ptr<State> state) : _state(std::move(state)) {}
    void HandshakeResponder::accept() { _state->send(true, 101, ""); }
    void HandshakeResponder::reject(int status, const std::string& reason) { _state->send(false, status, reason); }
    bool HandshakeResponder::answered() const { return _state->answered; }

    // ------------------------------------------------------------------ server

    WebSocketServer::WebSocketServer(int port, const std::string& host, int backlog, size_t maxConnections,
                                     int handshakeTimeoutSecs, int addressFamily, int pingIntervalSeconds,
                                     int /*sendTimeoutSeconds*/)
        : SocketServer(port, host, backlog, maxConnections, addressFamily), _impl(std::make_shared<Impl>())
    {
        _impl->handshakeTimeoutSecs = handshakeTimeoutSecs;
        _impl->pingIntervalSecs = pingIntervalSeconds;
    }

    WebSocketServer::~WebSocketServer() { stop(); }

    void WebSocketServer::enablePong() { _impl->pongEnabled = true; }
    void WebSocketServer::disablePong() { _impl->pongEnabled = false; }
    void WebSocketServer::disablePerMessageDeflate()
    {
        std::lock_guard<std::mutex> lock(_impl->deflateMutex);
        _impl->deflate = WebSocketPerMessageDeflateOptions(false);
    }

    void WebSocketServer::setPerMessageDeflateOptions(const WebSocketPerMessageDeflateOptions& options)
    {
        std::lock_guard<std::mutex> lock(_impl->deflateMutex);
        _impl->deflate = options;
    }

    WebSocketPerMessageDeflateOptions WebSocketServer::getPerMessageDeflateOptions() const
    {
        std::lock_guard<std::mutex> lock(_impl->deflateMutex);
        return _impl->deflate;
    }
    void WebSocketServer::setOnConnectionCallback(const OnConnectionCallback& cb) { _impl->onConnection = cb; }
    void WebSocketServer::setOnClientMessageCallback(const OnClientMessageCallback& cb) { _impl->onClientMessage = cb; }
    int WebSocketServer::getHandshakeTimeoutSecs() { return _impl->handshakeTimeoutSecs; }
    bool WebSocketServer::isPongEnabled() { return _impl->pongEnabled; }
    bool WebSocketServer::isPerMessageDeflateEnabled() { return getPerMessageDeflateOptions().enabled(); }
    void WebSocketServer::setMaxMessageSize(size_t bytes) { _impl->maxMessageSize = bytes; }
    void WebSocketServer::setSubProtocols(const std::vector<std::string>& p) { _impl->subprotocols = p; }
    void WebSocketServer::setHandshakeHook(const OnHandshakeCallback& hook) { _impl->handshakeHook = hook; }
    std::vector<std::string> WebSocketServer::getSubProtocols() const { return _impl->subprotocols; }
    size_t WebSocketServer::getMaxMessageSize() const { return _impl->maxMessageSize; }
    void WebSocketServer::setMaxPendingHandshakes(size_t count) { _impl->maxPendingHandshakes = count; }
    size_t WebSocketServer::getMaxPendingHandshakes() const { return _impl->maxPendingHandshakes; }

    bool WebSocketServer::listenAndStart()
    {
        auto result = listen();
        if (!result.first)
        {
            logError(result.second);
            return false;
        }
        start();
        return true;
    }

    std::set<std::shared_ptr<WebSocket>> WebSocketServer::getClients()
    {
        std::set<std::shared_ptr<WebSocket>> clients;
        std::lock_guard<std::mutex> lock(_impl->mutex);
        for (auto& entry : _impl->connections)
            if (entry.second->getReadyState() == ReadyState::Open) clients.insert(entry.second);
        return clients;
    }

    size_t WebSocketServer::getConnectedClientsCount()
    {
        std::lock_guard<std::mutex> lock(_impl->mutex);
        return _impl->connections.size();
    }

    size_t WebSocketServer::broadcast(const std::string& data, bool binary)
    {
        auto prepared = WebSocket::prepareMessage(data.data(), data.size(), binary);
        size_t accepted = 0;
        for (auto& client : getClients())
            if (client->sendPrepared(*prepared).success) ++accepted;
        return accepted;
    }

    void WebSocketServer::makeBroadcastServer()
    {
        std::weak_ptr<Impl> weakImpl = _impl;
        setOnClientMessageCallback(
            [this](std::shared_ptr<ConnectionState>, WebSocket& sender, const WebSocketMessagePtr& msg) {
                if (msg->type != WebSocketMessageType::Message) return;
                for (auto&& client : getClients())
                {
                    if (client.get() == &sender) continue;
                    client->send(msg->str, msg->binary);
                }
            });
    }

    void WebSocketServer::handleAcceptedSocket(int fd, std::shared_ptr<ConnectionState> state)
    {
        // Loop thread.
        {
            std::lock_guard<std::mutex> lock(_impl->mutex);
            if (_impl->stopping)
            {
                ::close(fd);
                return;
            }
            const size_t pendingLimit = _impl->maxPendingHandshakes;
            const size_t established = pendingLimit == 0 ? _impl->connections.size() : _impl->admitted.size();
            if (established >= _maxConnections)
            {
                // Answer instead of a silent drop (upstream just closes the socket).
                logError("WebSocketServer: reached max connections = " + std::to_string(_maxConnections) +
                         ". Answering 503.");
                detail::Connection::rejectServer(
                    *_loop, fd, detail::httpErrorResponse(503, "Too many connections", userAgent(), "Retry-After: 1\r\n"),
                    kCloseTimeoutMs, _tlsContext);
                return;
            }
            if (pendingLimit != 0 && _impl->connections.size() - _impl->admitted.size() >= pendingLimit)
            {
                // An info line: a flood of slow handshakes must not flood the log.
                logInfo("WebSocketServer: reached max pending handshakes = " + std::to_string(pendingLimit) +
                        ". Answering 503.");
                detail::Connection::rejectServer(
                    *_loop, fd,
                    detail::httpErrorResponse(503, "Too many pending handshakes", userAgent(), "Retry-After: 1\r\n"),
                    kCloseTimeoutMs, _tlsContext);
                return;
            }
        }

        auto core = std::make_shared<detail::WebSocketCore>(*_loop, true);
        std::shared_ptr<WebSocket> ws(new WebSocket(core));
        {
            std::lock_guard<std::mutex> lock(core->configMutex);
            core->pingIntervalSecs = _impl->pingIntervalSecs;
            core->pongEnabled = _impl->pongEnabled;
            core->maxMessageSize = _impl->maxMessageSize;
        }

        if (_impl->onConnection)
        {
            _impl->onConnection(ws, state);
        }
        else if (_impl->onClientMessage)
        {
            auto cb = _impl->onClientMessage;
            std::weak_ptr<WebSocket> weak = ws;
            ws->setOnMessageCallback([cb, state, weak](const WebSocketMessagePtr& msg) {
                if (auto self = weak.lock()) cb(state, *self, msg);
            });
        }
        if (!ws->isOnMessageCallbackRegistered())
        {
            logError("WebSocketServer: no message callback for connection " + state->getId() + "; dropping it");
            ::close(fd);
            state->setTerminated();
            return;
        }

        std::weak_ptr<Impl> weakImpl = _impl;
        WebSocket* key = ws.get();
        core->onFinished = [weakImpl, key, state, this](const WebSocketInitResult& result) {
            if (!result.success) // the peer's failure, not ours: an info line
                logInfo("WebSocketServer::handleConnection() HTTP status: " + std::to_string(result.http_status) +
                         " error: " + result.errorStr);
            auto impl = weakImpl.lock();
            if (!impl) return;
            std::shared_ptr<WebSocket> dropped; // destroyed outside the lock
            {
                std::lock_guard<std::mutex> lock(impl->mutex);
                auto it = impl->connections.find(key);
                if (it != impl->connections.end())
                {
                    dropped = std::move(it->second);
                    impl->connections.erase(it);
                }
                impl->admitted.erase(key);
            }
            impl->changed.notify_all();
            state->setTerminated();
            if (dropped) _loop->post([dropped] {}); // release after the current callback returns
        };

        detail::ConnectionOptions options;
        options.role = detail::Role::Server;
        options.noDelayInherited = _listenerNoDelay;
        options.autoPong = _impl->pongEnabled;
        options.maxMessageSize = _impl->maxMessageSize;
        {
            std::lock_guard<std::mutex> lock(core->configMutex); // set by the connection callback
            options.ackDeliveries = core->ackDeliveries;
            options.sendBufferLimit = core->sendBufferLimit;
            options.slowConsumerPolicy = core->slowConsumerPolicy;
            options.sendTimeoutMs = core->sendTimeoutMs;
        }
        options.handshakeTimeoutMs = static_cast<int>(
            std::min<int64_t>(int64_t {_impl->handshakeTimeoutSecs > 0 ? _impl->handshakeTimeoutSecs : 1} * 1000,
                              INT32_MAX));
        options.closeTimeoutMs = kCloseTimeoutMs;
        options.pingIntervalSecs = _impl->pingIntervalSecs;
        options.serverHandshake.serverHeader = userAgent();
        options.tls = _tlsContext;
        options.serverHandshake.subprotocols = _impl->subprotocols;
        {
            const WebSocketPerMessageDeflateOptions d = getPerMessageDeflateOptions();
            detail::ServerDeflatePolicy& policy = options.serverHandshake.deflate;
            policy.enabled = d.enabled();
            policy.serverMaxWindowBits = d.getServerMaxWindowBits();
            policy.clientMaxWindowBits = d.getClientMaxWindowBits();
            policy.serverNoContextTakeover = d.getServerNoContextTakeover();
            policy.clientNoContextTakeover = d.getClientNoContextTakeover();
        }
        if (_impl->maxPendingHandshakes != 0)
        {
            const size_t maxConnections = _maxConnections;
            options.admitSession = [weakImpl, key, maxConnections] {
                auto impl = weakImpl.lock();
                if (!impl) return false;
                std::lock_guard<std::mutex> lock(impl->mutex);
                if (impl->admitted.size() >= maxConnections) return false;
                impl->admitted.insert(key);
                return true;
            };
        }
        if (_impl->handshakeHook)
        {
            auto hook = _impl->handshakeHook;
            std::weak_ptr<detail::EventLoop> weakLoop = _loop;
            options.handshakeHook = [hook, weakLoop, state](const std::shared_ptr<detail::Connection>& conn,
                                                            const detail::HttpHead& head) {
                HandshakeRequest request;
                request.uri = head.target;
                request.headers = head.headers;
                request.remoteIp = state->getRemoteIp();
                request.remotePort = state->getRemotePort();
                request.connectionState = state;
                auto answer = std::make_shared<HandshakeResponder::State>(weakLoop, conn);
                hook(request, HandshakeResponder(std::move(answer)));
            };
        }

        {
            std::lock_guard<std::mutex> lock(_impl->mutex);
            _impl->connections.emplace(key, ws);
        }
        auto conn = detail::Connection::acceptServer(*_loop, fd, std::move(options), core);
        core->attach(conn);
    }

    void WebSocketServer::stop()
    {
        stop(WebSocketCloseConstants::kNormalClosureCode, WebSocketCloseConstants::kNormalClosureMessage,
             kCloseTimeoutMs + 500);
    }

    void WebSocketServer::stop(uint16_t code, const std::string& reason, int timeoutMs)
    {
        std::shared_ptr<detail::EventLoop> loop;
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            loop = _loop;
        }
        if (loop)
        {
            auto impl = _impl;
            auto closeAll = [this, impl, code, reason] {
                stopAcceptingConnections();
                std::vector<std::shared_ptr<WebSocket>> all;
                {
                    std::lock_guard<std::mutex> lock(impl->mutex);
                    impl->stopping = true;
                    for (auto& entry : impl->connections) all.push_back(entry.second);
                }
                impl->changed.notify_all(); // nothing to wait for when there are no clients
                for (auto& ws : all)
                {
                    auto conn = ws->_core->connection();
                    if (!conn) continue;
                    if (conn->isOpen())
                        conn->close(code, reason);
                    else
                        conn->abort("server stopping");
                }
            };
            if (loop->inLoopThread())
            {
                // From a callback: start closing; the loop cannot wait for itself.
                closeAll();
                return;
            }
            loop->post(closeAll);
            {
                // From a callback on another loop (e.g. the client loop, whose
                // connections may be our peers) that loop keeps turning.
                std::unique_lock<std::mutex> lock(impl->mutex);
                detail::EventLoop::waitTurning(impl->changed, lock,
                                               detail::EventLoop::Clock::now() + std::chrono::milliseconds(timeoutMs),
                                               [&] { return impl->stopping && impl->connections.empty(); });
            }
            // Whatever did not finish its close handshake in time is dropped.
            loop->post([impl] {
                std::vector<std::shared_ptr<WebSocket>> rest;
                {
                    std::lock_guard<std::mutex> lock(impl->mutex);
                    for (auto& entry : impl->connections) rest.push_back(entry.second);
                }
                for (auto& ws : rest)
                    if (auto conn = ws->_core->connection()) conn->abort("server stopped");
            });
        }
        SocketServer::stop();
        std::lock_guard<std::mutex> lock(_impl->mutex);
        _impl->connections.clear();
        _impl->admitted.clear();
        _impl->stopping = false;
    }
} // namespace ix
