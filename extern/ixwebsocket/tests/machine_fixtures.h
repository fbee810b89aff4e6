#pragma once
// Shared by the ConnectionMachine tests: configurations of both roles, frames
// as a peer sends them, a parser of what the machine wrote, and machines
// brought up to the opening handshake or past it. No sockets: time is a value.
#include "check.h"
#include "connection_machine.h"
#include "frame_codec.h"
#include "handshake.h"

#include "ixwebsocket/IXWebSocketCloseConstants.h"

#include <string>
#include <vector>

namespace machine_test
{
    using namespace ix::detail;
    using CC = ix::WebSocketCloseConstants;
    using Phase = ConnectionMachine::Phase;
    using Kind = SessionEvent::Kind;
    using ix::ReadyState;
    using std::chrono::milliseconds;
    using std::chrono::seconds;

    inline const TimePoint T0 = TimePoint() + seconds(1000);

    inline MachineConfig clientConfig(bool tls = false)
    {
        MachineConfig c;
        c.role = Role::Client;
        c.urlText = tls ? "wss://example.test:9443/chat?x=1" : "ws://example.test:9000/chat?x=1";
        std::string error;
        parseUrl(c.urlText, c.url, error);
        c.tls = tls;
        c.handshakeTimeoutMs = 5000;
        c.closeTimeoutMs = 1000;
        return c;
    }

    inline MachineConfig serverConfig(bool hook = false, bool tls = false)
    {
        MachineConfig c;
        c.role = Role::Server;
        c.serverHandshake.serverHeader = "test-server";
        c.handshakeHook = hook;
        c.tls = tls;
        c.handshakeTimeoutMs = 5000;
        c.closeTimeoutMs = 1000;
        return c;
    }

    // One frame as the peer sends it (clients mask, servers do not).
    inline std::string frame(uint8_t op, const std::string& payload, bool mask, bool fin = true)
    {
        std::string f;
        appendFrame(f, op, fin, false, payload.data(), payload.size(), mask);
        return f;
    }

    inline std::string closePayload(uint16_t code, const std::string& reason = "")
    {
        std::string p;
        p += static_cast<char>(code >> 8);
        p += static_cast<char>(code & 0xFF);
        return p + reason;
    }

    struct Frame
    {
        uint8_t opcode = 0;
        std::string payload;
    };

    // The frames in bytes we wrote (unmasked).
    inline std::vector<Frame> frames(const std::string& out)
    {
        std::vector<Frame> result;
        size_t at = 0;
        while (at < out.size())
        {
            FrameHeader h;
            if (parseFrameHeader(reinterpret_cast<const uint8_t*>(out.data() + at), out.size() - at, h) !=
                HeaderParse::Ok)
                break;
            Frame f;
            f.opcode = h.opcode;
            f.payload = out.substr(at + h.headerLength, h.payloadLength);
            if (h.masked) applyMask(reinterpret_cast<uint8_t*>(&f.payload[0]), f.payload.size(), h.mask, 0);
            result.push_back(f);
            at += h.headerLength + h.payloadLength;
        }
        return result;
    }

    inline uint16_t closeCodeOf(const Frame& f)
    {
        if (f.payload.size() < 2) return 0;
        return static_cast<uint16_t>((static_cast<uint8_t>(f.payload[0]) << 8) | static_cast<uint8_t>(f.payload[1]));
    }

    // The server's 101 for the request a client machine wrote.
    inline std::string answerFor(const std::string& request)
    {
        const std::string marker = "Sec-WebSocket-Key: ";
        size_t at = request.find(marker);
        std::string key = request.substr(at + marker.size(), 24);
        return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: " +
               computeAcceptKey(key) + "\r\n\r\n";
    }

    inline const std::string kRequest = "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n";

    // A client machine up to Handshake; `out` holds its request.
    struct Client
    {
        ConnectionMachine m;
        std::string out;
        explicit Client(MachineConfig c = clientConfig()) : m(std::move(c))
        {
            m.startClient(T0);
            m.resolved();
            m.connected(out, false);
        }
        // Completes the handshake (and afterOpen).
        void open()
        {
            MachineOutput o;
            std::string answer = answerFor(out);
            out.clear();
            m.receive(answer.data(), answer.size(), out, o);
            CHECK(o.opened);
            MachineOutput after;
            m.afterOpen(T0, out, after);
        }
    };

    struct Server
    {
        ConnectionMachine m;
        std::string out;
        explicit Server(MachineConfig c = serverConfig()) : m(std::move(c)) { m.startServer(T0); }
        void open()
        {
            MachineOutput o;
            m.receive(kRequest.data(), kRequest.size(), out, o);
            CHECK(o.opened);
            out.clear();
            MachineOutput after;
            m.afterOpen(T0, out, after);
        }
    };
} // namespace machine_test
