// Engine-only S3 shapes (no Python): how fast the C++ engine takes in or sends
// out 1 MiB binary messages over loopback, and its CPU per message.
//
//   recv: a raw TCP client thread streams masked 1 MiB frames to an ix server
//         whose callback only counts them (the engine's receive path).
//   send: an ix client sends 1 MiB messages to a raw TCP sink thread that
//         discards them (the client's masking and write path).
//
// Build against a Release engine build (not the sanitizer one), e.g.:
//   cmake -S extern/ixwebsocket -B build/engine-rel -G Ninja -DCMAKE_BUILD_TYPE=Release
//         -DIXWS_BUILD_TESTS=OFF && cmake --build build/engine-rel
//   g++ -O2 -std=c++17 -I extern/ixwebsocket/include bench/engine_large.cpp
//       build/engine-rel/libixwebsocket.a build/engine-rel/libixwebsocket_protocol.a
//       -lssl -lcrypto -lz -lpthread -o /tmp/engine_large
// (each command on one line)
//   /tmp/engine_large recv 1000; /tmp/engine_large send 1000
// CPU is the whole process (both ends), so compare builds, not the two modes.
#include <ixwebsocket/IXWebSocket.h>
#include <ixwebsocket/IXWebSocketServer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace
{
    constexpr size_t kSize = 1 << 20;

    double cpuSeconds()
    {
        rusage r {};
        getrusage(RUSAGE_SELF, &r);
        return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
    }

    sockaddr_in loopback(uint16_t port)
    {
        sockaddr_in a {};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        return a;
    }

    std::string acceptFor(const std::string& key)
    {
        const std::string s = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        unsigned char digest[SHA_DIGEST_LENGTH];
        SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
        unsigned char out[64];
        const int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
        return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
    }

    bool readHead(int fd, std::string& head)
    {
        char buf[4096];
        while (head.find("\r\n\r\n") == std::string::npos)
        {
            const ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0) return false;
            head.append(buf, static_cast<size_t>(n));
        }
        return true;
    }

    bool sendAll(int fd, const char* p, size_t n)
    {
        while (n > 0)
        {
            const ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
            if (k <= 0) return false;
            p += k;
            n -= static_cast<size_t>(k);
        }
        return true;
    }

    void report(const char* mode, int n, double cpu, double seconds)
    {
        std::printf("%s: %.0f MB/s, %.1f us CPU per message\n", mode, double(n) * kSize / seconds / 1e6,
                    cpu * 1e6 / n);
        std::fflush(stdout);
    }

    int runRecv(int n)
    {
        std::atomic<int> got {0};
        ix::WebSocketServer server(0, "127.0.0.1");
        server.setOnClientMessageCallback(
            [&](std::shared_ptr<ix::ConnectionState>, ix::WebSocket&, const ix::WebSocketMessagePtr& m) {
                if (m->type == ix::WebSocketMessageType::Message && m->str.size() == kSize) ++got;
            });
        if (!server.listen().first) return 1;
        server.start();
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a = loopback(static_cast<uint16_t>(server.getPort()));
        if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 1;
        const std::string req = "GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        std::string head;
        if (!sendAll(fd, req.data(), req.size()) || !readHead(fd, head)) return 1;
        // One masked frame, sent n times.
        std::string frame = {char(0x82), char(0x80 | 127)};
        for (int i = 7; i >= 0; --i) frame += char((kSize >> (8 * i)) & 0xFF);
        const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
        frame.append(reinterpret_cast<const char*>(key), 4);
        for (size_t i = 0; i < kSize; ++i) frame += char(static_cast<unsigned char>(i * 7) ^ key[i & 3]);
        const double c0 = cpuSeconds();
        const auto t0 = std::chrono::steady_clock::now();
        std::thread sender([&] {
            for (int i = 0; i < n; ++i)
                if (!sendAll(fd, frame.data(), frame.size())) return;
        });
        for (long spins = 0; got < n && spins < 60L * 20000; ++spins)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        report("recv", n, cpuSeconds() - c0, seconds);
        sender.join();
        close(fd);
        server.stop();
        return got == n ? 0 : 1;
    }

    int runSend(int n)
    {
        const int listener = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a = loopback(0);
        socklen_t len = sizeof(a);
        if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(listener, 1) != 0) return 1;
        getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
        std::atomic<size_t> received {0};
        std::thread sink([&] {
            const int fd = accept(listener, nullptr, nullptr);
            std::string head;
            if (fd < 0 || !readHead(fd, head)) return;
            const size_t at = head.find("Sec-WebSocket-Key: ");
            const std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                         "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                                         acceptFor(head.substr(at + 19, 24)) + "\r\n\r\n";
            sendAll(fd, response.data(), response.size());
            static char buf[1 << 18];
            for (;;)
            {
                const ssize_t k = recv(fd, buf, sizeof(buf), 0);
                if (k <= 0) break;
                received += static_cast<size_t>(k);
            }
            close(fd);
        });
        ix::WebSocket ws;
        ws.setUrl("ws://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/");
        ws.disableAutomaticReconnection();
        if (!ws.connect(5).success) return 1;
        std::string msg(kSize, '\0');
        for (size_t i = 0; i < kSize; ++i) msg[i] = char(i * 7);
        const size_t expected = size_t(n) * (kSize + 14); // 10 header + 4 mask bytes each
        const double c0 = cpuSeconds();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i)
        {
            ws.sendBinary(msg);
            while (ws.bufferedAmount() > 4 * kSize) std::this_thread::yield();
        }
        for (long spins = 0; received < expected && spins < 60L * 20000; ++spins)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        report("send", n, cpuSeconds() - c0, seconds);
        const bool ok = received >= expected;
        ws.stop();
        sink.join();
        close(listener);
        return ok ? 0 : 1;
    }
} // namespace

int main(int argc, char** argv)
{
    const std::string mode = argc > 1 ? argv[1] : "";
    const int n = argc > 2 ? std::atoi(argv[2]) : 1000;
    if (n <= 0 || (mode != "recv" && mode != "send"))
    {
        std::fprintf(stderr, "usage: %s recv|send [messages]\n", argv[0]);
        return 2;
    }
    return mode == "recv" ? runRecv(n) : runSend(n);
}
