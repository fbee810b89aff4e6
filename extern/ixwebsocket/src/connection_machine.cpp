#include "connection_machine.h"

#include "ixwebsocket/IXWebSocketCloseConstants.h"
#include <algorithm>

namespace ix::detail
{
    namespace
    {
        TimePoint after(TimePoint now, int ms) { return now + std::chrono::milliseconds(ms); }

        bool inHandshake(ConnectionMachine::Phase p)
        {
            using P = ConnectionMachine::Phase;
            return p == P::Idle || p == P::Resolving || p == P::Connecting || p == P::Securing ||
                   p == P::Handshake || p == P::AwaitingHook;
        }
    } // namespace

    ConnectionMachine::ConnectionMachine(MachineConfig config) : _config(std::move(config)) {}

    // ------------------------------------------------------------------ client

    void ConnectionMachine::startClient(TimePoint now)
    {
        if (_phase != Phase::Idle || _failed) return; // cancelled before it started
        _phase = Phase::Resolving;
        _handshakeDeadline = after(now, _config.handshakeTimeoutMs);
    }

    void ConnectionMachine::resolved()
    {
        if (_phase == Phase::Resolving) _phase = Phase::Connecting;
    }

    const std::string& ConnectionMachine::clientRequest()
    {
        if (_request.empty())
        {
            _clientKey = generateClientKey();
            _request = buildClientRequest(_config.url, _clientKey, _config.extraHeaders, _config.subprotocols,
                                          _config.extensionsOffer);
        }
        return _request;
    }

    void ConnectionMachine::connected(std::string& out, bool requestWritten)
    {
        if (_phase != Phase::Connecting) return;
        if (_config.tls)
        {
            _phase = Phase::Securing;
            return;
        }
        if (!requestWritten) out += clientRequest();
        _phase = Phase::Handshake;
        _head.reset(new HttpHeadParser(HttpHeadParser::Kind::Response, _config.maxHeadSize));
    }

    void ConnectionMachine::clientHandshakeData(const char* data, size_t size, std::string&, MachineOutput& o)
    {
        size_t consumed = 0;
        auto status = _head->feed(data, size, consumed);
        if (status == HttpHeadParser::Status::NeedMore) return;
        if (status == HttpHeadParser::Status::Error)
        {
            failHandshake(0, "Error parsing HTTP headers from " + _config.urlText + ": " + _head->error(), o);
            return;
        }
        WebSocketInitResult result = checkServerResponse(_head->head(), _config.urlText, _config.url, _clientKey,
                                                         _config.subprotocols, _config.extensionsOffer, &_deflate);
        if (!result.success)
        {
            failHandshake(result.http_status, result.errorStr, o);
            return;
        }
        open(std::move(result), data + consumed, size - consumed, o);
    }

    // ------------------------------------------------------------------ server

    void ConnectionMachine::startServer(TimePoint now)
    {
        if (_phase != Phase::Idle) return;
        _phase = _config.tls ? Phase::Securing : Phase::Handshake;
        _head.reset(new HttpHeadParser(HttpHeadParser::Kind::Request, _config.maxHeadSize));
        _handshakeDeadline = after(now, _config.handshakeTimeoutMs);
    }

    void ConnectionMachine::startRejecting(TimePoint now, const std::string& response, std::string& out,
                                           MachineOutput& o)
    {
        if (_phase != Phase::Idle) return;
        _rejecting = true;
        out += response;
        if (_config.tls)
        {
            // The answer can only be read inside TLS: handshake first (bounded).
            _phase = Phase::Securing;
            _handshakeDeadline = after(now, _config.closeTimeoutMs);
            return;
        }
        _phase = Phase::Handshake;
        o.teardown = Teardown::Drain; // the request, if any, is read and discarded
    }

    void ConnectionMachine::answerError(int status, const std::string& reason, std::string& out, MachineOutput& o)
    {
        out += httpErrorResponse(status, reason, _config.serverHandshake.serverHeader);
        failHandshake(status, reason, o);
    }

    bool ConnectionMachine::tooEarly(size_t bytes, std::string& out, MachineOutput& o)
    {
        // Frames sent before the hook's answer wait for it, within the head limit.
        if (bytes <= _config.maxHeadSize) return false;
        answerError(400, "Too much data before the handshake was answered", out, o);
        return true;
    }

    void ConnectionMachine::serverHandshakeData(const char* data, size_t size, std::string& out, MachineOutput& o)
    {
        if (_phase == Phase::AwaitingHook)
        {
            if (!tooEarly(_early.size() + size, out, o)) _early.append(data, size);
            return;
        }
        size_t consumed = 0;
        auto status = _head->feed(data, size, consumed);
        if (status == HttpHeadParser::Status::NeedMore) return;
        if (status == HttpHeadParser::Status::Error)
        {
            answerError(_head->errorStatus() ? _head->errorStatus() : 400, _head->error(), out, o);
            return;
        }
        ServerHandshake hs = evaluateClientRequest(_head->head(), _config.serverHandshake);
        if (hs.accepted && _config.admitSession && !_config.admitSession())
        {
            hs.accepted = false;
            hs.status = 503;
            hs.reason = "Too many connections";
            hs.response =
                httpErrorResponse(503, hs.reason, _config.serverHandshake.serverHeader, "Retry-After: 1\r\n");
        }
        if (!hs.accepted)
        {
            out += hs.response;
            failHandshake(hs.status, hs.reason, o);
            return;
        }
        _deflate = hs.deflate;
        if (_config.handshakeHook)
        {
            if (tooEarly(size - consumed, out, o)) return;
            // The application decides; nothing is written until it answers.
            _phase = Phase::AwaitingHook;
            _pendingResponse = std::move(hs.response);
            _pendingResult = WebSocketInitResult(true, 200, "", _head->head().headers, _head->head().target);
            _pendingResult.protocol = hs.protocol;
            _early.assign(data + consumed, size - consumed);
            o.askHook = true;
            return;
        }
        // The 101 is written by the caller after reporting `opened`: a client
        // that has seen it finds this connection Open (getClients()).
        out += hs.response;
        HttpHead head = _head->takeHead();
        WebSocketInitResult result(true, 200, "", std::move(head.headers), head.target);
        result.protocol = hs.protocol;
        open(std::move(result), data + consumed, size - consumed, o);
    }

    void ConnectionMachine::answerHook(bool accept, int status, const std::string& reason, std::string& out,
                                      MachineOutput& o)
    {
        if (_phase != Phase::AwaitingHook) return;
        if (!accept)
        {
            if (status < 100 || status > 599) status = 500;
            answerError(status, reason, out, o);
            return;
        }
        out += _pendingResponse;
        _pendingResponse.clear();
        open(std::move(_pendingResult), nullptr, 0, o); // _early holds what followed
    }

    const HttpHead& ConnectionMachine::request() const
    {
        static const HttpHead kNone;
        return _head ? _head->head() : kNone;
    }

    // ------------------------------------------------------------------ both

    void ConnectionMachine::secured(std::string& out, MachineOutput& o)
    {
        if (_phase != Phase::Securing) return;
        if (_rejecting)
        {
            _phase = Phase::Handshake;
            o.teardown = Teardown::Drain; // the queued answer goes out now
            return;
        }
        _phase = Phase::Handshake;
        if (_config.role == Role::Client)
        {
            out += clientRequest();
            _head.reset(new HttpHeadParser(HttpHeadParser::Kind::Response, _config.maxHeadSize));
        }
    }

    void ConnectionMachine::open(WebSocketInitResult&& result, const char* rest, size_t restSize, MachineOutput& o)
    {
        _handshakeDeadline = TimePoint::max();
        _head.reset();
        WsSession::Config cfg;
        cfg.role = _config.role;
        cfg.autoPong = _config.autoPong;
        cfg.maxMessageSize = _config.maxMessageSize;
        // Failures wait until the events before them were handled, so that
        // replies to earlier messages precede our Close (Autobahn 3.x, 4.x, 5.15).
        cfg.deferFailure = true;
        cfg.deflateNegotiated = _deflate.enabled;
        cfg.deflate = _deflate;
        _session.reset(new WsSession(cfg));
        _phase = Phase::Open;
        if (rest) _early.assign(rest, restSize); // processed by afterOpen()
        o.opened = true;
        o.openResult = std::move(result);
    }

    void ConnectionMachine::afterOpen(TimePoint now, std::string& out, MachineOutput& o)
    {
        if (_phase != Phase::Open) return;
        heartbeat(now, out);
        if (_early.empty() || _phase != Phase::Open) return;
        std::string early;
        early.swap(_early);
        sessionData(early.data(), early.size(), out, o);
    }

    void ConnectionMachine::failHandshake(int httpStatus, const std::string& reason, MachineOutput& o)
    {
        if (!inHandshake(_phase) || _failed) return;
        _failed = true; // reported once; the caller's teardown ends the phase
        _handshakeDeadline = TimePoint::max();
        o.failed = true;
        o.failure = WebSocketInitResult(false, httpStatus, reason,
                                        _head ? _head->head().headers : WebSocketHttpHeaders(),
                                        _config.role == Role::Client ? _config.url.path : std::string());
        // A server lets its answer (HTTP error or TLS alert) reach the peer:
        // closing with unread input would send a RST, which can destroy it.
        o.teardown = _config.role == Role::Server ? Teardown::DrainIfUnsent : Teardown::Close;
    }

    void ConnectionMachine::fail(int httpStatus, const std::string& reason, MachineOutput& o)
    {
        failHandshake(httpStatus, reason, o);
    }

    void ConnectionMachine::secureFailed(const std::string& error, MachineOutput& o)
    {
        if (_config.role == Role::Client)
            failHandshake(0, "TLS handshake with " + _config.url.hostHeader() + " failed: " + error, o);
        else
            failHandshake(0, "TLS handshake failed: " + error, o);
    }

    void ConnectionMachine::receive(const char* data, size_t size, std::string& out, MachineOutput& o)
    {
        switch (_phase)
        {
            case Phase::Handshake:
            case Phase::AwaitingHook:
                if (_rejecting) return; // the request is read and discarded
                if (_config.role == Role::Client)
                    clientHandshakeData(data, size, out, o);
                else
                    serverHandshakeData(data, size, out, o);
                return;
            case Phase::Open: sessionData(data, size, out, o); return;
            default: return; // Draining: discarded until the peer's FIN
        }
    }

    void ConnectionMachine::sessionData(const char* data, size_t size, std::string& out, MachineOutput& o)
    {
        _peerActive = true; // any traffic from the peer shows it is alive (pingTimeout)
        _session->receive(data, size, out, o.events);
        afterSessionStep(o);
    }

    void ConnectionMachine::afterSessionStep(MachineOutput& o)
    {
        size_t delivered = 0;
        for (auto& ev : o.events)
        {
            if (ev.kind == SessionEvent::Kind::Pong) _pongReceived = true;
            if (ev.kind != SessionEvent::Kind::Close) ++delivered;
        }
        // Counted before the owner sees them: acknowledge() may come at once.
        if (_config.ackDeliveries && delivered) _unacked.fetch_add(delivered);
        if (_session->state() == WsSession::State::Closed && _phase == Phase::Open)
        {
            clearSessionDeadlines();
            o.teardown = Teardown::Drain;
        }
        if (_session->hasPendingFailure() && _phase == Phase::Open) o.heldFailure = true;
    }

    void ConnectionMachine::afterDelivery(TimePoint now, std::string& out, MachineOutput& o)
    {
        // Synchronous callbacks have now answered; asynchronous ones acknowledge.
        if (_phase != Phase::Open || !_session->hasPendingFailure()) return;
        _awaitingAcks = true; // from now on acknowledge() asks for acknowledged()
        if (_unacked.load() == 0)
            commitFailure(out, o);
        else if (_failureDeadline == TimePoint::max())
            // An application that never acknowledges does not keep a broken peer.
            _failureDeadline = after(now, _config.closeTimeoutMs);
    }

    void ConnectionMachine::commitFailure(std::string& out, MachineOutput& o)
    {
        _failureDeadline = TimePoint::max();
        if (_phase != Phase::Open || !_session->hasPendingFailure()) return;
        _session->commitFailure(out, o.events);
        afterSessionStep(o);
    }

    bool ConnectionMachine::acknowledge(size_t count)
    {
        size_t current = _unacked.load();
        while (!_unacked.compare_exchange_weak(current, current - std::min(count, current)))
        {
        }
        // Only a held-back failure waits for acknowledgements: the common case
        // costs the caller nothing more.
        return _awaitingAcks.load();
    }

    void ConnectionMachine::acknowledged(TimePoint, std::string& out, MachineOutput& o)
    {
        if (_unacked.load() == 0 && _failureDeadline != TimePoint::max()) commitFailure(out, o);
    }

    void ConnectionMachine::peerGone(const std::string& tlsError, MachineOutput& o)
    {
        switch (_phase)
        {
            case Phase::Connecting:
            case Phase::Securing:
            case Phase::Handshake:
            case Phase::AwaitingHook:
                if (!tlsError.empty() && _phase != Phase::Securing)
                    // E.g. TLS 1.3: the server refuses our certificate after our
                    // side of the handshake completed; say so.
                    failHandshake(0, _config.role == Role::Client
                                         ? "TLS error from " + _config.url.hostHeader() + ": " + tlsError
                                         : "TLS error: " + tlsError,
                                  o);
                else
                    failHandshake(0, _config.role == Role::Client
                                         ? "Failed reading HTTP status line from " + _config.urlText
                                         : "Connection closed during handshake",
                                  o);
                return;
            case Phase::Open:
                clearSessionDeadlines();
                if (_session->state() == WsSession::State::Closing)
                    // We sent a Close and the peer just went away: our status stands.
                    _session->transportClosed(_closeCode, _closeReason, o.events);
                else
                    _session->transportClosed(WebSocketCloseConstants::kAbnormalCloseCode,
                                              WebSocketCloseConstants::kAbnormalCloseMessage, o.events);
                o.teardown = Teardown::Close;
                afterSessionStep(o);
                o.teardown = Teardown::Close;
                return;
            case Phase::Draining: o.teardown = Teardown::Close; return;
            default: return;
        }
    }

    bool ConnectionMachine::close(uint16_t code, const std::string& reason, TimePoint now, bool armDeadline,
                                  std::string& out, MachineOutput& o)
    {
        if (inHandshake(_phase))
        {
            failHandshake(0, "Cancelled", o);
            return false;
        }
        if (_phase != Phase::Open) return false;
        startClose(code, reason, now, armDeadline, out);
        return true;
    }

    void ConnectionMachine::startClose(uint16_t code, const std::string& reason, TimePoint now, bool armDeadline,
                                       std::string& out)
    {
        if (!_session->startClose(code, reason, out)) return; // closing already
        _closeCode = code;
        _closeReason = reason;
        if (armDeadline && _closeDeadline == TimePoint::max()) _closeDeadline = after(now, _config.closeTimeoutMs);
    }

    void ConnectionMachine::heartbeat(TimePoint now, std::string& out)
    {
        if (_config.pingIntervalSecs <= 0 || _phase != Phase::Open) return;
        // Upstream's rule: no pong since the previous heartbeat closes at the next
        // one. With pingTimeoutSecs (our extension) a deadline after the ping
        // decides instead, and any traffic from the peer counts as an answer.
        const bool deadlineRule = _config.pingTimeoutSecs > 0;
        if (!deadlineRule && !_pongReceived)
        {
            _pingDue = TimePoint::max();
            startClose(WebSocketCloseConstants::kInternalErrorCode, WebSocketCloseConstants::kPingTimeoutMessage,
                       now, true, out);
            return;
        }
        std::string payload = _config.pingMessage;
        if (payload.empty())
            payload = "ixwebsocket::heartbeat::" + std::to_string(_config.pingIntervalSecs) + "s::" +
                      std::to_string(_heartbeatCount++);
        _pongReceived = false;
        _session->sendControl(kPing, payload.data(), payload.size(), out);
        if (deadlineRule && _pingDeadline == TimePoint::max())
        {
            // One deadline at a time: a ping sent while one runs is covered by the
            // next deadline, armed at the following heartbeat (pingTimeout + one
            // interval at most).
            _peerActive = false;
            _pingDeadline = now + std::chrono::seconds(_config.pingTimeoutSecs);
        }
        _pingDue = now + std::chrono::seconds(_config.pingIntervalSecs);
    }

    void ConnectionMachine::clearSessionDeadlines()
    {
        _closeDeadline = TimePoint::max();
        _pingDue = TimePoint::max();
    }

    void ConnectionMachine::onTime(TimePoint now, std::string& out, MachineOutput& o)
    {
        if (_handshakeDeadline <= now)
        {
            _handshakeDeadline = TimePoint::max();
            if (_rejecting)
            {
                if (_phase == Phase::Securing) failHandshake(0, "TLS handshake timed out", o);
            }
            else if (_config.role == Role::Client)
            {
                failHandshake(0, "Timed out after " + std::to_string(_config.handshakeTimeoutMs) +
                                     " ms connecting to " + _config.urlText +
                                     (_phase == Phase::Securing ? " (TLS handshake timed out)" : ""),
                              o);
            }
            else if (_phase == Phase::AwaitingHook)
            {
                // The request was complete; the hook did not answer in time.
                answerError(503, "Handshake hook timed out", out, o);
            }
            else if (_phase == Phase::Securing)
            {
                failHandshake(0, "TLS handshake timed out", o);
            }
            else
            {
                // Answered (RFC 9110 408), not a silent close.
                out += httpErrorResponse(408, "Request Timeout", _config.serverHandshake.serverHeader);
                failHandshake(408, "Handshake timed out", o);
            }
            return;
        }
        if (_closeDeadline <= now)
        {
            _closeDeadline = TimePoint::max();
            if (_phase == Phase::Draining)
            {
                o.teardown = Teardown::Close;
                return;
            }
            if (_phase == Phase::Open)
            {
                // The peer never answered our Close.
                clearSessionDeadlines();
                _session->transportClosed(_closeCode, _closeReason, o.events);
                afterSessionStep(o);
                o.teardown = Teardown::Close;
                return;
            }
        }
        if (_failureDeadline <= now) commitFailure(out, o);
        if (o.teardown != Teardown::None) return;
        if (_pingDeadline <= now)
        {
            _pingDeadline = TimePoint::max();
            if (_phase == Phase::Open && !_peerActive)
                startClose(WebSocketCloseConstants::kInternalErrorCode,
                           WebSocketCloseConstants::kPingTimeoutMessage, now, true, out);
        }
        if (_pingDue <= now)
        {
            _pingDue = TimePoint::max();
            heartbeat(now, out);
        }
    }

    void ConnectionMachine::draining(TimePoint now)
    {
        _phase = Phase::Draining;
        _handshakeDeadline = TimePoint::max();
        _failureDeadline = TimePoint::max();
        _pingDeadline = TimePoint::max();
        _pingDue = TimePoint::max();
        _closeDeadline = after(now, _config.closeTimeoutMs);
    }

    void ConnectionMachine::closed()
    {
        _phase = Phase::Done;
        _handshakeDeadline = _closeDeadline = _failureDeadline = _pingDue = _pingDeadline = TimePoint::max();
    }

    TimePoint ConnectionMachine::nextDeadline() const
    {
        if (_phase == Phase::Done) return TimePoint::max();
        return std::min({_handshakeDeadline, _closeDeadline, _failureDeadline, _pingDue, _pingDeadline});
    }

    ReadyState ConnectionMachine::readyState() const
    {
        if (inHandshake(_phase)) return ReadyState::Connecting;
        if (_phase != Phase::Open) return ReadyState::Closed;
        switch (_session->state())
        {
            case WsSession::State::Open: return ReadyState::Open;
            case WsSession::State::Closing: return ReadyState::Closing;
            default: return ReadyState::Closed;
        }
    }
} // namespace ix::detail
