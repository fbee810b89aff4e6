// RFC 6455 sections 5-7 after the opening handshake, as a Sans-I/O state machine.
//
// Receive path: frame headers are parsed straight from the input when they are
// complete in it (otherwise the few header bytes are kept in _headerBuf); payload
// bytes are appended to the message buffer (data frames) or the control buffer
// and unmasked in place there, and text is UTF-8 validated chunk by chunk so an
// invalid message fails at the first impossible byte.
#include "ws_session.h"

#include "close_codes.h"
#include "ixwebsocket/IXWebSocketCloseConstants.h"

#include <algorithm>
#include <cstring>

namespace ix::detail
{
    namespace
    {
        using CC = ix::WebSocketCloseConstants;

        // Reserve at most this much ahead of the data for a declared frame length:
        // the length is untrusted, so large messages grow geometrically instead.
        constexpr uint64_t kMaxReserveAhead = 1 << 20;

        const std::string kInvalidCompressedData = "Invalid compressed data";

        // Most wire bytes a compressed message of at most `max` inflated bytes may
        // take: stored blocks add 5 bytes per 64 KiB, a poor encoder up to 1/8.
        uint64_t compressedWireBound(uint64_t max)
        {
            const uint64_t extra = max / 8 + 1024;
            return max > UINT64_MAX - extra ? UINT64_MAX : max + extra;
        }

        struct Violation
        {
            uint16_t code = 0; // 0: none
            const std::string* reason = nullptr;
        };
    } // namespace

    WsSession::WsSession(const Config& config) : _config(config) {}

    void WsSession::emitClose(uint16_t code, const std::string& reason, bool remote,
                              std::vector<SessionEvent>& events)
    {
        if (_closeEmitted) return;
        _closeEmitted = true;
        SessionEvent ev;
        ev.kind = SessionEvent::Kind::Close;
        ev.code = code;
        ev.reason = reason;
        ev.remote = remote;
        events.push_back(std::move(ev));
    }

    void WsSession::commitFailure(std::string& out, std::vector<SessionEvent>& events)
    {
        if (!_pendingFailure) return;
        _pendingFailure = false;
        failNow(_pendingCode, _pendingReason, out, events);
    }

    void WsSession::fail(uint16_t code, const std::string& reason, std::string& out,
                         std::vector<SessionEvent>& events)
    {
        if (_state == State::Closed || _pendingFailure) return;
        if (_config.deferFailure && _state == State::Open)
        {
            _pendingFailure = true;
            _pendingCode = code;
            _pendingReason = reason;
            return;
        }
        failNow(code, reason, out, events);
    }

    void WsSession::failNow(uint16_t code, const std::string& reason, std::string& out,
                            std::vector<SessionEvent>& events)
    {
        if (_state == State::Closed) return;
        if (_state == State::Open)
        {
            // Our Close frame; when we were Closing, ours is already on its way and
            // RFC 6455 5.5.1 allows no second one.
            std::string payload;
            payload.reserve(2 + reason.size());
            payload += static_cast<char>(code >> 8);
            payload += static_cast<char>(code & 0xFF);
            payload.append(reason, 0, std::min<size_t>(reason.size(), 123));
            appendFrame(out, kClose, true, false, payload.data(), payload.size(),
                        _config.role == Role::Client);
            _sentCode = code;
            _sentReason = reason;
        }
        _state = State::Closed;
        _message.clear();
        _frame.clear();
        _headerBuf.clear();
        _inFrame = false;
        _inMessage = false;
        emitClose(code, reason, false, events);
    }

    // The checks that only need the first two header bytes, so that a bad frame is
    // refused before its (possibly long) extended length has arrived.
    static Violation checkFrameStart(const FrameHeader& h, bool inMessage, const WsSession::Config& cfg,
                                     uint8_t len7)
    {
        Violation v;
        auto set = [&](uint16_t code, const std::string& reason) {
            v.code = code;
            v.reason = &reason;
            return v;
        };
        const uint16_t proto = CC::kProtocolErrorCode;

        // RFC 6455 5.1: clients mask, servers do not.
        if (cfg.role == Role::Server && !h.masked) return set(proto, CC::kProtocolErrorMessage);
        if (cfg.role == Role::Client && h.masked) return set(proto, CC::kProtocolErrorMessage);

        if (h.rsv2 || h.rsv3) return set(proto, CC::kProtocolErrorReservedBitUsed);
        if (!isKnownOpcode(h.opcode)) return set(proto, CC::kProtocolErrorMessage);

        if (isControlOpcode(h.opcode))
        {
            if (h.rsv1) return set(proto, CC::kProtocolErrorReservedBitUsed);
            if (!h.fin) return set(proto, CC::kProtocolErrorCodeControlMessageFragmented);
            if (len7 > 125)
            {
                return set(proto, h.opcode == kPing ? CC::kProtocolErrorPingPayloadOversized
                                                    : CC::kProtocolErrorMessage);
            }
            return v;
        }

        if (h.opcode == kContinuation)
        {
            if (!inMessage) return set(proto, CC::kProtocolErrorCodeContinuationOpCodeOutOfSequence);
            // RSV1 (compression) belongs to the first frame of a message only.
            if (h.rsv1) return set(proto, CC::kProtocolErrorReservedBitUsed);
        }
        else
        {
            if (inMessage) return set(proto, CC::kProtocolErrorCodeDataOpcodeOutOfSequence);
            // RSV1 on the first frame marks a compressed message (RFC 7692 6).
            if (h.rsv1 && !cfg.deflateNegotiated) return set(proto, CC::kProtocolErrorReservedBitUsed);
        }
        return v;
    }

    bool WsSession::handleHeader(std::string& out, std::vector<SessionEvent>& events)
    {
        const FrameHeader& h = _header;
        const uint8_t len7 = h.payloadLength <= 125 ? static_cast<uint8_t>(h.payloadLength)
                             : h.payloadLength <= 0xFFFF ? 126 : 127;
        const Violation v = checkFrameStart(h, _inMessage, _config, len7);
        if (v.code != 0)
        {
            fail(v.code, *v.reason, out, events);
            return false;
        }

        if (!isControlOpcode(h.opcode))
        {
            const bool compressed = h.opcode == kContinuation ? _messageCompressed : h.rsv1;
            const uint64_t max = _config.maxMessageSize;
            if (max != 0)
            {
                // Uncompressed: the declared length counts. Compressed: the inflated
                // size is checked as it is produced; the wire bytes only get a
                // generous bound (deflate may expand incompressible data a little).
                const uint64_t have = compressed ? _messageWireSize : _message.size();
                const uint64_t bound = compressed ? compressedWireBound(max) : max;
                if (h.payloadLength > bound || have > bound - h.payloadLength)
                {
                    fail(CC::kMessageTooBigCode, CC::kMessageTooBigMessage, out, events);
                    return false;
                }
            }
            if (h.opcode != kContinuation)
            {
                _inMessage = true;
                _messageBinary = (h.opcode == kBinary);
                _messageCompressed = h.rsv1;
                _messageWireSize = 0;
                _message.clear();
                _utf8.reset();
            }
            if (!compressed)
            {
                const uint64_t ahead = std::min<uint64_t>(h.payloadLength, kMaxReserveAhead);
                if (_message.capacity() < _message.size() + ahead)
                {
                    _message.reserve(_message.size() + static_cast<size_t>(ahead));
                }
            }
        }
        else
        {
            _frame.clear();
        }

        _inFrame = true;
        _frameRemaining = h.payloadLength;
        _frameOffset = 0;
        if (_frameRemaining == 0) handleFrameEnd(out, events);
        return _state != State::Closed;
    }

    void WsSession::handleFrameEnd(std::string& out, std::vector<SessionEvent>& events)
    {
        _inFrame = false;
        const uint8_t op = _header.opcode;

        if (!isControlOpcode(op))
        {
            if (!_header.fin)
            {
                SessionEvent ev;
                ev.kind = SessionEvent::Kind::Fragment;
                events.push_back(std::move(ev));
                return;
            }
            if (_messageCompressed && _messageWireSize > 0)
            {
                // An empty compressed payload carries no block at all (some peers
                // send one for an empty message): the inflater is left untouched.
                if (!inflateChunk(nullptr, 0, true, out, events)) return;
            }
            if (!_messageBinary && !_utf8.complete())
            {
                fail(CC::kInvalidFramePayloadData, CC::kInvalidFramePayloadDataMessage, out, events);
                return;
            }
            SessionEvent ev;
            ev.kind = SessionEvent::Kind::Message;
            ev.binary = _messageBinary;
            ev.data = std::move(_message);
            ev.wireSize = _messageWireSize;
            events.push_back(std::move(ev));
            _message.clear();
            _inMessage = false;
            _messageCompressed = false;
            _messageWireSize = 0;
            _utf8.reset();
            return;
        }

        switch (op)
        {
            case kPing:
            {
                if (_config.autoPong && _state == State::Open)
                {
                    appendFrame(out, kPong, true, false, _frame.data(), _frame.size(),
                                _config.role == Role::Client);
                }
                SessionEvent ev;
                ev.kind = SessionEvent::Kind::Ping;
                ev.wireSize = _frame.size();
                ev.data = _frame;
                events.push_back(std::move(ev));
                break;
            }
            case kPong:
            {
                SessionEvent ev;
                ev.kind = SessionEvent::Kind::Pong;
                ev.wireSize = _frame.size();
                ev.data = _frame;
                events.push_back(std::move(ev));
                break;
            }
            default: handleClose(out, events); break;
        }
        _frame.clear();
    }

    void WsSession::handleClose(std::string& out, std::vector<SessionEvent>& events)
    {
        const std::string& p = _frame;
        uint16_t code = CC::kNoStatusCodeErrorCode;
        std::string reason;

        if (p.size() == 1)
        {
            fail(CC::kProtocolErrorCode, CC::kProtocolErrorMessage, out, events);
            return;
        }
        if (p.size() >= 2)
        {
            code = static_cast<uint16_t>((uint8_t(p[0]) << 8) | uint8_t(p[1]));
            if (!isValidWireCloseCode(code))
            {
                fail(CC::kProtocolErrorCode, CC::kInvalidCloseCodeMessage + ": " + std::to_string(code),
                     out, events);
                return;
            }
            if (!isValidUtf8(p.data() + 2, p.size() - 2))
            {
                fail(CC::kInvalidFramePayloadData, CC::kInvalidFramePayloadDataMessage, out, events);
                return;
            }
            reason.assign(p, 2, std::string::npos);
        }

        if (_state == State::Closing)
        {
            // The peer's answer to our Close: the handshake is complete. Any valid
            // Close counts as the answer, whatever its code and reason.
            _state = State::Closed;
            emitClose(_sentCode, _sentReason, false, events);
            return;
        }

        // The peer started the closing handshake: echo its code (and reason).
        appendFrame(out, kClose, true, false, p.data(), p.size(), _config.role == Role::Client);
        _state = State::Closed;
        if (p.empty())
        {
            emitClose(CC::kNoStatusCodeErrorCode, CC::kNoStatusCodeErrorMessage, true, events);
        }
        else
        {
            emitClose(code, reason, true, events);
        }
    }

    void WsSession::receive(const char* data, size_t size, std::string& out,
                            std::vector<SessionEvent>& events)
    {
        const char* p = data;
        const char* const end = data + size;

        while (p < end && _state != State::Closed && !_pendingFailure)
        {
            if (!_inFrame)
            {
                HeaderParse r;
                if (_headerBuf.empty())
                {
                    r = parseFrameHeader(reinterpret_cast<const uint8_t*>(p),
                                         static_cast<size_t>(end - p), _header);
                    if (r == HeaderParse::NeedMore)
                    {
                        _headerBuf.assign(p, end);
                        p = end;
                    }
                    else if (r == HeaderParse::Ok)
                    {
                        p += _header.headerLength;
                    }
                }
                else
                {
                    const size_t have = _headerBuf.size();
                    const size_t take =
                        std::min(static_cast<size_t>(end - p), kMaxFrameHeaderSize - have);
                    _headerBuf.append(p, take);
                    r = parseFrameHeader(reinterpret_cast<const uint8_t*>(_headerBuf.data()),
                                         _headerBuf.size(), _header);
                    if (r == HeaderParse::NeedMore)
                    {
                        p += take;
                    }
                    else if (r == HeaderParse::Ok)
                    {
                        p += _header.headerLength - have;
                        _headerBuf.clear();
                    }
                }

                if (r == HeaderParse::Invalid)
                {
                    fail(CC::kProtocolErrorCode, CC::kProtocolErrorMessage, out, events);
                    return;
                }
                if (r == HeaderParse::NeedMore)
                {
                    // Refuse a bad frame as soon as its first two bytes are known.
                    if (_headerBuf.size() >= 2)
                    {
                        const uint8_t b0 = static_cast<uint8_t>(_headerBuf[0]);
                        const uint8_t b1 = static_cast<uint8_t>(_headerBuf[1]);
                        FrameHeader h;
                        h.fin = (b0 & 0x80) != 0;
                        h.rsv1 = (b0 & 0x40) != 0;
                        h.rsv2 = (b0 & 0x20) != 0;
                        h.rsv3 = (b0 & 0x10) != 0;
                        h.opcode = b0 & 0x0F;
                        h.masked = (b1 & 0x80) != 0;
                        const Violation v = checkFrameStart(h, _inMessage, _config, b1 & 0x7F);
                        if (v.code != 0)
                        {
                            fail(v.code, *v.reason, out, events);
                            return;
                        }
                    }
                    continue; // p == end
                }
                if (!handleHeader(out, events)) return;
                continue;
            }

            // Payload bytes of the current frame.
            const size_t n = static_cast<size_t>(
                std::min<uint64_t>(_frameRemaining, static_cast<uint64_t>(end - p)));
            const bool control = isControlOpcode(_header.opcode);
            if (!control && _messageCompressed)
            {
                // Compressed bytes go to the inflater, never into the message buffer;
                // masked ones are unmasked piece by piece on the stack.
                bool ok = true;
                if (_header.masked)
                {
                    char piece[16384];
                    for (size_t done = 0; done < n && ok;)
                    {
                        const size_t m = std::min(sizeof(piece), n - done);
                        std::memcpy(piece, p + done, m);
                        applyMask(reinterpret_cast<uint8_t*>(piece), m, _header.mask, _frameOffset + done);
                        ok = inflateChunk(piece, m, false, out, events);
                        done += m;
                    }
                }
                else
                {
                    ok = inflateChunk(p, n, false, out, events);
                }
                p += n;
                _frameOffset += n;
                _frameRemaining -= n;
                _messageWireSize += n;
                if (!ok) return;
                if (_frameRemaining == 0) handleFrameEnd(out, events);
                continue;
            }
            std::string& buf = control ? _frame : _message;
            const size_t at = buf.size();
            buf.append(p, n);
            p += n;
            char* chunk = &buf[at];
            if (_header.masked)
            {
                applyMask(reinterpret_cast<uint8_t*>(chunk), n, _header.mask, _frameOffset);
            }
            _frameOffset += n;
            _frameRemaining -= n;
            if (!control)
            {
                _messageWireSize += n;
                if (!_messageBinary && !_utf8.feed(chunk, n))
                {
                    fail(CC::kInvalidFramePayloadData, CC::kInvalidFramePayloadDataMessage, out, events);
                    return;
                }
            }
            if (_frameRemaining == 0) handleFrameEnd(out, events);
        }
    }

    bool WsSession::inflateChunk(const char* data, size_t size, bool last, std::string& out,
                                 std::vector<SessionEvent>& events)
    {
        if (!_inflater)
        {
            // We inflate what the peer compressed: its window and context setting.
            const DeflateAgreement& d = _config.deflate;
            const bool server = _config.role == Role::Server;
            _inflater.reset(new MessageInflater(server ? d.clientMaxWindowBits : d.serverMaxWindowBits,
                                                server ? d.clientNoContextTakeover : d.serverNoContextTakeover));
        }
        const size_t before = _message.size();
        const uint64_t limit = _config.maxMessageSize;
        const MessageInflater::Status st =
            last ? _inflater->finish(_message, limit) : _inflater->feed(data, size, _message, limit);
        if (st == MessageInflater::Status::TooBig)
        {
            fail(CC::kMessageTooBigCode, CC::kMessageTooBigMessage, out, events);
            return false;
        }
        if (st == MessageInflater::Status::Error)
        {
            fail(CC::kInvalidFramePayloadData, kInvalidCompressedData, out, events);
            return false;
        }
        if (!_messageBinary && !_utf8.feed(_message.data() + before, _message.size() - before))
        {
            fail(CC::kInvalidFramePayloadData, CC::kInvalidFramePayloadDataMessage, out, events);
            return false;
        }
        return true;
    }

    bool WsSession::compressMessage(const char* data, size_t size, std::string& payload)
    {
        if (!_deflater)
        {
            // We compress with our own role's window and context setting.
            const DeflateAgreement& d = _config.deflate;
            const bool server = _config.role == Role::Server;
            _deflater.reset(new MessageDeflater(server ? d.serverMaxWindowBits : d.clientMaxWindowBits,
                                                server ? d.serverNoContextTakeover : d.clientNoContextTakeover));
        }
        return _deflater->compress(data, size, payload);
    }

    bool WsSession::sendPrepared(bool binary, const char* payload, size_t size, bool compressed, std::string& out)
    {
        if (_state != State::Open) return false;
        appendFrame(out, binary ? kBinary : kText, true, compressed && _config.deflateNegotiated, payload, size,
                    _config.role == Role::Client);
        return true;
    }

    WsSession::SendOutcome WsSession::send(bool binary, const char* data, size_t size, std::string& out,
                                           bool compress)
    {
        SendOutcome r;
        if (_state != State::Open) return r;
        if (!wantsCompression(compress))
        {
            r.sent = sendPrepared(binary, data, size, false, out);
            r.wireSize = r.sent ? size : 0;
            return r;
        }
        std::string payload;
        if (!compressMessage(data, size, payload))
        {
            r.compressionError = true;
            return r;
        }
        r.sent = sendPrepared(binary, payload.data(), payload.size(), true, out);
        r.wireSize = r.sent ? payload.size() : 0;
        return r;
    }

    bool WsSession::sendControl(uint8_t opcode, const char* data, size_t size, std::string& out)
    {
        if (_state != State::Open) return false;
        if (opcode != kPing && opcode != kPong) return false;
        if (size > 125) return false;
        appendFrame(out, opcode, true, false, data, size, _config.role == Role::Client);
        return true;
    }

    bool WsSession::startClose(uint16_t code, const std::string& reason, std::string& out)
    {
        if (_state != State::Open) return false;

        std::string payload;
        if (code != CC::kNoStatusCodeErrorCode && isValidWireCloseCode(code))
        {
            size_t cut = std::min<size_t>(reason.size(), 123);
            if (cut < reason.size())
            {
                // Do not split a code point: back up over continuation bytes.
                while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
            }
            payload.reserve(2 + cut);
            payload += static_cast<char>(code >> 8);
            payload += static_cast<char>(code & 0xFF);
            payload.append(reason, 0, cut);
        }
        // Otherwise (1005, or a code that may not appear on the wire such as 1006):
        // an empty Close payload.
        appendFrame(out, kClose, true, false, payload.data(), payload.size(),
                    _config.role == Role::Client);
        _sentCode = code;
        _sentReason = reason;
        _state = State::Closing;
        return true;
    }

    void WsSession::transportClosed(uint16_t code, const std::string& reason,
                                    std::vector<SessionEvent>& events)
    {
        _state = State::Closed;
        _inFrame = false;
        _inMessage = false;
        _headerBuf.clear();
        _frame.clear();
        _message.clear();
        emitClose(code, reason, false, events);
    }
} // namespace ix::detail
