// Process-level behaviour through the public ix API: blocking calls that a
// thread's wait interrupt check cuts short (how a binding runs signal
// handlers), and fork(): a child leaves the objects it inherited alone and
// gets working loops of its own.
#include "check.h"
#include "ixwebsocket/IXWebSocket.h"
#include "ixwebsocket/IXWebSocketServer.h"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace
{
    // Echoes text messages; counts opens and closes.
    struct EchoServer
    {
        std::mutex m;
        std::condition_variable cv;
        int opens = 0;
        int closes = 0;
        ix::WebSocketServer server {0, "127.0.0.1", 64, 16, 1};

        EchoServer()
        {
            server.setOnClientMessageCallback(
                [this](std::shared_ptr<ix::ConnectionState>, ix::WebSocket& ws, const ix::WebSocketMessagePtr& msg) {
                    if (msg->type == ix::WebSocketMessageType::Message) ws.send(msg->str, msg->binary);
                    std::lock_guard<std::mutex> lock(m);
                    if (msg->type == ix::WebSocketMessageType::Open) ++opens;
                    if (msg->type == ix::WebSocketMessageType::Close) ++closes;
                    cv.notify_all();
                });
            CHECK(server.listen().first);
            server.start();
        }

        std::string url() { return "ws://127.0.0.1:" + std::to_string(server.getPort()) + "/"; }
    };

    // A client that records the last text message and whether it was closed.
    struct EchoClient
    {
        std::mutex m;
        std::condition_variable cv;
        std::string last;
        int closes = 0;
        ix::WebSocket ws;

        explicit EchoClient(const std::string& url)
        {
            ws.setUrl(url);
            ws.disableAutomaticReconnection();
            ws.setOnMessageCallback([this](const ix::WebSocketMessagePtr& msg) {
                std::lock_guard<std::mutex> lock(m);
                if (msg->type == ix::WebSocketMessageType::Message) last = msg->str;
                if (msg->type == ix::WebSocketMessageType::Close) ++closes;
                cv.notify_all();
            });
        }

        // Sends text and waits for its echo.
        bool echo(const std::string& text)
        {
            if (!ws.send(text).success) return false;
            std::unique_lock<std::mutex> lock(m);
            return cv.wait_for(lock, 5s, [&] { return last == text; });
        }
    };

    // A TCP listener that the kernel completes connections for and nobody
    // ever answers.
    struct SilentListener
    {
        int fd = -1;
        int port = 0;
        SilentListener()
        {
            fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in addr {};
            addr.sin_family = AF_INET;
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
            CHECK(::listen(fd, 8) == 0);
            socklen_t len = sizeof(addr);
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
            port = ntohs(addr.sin_port);
        }
        ~SilentListener() { ::close(fd); }
    };

    std::atomic<int> g_checks {0};
    ix::WebSocket* g_checkedClient = nullptr;

    // Ends the wait at its third call. Engine locks are released while it
    // runs: reading the client's state here would deadlock otherwise.
    bool stopOnThirdCheck()
    {
        if (g_checkedClient) (void) g_checkedClient->getReadyState();
        return ++g_checks >= 3;
    }

    void testInterruptCheckEndsStartAndWait()
    {
        SilentListener silent;
        ix::WebSocket client;
        client.setUrl("ws://127.0.0.1:" + std::to_string(silent.port) + "/");
        client.disableAutomaticReconnection();
        client.setOnMessageCallback([](const ix::WebSocketMessagePtr&) {});
        g_checks = 0;
        g_checkedClient = &client;
        CHECK(ix::WebSocket::setThreadWaitInterrupt(&stopOnThirdCheck) == nullptr);
        auto t0 = std::chrono::steady_clock::now();
        auto result = client.startAndWait(20);
        auto elapsed = std::chrono::steady_clock::now() - t0;
        CHECK(ix::WebSocket::setThreadWaitInterrupt(nullptr) == &stopOnThirdCheck);
        g_checkedClient = nullptr;
        CHECK(!result.success);
        CHECK_EQ(g_checks.load(), 3);
        CHECK(elapsed < 10s); // not the attempt's 20 s: the check ended the wait
        // The caller cancels the attempt; the client can start again.
        client.stop();
        CHECK(client.getReadyState() == ix::ReadyState::Closed);
    }

    void testWithoutCheckNothingChanges()
    {
        EchoServer server;
        EchoClient client(server.url());
        CHECK(ix::WebSocket::setThreadWaitInterrupt(nullptr) == nullptr);
        CHECK(client.ws.connect(5).success);
        CHECK(client.echo("plain"));
        client.ws.stop();
    }

    void testForkChildLeavesInheritedConnectionsAlone()
    {
        EchoServer server;
        auto* client = new EchoClient(server.url());
        CHECK(client->ws.connect(5).success);
        CHECK(client->echo("before fork"));

        pid_t pid = ::fork();
        if (pid == 0)
        {
            // The child: `server` and `client` belong to threads that are gone
            // and share their sockets with the parent. They are never used or
            // destroyed here (_exit skips the destructors). New ones work.
            bool ok;
            {
                EchoServer fresh;
                EchoClient freshClient(fresh.url());
                ok = freshClient.ws.connect(5).success && freshClient.echo("in the child");
                freshClient.ws.stop();
            }
            ::_exit(ok ? 0 : 1);
        }
        CHECK(pid > 0);
        int status = -1;
        CHECK(::waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), 0);
        // The parent's connection saw nothing from the child.
        CHECK(client->ws.getReadyState() == ix::ReadyState::Open);
        CHECK(client->echo("after fork"));
        {
            std::lock_guard<std::mutex> lock(client->m);
            CHECK_EQ(client->closes, 0);
        }
        {
            std::lock_guard<std::mutex> lock(server.m);
            CHECK_EQ(server.closes, 0);
        }
        client->ws.stop();
        delete client;
    }
} // namespace

int main()
{
    testInterruptCheckEndsStartAndWait();
    testWithoutCheckNothingChanges();
    testForkChildLeavesInheritedConnectionsAlone();
    return CHECK_REPORT();
}
