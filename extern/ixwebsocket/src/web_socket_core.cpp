// WebSocketCore (web_socket_core.h): attempts, redirects, reconnection with
// backoff, stop, and the delivery of connection events to the callback.
#include "web_socket_core.h"
#include "frame_codec.h"

#include "redirect.h"
#include "ixwebsocket/IXExponentialBackoff.h"
#include <chrono>
#include <cstdint>

namespace ix::detail
{
    std::shared_ptr<const OnTrafficTrackerCallback> WebSocketCore::s_tracker;

    namespace
    {
        const std::string kEmpty;
        // How long stop() waits for the close handshake before dropping the connection.
        constexpr int kCloseTimeoutMs = 1000;
        // A handshake budget in ms (seconds * 1000 without overflow).
        int budgetMs(int secs)
        {
            if (secs <= 0) return 1000;
            const int64_t ms = int64_t {secs} * 1000;
            return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
        }
    } // namespace

    WebSocketCore::WebSocketCore(EventLoop& loop, bool serverSide) : _loop(loop), _serverSide(serverSide)
    {
        if (serverSide) autoReconnect = false;
    }

    void WebSocketCore::setCallback(const OnMessageCallback& callback)
    {
        std::shared_ptr<const OnMessageCallback> cb;
        if (callback) cb = std::make_shared<const OnMessageCallback>(callback);
        std::atomic_store(&_callback, cb);
    }

    bool WebSocketCore::hasCallback() const { return std::atomic_load(&_callback) != nullptr; }

    void WebSocketCore::setTrafficTracker(const OnTrafficTrackerCallback& tracker)
    {
        std::shared_ptr<const OnTrafficTrackerCallback> t;
        if (tracker) t = std::make_shared<const OnTrafficTrackerCallback>(tracker);
        std::atomic_store(&s_tracker, t);
    }

    void WebSocketCore::detach() { std::atomic_store(&_callback, std::shared_ptr<const OnMessageCallback>()); }

    void WebSocketCore::deliver(WebSocketMessageType type, const std::string& data, size_t wireSize,
                                WebSocketErrorInfo error, WebSocketOpenInfo open, WebSocketCloseInfo close,
                                bool binary, std::string* movable)
    {
        auto cb = std::atomic_load(&_callback);
        if (!cb) return; // upstream crashes here (defect 25)
        if (type == WebSocketMessageType::Message || type == WebSocketMessageType::Ping ||
            type == WebSocketMessageType::Pong || type == WebSocketMessageType::Fragment)
        {
            if (auto tracker = std::atomic_load(&s_tracker)) (*tracker)(wireSize, true);
        }
        WebSocketMessagePtr msg(new WebSocketMessage(type, data, wireSize, std::move(error), std::move(open),
                                                     std::move(close), binary));
        msg->movablePayload = movable;
        (*cb)(msg);
    }

    // ---------------------------------------------------------------- lifecycle

    ConnectionOptions WebSocketCore::buildOptions(const std::string& urlText, int timeoutMs, std::string& error)
    {
        ConnectionOptions o;
        std::lock_guard<std::mutex> lock(configMutex);
        o.role = Role::Client;
        o.autoPong = pongEnabled;
        o.maxMessageSize = maxMessageSize;
        o.ackDeliveries = ackDeliveries;
        o.sendBufferLimit = sendBufferLimit;
        o.slowConsumerPolicy = slowConsumerPolicy;
        o.sendTimeoutMs = sendTimeoutMs;
        o.handshakeTimeoutMs = timeoutMs > 0 ? timeoutMs : 1;
        o.closeTimeoutMs = kCloseTimeoutMs;
        o.pingIntervalSecs = pingIntervalSecs;
        o.pingTimeoutSecs = pingTimeoutSecs;
        o.pingMessage = pingMessage;
        o.urlText = urlText;
        o.extraHeaders = extraHeaders;
        o.subprotocols = subprotocols;
        if (deflateOptions.enabled())
        {
            WebSocketPerMessageDeflateOptions offer = deflateOptions; // generateHeader() is not const
            o.extensionsOffer = offer.generateHeader();
        }
        if (!parseUrl(urlText, o.url, error)) return o;
        if (o.url.tls) // wss:// and https:// (upstream: wss only, defect 33)
        {
            // Shared by clients with the same options; rebuilt when they or the
            // files they name change (reconnections skip reloading the CA store).
            std::string tlsError;
            o.tls = TlsContext::sharedClient(tlsOptions, tlsError);
            if (!o.tls) error = "TLS setup failed for " + urlText + ": " + tlsError;
        }
        return o;
    }

    void WebSocketCore::abandonAttemptLocked()
    {
        _attemptPending = false;
        if (_syncPending && !_syncDone)
        {
            _syncResult = WebSocketInitResult(false, 0, "Cancelled");
            _syncDone = true;
        }
    }

    void WebSocketCore::attempt(int timeoutMs, uint64_t generation)
    {
        // Loop thread.
        std::string urlText;
        {
            std::lock_guard<std::mutex> lock(configMutex);
            urlText = url;
        }
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            if (generation != _generation)
            {
                abandonAttemptLocked();
                _stateChanged.notify_all();
                return;
            }
            _attemptGeneration = generation;
            _attemptUrl = urlText;
            _firstUrl = urlText;
            _redirects = 0;
            _attemptDeadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        }
        launch(urlText, timeoutMs, generation);
    }

    void WebSocketCore::launch(const std::string& urlText, int timeoutMs, uint64_t generation)
    {
        // Loop thread.
        std::string error;
        ConnectionOptions options = buildOptions(urlText, timeoutMs, error);
        if (!error.empty())
        {
            onConnectionFailed(WebSocketInitResult(false, 0, error));
            return;
        }
        std::shared_ptr<Connection> conn;
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            if (generation == _generation)
            {
                // Under the lock: a concurrent stop() either came first (nothing is
                // started) or sees this connection and cancels it (its close()
                // reaches the loop after startClient below).
                conn = Connection::createClient(_loop, std::move(options), shared_from_this());
                _connection = conn;
            }
            else
            {
                abandonAttemptLocked();
            }
        }
        if (conn)
        {
            conn->startClient(); // launch() runs on the loop thread
            return;
        }
        _stateChanged.notify_all();
    }

    bool WebSocketCore::followRedirect(WebSocketInitResult& result)
    {
        // Loop thread; client attempts only.
        if (_serverSide || !isRedirectStatus(result.http_status)) return false;
        const std::string* location = redirectLocation(result.headers);
        if (!location) return false;
        std::string target;
        int remainingMs = 0;
        uint64_t generation;
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            generation = _attemptGeneration;
            if (generation != _generation) return false; // stopped: no further hop
            if (_redirects >= kMaxRedirects)
            {
                result.errorStr = "Too many redirects (" + std::to_string(kMaxRedirects) + ") connecting to " +
                                  _firstUrl + ", last Location: " + *location;
                return false;
            }
            std::string error;
            if (!resolveRedirect(_attemptUrl, *location, target, error))
            {
                result.errorStr = error;
                return false;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(_attemptDeadline -
                                                                              std::chrono::steady_clock::now());
            remainingMs = static_cast<int>(left.count());
            if (remainingMs <= 0)
            {
                result.errorStr = "Timed out following redirects from " + _firstUrl;
                return false;
            }
            ++_redirects;
            _attemptUrl = target;
            _connection.reset();
        }
        launch(target, remainingMs, generation);
        return true;
    }

    void WebSocketCore::start()
    {
        std::lock_guard<std::mutex> lock(_stateMutex);
        if (_serverSide || _running) return;
        _running = true;
        if (_connection || _attemptPending) return; // e.g. after connect()
        _attemptPending = true;
        _retries = 0;
        auto self = shared_from_this();
        uint64_t generation = _generation;
        _loop.post([self, generation] { self->attempt(budgetMs(self->handshakeTimeoutSecs), generation); });
    }

    WebSocketInitResult WebSocketCore::startAndWait(int timeoutSecs)
    {
        if (_loop.inLoopThread() && !EventLoop::canPumpWhileWaiting())
            return WebSocketInitResult(false, 0, "startAndWait() cannot be called from an event callback");
        std::unique_lock<std::mutex> lock(_stateMutex);
        if (_serverSide) return WebSocketInitResult(false, 0, "Not a client");
        if (_running || _connection || _attemptPending || _syncPending)
            return WebSocketInitResult(false, 0, "Already started");
        _running = true;
        _retries = 0;
        _syncEmits = true;
        return waitForAttempt(lock, timeoutSecs);
    }

    WebSocketInitResult WebSocketCore::waitForAttempt(std::unique_lock<std::mutex>& lock, int timeoutSecs)
    {
        // _stateMutex is held; the attempt runs on the loop and reports through
        // _syncResult (onConnectionOpen / onConnectionFailed).
        _syncPending = true;
        _syncDone = false;
        _attemptPending = true;
        if (timeoutSecs <= 0) timeoutSecs = 1;
        auto self = shared_from_this();
        uint64_t generation = _generation;
        _loop.post([self, timeoutSecs, generation] { self->attempt(budgetMs(timeoutSecs), generation); });
        // The handshake timer bounds this; the margin covers a busy loop. From a
        // binding's callback the loop we are called on keeps turning (it may be
        // ours, or serve the peer).
        EventLoop::waitTurning(_stateChanged, lock,
                               EventLoop::Clock::now() + std::chrono::seconds(int64_t {timeoutSecs} + 5),
                               [this] { return _syncDone; });
        _syncPending = false;
        _syncEmits = false;
        if (!_syncDone) return WebSocketInitResult(false, 0, "Timed out waiting for the connection attempt");
        return _syncResult;
    }

    WebSocketInitResult WebSocketCore::connect(int timeoutSecs)
    {
        if (_loop.inLoopThread() && !EventLoop::canPumpWhileWaiting())
            return WebSocketInitResult(false, 0, "connect() cannot be called from an event callback");
        std::unique_lock<std::mutex> lock(_stateMutex);
        if (_connection && _connection->isOpen()) return WebSocketInitResult(false, 0, "Already connected");
        if (_syncPending) return WebSocketInitResult(false, 0, "A connection attempt is already waited for");
        _syncEmits = false; // connect(): the caller gets the result, no Error event (upstream)
        return waitForAttempt(lock, timeoutSecs);
    }

    void WebSocketCore::run()
    {
        if (_loop.inLoopThread()) return;
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            if (!_serverSide && !_connection && !_attemptPending)
            {
                _running = true;
                _attemptPending = true;
                auto self = shared_from_this();
                uint64_t generation = _generation;
                _loop.post([self, generation] { self->attempt(budgetMs(self->handshakeTimeoutSecs), generation); });
            }
        }
        std::unique_lock<std::mutex> lock(_stateMutex);
        _stateChanged.wait(lock, [this] {
            return !_connection && !_attemptPending && !(_running && autoReconnect);
        });
    }

    void WebSocketCore::stop(uint16_t code, const std::string& reason)
    {
        std::shared_ptr<Connection> conn;
        EventLoop::TimerId retryTimer = 0;
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            _running = false;
            ++_generation; // attempts not yet launched and retry timers become no-ops
            conn = _connection;
            retryTimer = _retryTimer;
            _retryTimer = 0;
            if (!conn && _attemptPending && !_syncPending) _attemptPending = false;
        }
        _stateChanged.notify_all();
        if (retryTimer)
        {
            // Interrupt the backoff wait now; the timer would only release us later.
            auto self = shared_from_this();
            _loop.dispatch([self, retryTimer] { self->_loop.cancelTimer(retryTimer); });
        }
        if (!conn) return;
        if (_loop.inLoopThread())
        {
            conn->close(code, reason); // from a callback: never wait on our own thread
            return;
        }
        // An open connection gets our Close from this thread at once, and this
        // wait stands in for the loop's close timer (no loop wake-up, no timer);
        // otherwise the loop cancels the attempt or closes with its own timer.
        const bool direct = conn->closeOpenNow(code, reason);
        if (!direct) conn->close(code, reason);
        auto gone = [this, &conn] { return _connection != conn; };
        std::unique_lock<std::mutex> lock(_stateMutex);
        const int waitMs = direct ? kCloseTimeoutMs : kCloseTimeoutMs + 500;
        if (EventLoop::waitTurning(_stateChanged, lock, EventLoop::Clock::now() + std::chrono::milliseconds(waitMs),
                                   gone))
            return;
        lock.unlock();
        // No Close from the peer in time: drop the connection (the Close event
        // carries our code, as when the close timer fires) and let it go.
        conn->abort("stop() timed out");
        lock.lock();
        EventLoop::waitTurning(_stateChanged, lock, EventLoop::Clock::now() + std::chrono::milliseconds(500), gone);
    }

    void WebSocketCore::close(uint16_t code, const std::string& reason)
    {
        auto conn = connection();
        if (conn) conn->close(code, reason);
    }

    void WebSocketCore::attach(std::shared_ptr<Connection> connection)
    {
        std::lock_guard<std::mutex> lock(_stateMutex);
        _connection = std::move(connection);
    }

    std::shared_ptr<Connection> WebSocketCore::connection() const
    {
        std::lock_guard<std::mutex> lock(_stateMutex);
        return _connection;
    }

    WebSocketSendInfo WebSocketCore::sendMessage(bool binary, const char* data, size_t size, bool compress)
    {
        auto conn = connection();
        if (!conn) return WebSocketSendInfo(false);
        WebSocketSendInfo info = conn->sendMessage(binary, data, size, compress);
        if (info.success)
            if (auto tracker = std::atomic_load(&s_tracker)) (*tracker)(info.wireSize, false);
        return info;
    }

    WebSocketSendInfo WebSocketCore::sendPing(const std::string& payload)
    {
        auto conn = connection();
        if (!conn) return WebSocketSendInfo(false);
        return conn->sendControl(kPing, payload.data(), payload.size());
    }

    ReadyState WebSocketCore::readyState() const
    {
        std::lock_guard<std::mutex> lock(_stateMutex);
        if (_connection) return _connection->readyState();
        return _attemptPending && _running ? ReadyState::Connecting : ReadyState::Closed;
    }

    size_t WebSocketCore::bufferedAmount() const
    {
        auto conn = connection();
        return conn ? conn->bufferedAmount() : 0;
    }

    // ---------------------------------------------------------------- events

    void WebSocketCore::onConnectionOpen(WebSocketInitResult&& result)
    {
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            _retries = 0; // the backoff starts over after a successful open
            _attemptPending = false;
            if (_syncPending && !_syncDone)
            {
                _syncResult = result;
                _syncDone = true;
            }
        }
        _stateChanged.notify_all();
        // The Open event takes the result's fields (the waiter above got a copy).
        WebSocketOpenInfo open;
        open.uri = std::move(result.uri);
        open.headers = std::move(result.headers);
        open.protocol = std::move(result.protocol);
        deliver(WebSocketMessageType::Open, kEmpty, 0, WebSocketErrorInfo(), std::move(open), WebSocketCloseInfo(),
                false);
    }

    void WebSocketCore::onConnectionFailed(const WebSocketInitResult& failure)
    {
        WebSocketInitResult result = failure;
        if (followRedirect(result)) return; // the next hop of the same attempt

        WebSocketErrorInfo info;
        bool emit = false;
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            _connection.reset();
            const bool stopped = _attemptGeneration != _generation; // by stop()
            if (_serverSide)
            {
                _attemptPending = false;
            }
            else if (_syncPending && !_syncDone && !_syncEmits)
            {
                // connect(): the caller gets the result; no Error event (upstream).
                _syncResult = result;
                _syncDone = true;
                _attemptPending = false;
            }
            else
            {
                if (_syncPending && !_syncDone)
                {
                    // startAndWait(): the caller gets the result, and events go on
                    // as with start().
                    _syncResult = result;
                    _syncDone = true;
                }
                // An attempt cancelled by the user's stop() is not an error to report.
                emit = !stopped;
                info.reason = result.errorStr;
                info.http_status = result.http_status;
                if (_running && autoReconnect && !stopped)
                {
                    // Upstream's backoff (spec 17.4): the n-th consecutive failure
                    // (n from 0) waits 100 ms * 2^n within [min, max]; the Error event
                    // announces the wait and the failure count before the sleep.
                    uint32_t waitMs = calculateRetryWaitMilliseconds(_retries, maxWaitMs, minWaitMs);
                    _retries++;
                    info.retries = _retries;
                    info.wait_time = waitMs;
                    _attemptPending = true;
                    uint64_t generation = _generation;
                    auto self = shared_from_this();
                    _retryTimer = _loop.addTimer(std::chrono::milliseconds(waitMs), [self, generation] {
                        {
                            std::lock_guard<std::mutex> lock(self->_stateMutex);
                            self->_retryTimer = 0;
                            if (generation != self->_generation || !self->_running)
                            {
                                self->_attemptPending = false;
                                self->_stateChanged.notify_all();
                                return;
                            }
                        }
                        self->attempt(budgetMs(self->handshakeTimeoutSecs), generation);
                    });
                }
                else
                {
                    _attemptPending = false;
                    _running = false;
                }
            }
        }
        _stateChanged.notify_all();
        if (emit)
            deliver(WebSocketMessageType::Error, kEmpty, 0, info, WebSocketOpenInfo(), WebSocketCloseInfo(),
                    false);
        if (_serverSide && onFinished) onFinished(result);
    }

    void WebSocketCore::onSessionEvents(std::vector<SessionEvent>& events)
    {
        for (auto& ev : events)
        {
            switch (ev.kind)
            {
                case SessionEvent::Kind::Message:
                    deliver(WebSocketMessageType::Message, ev.data, ev.wireSize, WebSocketErrorInfo(),
                            WebSocketOpenInfo(), WebSocketCloseInfo(), ev.binary, &ev.data);
                    break;
                case SessionEvent::Kind::Fragment:
                    deliver(WebSocketMessageType::Fragment, kEmpty, ev.wireSize, WebSocketErrorInfo(),
                            WebSocketOpenInfo(), WebSocketCloseInfo(), false);
                    break;
                case SessionEvent::Kind::Ping:
                    deliver(WebSocketMessageType::Ping, ev.data, ev.wireSize, WebSocketErrorInfo(),
                            WebSocketOpenInfo(), WebSocketCloseInfo(), false);
                    break;
                case SessionEvent::Kind::Pong:
                    deliver(WebSocketMessageType::Pong, ev.data, ev.wireSize, WebSocketErrorInfo(),
                            WebSocketOpenInfo(), WebSocketCloseInfo(), false);
                    break;
                case SessionEvent::Kind::Close:
                {
                    bool reconnect;
                    {
                        std::lock_guard<std::mutex> lock(_stateMutex);
                        _connection.reset();
                        reconnect = !_serverSide && _running && autoReconnect;
                        _attemptPending = reconnect;
                        if (!reconnect) _running = false; // a later start() connects again
                        _retries = 0;
                    }
                    deliver(WebSocketMessageType::Close, kEmpty, ev.wireSize, WebSocketErrorInfo(),
                            WebSocketOpenInfo(), WebSocketCloseInfo(ev.code, ev.reason, ev.remote), false);
                    _stateChanged.notify_all();
                    if (_serverSide && onFinished) onFinished(WebSocketInitResult(true, 200));
                    if (reconnect)
                    {
                        // The first attempt after a drop is not delayed (upstream).
                        bool still;
                        uint64_t generation;
                        {
                            std::lock_guard<std::mutex> lock(_stateMutex);
                            generation = _generation;
                            still = _running && autoReconnect && !_connection;
                            if (!still) _attemptPending = false;
                        }
                        if (still) attempt(budgetMs(handshakeTimeoutSecs), generation);
                        else _stateChanged.notify_all();
                    }
                    break;
                }
            }
        }
    }
} // namespace ix::detail
