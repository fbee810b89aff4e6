// ServerCore: an ix::WebSocketServer whose connections are named by integer ids
// (1, 2, 3, ..., never reused by one server object) and whose events go to the
// event queue.
#include "binding_common.h"

#include <ixwebsocket/IXConnectionState.h>
#include <ixwebsocket/IXWebSocketServer.h>

#include <pybind11/stl.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ixws
{
    namespace
    {
        bool sameOwner(const std::weak_ptr<ix::WebSocket>& a, const std::weak_ptr<ix::WebSocket>& b)
        {
            return !a.owner_before(b) && !b.owner_before(a);
        }

        // Connection ids of one server. Shared with the engine callbacks, which may
        // run on many threads (upstream uses a thread per connection).
        class ConnectionRegistry
        {
        public:
            explicit ConnectionRegistry(int64_t ref) : ref(ref) {}

            const int64_t ref;

            // Ids are never reused for the life of the server object (restarts
            // included): an id the application still holds after its connection
            // closed can only fail, never address a newer connection.
            int64_t add(const std::weak_ptr<ix::WebSocket>& ws)
            {
                std::lock_guard<std::mutex> lock(_mutex);
                const int64_t id = _nextId++;
                _connections[id] = ws;
                return id;
            }

            // Forgets the connection of id if it is still ws's.
            void remove(int64_t id, const std::weak_ptr<ix::WebSocket>& ws)
            {
                std::lock_guard<std::mutex> lock(_mutex);
                auto it = _connections.find(id);
                if (it != _connections.end() && sameOwner(it->second, ws)) _connections.erase(it);
            }

            std::vector<int64_t> ids()
            {
                std::lock_guard<std::mutex> lock(_mutex);
                pruneLocked();
                std::vector<int64_t> out;
                out.reserve(_connections.size());
                for (const auto& kv : _connections) out.push_back(kv.first);
                return out;
            }

            std::vector<std::pair<int64_t, std::shared_ptr<ix::WebSocket>>> all()
            {
                std::lock_guard<std::mutex> lock(_mutex);
                std::vector<std::pair<int64_t, std::shared_ptr<ix::WebSocket>>> out;
                out.reserve(_connections.size());
                for (const auto& kv : _connections)
                {
                    if (auto ws = kv.second.lock()) out.emplace_back(kv.first, std::move(ws));
                }
                return out;
            }

            std::shared_ptr<ix::WebSocket> find(int64_t id)
            {
                std::lock_guard<std::mutex> lock(_mutex);
                auto it = _connections.find(id);
                if (it == _connections.end()) return nullptr;
                return it->second.lock();
            }

            void prune()
            {
                std::lock_guard<std::mutex> lock(_mutex);
                pruneLocked();
            }

        private:
            // Entries whose WebSocket is gone never got their Close event; forget them.
            void pruneLocked()
            {
                for (auto it = _connections.begin(); it != _connections.end();)
                {
                    if (it->second.expired())
                        it = _connections.erase(it);
                    else
                        ++it;
                }
            }

            std::mutex _mutex;
            std::map<int64_t, std::weak_ptr<ix::WebSocket>> _connections;
            int64_t _nextId = 1;
        };

        // Binds host:0 once to learn a free port (for engines whose getPort()
        // reports 0 after listening on port 0). Racy by nature, like getFreePort().
        int probeFreePort(const std::string& host, int family)
        {
            int fd = ::socket(family, SOCK_STREAM, 0);
            if (fd < 0) return 0;
            int port = 0;
            if (family == AF_INET6)
            {
                sockaddr_in6 addr{};
                addr.sin6_family = AF_INET6;
                if (::inet_pton(AF_INET6, host.c_str(), &addr.sin6_addr) == 1 &&
                    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
                {
                    socklen_t len = sizeof(addr);
                    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
                        port = ntohs(addr.sin6_port);
                }
            }
            else
            {
                sockaddr_in addr{};
                addr.sin_family = AF_INET;
                if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
                    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
                {
                    socklen_t len = sizeof(addr);
                    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
                        port = ntohs(addr.sin_port);
                }
            }
            ::close(fd);
            return port;
        }

        class ServerCore
        {
        public:
            ServerCore(int64_t ref,
                       int port,
                       std::string host,
                       int backlog,
                       size_t maxConnections,
                       int handshakeTimeout,
                       int pingInterval,
                       bool enablePong,
                       bool disablePerMessageDeflate,
                       size_t maxMessageSize,
                       py::object tls,
                       std::vector<std::string> subprotocols,
                       const py::object& perMessageDeflate,
                       bool handshakeHook,
                       size_t maxPendingHandshakes)
                : _registry(std::make_shared<ConnectionRegistry>(ref))
                , _port(port)
                , _host(std::move(host))
                , _backlog(backlog)
                , _maxConnections(maxConnections)
                , _handshakeTimeout(handshakeTimeout)
                , _pingInterval(pingInterval)
                , _enablePong(enablePong)
                , _disableDeflate(disablePerMessageDeflate)
                , _maxMessageSize(maxMessageSize)
                , _subprotocols(std::move(subprotocols))
                , _handshakeHook(handshakeHook)
                , _maxPendingHandshakes(maxPendingHandshakes)
            {
#ifndef IXWS_ENGINE_EXTENSIONS
                if (maxMessageSize != 0)
                    throw py::value_error("maxMessageSize needs the bundled engine (extension not available)");
                if (!_subprotocols.empty())
                    throw py::value_error("subprotocols needs the bundled engine (upstream servers never answer one)");
                if (handshakeHook)
                    throw py::value_error("onHandshake needs the bundled engine (extension not available)");
                if (maxPendingHandshakes != 0)
                    throw py::value_error("maxPendingHandshakes needs the bundled engine (extension not available)");
#endif
                if (!perMessageDeflate.is_none())
                {
                    // (enabled, clientNoContextTakeover, serverNoContextTakeover,
                    //  clientMaxWindowBits, serverMaxWindowBits): the server's policy.
                    auto t = perMessageDeflate.cast<py::tuple>();
                    if (t.size() != 5) throw py::value_error("perMessageDeflate must be a 5-tuple");
                    const bool enabled = t[0].cast<bool>();
                    const bool clientNct = t[1].cast<bool>(), serverNct = t[2].cast<bool>();
                    const int clientBits = t[3].cast<int>(), serverBits = t[4].cast<int>();
#ifdef IXWS_ENGINE_EXTENSIONS
                    _deflate = ix::WebSocketPerMessageDeflateOptions(enabled, clientNct, serverNct,
                                                                     static_cast<uint8_t>(clientBits),
                                                                     static_cast<uint8_t>(serverBits));
                    _hasDeflate = true;
#else
                    // Upstream servers can only accept or decline.
                    if (clientNct || serverNct || clientBits != 15 || serverBits != 15)
                        throw py::value_error("server perMessageDeflate settings need the bundled engine "
                                              "(upstream servers can only accept or decline deflate)");
#endif
                    if (!enabled) _disableDeflate = true;
                }
                if (!tls.is_none())
                {
                    _hasTls = true;
                    _tls = tlsOptionsFromDict(tls.cast<py::dict>());
                }
                _family = (_host.find(':') != std::string::npos) ? AF_INET6 : AF_INET;
            }

            ~ServerCore()
            {
                if (_abandoned) return;
                ReleaseGilIfHeld nogil;
                std::lock_guard<std::mutex> lock(_lifecycle);
                if (_server)
                {
#ifdef IXWS_ENGINE_EXTENSIONS
                    _server->stop(1001, "Going away", kDefaultStopMs);
#else
                    _server->stop();
#endif
                    _server.reset();
                }
            }

            int64_t ref() const { return _registry->ref; }

            // listen() + start(). Returns (ok, message).
            std::pair<bool, std::string> start()
            {
                GilRelease nogil;
                if (_stoppingThread.load() == std::this_thread::get_id())
                    return {false, "server is stopping"}; // from a signal handler inside stop()
                std::lock_guard<std::mutex> lock(_lifecycle);
                if (_running) return {false, "server is already running"};
                if (_server)
                {
                    // A stopped server must listen() again; build a fresh one.
                    _server->stop();
                    _server.reset();
                }

                int port = _port;
#ifndef IXWS_ENGINE_EXTENSIONS
                if (port == 0)
                {
                    port = probeFreePort(_host, _family);
                    if (port == 0) return {false, "could not find a free port on " + _host};
                }
#endif
                auto server = std::make_unique<ix::WebSocketServer>(
                    port, _host, _backlog, _maxConnections, _handshakeTimeout, _family, _pingInterval);
                if (_enablePong)
                    server->enablePong();
                else
                    server->disablePong();
#ifdef IXWS_ENGINE_EXTENSIONS
                if (_hasDeflate) server->setPerMessageDeflateOptions(_deflate);
#endif
                if (_disableDeflate) server->disablePerMessageDeflate();
#ifdef IXWS_ENGINE_EXTENSIONS
                if (_maxMessageSize != 0) server->setMaxMessageSize(_maxMessageSize);
                server->setMaxPendingHandshakes(_maxPendingHandshakes);
                if (!_subprotocols.empty()) server->setSubProtocols(_subprotocols);
                if (_handshakeHook)
                {
                    // The Python hook runs on the dispatcher thread: hand the request
                    // over through the event queue; the engine waits for the answer.
                    int64_t ref = _registry->ref;
                    server->setHandshakeHook([ref](const ix::HandshakeRequest& request,
                                                   ix::HandshakeResponder responder) {
                        Event ev;
                        ev.kind = EventKind::Handshake;
                        ev.ref = ref;
                        ev.uri = request.uri;
                        ev.headers.reserve(request.headers.size());
                        for (const auto& kv : request.headers) ev.headers.emplace_back(kv.first, kv.second);
                        ev.remoteIp = request.remoteIp;
                        ev.remotePort = request.remotePort;
                        ev.answer = [responder](bool accept, int status, const std::string& reason) mutable {
                            if (accept)
                                responder.accept();
                            else
                                responder.reject(status, reason);
                        };
                        globalQueue().push(std::move(ev));
                    });
                }
                {
                    // Engine log lines go to Python's "ixws" logger, not stderr.
                    int64_t ref = _registry->ref;
                    server->setLogCallback([ref](ix::LogLevel level, const std::string& line) {
                        Event ev;
                        ev.kind = EventKind::Log;
                        ev.ref = ref;
                        ev.httpStatus = level == ix::LogLevel::Error ? 1 : 0;
                        ev.errorReason = line;
                        globalQueue().push(std::move(ev));
                    });
                }
#endif
                if (_hasTls) server->setTLSOptions(_tls);

                auto registry = _registry;
                const size_t bufferLimit = _sendBufferLimit;
                const int slowPolicy = _slowConsumer;
                const int sendTimeoutMs = _sendTimeoutMs;
                server->setOnConnectionCallback(
                    [registry, bufferLimit, slowPolicy, sendTimeoutMs](std::weak_ptr<ix::WebSocket> weak,
                                                                       std::shared_ptr<ix::ConnectionState>) {
                        auto ws = weak.lock();
                        if (!ws) return;
                        auto slot = std::make_shared<std::atomic<int64_t>>(0);
#ifdef IXWS_ENGINE_EXTENSIONS
                        if (bufferLimit != 0)
                            ws->setSendBufferLimit(bufferLimit, static_cast<ix::SlowConsumerPolicy>(slowPolicy),
                                                   sendTimeoutMs);
#else
                        (void) bufferLimit, (void) slowPolicy, (void) sendTimeoutMs;
#endif
#ifdef IXWS_ENGINE_EXTENSIONS
                        // Python handles events on another thread: let the engine
                        // wait for our acknowledgements before failing a connection.
                        ws->setDeliveryAcknowledgement(true);
#endif
                        ws->setOnMessageCallback([registry, slot, weak](const ix::WebSocketMessagePtr& msg) {
                            switch (msg->type)
                            {
                                case ix::WebSocketMessageType::Open:
                                {
                                    // Register before queuing, so a callback that
                                    // reacts to Open can already send to this id.
                                    int64_t id = registry->add(weak);
                                    slot->store(id);
                                    globalQueue().push(eventFromMessage(registry->ref, id, msg));
                                    break;
                                }
                                case ix::WebSocketMessageType::Close:
                                {
                                    int64_t id = slot->exchange(0);
                                    if (id == 0) return;
                                    registry->remove(id, weak);
                                    globalQueue().push(eventFromMessage(registry->ref, id, msg));
                                    break;
                                }
                                case ix::WebSocketMessageType::Error:
                                {
                                    int64_t id = slot->load();
                                    if (id == 0) return;
                                    globalQueue().push(eventFromMessage(registry->ref, id, msg));
                                    break;
                                }
                                default: // message, fragment, ping, pong
                                {
                                    int64_t id = slot->load();
                                    if (id == 0) return;
                                    Event ev = eventFromMessage(registry->ref, id, msg);
                                    ev.ackTarget = weak;
                                    globalQueue().push(std::move(ev));
                                    break;
                                }
                            }
                        });
                    });

                auto res = server->listen();
                if (!res.first)
                {
                    return {false, res.second};
                }
                server->start();
                int bound = server->getPort();
                _boundPort = bound != 0 ? bound : port;
                // A restart after stop() listens on the same address again.
                _port = _boundPort.load();
                _server = std::move(server);
                _running = true;
                return {true, ""};
            }

            // Stops accepting, closes every connection with (code, reason), waits up
            // to timeoutMs (< 0: the engine's default) for the close handshakes and
            // drops the rest. Upstream's stop() always uses 1000 "Normal closure".
            void stop(int code, const std::string& reason, int timeoutMs)
            {
                if (code < 0 || code > 65535) throw py::value_error("close code must be in 0..65535");
                {
                    // Interrupted by a signal handler, the connections still in
                    // their close handshake are dropped at once.
                    GilRelease nogil(GilRelease::Interruptible);
                    // A signal handler stopping this server while this very
                    // stop() waits runs on this thread, under _lifecycle: the
                    // stop is under way already.
                    if (_stoppingThread.load() == std::this_thread::get_id()) return;
                    std::lock_guard<std::mutex> lock(_lifecycle);
                    _stoppingThread = std::this_thread::get_id();
                    if (_server && _running)
                    {
#ifdef IXWS_ENGINE_EXTENSIONS
                        _server->stop(static_cast<uint16_t>(code), reason,
                                      timeoutMs < 0 ? kDefaultStopMs : timeoutMs);
#else
                        (void)reason;
                        (void)timeoutMs;
                        _server->stop();
#endif
                    }
                    _running = false;
                    _registry->prune();
                    _stoppingThread = std::thread::id();
                }
                throwIfSignalled();
            }

            // In a forked child (see ClientCore::abandonAfterFork): the engine
            // server is leaked untouched; no lock is taken (its holder may be
            // a thread that does not exist here).
            void abandonAfterFork()
            {
                _abandoned = true;
                if (_server) new std::unique_ptr<ix::WebSocketServer>(std::move(_server));
                _running = false;
            }

            bool running() const { return _running.load(); }

            int port() const
            {
                int bound = _boundPort.load();
                return bound != 0 ? bound : _port;
            }

            std::vector<int64_t> clients() { return _registry->ids(); }

            // Slow consumers (engine extension): applies to connections accepted
            // after the next start(). policy: 0 drop, 1 block, 2 close.
            void setSendBufferLimit(size_t bytes, int policy, int timeoutMs)
            {
#ifndef IXWS_ENGINE_EXTENSIONS
                if (bytes != 0) throw py::value_error("sendBufferLimit needs the bundled engine (extension not available)");
#endif
                _sendBufferLimit = bytes;
                _slowConsumer = policy;
                _sendTimeoutMs = timeoutMs;
            }

            // Bytes queued for a connection and not yet written (None: no such id).
            py::object bufferedAmount(int64_t id)
            {
                auto ws = _registry->find(id);
                if (!ws) return py::none();
                size_t n;
                {
                    GilRelease nogil;
                    n = ws->bufferedAmount();
                    ws.reset();
                }
                return py::int_(n);
            }

            using Targets = std::vector<std::pair<int64_t, std::shared_ptr<ix::WebSocket>>>;

            Targets targets(const py::object& clients)
            {
                if (clients.is_none()) return _registry->all();
                Targets out;
                for (auto item : py::iter(clients))
                {
                    if (PyBool_Check(item.ptr()) || !PyLong_Check(item.ptr()))
                        throw py::type_error("clients must be an iterable of int connection ids");
                    int64_t id = item.cast<int64_t>();
                    out.emplace_back(id, _registry->find(id));
                }
                return out;
            }

            py::list send(const py::object& data, const py::object& clients, bool compress)
            {
#ifndef IXWS_ENGINE_EXTENSIONS
                if (!compress)
                    throw py::value_error("send(compress=False) needs the bundled engine (extension not available)");
#endif
                SendPayload payload(data);
                Targets tg = targets(clients);
                std::vector<ix::WebSocketSendInfo> results(tg.size());
                {
                    GilRelease nogil(GilRelease::Interruptible); // a blocked send lets handlers run
#ifdef IXWS_ENGINE_EXTENSIONS
                    if (tg.size() > 1 && compress)
                    {
                        // Broadcast: frame once, write the same bytes to every
                        // connection (a str is valid UTF-8 by construction);
                        // connections with deflate compress it themselves.
                        auto prepared = ix::WebSocket::prepareMessage(payload.data(), payload.size(),
                                                                      payload.binary());
                        for (size_t i = 0; i < tg.size(); ++i)
                        {
                            auto& ws = tg[i].second;
                            if (!ws) continue;
                            results[i] = ws->sendPrepared(*prepared);
                            ws.reset(); // without the GIL: a last reference may block
                        }
                    }
                    else
#endif
                    {
                        ix::IXWebSocketSendData view(payload.data(), payload.size());
                        for (size_t i = 0; i < tg.size(); ++i)
                        {
                            auto& ws = tg[i].second;
                            if (!ws) continue;
#ifdef IXWS_ENGINE_EXTENSIONS
                            results[i] = ws->sendMessage(view, payload.binary(), compress);
#else
                            results[i] = payload.binary() ? ws->sendBinary(view) : ws->sendUtf8Text(view);
#endif
                            // Drop our reference here, without the GIL: if it was the
                            // last one, the WebSocket destructor may block.
                            ws.reset();
                        }
                    }
                }
                throwIfSignalled();
                return resultList(tg, results);
            }

            py::list ping(const py::object& data, const py::object& clients)
            {
                std::string bytes;
                {
                    SendPayload payload(data);
                    bytes.assign(payload.data(), payload.size());
                }
                Targets tg = targets(clients);
                std::vector<ix::WebSocketSendInfo> results(tg.size());
                {
                    GilRelease nogil;
                    for (size_t i = 0; i < tg.size(); ++i)
                    {
                        auto& ws = tg[i].second;
                        if (!ws) continue;
                        results[i] = ws->ping(bytes);
                        ws.reset();
                    }
                }
                return resultList(tg, results);
            }

            bool closeClient(int64_t id, int code, const std::string& reason)
            {
                if (code < 0 || code > 65535) throw py::value_error("close code must be in 0..65535");
                auto ws = _registry->find(id);
                if (!ws) return false;
                GilRelease nogil;
                ws->close(static_cast<uint16_t>(code), reason);
                ws.reset();
                return true;
            }

        private:
            static py::list resultList(const Targets& tg, const std::vector<ix::WebSocketSendInfo>& results)
            {
                py::list out(tg.size());
                for (size_t i = 0; i < tg.size(); ++i)
                {
                    py::dict d = sendResultDict(results[i], &tg[i].first);
                    PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), d.release().ptr());
                }
                return out;
            }

            std::shared_ptr<ConnectionRegistry> _registry;
            std::mutex _lifecycle;
            std::unique_ptr<ix::WebSocketServer> _server;
            std::atomic<bool> _running{false};
            bool _abandoned = false;
            std::atomic<std::thread::id> _stoppingThread{}; // inside stop() (see there)
            std::atomic<int> _boundPort{0};

            int _port;
            std::string _host;
            int _backlog;
            size_t _maxConnections;
            int _handshakeTimeout;
            int _pingInterval;
            bool _enablePong;
            bool _disableDeflate;
#ifdef IXWS_ENGINE_EXTENSIONS
            bool _hasDeflate = false;
            ix::WebSocketPerMessageDeflateOptions _deflate;
#endif
            size_t _maxMessageSize;
            std::vector<std::string> _subprotocols;
            bool _handshakeHook = false;
            size_t _maxPendingHandshakes = 0;
            static constexpr int kDefaultStopMs = 1500; // the engine's stop(): close timeout + margin
            bool _hasTls = false;
            ix::SocketTLSOptions _tls;
            int _family = AF_INET;
            size_t _sendBufferLimit = 0;
            int _slowConsumer = 0;
            int _sendTimeoutMs = 5000;
        };
    } // namespace

    void registerServer(py::module_& m)
    {
        py::class_<ServerCore>(m, "ServerCore")
            .def(py::init<int64_t, int, std::string, int, size_t, int, int, bool, bool, size_t, py::object,
                          std::vector<std::string>, const py::object&, bool, size_t>(),
                 py::arg("ref"), py::arg("port") = 8080, py::arg("host") = "127.0.0.1",
                 py::arg("backlog") = 5, py::arg("max_connections") = 128,
                 py::arg("handshake_timeout") = 3, py::arg("ping_interval") = -1,
                 py::arg("enable_pong") = true, py::arg("disable_per_message_deflate") = false,
                 py::arg("max_message_size") = 0, py::arg("tls") = py::none(),
                 py::arg("subprotocols") = std::vector<std::string>(), py::arg("per_message_deflate") = py::none(),
                 py::arg("handshake_hook") = false, py::arg("max_pending_handshakes") = 0)
            .def_property_readonly("ref", &ServerCore::ref)
            .def_property_readonly("port", &ServerCore::port)
            .def_property_readonly("running", &ServerCore::running)
            .def("abandon_after_fork", &ServerCore::abandonAfterFork)
            .def("start", &ServerCore::start)
            .def("stop", &ServerCore::stop, py::arg("code") = 1001, py::arg("reason") = "Going away",
                 py::arg("timeout_ms") = -1)
            .def("clients", &ServerCore::clients)
            .def("set_send_buffer_limit", &ServerCore::setSendBufferLimit, py::arg("bytes"), py::arg("policy") = 0,
                 py::arg("timeout_ms") = 5000)
            .def("buffered_amount", &ServerCore::bufferedAmount, py::arg("client"))
            .def("send", &ServerCore::send, py::arg("data"), py::arg("clients") = py::none(),
                 py::arg("compress") = true)
            .def("ping", &ServerCore::ping, py::arg("data"), py::arg("clients") = py::none())
            .def("close_client", &ServerCore::closeClient, py::arg("client"), py::arg("code") = 1000,
                 py::arg("reason") = "Normal closure");
    }
} // namespace ixws
