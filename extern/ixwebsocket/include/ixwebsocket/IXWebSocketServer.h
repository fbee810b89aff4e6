#pragma once
#include "IXSocketServer.h"
#include "IXWebSocket.h"
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace ix
{
#ifdef IXWS_ENGINE_EXTENSIONS
    // ----- ixws extension: the server handshake hook -----
    // An upgrade request that passed the protocol checks, before it is answered.
    struct HandshakeRequest
    {
        std::string uri;              // the request target: path and query
        WebSocketHttpHeaders headers; // the request headers
        std::string remoteIp;
        int remotePort = 0;
        std::shared_ptr<ConnectionState> connectionState;
    };

    // The answer to one HandshakeRequest: accept() or reject(status, reason),
    // from any thread, at most once (later calls are ignored; copies share the
    // answer). When the last copy is destroyed unanswered, the request is
    // rejected with 500.
    class HandshakeResponder
    {
    public:
        struct State;
        explicit HandshakeResponder(std::shared_ptr<State> state);
        // Writes the 101 and opens the connection (Open event).
        void accept();
        // Answers an HTTP error (status 100..599, else 500) and closes; no event
        // reaches the application for this connection.
        void reject(int status, const std::string& reason);
        bool answered() const;

    private:
        std::shared_ptr<State> _state;
    };

    using OnHandshakeCallback = std::function<void(const HandshakeRequest&, HandshakeResponder)>;
#endif

    class WebSocketServer : public SocketServer
    {
    public:
        using OnConnectionCallback =
            std::function<void(std::weak_ptr<WebSocket>, std::shared_ptr<ConnectionState>)>;
        using OnClientMessageCallback = std::function<void(
            std::shared_ptr<ConnectionState>, WebSocket&, const WebSocketMessagePtr&)>;

        WebSocketServer(int port = SocketServer::kDefaultPort,
                        const std::string& host = SocketServer::kDefaultHost,
                        int backlog = SocketServer::kDefaultTcpBacklog,
                        size_t maxConnections = SocketServer::kDefaultMaxConnections,
                        int handshakeTimeoutSecs = WebSocketServer::kDefaultHandShakeTimeoutSecs,
                        int addressFamily = SocketServer::kDefaultAddressFamily,
                        int pingIntervalSeconds = WebSocketServer::kPingIntervalSeconds,
                        int sendTimeoutSeconds = -1);
        virtual ~WebSocketServer();

        // Closes every client with 1000 "Normal closure", waits for their close
        // handshakes (bounded), then stops the loop. Safe to call from a callback.
        virtual void stop() final;

        void enablePong();
        void disablePong();
        void disablePerMessageDeflate();

        void setOnConnectionCallback(const OnConnectionCallback& callback);
        void setOnClientMessageCallback(const OnClientMessageCallback& callback);

        // Connections that completed the handshake and are not yet closed.
        std::set<std::shared_ptr<WebSocket>> getClients();

        void makeBroadcastServer();
        bool listenAndStart();

        int getHandshakeTimeoutSecs();
        bool isPongEnabled();
        bool isPerMessageDeflateEnabled();

        static const int kDefaultHandShakeTimeoutSecs;

#ifdef IXWS_ENGINE_EXTENSIONS
        // ----- ixws extensions (not in upstream) -----
        // Largest incoming message per connection; 0 = unlimited (close 1009).
        void setMaxMessageSize(size_t bytes);
        size_t getMaxMessageSize() const;
        // Connections still in the opening handshake get a limit of their own
        // (over it: 503 "Too many pending handshakes"), and a connection counts
        // against maxConnections only once its upgrade request is complete and
        // valid (a 503 then if maxConnections is reached). A wave of slow
        // handshakes then never takes an established connection's slot.
        // 0 (default) = upstream: handshakes count against maxConnections.
        // Set before start().
        void setMaxPendingHandshakes(size_t count);
        size_t getMaxPendingHandshakes() const;
        // stop() with a chosen close code/reason and a bound (ms) on the wait for
        // close handshakes before the remaining connections are dropped.
        void stop(uint16_t code, const std::string& reason, int timeoutMs);
        // Subprotocols this server speaks, in preference order: the first one the
        // client also offers is answered in Sec-WebSocket-Protocol and reported in
        // the Open event (upstream never answers one, defect 16).
        void setSubProtocols(const std::vector<std::string>& subprotocols);
        std::vector<std::string> getSubProtocols() const;
        // permessage-deflate policy for the connections accepted from now on
        // (default: enabled, 15/15, no no_context_takeover). enabled() says
        // whether offers are accepted (disablePerMessageDeflate() = disabled).
        // serverMaxWindowBits: the largest window the server compresses with
        // (announced when below 15 or when the client limits it; 8 counts as 9).
        // clientMaxWindowBits: the largest window asked of the client, when its
        // offer allows asking. serverNoContextTakeover: the server never uses
        // context takeover (announced). clientNoContextTakeover: the server asks
        // the client not to use it.
        void setPerMessageDeflateOptions(const WebSocketPerMessageDeflateOptions& options);
        WebSocketPerMessageDeflateOptions getPerMessageDeflateOptions() const;
        // Sends one message to every open connection, framed once; returns how
        // many connections accepted it.
        size_t broadcast(const std::string& data, bool binary = false);
        // Called on the server's loop thread for every upgrade request that passed
        // the protocol checks, before the 101 is written. It must not block: it
        // answers through the responder, now or later from any thread, and the
        // connection waits for that answer within the handshake timeout (then:
        // 503 "Handshake hook timed out"). Set before start().
        void setHandshakeHook(const OnHandshakeCallback& hook);
#endif

    private:
        static const int kPingIntervalSeconds;
        void handleAcceptedSocket(int fd, std::shared_ptr<ConnectionState> state) override;
        size_t getConnectedClientsCount() override;

        struct Impl;
        std::shared_ptr<Impl> _impl;
    };
} // namespace ix
