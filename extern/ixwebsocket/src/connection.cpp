// A running connection: machine steps and what follows from them (owner
// notifications, teardown, the one timer), the read loop, and the any-thread
// API (sends, close, acknowledgements). How it comes up: connection_setup.cpp.
#include "connection.h"

#include "plain_stream.h"
#include <sys/epoll.h>
#include <unistd.h>

namespace ix::detail
{
    namespace
    {
        // Full reads in a row before other sockets get their turn.
        constexpr int kReadRounds = 8;

        TimePoint now() { return MachineClock::now(); }
    } // namespace

    // ------------------------------------------------------------------ steps

    void Connection::settle(MachineOutput& o)
    {
        applyTeardown(o.teardown);
        o.teardown = Teardown::None;
        if (!o.failed && !o.askHook && !o.opened && o.events.empty() && !o.heldFailure)
        {
            syncTimer();
            return;
        }
        auto owner = _owner; // finish() releases _owner later, not under our feet
        if (o.failed)
        {
            o.failed = false;
            if (owner) owner->onConnectionFailed(o.failure);
        }
        if (o.askHook)
        {
            o.askHook = false;
            auto hook = _options.handshakeHook;
            if (hook) hook(shared_from_this(), _machine.request());
        }
        if (o.opened)
        {
            o.opened = false;
            if (owner) owner->onConnectionOpen(std::move(o.openResult));
            MachineOutput next;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _machine.afterOpen(now(), _output.queue(), next);
                _output.flushAndUpdate();
            }
            settle(next);
        }
        if (!o.events.empty())
        {
            if (owner) owner->onSessionEvents(o.events);
            o.events.clear();
        }
        if (o.heldFailure)
        {
            // Synchronous callbacks have now answered; asynchronous ones acknowledge.
            o.heldFailure = false;
            MachineOutput next;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _machine.afterDelivery(now(), _output.queue(), next);
                _output.flushAndUpdate();
            }
            settle(next);
        }
        syncTimer();
    }

    void Connection::applyTeardown(Teardown teardown)
    {
        switch (teardown)
        {
            case Teardown::None: return;
            case Teardown::Close: finish(); return;
            case Teardown::Drain: startDraining(); return;
            case Teardown::DrainIfUnsent:
            {
                bool unsent;
                {
                    std::lock_guard<std::mutex> lock(_mutex);
                    unsent = (_output.pending() > 0 && _output.usable()) || (_stream && !_stream->handshakeDone());
                }
                if (unsent)
                    startDraining();
                else
                    finish();
                return;
            }
        }
    }

    void Connection::startDraining()
    {
        if (_peerShutDown && !_options.tls && _fd >= 0 && discardUntilEnd(_fd))
        {
            // The peer has finished sending (its FIN came with its last bytes,
            // e.g. right after its Close): nothing is left to wait for once our
            // bytes are out. close() sends our FIN after them, and with no unread
            // input it cannot turn into a RST. No shutdown(), no EOF round, no timer.
            bool flushed;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _output.flush();
                flushed = _output.pending() == 0 || _output.failed();
            }
            if (flushed)
            {
                finish();
                return;
            }
        }
        std::lock_guard<std::mutex> lock(_mutex);
        _machine.draining(now());
        _output.finishAfterFlush();
    }

    void Connection::finish()
    {
        if (_machine.phase() == Phase::Done) return;
        if (_dialer) _dialer->cancel(); // a lookup in flight is dropped
        if (_timer) _loop.cancelTimer(_timer);
        _timer = 0;
        _timerAt = TimePoint::max();
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _machine.closed();
            if (_fd >= 0)
            {
                if (_registered) _loop.remove(_fd);
                _registered = false;
                _output.detach();
                _stream.reset();
                ::close(_fd);
                _fd = -1;
            }
            else
            {
                _output.detach();
            }
        }
        // Release the owner once the events of this step have been delivered.
        auto self = shared_from_this();
        _loop.post([self] { self->_owner.reset(); });
    }

    void Connection::syncTimer()
    {
        const TimePoint next = _machine.nextDeadline();
        if (next == _timerAt) return;
        if (_timer) _loop.cancelTimer(_timer);
        _timer = 0;
        _timerAt = next;
        if (next == TimePoint::max()) return;
        auto delay = std::chrono::ceil<std::chrono::milliseconds>(next - now());
        if (delay.count() < 0) delay = std::chrono::milliseconds(0);
        auto self = shared_from_this();
        _timer = _loop.addTimer(delay, [self] {
            self->_timer = 0;
            self->_timerAt = TimePoint::max();
            self->onDeadline();
        });
    }

    void Connection::onDeadline()
    {
        if (_machine.phase() == Phase::Done) return;
        step([this](MachineOutput& o) { _machine.onTime(now(), _output.queue(), o); });
    }

    // ------------------------------------------------------------------ I/O events

    void Connection::onIoEvents(uint32_t events)
    {
        const Phase phase = _machine.phase();
        if (phase == Phase::Done) return; // retired earlier in this batch
        if (phase == Phase::Connecting)
        {
            if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) onConnected(events);
            return;
        }
        if (events & (EPOLLRDHUP | EPOLLHUP)) _peerShutDown = true; // its FIN is in (see startDraining)
        if (_stream && !_stream->handshakeDone())
        {
            if (phase == Phase::Securing)
                driveTlsHandshake();
            else if (discardUntilEnd(_fd)) // the TLS handshake failed: drain until the peer's FIN
                step([this](MachineOutput& o) { _machine.peerGone("", o); });
            return;
        }
        if (events & EPOLLOUT) handleWritable();
        if (_machine.phase() == Phase::Done) return;
        // TLS: a read may have waited for writability (OpenSSL's WANT_WRITE).
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) || (_options.tls && (events & EPOLLOUT)))
            readAvailable();
    }

    void Connection::handleWritable()
    {
        bool failed;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _output.flushAndUpdate();
            failed = _output.failed();
        }
        if (failed) step([this](MachineOutput& o) { _machine.peerGone("", o); });
    }

    void Connection::readAvailable()
    {
        char* buf = threadReadBuffer();
        for (int round = 0; round < kReadRounds; ++round)
        {
            if (_fd < 0 || _machine.phase() == Phase::Done) return;
            size_t got = 0;
            std::string error;
            Stream::ReadResult r;
            bool writeFailed = false;
            const bool locked = _stream->readsNeedLock();
            if (locked)
            {
                std::lock_guard<std::mutex> lock(_mutex);
                r = _stream->read(buf, kReadBufferSize, got, error);
                // A write that waited for input may go on now.
                if (_stream->writeWaitsForRead()) _output.flush();
                _output.updateInterest();
                writeFailed = _output.failed();
            }
            else
            {
                r = _stream->read(buf, kReadBufferSize, got, error);
            }
            if (got > 0)
                step([&](MachineOutput& o) { _machine.receive(buf, got, _output.queue(), o); });
            if (_machine.phase() == Phase::Done) return;
            if (writeFailed || r == Stream::ReadResult::Closed || r == Stream::ReadResult::Error)
            {
                // Only a TLS error is worth naming (plain errors read as a lost peer).
                const std::string tlsError = locked && r == Stream::ReadResult::Error ? error : "";
                step([&](MachineOutput& o) { _machine.peerGone(tlsError, o); });
                return;
            }
            if (r == Stream::ReadResult::Drained) return;
        }
        if (!_stream->readsNeedLock()) return; // epoll reports what the socket still holds
        // Round limit: other sockets get their turn. Bytes already decrypted inside
        // the stream do not wake epoll, so come back for them.
        bool more;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            more = _stream && _stream->hasBufferedInput();
        }
        if (more)
        {
            auto self = shared_from_this();
            _loop.post([self] { self->readAvailable(); });
        }
    }

    void Connection::postPeerGone()
    {
        auto self = shared_from_this();
        _loop.post([self] { self->step([&](MachineOutput& o) { self->_machine.peerGone("", o); }); });
    }

    // ------------------------------------------------------------------ any thread

    WebSocketSendInfo Connection::sendMessage(bool binary, const char* data, size_t size, bool compress)
    {
        std::lock_guard<std::mutex> sendLock(_sendMutex);
        WsSession* session;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            session = _machine.session(); // set once, lives as long as this connection
            if (!_output.usable() || !session || session->state() != WsSession::State::Open)
                return WebSocketSendInfo(false);
        }
        const bool deflate = session->wantsCompression(compress);
        if (deflate)
        {
            // Admission before compression: a refused message must never enter
            // the compressor, or (context takeover) the next message could refer
            // to bytes the peer never gets. The uncompressed size counts here.
            std::unique_lock<std::mutex> lock(_mutex);
            if (!_output.usable()) return WebSocketSendInfo(false);
            auto admission = _output.admit(lock, size + kMaxFrameHeaderSize);
            if (admission != OutputBuffer::Admission::Admitted)
            {
                lock.unlock();
                return refuseFull(size, admission == OutputBuffer::Admission::RefusedClose);
            }
        }
        // Deflate outside _mutex: a large message must not stall the loop thread.
        // _sendMutex keeps other senders out, so what was admitted stays admitted.
        std::string compressed;
        if (deflate && !session->compressMessage(data, size, compressed)) return WebSocketSendInfo(false, true);
        const char* payload = deflate ? compressed.data() : data;
        const size_t wireSize = deflate ? compressed.size() : size;
        bool failed;
        {
            std::unique_lock<std::mutex> lock(_mutex);
            if (!_output.usable()) return WebSocketSendInfo(false);
            if (!deflate)
            {
                auto admission = _output.admit(lock, wireSize + kMaxFrameHeaderSize);
                if (admission != OutputBuffer::Admission::Admitted)
                {
                    lock.unlock();
                    return refuseFull(size, admission == OutputBuffer::Admission::RefusedClose);
                }
            }
            if (!deflate && _output.canWriteDirect(size) && session->state() == WsSession::State::Open)
            {
                _output.writeDirect(binary, data, size);
            }
            else
            {
                if (!session->sendPrepared(binary, payload, wireSize, deflate, _output.queue()))
                    return WebSocketSendInfo(false);
                writeOrBatchLocked();
            }
            failed = _output.failed();
        }
        if (failed) postPeerGone();
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
        {
            std::unique_lock<std::mutex> lock(_mutex);
            WsSession* session = _machine.session();
            if (!_output.usable() || !session) return WebSocketSendInfo(false);
            auto admission = _output.admit(lock, frame.size());
            if (admission != OutputBuffer::Admission::Admitted)
            {
                lock.unlock();
                return refuseFull(size, admission == OutputBuffer::Admission::RefusedClose);
            }
            if (session->sharesFrames())
            {
                _output.queue().append(frame);
            }
            else
            {
                auto outcome = session->send(binary, frame.data() + headerSize, size, _output.queue());
                if (!outcome.sent) return WebSocketSendInfo(false, outcome.compressionError);
                wireSize = outcome.wireSize;
            }
            writeOrBatchLocked();
            failed = _output.failed();
        }
        if (failed) postPeerGone();
        return WebSocketSendInfo(true, false, size, wireSize);
    }

    void Connection::writeOrBatchLocked()
    {
        if (_output.writeOrBatch()) sendBatchEnlist(shared_from_this());
    }

    void Connection::flushBatched()
    {
        bool failed;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _output.batchEnded();
            failed = _output.failed() && _fd >= 0;
        }
        if (failed) postPeerGone();
    }

    WebSocketSendInfo Connection::refuseFull(size_t payloadSize, bool closeNow)
    {
        if (closeNow) close(1008, "Send buffer full");
        WebSocketSendInfo info(false, false, payloadSize, 0);
        info.bufferFull = true;
        return info;
    }

    WebSocketSendInfo Connection::sendControl(uint8_t opcode, const char* data, size_t size)
    {
        bool failed;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            WsSession* session = _machine.session();
            if (!_output.usable() || !session) return WebSocketSendInfo(false);
            if (!session->sendControl(opcode, data, size, _output.queue())) return WebSocketSendInfo(false);
            _output.flushAndUpdate();
            failed = _output.failed();
        }
        if (failed) postPeerGone();
        return WebSocketSendInfo(true, false, size, size);
    }

    void Connection::close(uint16_t code, const std::string& reason)
    {
        auto self = shared_from_this();
        _loop.dispatch([self, code, reason] {
            if (self->_machine.phase() == Phase::Done) return;
            self->step([&](MachineOutput& o) {
                self->_machine.close(code, reason, now(), true, self->_output.queue(), o);
            });
        });
    }

    bool Connection::closeOpenNow(uint16_t code, const std::string& reason)
    {
        bool failed;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            if (_machine.phase() != Phase::Open || !_output.attached()) return false;
            MachineOutput none; // closing an Open machine only writes our Close
            _machine.close(code, reason, now(), false, _output.queue(), none);
            _output.flushAndUpdate();
            failed = _output.failed();
        }
        if (failed) postPeerGone();
        return true;
    }

    void Connection::abort(const std::string&)
    {
        auto self = shared_from_this();
        _loop.dispatch([self] { self->step([&](MachineOutput& o) { self->_machine.peerGone("", o); }); });
    }

    void Connection::acknowledge(size_t count)
    {
        // Only a held-back failure waits for acknowledgements: the common case
        // costs no loop wake-up (one per callback batch otherwise).
        if (!_machine.acknowledge(count)) return;
        auto self = shared_from_this();
        _loop.dispatch([self] {
            self->step([&](MachineOutput& o) { self->_machine.acknowledged(now(), self->_output.queue(), o); });
        });
    }

    void Connection::answerHandshake(bool accept, int status, const std::string& reason)
    {
        if (_machine.phase() != Phase::AwaitingHook) return;
        step([&](MachineOutput& o) { _machine.answerHook(accept, status, reason, _output.queue(), o); });
    }

    ReadyState Connection::readyState() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _machine.readyState();
    }

    size_t Connection::bufferedAmount() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _output.pending();
    }
} // namespace ix::detail
