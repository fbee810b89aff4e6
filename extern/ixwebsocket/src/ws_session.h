#pragma once
// The RFC 6455 protocol state machine after the opening handshake, Sans-I/O:
// bytes from the peer go in, events and bytes for the peer come out. It knows
// nothing of sockets, threads or timers.
//
// Thread model: the owner serialises every call (the connection holds one mutex
// around a session), and events are handed back in a vector so user callbacks
// run after that mutex is released.
#include "deflate_codec.h"
#include "deflate_negotiation.h"
#include "frame_codec.h"
#include "utf8.h"
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ix::detail
{
    enum class Role { Client, Server };

    struct SessionEvent
    {
        enum class Kind { Message, Fragment, Ping, Pong, Close };
        Kind kind = Kind::Message;
        bool binary = false;    // Message: opcode was binary
        std::string data;       // Message: the whole payload; Ping/Pong: the payload
        size_t wireSize = 0;    // payload bytes as received on the wire
        // Close (emitted exactly once, when the close handshake has finished or the
        // connection was failed): the final close status of the connection.
        uint16_t code = 0;
        std::string reason;
        bool remote = false;    // the peer started the closing handshake
    };

    class WsSession
    {
    public:
        struct Config
        {
            Role role = Role::Client;
            bool autoPong = true;        // answer pings automatically
            uint64_t maxMessageSize = 0; // 0: unlimited; exceeded -> close 1009
            // permessage-deflate (RFC 7692) was negotiated: RSV1 marks a compressed
            // message on its first frame. Each role compresses with its own
            // window/context setting of `deflate` and inflates with the peer's.
            bool deflateNegotiated = false;
            DeflateAgreement deflate;
            // Hold back a failure detected while Open: stop reading, keep sending
            // allowed, and let the owner decide when to commitFailure(). Lets the
            // application answer the messages that came before the bad frame.
            bool deferFailure = false;
        };

        enum class State
        {
            Open,       // data flows both ways
            Closing,    // we sent a Close and wait for the peer's
            Closed      // close handshake done (or connection failed): the
                        // transport should be shut down once `out` is flushed
        };

        explicit WsSession(const Config& config);

        // Consumes bytes from the peer. Appends frames to send (pongs, close
        // replies, close frames for protocol errors) to `out`, and events to
        // `events`. Never throws on bad input: protocol violations fail the
        // connection with 1002 (protocol), 1007 (bad UTF-8) or 1009 (too big),
        // emitting a Close event with remote=false. Bytes after the session is
        // Closed are ignored.
        // Details: the first two bytes of a frame header are checked as soon as
        // they arrive (mask direction, RSV bits, opcode, control-frame rules);
        // text payload is UTF-8 checked chunk by chunk as it arrives; the size
        // limit is checked on the declared frame length, before buffering.
        // Compressed messages (RSV1 on the first frame, deflate negotiated) are
        // inflated as their bytes arrive, into at most maxMessageSize bytes
        // (1009 beyond it, 1007 for data that does not inflate), and the
        // inflated text is UTF-8 checked as it is produced. A
        // peer's Close is echoed with its code and reason (whole payload). While
        // Closing, data frames are still delivered but pings are not answered
        // (nothing more is sent after our Close), any valid Close completes the
        // handshake with our code/reason (remote=false), and a protocol error
        // fails the connection without a second Close frame (the event then
        // carries the error's code and reason).
        void receive(const char* data, size_t size, std::string& out,
                     std::vector<SessionEvent>& events);

        struct SendOutcome
        {
            bool sent = false;
            bool compressionError = false;
            size_t wireSize = 0; // payload bytes framed (compressed size if deflated)
        };

        // Appends one data message as a single frame, compressed (RSV1 set) when
        // deflate was negotiated and `compress` is true. Nothing is appended
        // unless the state is Open. Text is not validated here.
        SendOutcome send(bool binary, const char* data, size_t size, std::string& out, bool compress = true);
        bool sendMessage(bool binary, const char* data, size_t size, std::string& out)
        {
            return send(binary, data, size, out).sent;
        }

        // send() in two steps, for owners that compress outside their main lock:
        // compressMessage() touches only the compressor (serialise it with other
        // sends, not with receive()); sendPrepared() frames the result.
        bool wantsCompression(bool compress) const { return compress && _config.deflateNegotiated; }
        bool compressMessage(const char* data, size_t size, std::string& payload);
        bool sendPrepared(bool binary, const char* payload, size_t size, bool compressed, std::string& out);

        // Ping or Pong with a payload of at most 125 bytes; false otherwise or when
        // not Open.
        bool sendControl(uint8_t opcode, const char* data, size_t size, std::string& out);

        // Starts the closing handshake: appends Close(code, reason) and moves to
        // Closing. The reason is truncated to fit 123 bytes on a code point
        // boundary. A code of 1005 sends an empty close payload; so does any
        // code that may not appear on the wire (isValidWireCloseCode false, e.g.
        // 1006). The Close event later reports the code and the untruncated reason
        // as given here. Returns false when not Open.
        bool startClose(uint16_t code, const std::string& reason, std::string& out);

        // The transport ended without a finished close handshake (EOF, error,
        // timeout): moves to Closed and emits the Close event with the given
        // status (e.g. 1006 "Abnormal closure") unless one was already emitted.
        void transportClosed(uint16_t code, const std::string& reason,
                             std::vector<SessionEvent>& events);

        // deferFailure: a failure is waiting for commitFailure().
        bool hasPendingFailure() const { return _pendingFailure; }
        // Sends the held-back Close and emits the Close event (no-op without one).
        void commitFailure(std::string& out, std::vector<SessionEvent>& events);

        State state() const { return _state; }
        // A frame prepared once for many connections may be appended as is
        // (Open, and no per-connection transform such as compression).
        bool sharesFrames() const { return _state == State::Open && !_config.deflateNegotiated; }
        // Bytes of incomplete message data buffered so far.
        size_t bufferedIncoming() const { return _message.size() + _frame.size(); }

    private:
        // Fails the connection, or holds the failure back (Config::deferFailure).
        void fail(uint16_t code, const std::string& reason, std::string& out,
                  std::vector<SessionEvent>& events);
        void failNow(uint16_t code, const std::string& reason, std::string& out,
                     std::vector<SessionEvent>& events);
        bool handleHeader(std::string& out, std::vector<SessionEvent>& events);
        void handleFrameEnd(std::string& out, std::vector<SessionEvent>& events);
        void handleClose(std::string& out, std::vector<SessionEvent>& events);
        void emitClose(uint16_t code, const std::string& reason, bool remote,
                       std::vector<SessionEvent>& events);

        Config _config;
        State _state = State::Open;
        bool _closeEmitted = false;
        bool _pendingFailure = false;
        uint16_t _pendingCode = 0;
        std::string _pendingReason;
        uint16_t _sentCode = 0;
        std::string _sentReason;

        // Receive side
        std::string _headerBuf;       // bytes of an incomplete frame header
        FrameHeader _header;
        bool _inFrame = false;
        uint64_t _frameRemaining = 0;
        uint64_t _frameOffset = 0;    // for unmasking in pieces
        std::string _frame;           // payload of the current control frame
        bool _inMessage = false;      // a fragmented data message is in progress
        bool _messageBinary = false;
        std::string _message;         // payload of the current data message
        size_t _messageWireSize = 0;
        bool _messageCompressed = false;
        Utf8Validator _utf8;

        // permessage-deflate (created on first use)
        std::unique_ptr<MessageDeflater> _deflater;
        std::unique_ptr<MessageInflater> _inflater;
        bool inflateChunk(const char* data, size_t size, bool last, std::string& out,
                          std::vector<SessionEvent>& events);
    };
} // namespace ix::detail
