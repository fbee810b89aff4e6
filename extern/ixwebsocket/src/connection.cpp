#include "connection.h"

#include "send_batch.h"
#include "tls_stream.h"
#include "ixwebsocket/IXWebSocketCloseConstants.h"
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <thread>
#include <unistd.h>

namespace ix::detail
{
    namespace
    {
        // One read buffer per loop thread: idle connections cost no buffer memory.
        constexpr size_t kReadBufferSize = 256 * 1024;
        // Messages at least this large skip _out when nothing is queued.
        constexpr size_t kDirectWriteBytes = 64 * 1024;
        // Client role: a large message is masked up to this much at a time into
        // a per-thread scratch buffer and sent from there (writeDirectLocked).
        // Smaller chunks (64 KiB) measured worse: each send wakes the reader.
        constexpr size_t kMaskChunkBytes = 1024 * 1024;
        thread_local std::unique_ptr<char[]> tReadBuffer;
        // Grows to the largest chunk the thread masked (at most kMaskChunkBytes).
        thread_local std::vector<uint8_t> tMaskBuffer;

        char* readBuffer()
        {
            if (!tReadBuffer) tReadBuffer.reset(new char[kReadBufferSize]);
            return tReadBuffer.get();
        }

        // Sockets arrive non-blocking already (socket()/accept4() with
        // SOCK_NONBLOCK): only Nagle is turned off here, one syscall.
        void setNoDelay(int fd)
        {
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }

        // A one-element addrinfo list for a numeric host, freed like getaddrinfo's.
        addrinfo* numericAddress(const std::string& host, int port)
        {
            addrinfo hints {};
            hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
            hints.ai_socktype = SOCK_STREAM;
            addrinfo* result = nullptr;
            std::string service = std::to_string(port);
            if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &result) != 0) return nullptr;
            return result;
        }
    } // namespace

    Connection::Connection(EventLoop& loop, ConnectionOptions options, std::shared_ptr<ConnectionOwner> owner)
        : _loop(loop), _options(std::move(options)), _owner(std::move(owner))
    {
    }

    Connection::~Connection()
    {
        if (_fd >= 0) ::close(_fd);
        if (_addresses) ::freeaddrinfo(_addresses);
    }

    // ------------------------------------------------------------------ client

    std::shared_ptr<Connection> Connection::connectClient(EventLoop& loop,
                                                          ConnectionOptions options,
                                                          std::shared_ptr<ConnectionOwner> owner)
    {
        auto conn = createClient(loop, std::move(options), std::move(owner));
        // Posted, never run inline: the owner stores the returned pointer first.
        loop.post([conn] { conn->startClient(); });
        return conn;
    }

    std::shared_ptr<Connection> Connection::createClient(EventLoop& loop,
                                                         ConnectionOptions options,
                                                         std::shared_ptr<ConnectionOwner> owner)
    {
        return std::shared_ptr<Connection>(new Connection(loop, std::move(options), std::move(owner)));
    }

    void Connection::startClient() { startResolve(); }

    void Connection::startResolve()
    {
        if (_cancelled) return;
        auto self = shared_from_this();
        _handshakeTimer = _loop.addTimer(std::chrono::milliseconds(_options.handshakeTimeoutMs), [self] {
            self->_handshakeTimer = 0;
            Phase p = self->_phase;
            if (p == Phase::Resolving || p == Phase::Connecting || p == Phase::Handshake)
            {
                self->failHandshake(0, "Timed out after " + std::to_string(self->_options.handshakeTimeoutMs) +
                                           " ms connecting to " + self->_options.urlText +
                                           (self->_tlsPending ? " (TLS handshake timed out)" : ""));
            }
        });

        const std::string host = _options.url.host;
        const int port = _options.url.port;
        if (addrinfo* numeric = numericAddress(host, port))
        {
            onResolved(numeric, "");
            return;
        }
        // Name resolution blocks, so it runs off the loop; the result comes back as a task.
        std::weak_ptr<Connection> weak = self;
        EventLoop* loop = &_loop;
        std::thread([weak, loop, host, port] {
            addrinfo hints {};
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            hints.ai_flags = AI_ADDRCONFIG;
            addrinfo* result = nullptr;
            std::string service = std::to_string(port);
            int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
            std::string error = rc == 0 ? "" : ::gai_strerror(rc);
            if (auto conn = weak.lock())
            {
                loop->post([conn, result, error] { conn->onResolved(result, error); });
            }
            else if (result)
            {
                ::freeaddrinfo(result);
            }
        }).detach();
    }

    void Connection::onResolved(addrinfo* list, const std::string& error)
    {
        _addresses = list;
        _nextAddress = list;
        if (_phase != Phase::Resolving) return; // timed out or cancelled meanwhile
        if (!list)
        {
            failHandshake(0, "Unable to connect to " + _options.url.host + " on port " +
                                 std::to_string(_options.url.port) + ", error: DNS lookup error: " + error);
            return;
        }
        _phase = Phase::Connecting;
        connectNext();
    }

    void Connection::connectNext()
    {
        while (_nextAddress)
        {
            addrinfo* ai = _nextAddress;
            _nextAddress = ai->ai_next;
            int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                _connectError = std::strerror(errno);
                continue;
            }
            setNoDelay(fd);
            int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
            if (rc == 0 || errno == EINPROGRESS)
            {
                {
                    std::lock_guard<std::mutex> lock(_mutex);
                    _fd = fd;
                }
                int sendError = 0;
                if (!_options.tls && sendRequestIfConnected(sendError))
                {
                    // Handshake already: only the response is waited for.
                    _registered = true;
                    _loop.add(fd, EPOLLIN | EPOLLRDHUP | (_wantWrite ? EPOLLOUT : 0u), shared_from_this());
                    return;
                }
                if (sendError == 0)
                {
                    _registered = true;
                    _wantWrite = true; // EPOLLOUT is armed until the connect completes
                    _loop.add(fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, shared_from_this());
                    return;
                }
                // The connect failed: try the next address.
                {
                    std::lock_guard<std::mutex> lock(_mutex);
                    _fd = -1;
                }
                _connectError = std::strerror(sendError);
                ::close(fd);
                continue;
            }
            _connectError = std::strerror(errno);
            ::close(fd);
        }
        failHandshake(0, "Unable to connect to " + _options.url.host + " on port " +
                             std::to_string(_options.url.port) + ", error: Connect error: " + _connectError);
    }

    void Connection::onConnected(uint32_t events)
    {
        // Writable without an error or hang-up: the connect succeeded (SO_ERROR
        // would read 0). Only a failed attempt needs the getsockopt for its reason.
        int err = 0;
        if (events & (EPOLLERR | EPOLLHUP))
        {
            socklen_t len = sizeof(err);
            ::getsockopt(_fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
        if (err != 0)
        {
            _connectError = std::strerror(err);
            _loop.remove(_fd);
            _registered = false;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                ::close(_fd);
                _fd = -1;
            }
            connectNext();
            return;
        }
        _phase = Phase::Handshake;
        if (_options.tls)
        {
            if (startTls()) driveTlsHandshake();
            return;
        }
        sendClientRequest();
    }

    bool Connection::sendRequestIfConnected(int& error)
    {
        // Right after connect(): over loopback and to near peers the TCP
        // handshake is usually complete already, so the request goes out now,
        // saving a loop round and the EPOLLOUT arm/disarm. A socket that is still
        // connecting refuses the send with EAGAIN (error stays 0); any other
        // error is the connect's own (ECONNREFUSED...), reported in `error`.
        std::string key = generateClientKey();
        std::string request =
            buildClientRequest(_options.url, key, _options.extraHeaders, _options.subprotocols,
                               _options.extensionsOffer);
        ssize_t n;
        do
            n = ::send(_fd, request.data(), request.size(), MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
        {
            error = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno;
            return false;
        }
        _clientKey = std::move(key);
        _head.reset(new HttpHeadParser(HttpHeadParser::Kind::Response, _options.maxHeadSize));
        _phase = Phase::Handshake;
        std::lock_guard<std::mutex> lock(_mutex);
        if (static_cast<size_t>(n) < request.size()) queueLocked(request.substr(static_cast<size_t>(n)));
        _wantWrite = _outOffset < _out.size();
        return true;
    }

    void Connection::sendClientRequest()
    {
        _clientKey = generateClientKey();
        _head.reset(new HttpHeadParser(HttpHeadParser::Kind::Response, _options.maxHeadSize));
        std::string request =
            buildClientRequest(_options.url, _clientKey, _options.extraHeaders, _options.subprotocols,
                               _options.extensionsOffer);
        std::lock_guard<std::mutex> lock(_mutex);
        queueLocked(request);
        flushLocked();
        updateInterestLocked();
    }

    void Connection::onClientHandshakeData(const char* data, size_t size)
    {
        size_t consumed = 0;
        auto status = _head->feed(data, size, consumed);
        if (status == HttpHeadParser::Status::NeedMore) return;
        if (status == HttpHeadParser::Status::Error)
        {
            failHandshake(0, "Error parsing HTTP headers from " + _options.urlText + ": " + _head->error());
            return;
        }
        WebSocketInitResult result = checkServerResponse(_head->head(), _options.urlText, _options.url, _clientKey,
                                                         _options.subprotocols, _options.extensionsOffer, &_deflate);
        if (!result.success)
        {
            failHandshake(result.http_status, result.errorStr);
            return;
        }
        openSession(std::move(result), data + consumed, size - consumed);
    }

    // ------------------------------------------------------------------ server

    std::shared_ptr<Connection> Connection::acceptServer(EventLoop& loop,
                                                         int fd,
                                                         ConnectionOptions options,
                                                         std::shared_ptr<ConnectionOwner> owner)
    {
        std::shared_ptr<Connection> conn(new Connection(loop, std::move(options), std::move(owner)));
        if (!conn->_options.noDelayInherited) setNoDelay(fd);
        conn->_fd = fd;
        conn->_phase = Phase::Handshake;
        conn->_head.reset(new HttpHeadParser(HttpHeadParser::Kind::Request, conn->_options.maxHeadSize));
        conn->_registered = true;
        loop.add(fd, EPOLLIN | EPOLLRDHUP, conn);
        // The TLS handshake runs on the loop like everything else: a peer that
        // never speaks TLS only holds its own socket until the handshake timeout.
        if (conn->_options.tls && !conn->startTls()) return conn;
        std::weak_ptr<Connection> weak = conn;
        conn->_handshakeTimer =
            loop.addTimer(std::chrono::milliseconds(conn->_options.handshakeTimeoutMs), [weak] {
                auto self = weak.lock();
                if (!self) return;
                self->_handshakeTimer = 0;
                if (self->_phase != Phase::Handshake) return;
                if (self->_awaitingHook)
                {
                    // The request was complete; the hook did not answer in time.
                    self->_awaitingHook = false;
                    const std::string reason = "Handshake hook timed out";
                    {
                        std::lock_guard<std::mutex> lock(self->_mutex);
                        self->queueLocked(
                            httpErrorResponse(503, reason, self->_options.serverHandshake.serverHeader));
                        self->flushLocked();
                        self->updateInterestLocked();
                    }
                    self->failHandshake(503, reason);
                    return;
                }
                if (self->_tlsPending)
                {
                    self->failHandshake(0, "TLS handshake timed out");
                    return;
                }
                {
                    // Answered (RFC 9110 408), not a silent close.
                    std::lock_guard<std::mutex> lock(self->_mutex);
                    self->queueLocked(
                        httpErrorResponse(408, "Request Timeout", self->_options.serverHandshake.serverHeader));
                    self->flushLocked();
                    self->updateInterestLocked();
                }
                self->failHandshake(408, "Handshake timed out");
            });
        return conn;
    }

    void Connection::rejectServer(EventLoop& loop, int fd, const std::string& response, int closeTimeoutMs,
                                  std::shared_ptr<TlsContext> tls)
    {
        ConnectionOptions options;
        options.role = Role::Server;
        options.closeTimeoutMs = closeTimeoutMs;
        options.tls = std::move(tls);
        std::shared_ptr<Connection> conn(new Connection(loop, std::move(options), nullptr));
        setNoDelay(fd);
        conn->_fd = fd;
        conn->_phase = Phase::Handshake;
        conn->_registered = true;
        loop.add(fd, EPOLLIN | EPOLLRDHUP, conn);
        {
            std::lock_guard<std::mutex> lock(conn->_mutex);
            conn->queueLocked(response);
        }
        if (conn->_options.tls)
        {
            // The answer can only be read inside TLS: handshake first (bounded);
            // driveTlsHandshake then drains (a server connection without _head).
            if (!conn->startTls()) return;
            std::weak_ptr<Connection> weak = conn;
            conn->_handshakeTimer = loop.addTimer(std::chrono::milliseconds(closeTimeoutMs), [weak] {
                auto self = weak.lock();
                if (!self) return;
                self->_handshakeTimer = 0;
                if (self->_phase == Phase::Handshake) self->failHandshake(0, "TLS handshake timed out");
            });
            return;
        }
        conn->startDraining(); // the request, if any, is read and discarded
    }

    void Connection::onServerHandshakeData(const char* data, size_t size)
    {
        // Frames sent before the hook's answer wait for it, within the head limit.
        auto tooEarly = [this](size_t bytes) {
            if (bytes <= _options.maxHeadSize) return false;
            _awaitingHook = false;
            const std::string reason = "Too much data before the handshake was answered";
            {
                std::lock_guard<std::mutex> lock(_mutex);
                queueLocked(httpErrorResponse(400, reason, _options.serverHandshake.serverHeader));
                flushLocked();
                updateInterestLocked();
            }
            failHandshake(400, reason);
            return true;
        };
        if (_awaitingHook)
        {
            if (!tooEarly(_early.size() + size)) _early.append(data, size);
            return;
        }
        size_t consumed = 0;
        auto status = _head->feed(data, size, consumed);
        if (status == HttpHeadParser::Status::NeedMore) return;
        if (status == HttpHeadParser::Status::Error)
        {
            int code = _head->errorStatus() ? _head->errorStatus() : 400;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                queueLocked(httpErrorResponse(code, _head->error(), _options.serverHandshake.serverHeader));
                flushLocked();
            }
            failHandshake(code, _head->error());
            return;
        }
        ServerHandshake hs = evaluateClientRequest(_head->head(), _options.serverHandshake);
        if (hs.accepted && _options.admitSession && !_options.admitSession())
        {
            hs.accepted = false;
            hs.status = 503;
            hs.reason = "Too many connections";
            hs.response = httpErrorResponse(503, hs.reason, _options.serverHandshake.serverHeader, "Retry-After: 1\r\n");
        }
        if (hs.accepted && _options.handshakeHook)
        {
            if (tooEarly(size - consumed)) return;
            // The application decides; nothing is written until it answers.
            _awaitingHook = true;
            _pendingResponse = std::move(hs.response);
            _pendingResult = WebSocketInitResult(true, 200, "", _head->head().headers, _head->head().target);
            _pendingResult.protocol = hs.protocol;
            _deflate = hs.deflate; // used if the hook accepts
            _early.assign(data + consumed, size - consumed);
            auto hook = _options.handshakeHook;
            hook(shared_from_this(), _head->head());
            return;
        }
        {
            std::lock_guard<std::mutex> lock(_mutex);
            queueLocked(hs.response);
            if (!hs.accepted)
            {
                flushLocked();
                updateInterestLocked();
            }
        }
        if (!hs.accepted)
        {
            failHandshake(hs.status, hs.reason);
            return;
        }
        // The parser is done (openSession drops it): its headers move into the result.
        HttpHead head = _head->takeHead();
        WebSocketInitResult result(true, 200, "", std::move(head.headers), head.target);
        result.protocol = hs.protocol;
        _deflate = hs.deflate;
        // The 101 goes out once the session is open: a client that has seen it
        // finds this connection Open (getClients()) and may send at once.
        openSession(std::move(result), data + consumed, size - consumed);
        std::lock_guard<std::mutex> lock(_mutex);
        flushLocked();
        updateInterestLocked();
    }

    void Connection::answerHandshake(bool accept, int status, const std::string& reason)
    {
        if (_phase != Phase::Handshake || !_awaitingHook) return;
        _awaitingHook = false;
        std::string response;
        if (accept)
            response.swap(_pendingResponse);
        else
        {
            if (status < 100 || status > 599) status = 500;
            response = httpErrorResponse(status, reason, _options.serverHandshake.serverHeader);
        }
        {
            std::lock_guard<std::mutex> lock(_mutex);
            queueLocked(response);
            if (!accept)
            {
                flushLocked();
                updateInterestLocked();
            }
        }
        if (!accept)
        {
            failHandshake(status, reason);
            return;
        }
        std::string early;
        early.swap(_early);
        // As without a hook: the 101 goes out once the session is open.
        openSession(std::move(_pendingResult), early.data(), early.size());
        std::lock_guard<std::mutex> lock(_mutex);
        flushLocked();
        updateInterestLocked();
    }

    // ------------------------------------------------------------------ both

    void Connection::openSession(WebSocketInitResult&& result, const char* rest, size_t restSize)
    {
        if (_handshakeTimer) _loop.cancelTimer(_handshakeTimer), _handshakeTimer = 0;
        _head.reset();
        {
            std::lock_guard<std::mutex> lock(_mutex);
            WsSession::Config cfg;
            cfg.role = _options.role;
            cfg.autoPong = _options.autoPong;
            cfg.maxMessageSize = _options.maxMessageSize;
            // Failures wait until the events before them were handled, so that
            // replies to earlier messages precede our Close (Autobahn 3.x, 4.x, 5.15).
            cfg.deferFailure = true;
            cfg.deflateNegotiated = _deflate.enabled;
            cfg.deflate = _deflate;
            _session.reset(new WsSession(cfg));
            _phase = Phase::Open;
        }
        if (_owner) _owner->onConnectionOpen(std::move(result));
        heartbeat();
        if (restSize > 0 && _phase == Phase::Open) onSessionData(rest, restSize);
    }

    void Connection::failHandshake(int httpStatus, const std::string& reason)
    {
        if (_phase == Phase::Done || _phase == Phase::Draining) return;
        if (_handshakeTimer) _loop.cancelTimer(_handshakeTimer), _handshakeTimer = 0;
        WebSocketInitResult result(false, httpStatus, reason, _head ? _head->head().headers : WebSocketHttpHeaders(),
                                   _options.role == Role::Client ? _options.url.path : std::string());
        auto owner = _owner;
        bool hasPendingOutput;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            hasPendingOutput = _out.size() > _outOffset && _fd >= 0 && !_writeFailed;
        }
        // Let the HTTP error response (or OpenSSL's alert) reach the peer: closing
        // with unread input would send a RST, which can destroy it in flight.
        if (_options.role == Role::Server && (hasPendingOutput || _tlsPending))
            startDraining();
        else
            finish();
        if (owner) owner->onConnectionFailed(result);
    }

    void Connection::onSessionData(const char* data, size_t size)
    {
        _peerActive = true; // any traffic from the peer shows it is alive (pingTimeout)
        {
            std::lock_guard<std::mutex> lock(_mutex);
            if (!_session) return;
            _session->receive(data, size, _out, _events);
            flushLocked();
            updateInterestLocked();
        }
        afterSessionStep(_events);
    }

    void Connection::afterSessionStep(std::vector<SessionEvent>& events)
    {
        bool closed;
        bool pendingFailure;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            closed = _session && _session->state() == WsSession::State::Closed;
            pendingFailure = _session && _session->hasPendingFailure();
            for (auto& ev : events)
                if (ev.kind == SessionEvent::Kind::Pong) _pongReceived = true;
        }
        if (_options.ackDeliveries)
        {
            size_t delivered = 0;
            for (auto& ev : events)
                if (ev.kind != SessionEvent::Kind::Close) ++delivered;
            if (delivered) _unacked.fetch_add(delivered);
        }
        if (closed && _phase == Phase::Open)
        {
            if (_closeTimer) _loop.cancelTimer(_closeTimer), _closeTimer = 0;
            if (_pingTimer) _loop.cancelTimer(_pingTimer), _pingTimer = 0;
            startDraining();
        }
        if (!events.empty())
        {
            auto owner = _owner;
            if (owner) owner->onSessionEvents(events);
            events.clear();
        }
        // Synchronous callbacks have now answered; asynchronous ones acknowledge.
        if (pendingFailure && _phase == Phase::Open)
        {
            _awaitingAcks = true; // from now on acknowledge() wakes the loop
            if (_unacked.load() == 0)
            {
                commitPendingFailure();
            }
            else if (!_failureTimer)
            {
                // An application that never acknowledges does not keep a broken peer.
                std::weak_ptr<Connection> weak = shared_from_this();
                _failureTimer = _loop.addTimer(std::chrono::milliseconds(_options.closeTimeoutMs), [weak] {
                    if (auto self = weak.lock())
                    {
                        self->_failureTimer = 0;
                        self->commitPendingFailure();
                    }
                });
            }
        }
    }

    void Connection::commitPendingFailure()
    {
        if (_failureTimer) _loop.cancelTimer(_failureTimer), _failureTimer = 0;
        if (_phase != Phase::Open) return;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            if (!_session || !_session->hasPendingFailure()) return;
            _session->commitFailure(_out, _events);
            flushLocked();
            updateInterestLocked();
        }
        afterSessionStep(_events);
    }

    void Connection::acknowledge(size_t count)
    {
        size_t current = _unacked.load();
        while (!_unacked.compare_exchange_weak(current, current - std::min(count, current)))
        {
        }
        // Only a held-back failure waits for acknowledgements: the common case
        // costs no loop wake-up (one per callback batch otherwise).
        if (!_awaitingAcks.load()) return;
        auto self = shared_from_this();
        _loop.dispatch([self] {
            if (self->_unacked.load() == 0 && self->_failureTimer) self->commitPendingFailure();
        });
    }

    void Connection::onIoEvents(uint32_t events)
    {
        if (_phase == Phase::Done) return; // retired earlier in this batch
        if (_phase == Phase::Connecting)
        {
            if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) onConnected(events);
            return;
        }
        if (events & (EPOLLRDHUP | EPOLLHUP)) _peerShutDown = true; // its FIN is in (see startDraining)
        if (_tlsPending)
        {
            handleTlsReadable();
            return;
        }
        if (events & EPOLLOUT) handleWritable();
        if (_phase == Phase::Done) return;
        // TLS: a read may have waited for writability (OpenSSL's WANT_WRITE).
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) || (_options.tls && (events & EPOLLOUT)))
            handleReadable();
    }

    void Connection::handleWritable()
    {
        bool failed;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            flushLocked();
            updateInterestLocked();
            failed = _writeFailed;
        }
        if (failed) onTransportLost("Abnormal closure");
    }

    void Connection::onInput(const char* data, size_t size)
    {
        switch (_phase.load())
        {
            case Phase::Handshake:
                if (_options.role == Role::Client)
                    onClientHandshakeData(data, size);
                else
                    onServerHandshakeData(data, size);
                break;
            case Phase::Open: onSessionData(data, size); break;
            default: break; // Draining: discard until the peer's FIN
        }
    }

    void Connection::handleReadable()
    {
        if (_options.tls)
        {
            handleTlsReadable();
            return;
        }
        char* buf = readBuffer();
        for (int round = 0; round < 8; ++round)
        {
            if (_fd < 0 || _phase == Phase::Done) return;
            ssize_t n = ::recv(_fd, buf, kReadBufferSize, 0);
            if (n > 0)
            {
                onInput(buf, static_cast<size_t>(n));
                if (static_cast<size_t>(n) < kReadBufferSize) return;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n < 0 && errno == EINTR) continue;
            // EOF or error
            onTransportLost(n == 0 ? "Abnormal closure" : std::strerror(errno));
            return;
        }
    }

    // ------------------------------------------------------------------ TLS

    bool Connection::startTls()
    {
        // Loop thread, _phase == Handshake, fd registered.
        std::string error;
        const std::string host = _options.role == Role::Client ? _options.url.host : std::string();
        std::unique_ptr<TlsStream> stream = TlsStream::create(_options.tls, _fd, host, error);
        if (!stream)
        {
            auto self = shared_from_this();
            // Never inline: the server's owner attaches this connection first.
            _loop.post([self, error] { self->failHandshake(0, "TLS setup failed: " + error); });
            return false;
        }
        std::lock_guard<std::mutex> lock(_mutex);
        _tls = std::move(stream);
        _tlsPending = true;
        return true;
    }

    void Connection::driveTlsHandshake()
    {
        TlsStream::Result r;
        std::string error;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            if (!_tls || _phase != Phase::Handshake) return;
            r = _tls->handshake(error);
            if (r == TlsStream::Result::Ok) _tlsPending = false; // output may flow now
            updateInterestLocked();
        }
        if (r == TlsStream::Result::WantRead || r == TlsStream::Result::WantWrite) return;
        if (r != TlsStream::Result::Ok)
        {
            if (_options.role == Role::Client)
                failHandshake(0, "TLS handshake with " + _options.url.hostHeader() + " failed: " + error);
            else
                failHandshake(0, "TLS handshake failed: " + error);
            return;
        }
        if (_options.role == Role::Client)
        {
            sendClientRequest();
        }
        else if (!_head)
        {
            startDraining(); // rejectServer(): its queued answer goes out now
            return;
        }
        // Application data may have arrived with the peer's last handshake flight.
        if (_phase == Phase::Handshake) handleTlsReadable();
    }

    void Connection::handleTlsReadable()
    {
        if (_tlsPending)
        {
            if (_phase == Phase::Handshake)
                driveTlsHandshake();
            else
                discardInput(); // the handshake failed: drain until the peer's FIN
            return;
        }
        char* buf = readBuffer();
        for (int round = 0; round < 8; ++round)
        {
            if (_fd < 0 || _phase == Phase::Done) return;
            size_t total = 0;
            TlsStream::Result r = TlsStream::Result::Ok;
            std::string error;
            bool writeFailed;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                if (!_tls) return;
                // SSL_read hands out at most one record: gather up to a buffer.
                while (total < kReadBufferSize)
                {
                    size_t got = 0;
                    r = _tls->read(buf + total, kReadBufferSize - total, got, error);
                    if (r != TlsStream::Result::Ok) break;
                    total += got;
                }
                // A write that waited for input may go on now.
                if (_tls->writeWantsRead()) flushLocked();
                updateInterestLocked();
                writeFailed = _writeFailed;
            }
            if (total > 0) onInput(buf, total);
            if (_phase == Phase::Done) return;
            if (writeFailed)
            {
                onTransportLost("write error");
                return;
            }
            if (r == TlsStream::Result::Ok) continue; // the buffer filled up: read on
            if (r == TlsStream::Result::WantRead || r == TlsStream::Result::WantWrite) return;
            if (r == TlsStream::Result::Error && _phase == Phase::Handshake)
            {
                // E.g. TLS 1.3: the server refuses our certificate after our side
                // of the handshake completed; say so rather than "no HTTP status".
                failHandshake(0, _options.role == Role::Client
                                     ? "TLS error from " + _options.url.hostHeader() + ": " + error
                                     : "TLS error: " + error);
                return;
            }
            onTransportLost(r == TlsStream::Result::Closed ? "Abnormal closure" : error);
            return;
        }
        // Round limit: other sockets get their turn. Bytes already decrypted inside
        // OpenSSL do not wake epoll, so come back for them.
        bool more;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            more = _tls && _tls->hasBufferedInput();
        }
        if (more)
        {
            auto self = shared_from_this();
            _loop.post([self] { self->handleReadable(); });
        }
    }

    void Connection::discardInput()
    {
        char* buf = readBuffer();
        for (int round = 0; round < 8; ++round)
        {
            if (_fd < 0 || _phase == Phase::Done) return;
            ssize_t n = ::recv(_fd, buf, kReadBufferSize, 0);
            if (n > 0) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n < 0 && errno == EINTR) continue;
            onTransportLost("Abnormal closure");
            return;
        }
    }

    ssize_t Connection::writeSomeLocked(const char* data, size_t size)
    {
        if (!_tls) return ::send(_fd, data, size, MSG_NOSIGNAL);
        size_t written = 0;
        std::string error;
        switch (_tls->write(data, size, written, error))
        {
            case TlsStream::Result::Ok: return static_cast<ssize_t>(written);
            case TlsStream::Result::WantRead:
            case TlsStream::Result::WantWrite: errno = EAGAIN; return -1;
            default: errno = EPIPE; return -1;
        }
    }

    void Connection::onTransportLost(const std::string& reason)
    {
        switch (_phase.load())
        {
            case Phase::Connecting:
            case Phase::Handshake:
                failHandshake(0, _options.role == Role::Client
                                     ? "Failed reading HTTP status line from " + _options.urlText
                                     : "Connection closed during handshake");
                return;
            case Phase::Open:
            {
                if (_closeTimer) _loop.cancelTimer(_closeTimer), _closeTimer = 0;
                if (_pingTimer) _loop.cancelTimer(_pingTimer), _pingTimer = 0;
                {
                    std::lock_guard<std::mutex> lock(_mutex);
                    if (_session)
                    {
                        if (_session->state() == WsSession::State::Closing)
                            // We sent a Close and the peer just went away: our status stands.
                            _session->transportClosed(_closeCode, _closeReason, _events);
                        else
                            _session->transportClosed(WebSocketCloseConstants::kAbnormalCloseCode,
                                                      WebSocketCloseConstants::kAbnormalCloseMessage, _events);
                    }
                }
                (void) reason;
                finish();
                afterSessionStep(_events);
                return;
            }
            case Phase::Draining: finish(); return;
            default: return;
        }
    }

    bool Connection::readUntilPeerEof()
    {
        // Loop thread, the peer's FIN known to be in: what precedes it is
        // discarded (as Draining does), then recv() reports the end.
        char* buf = readBuffer();
        for (int round = 0; round < 8; ++round)
        {
            ssize_t n = ::recv(_fd, buf, kReadBufferSize, 0);
            if (n > 0) continue;
            if (n == 0) return true;
            if (errno == EINTR) continue;
            return errno != EAGAIN && errno != EWOULDBLOCK; // reset: gone as well
        }
        return false;
    }

    void Connection::startDraining()
    {
        if (_peerShutDown && !_tls && _fd >= 0 && readUntilPeerEof())
        {
            // The peer has finished sending (its FIN came with its last bytes,
            // e.g. right after its Close): nothing is left to wait for once our
            // bytes are out. close() sends our FIN after them, and with no unread
            // input it cannot turn into a RST. No shutdown(), no EOF round, no timer.
            bool flushed;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                flushLocked();
                flushed = _outOffset == _out.size() || _writeFailed;
            }
            if (flushed)
            {
                _phase = Phase::Draining;
                finish();
                return;
            }
        }
        _phase = Phase::Draining;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            flushLocked(); // sends our FIN when everything is out
            if (_out.size() == _outOffset) shutdownWriteLocked();
            updateInterestLocked();
        }
        std::weak_ptr<Connection> weak = shared_from_this();
        _closeTimer = _loop.addTimer(std::chrono::milliseconds(_options.closeTimeoutMs), [weak] {
            if (auto self = weak.lock())
            {
                self->_closeTimer = 0;
                self->finish();
            }
        });
    }

    void Connection::finish()
    {
        if (_phase == Phase::Done) return;
        _phase = Phase::Done;
        if (_handshakeTimer) _loop.cancelTimer(_handshakeTimer), _handshakeTimer = 0;
        if (_closeTimer) _loop.cancelTimer(_closeTimer), _closeTimer = 0;
        if (_pingTimer) _loop.cancelTimer(_pingTimer), _pingTimer = 0;
        if (_pingDeadlineTimer) _loop.cancelTimer(_pingDeadlineTimer), _pingDeadlineTimer = 0;
        if (_failureTimer) _loop.cancelTimer(_failureTimer), _failureTimer = 0;
        std::lock_guard<std::mutex> lock(_mutex);
        if (_fd >= 0)
        {
            if (_registered) _loop.remove(_fd);
            _registered = false;
            _tls.reset();
            ::close(_fd);
            _fd = -1;
        }
        _out.clear();
        _out.shrink_to_fit();
        _outOffset = 0;
        _drained.notify_all(); // senders blocked on a full buffer give up
        // Release the owner once the events of this step have been delivered.
        auto self = shared_from_this();
        _loop.post([self] { self->_owner.reset(); });
    }

    void Connection::armCloseTimer()
    {
        if (_closeTimer || _phase != Phase::Open) return;
        std::weak_ptr<Connection> weak = shared_from_this();
        _closeTimer = _loop.addTimer(std::chrono::milliseconds(_options.closeTimeoutMs), [weak] {
            auto self = weak.lock();
            if (!self) return;
            self->_closeTimer = 0;
            if (self->_phase != Phase::Open) return;
            {
                std::lock_guard<std::mutex> lock(self->_mutex);
                if (self->_session)
                    self->_session->transportClosed(self->_closeCode, self->_closeReason, self->_events);
            }
            self->finish();
            self->afterSessionStep(self->_events);
        });
    }

    void Connection::heartbeat()
    {
        if (_options.pingIntervalSecs <= 0 || _phase != Phase::Open) return;
        // Upstream's rule: no pong since the previous heartbeat closes at the next
        // one. With pingTimeoutSecs (our extension) a deadline after the ping
        // decides instead, and any traffic from the peer counts as an answer.
        const bool deadlineRule = _options.pingTimeoutSecs > 0;
        if (!deadlineRule && !_pongReceived)
        {
            close(WebSocketCloseConstants::kInternalErrorCode, WebSocketCloseConstants::kPingTimeoutMessage);
            return;
        }
        std::string payload = _options.pingMessage;
        if (payload.empty())
            payload = "ixwebsocket::heartbeat::" + std::to_string(_options.pingIntervalSecs) + "s::" +
                      std::to_string(_heartbeatCount++);
        _pongReceived = false;
        sendControl(kPing, payload.data(), payload.size());
        std::weak_ptr<Connection> weak = shared_from_this();
        if (deadlineRule && !_pingDeadlineTimer)
        {
            // One deadline at a time: a ping sent while one runs is covered by the
            // next deadline, armed at the following heartbeat (pingTimeout + one
            // interval at most).
            _peerActive = false;
            _pingDeadlineTimer = _loop.addTimer(std::chrono::seconds(_options.pingTimeoutSecs), [weak] {
                if (auto self = weak.lock())
                {
                    self->_pingDeadlineTimer = 0;
                    self->onPingDeadline();
                }
            });
        }
        _pingTimer = _loop.addTimer(std::chrono::seconds(_options.pingIntervalSecs), [weak] {
            if (auto self = weak.lock())
            {
                self->_pingTimer = 0;
                self->heartbeat();
            }
        });
    }

    void Connection::onPingDeadline()
    {
        if (_phase != Phase::Open || _peerActive) return;
        close(WebSocketCloseConstants::kInternalErrorCode, WebSocketCloseConstants::kPingTimeoutMessage);
    }

    // ------------------------------------------------------------------ any thread

    WebSocketSendInfo Connection::sendMessage(bool binary, const char* data, size_t size, bool compress)
    {
        std::lock_guard<std::mutex> sendLock(_sendMutex);
        WsSession* session;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            if (_fd < 0 || !_session || _writeFailed || _session->state() != WsSession::State::Open)
                return WebSocketSendInfo(false);
            session = _session.get(); // set once, lives as long as this connection
        }
        const bool deflate = session->wantsCompression(compress);
        if (deflate)
        {
            // Admission before compression: a refused message must never enter
            // the compressor, or (context takeover) the next message could refer
            // to bytes the peer never gets. The uncompressed size counts here.
            bool closeNow = false;
            std::unique_lock<std::mutex> lock(_mutex);
            if (_fd < 0 || _writeFailed) return WebSocketSendInfo(false);
            if (!admitLocked(lock, size + kMaxFrameHeaderSize, closeNow))
            {
                lock.unlock();
                return refuseFull(size, closeNow);
            }
        }
        // Deflate outside _mutex: a large message must not stall the loop thread.
        // _sendMutex keeps other senders out, so what was admitted stays admitted.
        std::string compressed;
        if (deflate && !session->compressMessage(data, size, compressed)) return WebSocketSendInfo(false, true);
        const char* payload = deflate ? compressed.data() : data;
        const size_t wireSize = deflate ? compressed.size() : size;
        bool failed;
        bool closeNow = false;
        {
            std::unique_lock<std::mutex> lock(_mutex);
            if (_fd < 0 || _writeFailed) return WebSocketSendInfo(false);
            if (!deflate && !admitLocked(lock, wireSize + kMaxFrameHeaderSize, closeNow))
            {
                lock.unlock();
                return refuseFull(size, closeNow);
            }
            if (!deflate && size >= kDirectWriteBytes && _outOffset == _out.size() && !_batched && !_tls &&
                !_tlsPending && session->state() == WsSession::State::Open)
            {
                writeDirectLocked(binary, data, size);
            }
            else
            {
                if (!session->sendPrepared(binary, payload, wireSize, deflate, _out)) return WebSocketSendInfo(false);
                writeOrBatchLocked();
            }
            failed = _writeFailed;
        }
        if (failed)
        {
            auto self = shared_from_this();
            _loop.post([self] { self->onTransportLost("write error"); });
        }
        return WebSocketSendInfo(true, false, size, wireSize);
    }

    WebSocketSendInfo Connection::sendPrepared(const std::string& frame, size_t headerSize, bool binary)
    {
        // A connection that cannot share the frame compresses it itself: that
        // compressor is serialised with the other sends by _sendMutex.
        std::lock_guard<std::mutex> sendLock(_sendMutex);
        const size_t size = frame.size() - headerSize;
        size_t wireSize = size;
        bool failed;
        bool closeNow = false;
        {
            std::unique_lock<std::mutex> lock(_mutex);
            if (_fd < 0 || !_session || _writeFailed) return WebSocketSendInfo(false);
            if (!admitLocked(lock, frame.size(), closeNow))
            {
                lock.unlock();
                return refuseFull(size, closeNow);
            }
            if (_session->sharesFrames())
            {
                _out.append(frame);
            }
            else
            {
                auto outcome = _session->send(binary, frame.data() + headerSize, size, _out);
                if (!outcome.sent) return WebSocketSendInfo(false, outcome.compressionError);
                wireSize = outcome.wireSize;
            }
            writeOrBatchLocked();
            failed = _writeFailed;
        }
        if (failed)
        {
            auto self = shared_from_this();
            _loop.post([self] { self->onTransportLost("write error"); });
        }
        return WebSocketSendInfo(true, false, size, wireSize);
    }

    void Connection::flushBatched()
    {
        bool failed;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _batched = false;
            flushLocked();
            updateInterestLocked();
            failed = _writeFailed && _fd >= 0;
        }
        if (failed)
        {
            auto self = shared_from_this();
            _loop.post([self] { self->onTransportLost("write error"); });
        }
    }

    WebSocketSendInfo Connection::refuseFull(size_t payloadSize, bool closeNow)
    {
        if (closeNow) close(1008, "Send buffer full");
        WebSocketSendInfo info(false, false, payloadSize, 0);
        info.bufferFull = true;
        return info;
    }

    bool Connection::admitLocked(std::unique_lock<std::mutex>& lock, size_t bytes, bool& closeNow)
    {
        const size_t limit = _options.sendBufferLimit;
        if (limit == 0) return true;
        auto fits = [&] {
            size_t buffered = _out.size() - _outOffset;
            return buffered == 0 || buffered + bytes <= limit || _fd < 0 || _writeFailed;
        };
        if (fits()) return true;
        if (_batched) flushLocked(); // our own batched bytes may just need a write
        if (fits()) return true;
        switch (_options.slowConsumerPolicy)
        {
            case 1: // block: wait for the loop to drain
            {
                if (_options.sendTimeoutMs <= 0) return false;
                // Inside an I/O callback of our own loop nothing could drain. At a
                // pass hook (a binding's callback) waitTurning keeps it turning.
                if (_loop.inLoopThread() && !EventLoop::canPumpWhileWaiting()) return false;
                updateInterestLocked();
                EventLoop::waitTurning(_drained, lock,
                                       EventLoop::Clock::now() + std::chrono::milliseconds(_options.sendTimeoutMs),
                                       fits);
                if (_fd < 0 || _writeFailed || !_session) return false;
                return fits();
            }
            case 2: closeNow = true; return false;
            default: return false;
        }
    }

    void Connection::writeDirectLocked(bool binary, const char* data, size_t size)
    {
        // Large message, nothing queued: no copy into _out. Server role: header
        // and payload go out straight from the caller's buffer (one sendmsg).
        // Client role: the payload is masked (up to 1 MiB at a time) into a
        // per-thread buffer: one pass over the data instead of a copy into
        // _out and a masking pass there, and no per-message allocation.
        // Whatever the socket does not take is queued in _out.
        const bool mask = _options.role == Role::Client;
        uint8_t key[4];
        if (mask) randomMask(key);
        uint8_t header[kMaxFrameHeaderSize];
        const size_t headerLength =
            writeFrameHeader(header, true, false, binary ? kBinary : kText, size, mask ? key : nullptr);
        uint8_t* scratch = nullptr;
        if (mask)
        {
            const size_t need = std::min(size, kMaskChunkBytes);
            if (tMaskBuffer.size() < need) tMaskBuffer.resize(need);
            scratch = tMaskBuffer.data();
        }
        size_t headerSent = 0;
        size_t payloadSent = 0;
        while (true)
        {
            const size_t chunkLength = mask ? std::min(size - payloadSent, kMaskChunkBytes) : size - payloadSent;
            const char* chunk = data + payloadSent;
            if (mask)
            {
                maskCopy(scratch, reinterpret_cast<const uint8_t*>(chunk), chunkLength, key, payloadSent);
                chunk = reinterpret_cast<const char*>(scratch);
            }
            iovec iov[2];
            int count = 0;
            if (headerSent < headerLength) iov[count++] = {header + headerSent, headerLength - headerSent};
            iov[count++] = {const_cast<char*>(chunk), chunkLength};
            msghdr msg {};
            msg.msg_iov = iov;
            msg.msg_iovlen = count;
            ssize_t n;
            do
                n = ::sendmsg(_fd, &msg, MSG_NOSIGNAL);
            while (n < 0 && errno == EINTR);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            {
                _writeFailed = true;
                _drained.notify_all();
                return;
            }
            size_t written = n > 0 ? static_cast<size_t>(n) : 0;
            const size_t headerPart = std::min(written, headerLength - headerSent);
            headerSent += headerPart;
            written -= headerPart;
            const size_t chunkStart = payloadSent;
            payloadSent += written;
            if (written < chunkLength)
            {
                // The socket is full: queue the rest of the frame.
                _out.append(reinterpret_cast<const char*>(header) + headerSent, headerLength - headerSent);
                if (!mask)
                {
                    _out.append(data + payloadSent, size - payloadSent);
                    break;
                }
                _out.append(chunk + written, chunkLength - written);
                const size_t restStart = chunkStart + chunkLength;
                if (restStart < size)
                {
                    const size_t at = _out.size();
                    _out.append(data + restStart, size - restStart);
                    applyMask(reinterpret_cast<uint8_t*>(&_out[at]), size - restStart, key, restStart);
                }
                break;
            }
            if (payloadSent == size) break;
        }
        updateInterestLocked();
    }

    void Connection::writeOrBatchLocked()
    {
        if (sendBatchActive() && _out.size() - _outOffset < kBatchFlushBytes)
        {
            if (!_batched)
            {
                _batched = true;
                sendBatchEnlist(shared_from_this());
            }
            return;
        }
        flushLocked();
        updateInterestLocked();
    }

    WebSocketSendInfo Connection::sendControl(uint8_t opcode, const char* data, size_t size)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        if (_fd < 0 || !_session || _writeFailed) return WebSocketSendInfo(false);
        if (!_session->sendControl(opcode, data, size, _out)) return WebSocketSendInfo(false);
        flushLocked();
        updateInterestLocked();
        if (_writeFailed)
        {
            auto self = shared_from_this();
            _loop.post([self] { self->onTransportLost("write error"); });
        }
        return WebSocketSendInfo(true, false, size, size);
    }

    void Connection::close(uint16_t code, const std::string& reason)
    {
        auto self = shared_from_this();
        _loop.dispatch([self, code, reason] {
            switch (self->_phase.load())
            {
                case Phase::Resolving:
                case Phase::Connecting:
                case Phase::Handshake:
                    self->_cancelled = true;
                    self->failHandshake(0, "Cancelled");
                    return;
                case Phase::Open:
                {
                    {
                        std::lock_guard<std::mutex> lock(self->_mutex);
                        if (!self->_session || !self->_session->startClose(code, reason, self->_out)) return;
                        self->_closeCode = code;
                        self->_closeReason = reason;
                        self->flushLocked();
                        self->updateInterestLocked();
                    }
                    self->armCloseTimer();
                    return;
                }
                default: return;
            }
        });
    }

    bool Connection::closeOpenNow(uint16_t code, const std::string& reason)
    {
        bool failed;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            // openSession sets Open and the session together under _mutex.
            if (_phase != Phase::Open || !_session || _fd < 0) return false;
            if (!_session->startClose(code, reason, _out)) return true; // closing already
            _closeCode = code;
            _closeReason = reason;
            flushLocked();
            updateInterestLocked();
            failed = _writeFailed;
        }
        if (failed)
        {
            auto self = shared_from_this();
            _loop.post([self] { self->onTransportLost("write error"); });
        }
        return true;
    }

    void Connection::abort(const std::string& reason)
    {
        auto self = shared_from_this();
        _loop.dispatch([self, reason] { self->onTransportLost(reason); });
    }

    ReadyState Connection::readyState() const
    {
        switch (_phase.load())
        {
            case Phase::Resolving:
            case Phase::Connecting:
            case Phase::Handshake: return ReadyState::Connecting;
            case Phase::Open:
            {
                std::lock_guard<std::mutex> lock(_mutex);
                if (!_session) return ReadyState::Connecting;
                switch (_session->state())
                {
                    case WsSession::State::Open: return ReadyState::Open;
                    case WsSession::State::Closing: return ReadyState::Closing;
                    default: return ReadyState::Closed;
                }
            }
            default: return ReadyState::Closed;
        }
    }

    size_t Connection::bufferedAmount() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _out.size() - _outOffset;
    }

    // ------------------------------------------------------------------ output

    void Connection::queueLocked(const std::string& bytes) { _out.append(bytes); }

    bool Connection::flushLocked()
    {
        if (_fd < 0 || _writeFailed) return false;
        if (_tlsPending) return true; // nothing goes out before the TLS handshake
        bool progressed = false;
        while (_outOffset < _out.size())
        {
            ssize_t n = writeSomeLocked(_out.data() + _outOffset, _out.size() - _outOffset);
            if (n > 0)
            {
                _outOffset += static_cast<size_t>(n);
                progressed = true;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            _writeFailed = true;
            _drained.notify_all();
            return false;
        }
        if (progressed && _options.sendBufferLimit != 0) _drained.notify_all();
        if (_outOffset == _out.size())
        {
            _out.clear();
            _outOffset = 0;
            if (_out.capacity() > 1024 * 1024) _out.shrink_to_fit();
            if (_phase == Phase::Draining) shutdownWriteLocked();
        }
        else if (_outOffset > (1 << 20) && _outOffset > _out.size() / 2)
        {
            _out.erase(0, _outOffset);
            _outOffset = 0;
        }
        return true;
    }

    void Connection::shutdownWriteLocked()
    {
        if (_fd < 0 || _shutdownSent) return;
        _shutdownSent = true;
        if (_tls) _tls->sendCloseNotify();
        ::shutdown(_fd, SHUT_WR);
    }

    void Connection::updateInterestLocked()
    {
        if (_fd < 0 || !_registered) return;
        bool want = _outOffset < _out.size() && !_writeFailed;
        if (_tls) want = _tls->needsWritable(want);
        if (want == _wantWrite) return;
        _wantWrite = want;
        _loop.modify(_fd, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u), this);
    }
} // namespace ix::detail
