// ClientCore: one ix::WebSocket client whose events go to the event queue.
#include "binding_common.h"

#include <pybind11/stl.h>

#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ixws
{
    namespace
    {
        class ClientCore
        {
        public:
            ClientCore(int64_t ref,
                       const std::string& url,
                       const py::dict& extraHeaders,
                       int pingInterval,
                       int pingTimeout,
                       bool enablePong,
                       bool automaticReconnection,
                       uint32_t minWait,
                       uint32_t maxWait,
                       int handshakeTimeout,
                       const py::object& perMessageDeflate,
                       bool disablePerMessageDeflate,
                       const std::vector<std::string>& subprotocols,
                       size_t maxMessageSize,
                       const py::object& tls)
                : _ref(ref), _ws(std::make_shared<ix::WebSocket>())
            {
#ifndef IXWS_ENGINE_EXTENSIONS
                if (maxMessageSize != 0)
                    throw py::value_error("maxMessageSize needs the bundled engine (extension not available)");
                if (pingTimeout > 0)
                    throw py::value_error("pingTimeout needs the bundled engine (extension not available)");
#endif
                _ws->setUrl(url);
                ix::WebSocketHttpHeaders headers;
                for (auto kv : extraHeaders) headers[kv.first.cast<std::string>()] = kv.second.cast<std::string>();
                _ws->setExtraHeaders(headers);
                _ws->setPingInterval(pingInterval);
#ifdef IXWS_ENGINE_EXTENSIONS
                if (pingTimeout > 0) _ws->setPingTimeout(pingTimeout);
                if (maxMessageSize != 0) _ws->setMaxMessageSize(maxMessageSize);
#endif
                if (enablePong)
                    _ws->enablePong();
                else
                    _ws->disablePong();
                _autoReconnect = automaticReconnection;
                if (automaticReconnection)
                    _ws->enableAutomaticReconnection();
                else
                    _ws->disableAutomaticReconnection();
                _ws->setMinWaitBetweenReconnectionRetries(minWait);
                _ws->setMaxWaitBetweenReconnectionRetries(maxWait);
                if (handshakeTimeout > 0) _ws->setHandshakeTimeout(handshakeTimeout);
                if (disablePerMessageDeflate)
                {
                    _ws->disablePerMessageDeflate();
                }
                else if (!perMessageDeflate.is_none())
                {
                    // (enabled, clientNoContextTakeover, serverNoContextTakeover,
                    //  clientMaxWindowBits, serverMaxWindowBits)
                    auto t = perMessageDeflate.cast<py::tuple>();
                    if (t.size() != 5) throw py::value_error("perMessageDeflate must be a 5-tuple");
                    ix::WebSocketPerMessageDeflateOptions o(
                        t[0].cast<bool>(), t[1].cast<bool>(), t[2].cast<bool>(),
                        static_cast<uint8_t>(t[3].cast<int>()), static_cast<uint8_t>(t[4].cast<int>()));
                    _ws->setPerMessageDeflateOptions(o);
                }
                for (const auto& p : subprotocols) _ws->addSubProtocol(p);
                if (!tls.is_none()) _ws->setTLSOptions(tlsOptionsFromDict(tls.cast<py::dict>()));

                int64_t r = ref;
                std::weak_ptr<ix::WebSocket> weak = _ws;
#ifdef IXWS_ENGINE_EXTENSIONS
                _ws->setDeliveryAcknowledgement(true);
#endif
                _ws->setOnMessageCallback([r, weak](const ix::WebSocketMessagePtr& msg) {
                    Event ev = eventFromMessage(r, r, msg);
                    switch (ev.kind)
                    {
                        case EventKind::Message:
                        case EventKind::Fragment:
                        case EventKind::Ping:
                        case EventKind::Pong: ev.ackTarget = weak; break;
                        default: break;
                    }
                    globalQueue().push(std::move(ev));
                });
            }

            ~ClientCore()
            {
                if (!_ws) return;
#ifdef IXWS_ENGINE_EXTENSIONS
                {
                    // Stopped and not started since (the usual close() then
                    // release): the engine has no connection left to wait for,
                    // so it is released without giving up the GIL. Giving it up
                    // costs a thread switch whenever other Python threads wait.
                    std::lock_guard<std::mutex> lock(_lifecycle);
                    if (_idle && !_connecting)
                    {
                        _ws.reset();
                        return;
                    }
                }
#endif
                ReleaseGilIfHeld nogil;
                _ws->stop();
                _ws.reset();
            }

            int64_t ref() const { return _ref; }

            // First attempt on the caller's thread; the background loop then keeps
            // the connection up (and retries a failed first attempt if reconnection
            // is enabled). Returns (success, http_status, errorStr, uri, headers).
            py::tuple start(int timeoutSecs)
            {
                if (timeoutSecs <= 0) throw py::value_error("timeout must be > 0 seconds");
                ix::WebSocketInitResult res;
                bool already = false;
                {
                    GilRelease nogil(GilRelease::Interruptible);
                    {
                        std::lock_guard<std::mutex> lock(_lifecycle);
#ifdef IXWS_ENGINE_EXTENSIONS
                        // The engine knows whether it is started (it refuses then).
                        if (_connecting)
#else
                        if (_started || _connecting)
#endif
                            already = true;
                        else
                        {
                            _connecting = true;
                            _stopRequested = false;
                            _idle = false;
                        }
                    }
                    if (!already)
                    {
#ifdef IXWS_ENGINE_EXTENSIONS
                        // The first attempt is the background loop's own: its Error
                        // event carries retries/wait_time and the backoff continues
                        // from it (spec 17.4). Not under the lock: stop() from another
                        // thread must be able to cancel a slow attempt.
                        res = _ws->startAndWait(timeoutSecs);
                        // A signal handler raised: cancel the attempt (a later
                        // start() begins afresh), then raise its exception.
                        nogil.endInterruptible();
                        if (nogil.interrupted()) _ws->stop();
                        std::lock_guard<std::mutex> lock(_lifecycle);
                        _connecting = false;
                        if (nogil.interrupted())
                        {
                            _started = false;
                            _idle = true;
                        }
                        else if (!res.success && res.errorStr == "Already started")
                            already = true;
                        else
                            _started = !_stopRequested;
                    }
#else
                        // Not under the lock: stop() from another thread must be able
                        // to cancel a slow attempt (close() aborts connect()).
                        res = _ws->connect(timeoutSecs);
                        if (!res.success)
                        {
                            Event ev;
                            ev.kind = EventKind::Error;
                            ev.ref = _ref;
                            ev.connection = _ref;
                            ev.errorReason = res.errorStr;
                            ev.httpStatus = res.http_status;
                            globalQueue().push(std::move(ev));
                        }
                        std::lock_guard<std::mutex> lock(_lifecycle);
                        _connecting = false;
                        if (!_stopRequested && needsBackgroundLoop(res.success))
                        {
                            _ws->start();
                            _started = true;
                        }
                    }
#endif
                }
                throwIfSignalled();
                py::dict headers;
                if (already) return py::make_tuple(false, 0, "client is already started", "", headers);
                for (const auto& kv : res.headers) headers[decodeText(kv.first)] = decodeText(kv.second);
                return py::make_tuple(res.success, res.http_status, decodeText(res.errorStr), decodeText(res.uri),
                                      headers);
            }

            void stop(int code, const std::string& reason)
            {
                checkCode(code);
                {
                    // Interrupted by a signal handler, the connection is dropped
                    // instead of waiting for the peer's Close.
                    GilRelease nogil(GilRelease::Interruptible);
                    {
                        std::lock_guard<std::mutex> lock(_lifecycle);
                        _stopRequested = true;
                    }
                    _ws->stop(static_cast<uint16_t>(code), reason);
                    std::lock_guard<std::mutex> lock(_lifecycle);
                    _started = false;
                    // A start() that raced this stop() is cancelled by it, but it
                    // may still be finishing: only then is the engine idle.
                    if (!_connecting) _idle = true;
                }
                throwIfSignalled();
            }

            void close(int code, const std::string& reason)
            {
                checkCode(code);
                GilRelease nogil;
                _ws->close(static_cast<uint16_t>(code), reason);
            }

            py::dict send(const py::object& data, bool compress)
            {
#ifndef IXWS_ENGINE_EXTENSIONS
                if (!compress)
                    throw py::value_error("send(compress=False) needs the bundled engine (extension not available)");
#endif
                SendPayload payload(data);
                ix::WebSocketSendInfo info;
                {
                    GilRelease nogil(GilRelease::Interruptible); // a blocked send lets handlers run
                    ix::IXWebSocketSendData view(payload.data(), payload.size());
#ifdef IXWS_ENGINE_EXTENSIONS
                    info = _ws->sendMessage(view, payload.binary(), compress);
#else
                    info = payload.binary() ? _ws->sendBinary(view) : _ws->sendUtf8Text(view);
#endif
                }
                throwIfSignalled();
                return sendInfoToDict(info);
            }

            py::dict ping(const py::object& data)
            {
                std::string bytes;
                {
                    SendPayload payload(data);
                    bytes.assign(payload.data(), payload.size());
                }
                ix::WebSocketSendInfo info;
                {
                    GilRelease nogil;
                    info = _ws->ping(bytes);
                }
                return sendInfoToDict(info);
            }

            std::string readyState() { return ix::WebSocket::readyStateToString(_ws->getReadyState()); }

            size_t bufferedAmount() { return _ws->bufferedAmount(); }

            void setSendBufferLimit(size_t bytes, int policy, int timeoutMs)
            {
#ifdef IXWS_ENGINE_EXTENSIONS
                _ws->setSendBufferLimit(bytes, static_cast<ix::SlowConsumerPolicy>(policy), timeoutMs);
#else
                (void) policy, (void) timeoutMs;
                if (bytes != 0) throw py::value_error("sendBufferLimit needs the bundled engine (extension not available)");
#endif
            }

            bool started() const { return _started.load(); }

            // In a forked child: the engine object belongs to threads that do not
            // exist here and shares its socket with the parent. It is leaked,
            // never used or destroyed (that could write a Close to the parent's
            // peer); the Python object is closed.
            void abandonAfterFork()
            {
                if (_ws) new std::shared_ptr<ix::WebSocket>(std::move(_ws));
                _started = false;
            }

        private:
            // Whether start() must follow connect().
            bool needsBackgroundLoop(bool connected) const
            {
                // Reconnection on: the background loop keeps the connection up
                // (and retries a failed first attempt).
                if (_autoReconnect) return true;
#ifdef IXWS_ENGINE_EXTENSIONS
                // Our engine serves a connect()ed connection on its event loop
                // without start(). Calling start() anyway would open a second
                // connection if the peer closed the first one in the meantime.
                (void)connected;
                return false;
#else
                // Upstream needs run() on the background thread to poll the socket.
                return connected;
#endif
            }

            static void checkCode(int code)
            {
                if (code < 0 || code > 65535) throw py::value_error("close code must be in 0..65535");
            }

            int64_t _ref;
            std::shared_ptr<ix::WebSocket> _ws;
            std::mutex _lifecycle;
            std::atomic<bool> _started{false};
            bool _connecting = false;
            bool _stopRequested = false;
            bool _autoReconnect = true;
            // No start() since the last completed stop() (or ever): see ~ClientCore.
            bool _idle = true;
        };
    } // namespace

    void registerClient(py::module_& m)
    {
        py::class_<ClientCore>(m, "ClientCore")
            .def(py::init<int64_t, const std::string&, const py::dict&, int, int, bool, bool, uint32_t, uint32_t,
                          int, const py::object&, bool, const std::vector<std::string>&, size_t,
                          const py::object&>(),
                 py::arg("ref"), py::arg("url"), py::arg("extra_headers") = py::dict(),
                 py::arg("ping_interval") = -1, py::arg("ping_timeout") = -1, py::arg("enable_pong") = true,
                 py::arg("automatic_reconnection") = true, py::arg("min_wait") = 1,
                 py::arg("max_wait") = 10000, py::arg("handshake_timeout") = 60,
                 py::arg("per_message_deflate") = py::none(), py::arg("disable_per_message_deflate") = false,
                 py::arg("subprotocols") = std::vector<std::string>(), py::arg("max_message_size") = 0,
                 py::arg("tls") = py::none())
            .def_property_readonly("ref", &ClientCore::ref)
            .def_property_readonly("started", &ClientCore::started)
            .def("abandon_after_fork", &ClientCore::abandonAfterFork)
            .def("start", &ClientCore::start, py::arg("timeout") = 60)
            .def("stop", &ClientCore::stop, py::arg("code") = 1000, py::arg("reason") = "Normal closure")
            .def("close", &ClientCore::close, py::arg("code") = 1000, py::arg("reason") = "Normal closure")
            .def("send", &ClientCore::send, py::arg("data"), py::arg("compress") = true)
            .def("ping", &ClientCore::ping, py::arg("data") = py::bytes())
            .def("ready_state", &ClientCore::readyState)
            .def("buffered_amount", &ClientCore::bufferedAmount)
            .def("set_send_buffer_limit", &ClientCore::setSendBufferLimit, py::arg("bytes"), py::arg("policy") = 0,
                 py::arg("timeout_ms") = 5000);
    }
} // namespace ixws
