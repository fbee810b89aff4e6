// The server's handshake-phase limits over 127.0.0.1, driven by raw sockets:
// maxPendingHandshakes (its own pool; maxConnections counts a connection once
// its request is complete), upstream's shared accounting when it is 0, and the
// 408 answer to a handshake that times out.
#include "check.h"
#include "ixwebsocket/IXWebSocketServer.h"

#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace
{
    const std::string kRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n";
    constexpr size_t kPartial = 20; // a slow peer's first bytes

    // A blocking socket connected to the server, or -1.
    int connectTo(int port)
    {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        sockaddr_in addr {};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        {
            ::close(fd);
            return -1;
        }
        return fd;
    }

    bool sendAll(int fd, const std::string& data)
    {
        size_t sent = 0;
        while (sent < data.size())
        {
            ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return false;
            sent += static_cast<size_t>(n);
        }
        return true;
    }

    // The answer's head (up to the blank line), or what came before EOF or the deadline.
    std::string readHead(int fd, int timeoutMs = 5000)
    {
        std::string data;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        while (data.find("\r\n\r\n") == std::string::npos)
        {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now()).count();
            if (left <= 0) break;
            pollfd p {fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
            char buf[4096];
            ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
            if (n <= 0) break;
            data.append(buf, static_cast<size_t>(n));
        }
        return data;
    }

    bool startsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

    struct Server
    {
        ix::WebSocketServer server;

        Server(size_t maxConnections, size_t maxPending, int handshakeTimeoutSecs = 30)
            : server(0, "127.0.0.1", 64, maxConnections, handshakeTimeoutSecs)
        {
            server.setMaxPendingHandshakes(maxPending);
            server.setOnClientMessageCallback(
                [](std::shared_ptr<ix::ConnectionState>, ix::WebSocket&, const ix::WebSocketMessagePtr&) {});
            CHECK(server.listenAndStart());
        }
        ~Server() { server.stop(); }

    };

    void testPendingHandshakesHaveTheirOwnPool()
    {
        Server s(1, 2);
        CHECK_EQ(s.server.getMaxPendingHandshakes(), size_t(2));
        const int port = s.server.getPort();
        int first = connectTo(port), second = connectTo(port);
        CHECK(sendAll(first, kRequest.substr(0, kPartial)));
        CHECK(sendAll(second, kRequest.substr(0, kPartial)));
        // Two slow peers hold both pending slots: a third socket (accepted after
        // them: one loop, accepts in order) is refused at once...
        int third = connectTo(port);
        std::string head = readHead(third);
        CHECK(startsWith(head, "HTTP/1.1 503 Too many pending handshakes\r\n"));
        ::close(third);
        // ...but the single connection slot is still free for a complete request.
        CHECK(sendAll(first, kRequest.substr(kPartial)));
        CHECK(startsWith(readHead(first), "HTTP/1.1 101 "));
        CHECK_EQ(s.server.getClients().size(), size_t(1));
        // maxConnections is applied when a request completes.
        CHECK(sendAll(second, kRequest.substr(kPartial)));
        head = readHead(second);
        CHECK(startsWith(head, "HTTP/1.1 503 Too many connections\r\n"));
        CHECK(head.find("Retry-After: 1\r\n") != std::string::npos);
        ::close(first);
        ::close(second);
    }

    void testUpstreamAccountingWhenZero()
    {
        // 0: connections in the handshake share maxConnections (upstream).
        Server s(2, 0);
        const int port = s.server.getPort();
        int a = connectTo(port), b = connectTo(port);
        CHECK(sendAll(a, kRequest.substr(0, kPartial)));
        CHECK(sendAll(b, kRequest.substr(0, kPartial)));
        // Accepted after a and b (one loop, accepts in order).
        int c = connectTo(port);
        CHECK(sendAll(c, kRequest));
        CHECK(startsWith(readHead(c), "HTTP/1.1 503 Too many connections\r\n"));
        ::close(a);
        ::close(b);
        ::close(c);
    }

    void testHandshakeTimeoutAnswers408()
    {
        for (size_t pending : {size_t(0), size_t(4)})
        {
            Server s(4, pending, 1);
            int fd = connectTo(s.server.getPort());
            CHECK(sendAll(fd, kRequest.substr(0, kPartial)));
            const auto start = std::chrono::steady_clock::now();
            const std::string head = readHead(fd, 5000);
            CHECK(startsWith(head, "HTTP/1.1 408 Request Timeout\r\n"));
            CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
            ::close(fd);
        }
    }
} // namespace

int main()
{
    testPendingHandshakesHaveTheirOwnPool();
    testUpstreamAccountingWhenZero();
    testHandshakeTimeoutAnswers408();
    return CHECK_REPORT();
}
