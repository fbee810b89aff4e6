#include "ixwebsocket/IXSocketServer.h"

#include "event_loop.h"
#include "tls_context.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ix
{
    const int SocketServer::kDefaultPort = 8080;
    const std::string SocketServer::kDefaultHost = "127.0.0.1";
    const int SocketServer::kDefaultTcpBacklog = 5;
    const size_t SocketServer::kDefaultMaxConnections = 128;
    const int SocketServer::kDefaultAddressFamily = AF_INET;

    namespace
    {
        // The listening socket on the loop: accepts until EAGAIN on each wake-up.
        class Acceptor : public detail::IoHandler
        {
        public:
            Acceptor(int fd, std::function<void(int, const sockaddr_storage&)> onAccept)
                : _fd(fd), _onAccept(std::move(onAccept))
            {
            }

            void onIoEvents(uint32_t) override
            {
                for (int i = 0; i < 256; ++i) // bounded: other sockets get their turn
                {
                    sockaddr_storage addr {};
                    socklen_t len = sizeof(addr);
                    int fd = ::accept4(_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                    {
                        if (errno == EINTR || errno == ECONNABORTED) continue;
                        return; // EAGAIN, or EMFILE and friends: try again on the next event
                    }
                    _onAccept(fd, addr);
                }
            }

        private:
            int _fd;
            std::function<void(int, const sockaddr_storage&)> _onAccept;
        };

        void describePeer(const sockaddr_storage& addr, std::string& ip, int& port)
        {
            char buf[INET6_ADDRSTRLEN] = {0};
            if (addr.ss_family == AF_INET6)
            {
                auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
                ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
                port = ntohs(a->sin6_port);
            }
            else
            {
                auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
                ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
                port = ntohs(a->sin_port);
            }
            ip = buf;
        }
    } // namespace

    SocketServer::SocketServer(int port, const std::string& host, int backlog, size_t maxConnections, int addressFamily)
        : _port(port), _host(host), _backlog(backlog), _maxConnections(maxConnections), _addressFamily(addressFamily),
          _connectionStateFactory(&ConnectionState::createConnectionState)
    {
    }

    SocketServer::~SocketServer()
    {
        if (_loop) _loop->stop();
        if (_listenFd >= 0) ::close(_listenFd);
    }

    void SocketServer::setConnectionStateFactory(const ConnectionStateFactory& factory)
    {
        _connectionStateFactory = factory;
    }

    void SocketServer::setLogCallback(const LogCallback& callback) { _logCallback = callback; }

    void SocketServer::logError(const std::string& str)
    {
        if (_logCallback)
            _logCallback(LogLevel::Error, str);
        else
            std::cerr << str << std::endl;
    }

    void SocketServer::logInfo(const std::string& str)
    {
        if (_logCallback) _logCallback(LogLevel::Info, str);
    }

    std::pair<bool, std::string> SocketServer::listen()
    {
        const std::string where = " at address " + _host + ":" + std::to_string(_port);
        if (_addressFamily != AF_INET && _addressFamily != AF_INET6)
            return {false, "SocketServer::listen() AF_INET and AF_INET6 are currently the only supported address families"};
        if (_port < 0 || _port > 65535) return {false, "SocketServer::listen() error: invalid port" + where};
        if (_socketTLSOptions.tls)
        {
            // Certificate problems surface here, not at the first client.
            std::string error;
            auto context = detail::TlsContext::create(detail::TlsContext::Role::Server, _socketTLSOptions, error);
            if (!context) return {false, "SocketServer::listen() TLS error: " + error};
            _tlsContext = std::move(context);
        }
        else
        {
            _tlsContext.reset();
        }
        if (_listenFd >= 0) return {true, ""};

        // Host names are resolved too ("localhost"), not only numeric literals (defect 20).
        addrinfo hints {};
        hints.ai_family = _addressFamily;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        addrinfo* list = nullptr;
        std::string service = std::to_string(_port);
        int rc = ::getaddrinfo(_host.empty() ? nullptr : _host.c_str(), service.c_str(), &hints, &list);
        if (rc != 0 || list == nullptr)
            return {false, "SocketServer::listen() error resolving" + where + " : " + ::gai_strerror(rc)};

        std::string error;
        int fd = -1;
        for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next)
        {
            fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                error = "error calling socket" + where + " : " + std::strerror(errno);
                continue;
            }
            int one = 1;
            ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (::bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            {
                error = "error calling bind" + where + " : " + std::strerror(errno);
                ::close(fd);
                fd = -1;
                continue;
            }
            if (::listen(fd, _backlog > 0 ? _backlog : 1) < 0)
            {
                error = "error calling listen" + where + " : " + std::strerror(errno);
                ::close(fd);
                fd = -1;
                continue;
            }
            break;
        }
        ::freeaddrinfo(list);
        if (fd < 0) return {false, "SocketServer::listen() " + error};
        // Accepted sockets inherit TCP_NODELAY from the listener (Linux): one
        // setsockopt here instead of one per connection.
        int one = 1;
        _listenerNoDelay = ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;

        sockaddr_storage bound {};
        socklen_t len = sizeof(bound);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
        std::string ip;
        describePeer(bound, ip, _boundPort);
        _listenFd = fd;
        return {true, ""};
    }

    void SocketServer::start()
    {
        std::lock_guard<std::mutex> lock(_stateMutex);
        if (_listenFd < 0 || !_stopped) return;
        _stopped = false;
        if (!_loop) _loop = detail::EventLoop::create("ixws-srv:" + std::to_string(getPort()));
        int fd = _listenFd;
        auto loop = _loop;
        _loop->post([this, fd, loop] {
            loop->add(fd, EPOLLIN, std::make_shared<Acceptor>(fd, [this](int client, const sockaddr_storage& addr) {
                std::string ip;
                int port = 0;
                describePeer(addr, ip, port);
                handleAcceptedSocket(client, makeConnectionState(ip, port));
            }));
        });
    }

    std::shared_ptr<ConnectionState> SocketServer::makeConnectionState(const std::string& ip, int port)
    {
        auto state = _connectionStateFactory ? _connectionStateFactory() : ConnectionState::createConnectionState();
        state->setRemoteIp(ip);
        state->setRemotePort(port);
        return state;
    }

    void SocketServer::stopAcceptingConnections()
    {
        // Loop thread or after the loop stopped.
        int fd;
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            fd = _listenFd;
            _listenFd = -1;
        }
        if (fd < 0) return;
        if (_loop && _loop->inLoopThread()) _loop->remove(fd);
        ::close(fd);
    }

    void SocketServer::stop()
    {
        if (_loop && !_loop->inLoopThread())
        {
            auto loop = _loop;
            loop->post([this] { stopAcceptingConnections(); });
            loop->stop();
            std::lock_guard<std::mutex> lock(_stateMutex);
            _loop.reset(); // a later listen()+start() gets a fresh loop
        }
        stopAcceptingConnections();
        {
            std::lock_guard<std::mutex> lock(_stateMutex);
            _stopped = true;
        }
        _stoppedCondition.notify_all();
    }

    void SocketServer::wait()
    {
        std::unique_lock<std::mutex> lock(_stateMutex);
        _stoppedCondition.wait(lock, [this] { return _stopped; });
    }

    void SocketServer::setTLSOptions(const SocketTLSOptions& options) { _socketTLSOptions = options; }

    int SocketServer::getPort() { return _boundPort ? _boundPort : _port; }
    std::string SocketServer::getHost() { return _host; }
    int SocketServer::getBacklog() { return _backlog; }
    std::size_t SocketServer::getMaxConnections() { return _maxConnections; }
    int SocketServer::getAddressFamily() { return _addressFamily; }
} // namespace ix
