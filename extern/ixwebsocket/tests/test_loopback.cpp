// End-to-end tests of the I/O side through the public ix API only: a
// WebSocketServer and WebSocket clients talking over 127.0.0.1.
#include "check.h"
#include "ixwebsocket/IXWebSocket.h"
#include "ixwebsocket/IXWebSocketServer.h"

#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace
{
    // Collects events from any thread and lets the test wait for them.
    struct Inbox
    {
        struct Item
        {
            ix::WebSocketMessageType type;
            std::string str;
            bool binary;
            uint16_t code;
            std::string reason;
            bool remote;
            std::string uri;
            int retries;
            size_t wireSize;
        };
        std::mutex m;
        std::condition_variable cv;
        std::deque<Item> items;

        void push(const ix::WebSocketMessagePtr& msg)
        {
            std::lock_guard<std::mutex> lock(m);
            items.push_back(Item {msg->type, msg->str, msg->binary, msg->closeInfo.code, msg->closeInfo.reason,
                                  msg->closeInfo.remote, msg->openInfo.uri, (int) msg->errorInfo.retries, msg->wireSize});
            cv.notify_all();
        }

        // Waits for the next event of the given type, dropping others before it.
        bool next(ix::WebSocketMessageType type, Item& out, std::chrono::milliseconds timeout = 5000ms)
        {
            std::unique_lock<std::mutex> lock(m);
            auto deadline = std::chrono::steady_clock::now() + timeout;
            while (true)
            {
                while (!items.empty())
                {
                    Item it = items.front();
                    items.pop_front();
                    if (it.type == type)
                    {
                        out = it;
                        return true;
                    }
                }
                if (cv.wait_until(lock, deadline) == std::cv_status::timeout && items.empty()) return false;
            }
        }
    };

    struct EchoServer
    {
        Inbox inbox; // declared first: it outlives the server, whose stop() still delivers events
        ix::WebSocketServer server;

        explicit EchoServer(size_t maxConnections = 128) : server(0, "127.0.0.1", 512, maxConnections, 1)
        {
            server.setOnClientMessageCallback(
                [this](std::shared_ptr<ix::ConnectionState>, ix::WebSocket& ws, const ix::WebSocketMessagePtr& msg) {
                    inbox.push(msg);
                    if (msg->type == ix::WebSocketMessageType::Message)
                    {
                        if (msg->str == "close-me")
                            ws.close(4001, "as asked");
                        else if (msg->str == "stop-server")
                            server.stop(); // from the server's own callback
                        else
                            ws.send(msg->str, msg->binary);
                    }
                });
            auto res = server.listen();
            CHECK(res.first);
            server.start();
        }

        std::string url(const std::string& path = "/") const
        {
            return "ws://127.0.0.1:" + std::to_string(const_cast<ix::WebSocketServer&>(server).getPort()) + path;
        }
    };

    void testEchoAndClose()
    {
        EchoServer echo;
        CHECK(echo.server.getPort() > 0);
        Inbox inbox; // outlives the client
        ix::WebSocket client;
        client.setUrl(echo.url("/chat?room=1"));
        client.disableAutomaticReconnection();
        client.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        auto result = client.connect(5);
        CHECK(result.success);
        CHECK_EQ(result.http_status, 101);
        Inbox::Item item;
        CHECK(inbox.next(ix::WebSocketMessageType::Open, item));
        CHECK_EQ(item.uri, std::string("/chat?room=1"));
        CHECK(echo.inbox.next(ix::WebSocketMessageType::Open, item));
        CHECK_EQ(item.uri, std::string("/chat?room=1"));
        CHECK(client.getReadyState() == ix::ReadyState::Open);

        CHECK(client.send("hello").success);
        CHECK(inbox.next(ix::WebSocketMessageType::Message, item));
        CHECK_EQ(item.str, std::string("hello"));
        CHECK(!item.binary);

        std::string big(3 * 1024 * 1024 + 7, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
        CHECK(client.sendBinary(big).success);
        CHECK(inbox.next(ix::WebSocketMessageType::Message, item));
        CHECK(item.binary);
        CHECK(item.str == big);

        // Invalid UTF-8 fails the call only (upstream closes the connection).
        CHECK(!client.sendText(std::string("\xC0\xAF")).success);
        CHECK(client.getReadyState() == ix::ReadyState::Open);

        CHECK(client.ping("are you there").success);
        CHECK(inbox.next(ix::WebSocketMessageType::Pong, item));
        CHECK_EQ(item.str, std::string("are you there"));
        CHECK(!client.ping(std::string(126, 'x')).success);

        CHECK_EQ(echo.server.getClients().size(), static_cast<size_t>(1));
        client.stop(4000, "My reason");
        CHECK(inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 4000);
        CHECK_EQ(item.reason, std::string("My reason"));
        CHECK(!item.remote);
        CHECK(echo.inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 4000);
        CHECK_EQ(item.reason, std::string("My reason"));
        CHECK(item.remote);
        CHECK(client.getReadyState() == ix::ReadyState::Closed);
        CHECK(!client.send("after close").success);
    }

    void testServerInitiatedClose()
    {
        EchoServer echo;
        Inbox inbox; // outlives the client
        ix::WebSocket client;
        client.setUrl(echo.url());
        client.disableAutomaticReconnection();
        client.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        CHECK(client.connect(5).success);
        client.send("close-me");
        Inbox::Item item;
        CHECK(inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 4001);
        CHECK_EQ(item.reason, std::string("as asked"));
        CHECK(item.remote);
        CHECK(echo.inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 4001);
        CHECK(!item.remote);
    }

    void testStartReconnectsAndStopFromCallback()
    {
        EchoServer echo;
        Inbox inbox; // outlives the client
        ix::WebSocket client;
        client.setUrl(echo.url());
        client.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) {
            inbox.push(msg);
            if (msg->type == ix::WebSocketMessageType::Message && msg->str == "bye") client.stop();
        });
        client.start();
        Inbox::Item item;
        CHECK(inbox.next(ix::WebSocketMessageType::Open, item));
        client.send("bye");
        CHECK(inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 1000);
        // stop() from the callback: no reconnection afterwards.
        CHECK(!inbox.next(ix::WebSocketMessageType::Open, item, 300ms));
    }

    void testConnectionRefusedBackoff()
    {
        // A port nobody listens on: bind, read the port, close.
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr {};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
        socklen_t len = sizeof(addr);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        int port = ntohs(addr.sin_port);
        ::close(fd);

        Inbox inbox; // outlives the client
        ix::WebSocket client;
        client.setUrl("ws://127.0.0.1:" + std::to_string(port) + "/");
        client.setMaxWaitBetweenReconnectionRetries(200);
        client.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        client.start();
        Inbox::Item item;
        CHECK(inbox.next(ix::WebSocketMessageType::Error, item));
        CHECK_EQ(item.retries, 1);
        CHECK(inbox.next(ix::WebSocketMessageType::Error, item));
        CHECK_EQ(item.retries, 2);
        auto t0 = std::chrono::steady_clock::now();
        client.stop();
        CHECK(std::chrono::steady_clock::now() - t0 < 1000ms);
    }

    int unusedPort()
    {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr {};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
        socklen_t len = sizeof(addr);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        int port = ntohs(addr.sin_port);
        ::close(fd);
        return port;
    }

    void testStartAndWaitAndStopDuringBackoff()
    {
        ix::WebSocket client;
        Inbox inbox;
        client.setUrl("ws://127.0.0.1:" + std::to_string(unusedPort()) + "/");
        client.setMinWaitBetweenReconnectionRetries(60000);
        client.setMaxWaitBetweenReconnectionRetries(60000);
        client.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        auto result = client.startAndWait(5);
        CHECK(!result.success);
        CHECK(result.errorStr.find("Connection refused") != std::string::npos);
        // Unlike connect(), the failure is an Error event of the reconnection loop.
        Inbox::Item item;
        CHECK(inbox.next(ix::WebSocketMessageType::Error, item));
        CHECK_EQ(item.retries, 1);
        CHECK(client.getReadyState() == ix::ReadyState::Connecting);
        CHECK_EQ(client.startAndWait(1).errorStr, std::string("Already started"));
        client.stop(); // interrupts the 60 s wait
        CHECK(client.getReadyState() == ix::ReadyState::Closed);
        // No Error for the cancelled wait, nothing after stop().
        CHECK(!inbox.next(ix::WebSocketMessageType::Error, item, 200ms));
    }

    void testHandshakeHook()
    {
        ix::WebSocketServer server(0, "127.0.0.1", 64, 128, 2);
        Inbox inbox;
        std::mutex m;
        std::condition_variable cv;
        std::vector<std::pair<ix::HandshakeRequest, ix::HandshakeResponder>> pending;
        server.setOnClientMessageCallback(
            [&](std::shared_ptr<ix::ConnectionState>, ix::WebSocket&, const ix::WebSocketMessagePtr& msg) {
                inbox.push(msg);
            });
        server.setHandshakeHook([&](const ix::HandshakeRequest& request, ix::HandshakeResponder responder) {
            if (request.uri == "/drop") return; // destroyed unanswered: 500
            std::lock_guard<std::mutex> lock(m);
            pending.emplace_back(request, responder); // answered later, from the test thread
            cv.notify_all();
        });
        CHECK(server.listen().first);
        server.start();
        const std::string base = "ws://127.0.0.1:" + std::to_string(server.getPort());

        // Answer each request from this thread once it has arrived.
        auto answerNext = [&](bool accept) {
            std::unique_lock<std::mutex> lock(m);
            if (!cv.wait_for(lock, 5s, [&] { return !pending.empty(); })) return std::string();
            auto entry = pending.front();
            pending.erase(pending.begin());
            lock.unlock();
            if (accept)
                entry.second.accept();
            else
                entry.second.reject(401, "Unauthorized");
            entry.second.accept(); // a second answer is ignored
            CHECK(entry.second.answered());
            return entry.first.uri + " " + entry.first.remoteIp + " " +
                   entry.first.headers.at("sec-websocket-version");
        };

        ix::WebSocket denied;
        denied.setUrl(base + "/deny?x=1");
        denied.disableAutomaticReconnection();
        denied.setOnMessageCallback([](const ix::WebSocketMessagePtr&) {});
        ix::WebSocketInitResult deniedResult;
        std::thread t([&] { deniedResult = denied.connect(5); });
        CHECK_EQ(answerNext(false), std::string("/deny?x=1 127.0.0.1 13"));
        t.join();
        CHECK(!deniedResult.success);
        CHECK_EQ(deniedResult.http_status, 401);

        ix::WebSocket dropped;
        dropped.setUrl(base + "/drop");
        dropped.disableAutomaticReconnection();
        dropped.setOnMessageCallback([](const ix::WebSocketMessagePtr&) {});
        auto droppedResult = dropped.connect(5);
        CHECK_EQ(droppedResult.http_status, 500);

        ix::WebSocket allowed;
        Inbox clientInbox;
        allowed.setUrl(base + "/allow");
        allowed.disableAutomaticReconnection();
        allowed.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { clientInbox.push(msg); });
        ix::WebSocketInitResult allowedResult;
        std::thread t2([&] { allowedResult = allowed.connect(5); });
        CHECK_EQ(answerNext(true), std::string("/allow 127.0.0.1 13"));
        t2.join();
        CHECK(allowedResult.success);
        Inbox::Item item;
        CHECK(inbox.next(ix::WebSocketMessageType::Open, item));
        CHECK_EQ(item.uri, std::string("/allow")); // the only Open: rejected ones never reach the callback
        CHECK(!inbox.next(ix::WebSocketMessageType::Open, item, 100ms));

        // A request still waiting when the server stops: dropped with the others.
        ix::WebSocket waiting;
        waiting.setUrl(base + "/late");
        waiting.disableAutomaticReconnection();
        waiting.setOnMessageCallback([](const ix::WebSocketMessagePtr&) {});
        ix::WebSocketInitResult waitingResult;
        std::thread t3([&] { waitingResult = waiting.connect(5); });
        {
            std::unique_lock<std::mutex> lock(m);
            CHECK(cv.wait_for(lock, 5s, [&] { return !pending.empty(); }));
        }
        server.stop(1001, "Going away", 500);
        t3.join();
        CHECK(!waitingResult.success);
        {
            std::lock_guard<std::mutex> lock(m);
            for (auto& entry : pending) entry.second.accept(); // too late: ignored
            pending.clear();
        }
        allowed.stop();
    }

    void testBadUrl()
    {
        ix::WebSocket client;
        client.setUrl("not a url");
        auto result = client.connect(1);
        CHECK(!result.success);
        CHECK(!result.errorStr.empty());
    }

    void testStopFromServerCallback()
    {
        EchoServer echo;
        Inbox inbox; // outlives the client
        ix::WebSocket client;
        client.setUrl(echo.url());
        client.disableAutomaticReconnection();
        client.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        CHECK(client.connect(5).success);
        client.send("stop-server");
        Inbox::Item item;
        CHECK(inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 1000);
        echo.server.stop();
    }

    void testMaxConnectionsAnswers503()
    {
        EchoServer echo(1);
        ix::WebSocket first;
        first.setUrl(echo.url());
        first.disableAutomaticReconnection();
        first.setOnMessageCallback([](const ix::WebSocketMessagePtr&) {});
        CHECK(first.connect(5).success);
        ix::WebSocket second;
        second.setUrl(echo.url());
        second.disableAutomaticReconnection();
        second.setOnMessageCallback([](const ix::WebSocketMessagePtr&) {});
        auto result = second.connect(5);
        CHECK(!result.success);
        CHECK_EQ(result.http_status, 503);
    }

    void testManyClientsOneServer()
    {
        EchoServer echo(512);
        constexpr int kClients = 200;
        Inbox inbox; // outlives the clients (their destructors may still deliver)
        std::vector<std::unique_ptr<ix::WebSocket>> clients;
        for (int i = 0; i < kClients; ++i)
        {
            clients.emplace_back(new ix::WebSocket());
            auto& c = *clients.back();
            c.setUrl(echo.url());
            c.disableAutomaticReconnection();
            c.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
            c.start();
        }
        Inbox::Item item;
        int opened = 0;
        while (opened < kClients && inbox.next(ix::WebSocketMessageType::Open, item)) ++opened;
        CHECK_EQ(opened, kClients);
        auto all = echo.server.getClients();
        CHECK_EQ(all.size(), static_cast<size_t>(kClients));
        for (auto& ws : all) ws->send("broadcast");
        int got = 0;
        while (got < kClients && inbox.next(ix::WebSocketMessageType::Message, item)) ++got;
        CHECK_EQ(got, kClients);
        echo.server.stop();
        int closed = 0;
        while (closed < kClients && inbox.next(ix::WebSocketMessageType::Close, item)) ++closed;
        CHECK_EQ(closed, kClients);
    }
} // namespace

    // permessage-deflate end to end: a server policy with its own limits, a client
    // with its own, compressed both ways, one message sent uncompressed.
    void testDeflate()
    {
        EchoServer echo;
        CHECK(echo.server.isPerMessageDeflateEnabled());
        echo.server.setPerMessageDeflateOptions(ix::WebSocketPerMessageDeflateOptions(true, false, true, 15, 10));
        ix::WebSocket client;
        Inbox inbox;
        client.setUrl(echo.url());
        client.disableAutomaticReconnection();
        client.setPerMessageDeflateOptions(ix::WebSocketPerMessageDeflateOptions(true, false, false, 9, 12));
        client.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        auto result = client.connect(5);
        CHECK(result.success);
        CHECK_EQ(result.headers["Sec-WebSocket-Extensions"],
                 std::string("permessage-deflate; server_no_context_takeover; server_max_window_bits=10"));
        std::string text;
        for (int i = 0; text.size() < 300000; ++i) text += "{\"n\":" + std::to_string(i) + ",\"v\":\"abc\"},";
        Inbox::Item item;
        for (int round = 0; round < 3; ++round)
        {
            ix::WebSocketSendInfo info = client.send(text);
            CHECK(info.success);
            CHECK_EQ(info.payloadSize, text.size());
            CHECK(info.wireSize < text.size() / 4);
            CHECK(echo.inbox.next(ix::WebSocketMessageType::Message, item));
            CHECK(item.str == text);
            CHECK_EQ(item.wireSize, info.wireSize);
            CHECK(inbox.next(ix::WebSocketMessageType::Message, item));
            CHECK(item.str == text);
            CHECK(item.wireSize < text.size() / 4);
        }
        ix::WebSocketSendInfo raw = client.sendMessage(ix::IXWebSocketSendData(text), false, false);
        CHECK(raw.success);
        CHECK_EQ(raw.wireSize, text.size());
        CHECK(echo.inbox.next(ix::WebSocketMessageType::Message, item));
        CHECK(item.str == text);
        CHECK_EQ(item.wireSize, text.size());
        client.stop();

        // disablePerMessageDeflate: offers are declined.
        echo.server.disablePerMessageDeflate();
        CHECK(!echo.server.isPerMessageDeflateEnabled());
        ix::WebSocket plain;
        plain.setUrl(echo.url());
        plain.disableAutomaticReconnection();
        plain.enablePerMessageDeflate();
        plain.setOnMessageCallback([&](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        result = plain.connect(5);
        CHECK(result.success);
        CHECK(result.headers.find("Sec-WebSocket-Extensions") == result.headers.end());
        ix::WebSocketSendInfo info = plain.send(text);
        CHECK_EQ(info.wireSize, text.size());
        plain.stop();
    }

int main()
{
    testEchoAndClose();
    testServerInitiatedClose();
    testStartReconnectsAndStopFromCallback();
    testConnectionRefusedBackoff();
    testBadUrl();
    testStartAndWaitAndStopDuringBackoff();
    testHandshakeHook();
    testStopFromServerCallback();
    testMaxConnectionsAnswers503();
    testManyClientsOneServer();
    testDeflate();
    return CHECK_REPORT();
}
