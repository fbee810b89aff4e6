#pragma once
#include "IXConnectionState.h"
#include "IXNetSystem.h"
#include "IXSocketTLSOptions.h"
#include <condition_variable>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <utility>

namespace ix
{
    namespace detail
    {
        class EventLoop;
        class TlsContext;
    }

    enum class LogLevel
    {
        Info = 0,
        Error = 1
    };

    // Abstract base kept for API compatibility: WebSocketServer is the only
    // concrete server. Listening happens here; connections live on an event loop.
    class SocketServer
    {
    public:
        using ConnectionStateFactory = std::function<std::shared_ptr<ConnectionState>()>;
        using LogCallback = std::function<void(LogLevel level, const std::string& msg)>;

        SocketServer(int port = SocketServer::kDefaultPort,
                     const std::string& host = SocketServer::kDefaultHost,
                     int backlog = SocketServer::kDefaultTcpBacklog,
                     size_t maxConnections = SocketServer::kDefaultMaxConnections,
                     int addressFamily = SocketServer::kDefaultAddressFamily);
        virtual ~SocketServer();
        SocketServer(const SocketServer&) = delete;
        SocketServer& operator=(const SocketServer&) = delete;

        virtual void stop();

        void setConnectionStateFactory(const ConnectionStateFactory& connectionStateFactory);
        void setLogCallback(const LogCallback& callback);

        static const int kDefaultPort;
        static const std::string kDefaultHost;
        static const int kDefaultTcpBacklog;
        static const size_t kDefaultMaxConnections;
        static const int kDefaultAddressFamily;

        // Binds and listens. Returns (false, reason) on failure.
        std::pair<bool, std::string> listen();
        // Starts accepting connections (after listen()). Non-blocking.
        void start();
        // Blocks until stop() has been called (returns at once if it already was).
        void wait();

        void setTLSOptions(const SocketTLSOptions& socketTLSOptions);
        // The bound port: after listen() with port 0 this is the port chosen by the
        // OS (upstream returns 0 here, defect 19).
        int getPort();
        std::string getHost();
        int getBacklog();
        std::size_t getMaxConnections();
        int getAddressFamily();
        void setCloseOnExec() {}

    protected:
        void logError(const std::string& str);
        void logInfo(const std::string& str);
        void stopAcceptingConnections();

        // Called on the event loop for each accepted socket (already non-blocking).
        virtual void handleAcceptedSocket(int fd, std::shared_ptr<ConnectionState> state) = 0;
        virtual size_t getConnectedClientsCount() = 0;

        std::shared_ptr<ConnectionState> makeConnectionState(const std::string& ip, int port);

        int _port;
        std::string _host;
        int _backlog;
        size_t _maxConnections;
        int _addressFamily;
        SocketTLSOptions _socketTLSOptions;
        // Built by listen() when _socketTLSOptions.tls is set; shared by every
        // accepted connection.
        std::shared_ptr<detail::TlsContext> _tlsContext;

        // The loop that runs the listening socket and every connection of this
        // server: one thread, however many connections.
        std::shared_ptr<detail::EventLoop> _loop;
        int _listenFd = -1;
        int _boundPort = 0;
        // TCP_NODELAY is set on the listening socket: accepted ones inherit it.
        bool _listenerNoDelay = false;
        bool _stopped = true;
        std::mutex _stateMutex;
        std::condition_variable _stoppedCondition;

    private:
        ConnectionStateFactory _connectionStateFactory;
        LogCallback _logCallback;
    };
} // namespace ix
