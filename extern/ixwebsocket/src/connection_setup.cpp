// How a connection comes up: a client's name resolution and connect over the
// address list (dialer.h), the early upgrade request, a server's accepted or
// rejected socket, and the TLS handshake of either role.
#include "connection.h"

#include "plain_stream.h"
#include "tls_stream.h"
#include <cerrno>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ix::detail
{
    namespace
    {
        TimePoint now() { return MachineClock::now(); }

        MachineConfig machineConfig(const ConnectionOptions& o)
        {
            MachineConfig c;
            c.role = o.role;
            c.autoPong = o.autoPong;
            c.maxMessageSize = o.maxMessageSize;
            c.handshakeTimeoutMs = o.handshakeTimeoutMs;
            c.closeTimeoutMs = o.closeTimeoutMs;
            c.pingIntervalSecs = o.pingIntervalSecs;
            c.pingTimeoutSecs = o.pingTimeoutSecs;
            c.pingMessage = o.pingMessage;
            c.maxHeadSize = o.maxHeadSize;
            c.tls = o.tls != nullptr;
            c.ackDeliveries = o.ackDeliveries;
            c.urlText = o.urlText;
            c.url = o.url;
            c.extraHeaders = o.extraHeaders;
            c.subprotocols = o.subprotocols;
            c.extensionsOffer = o.extensionsOffer;
            c.serverHandshake = o.serverHandshake;
            c.handshakeHook = static_cast<bool>(o.handshakeHook);
            c.admitSession = o.admitSession;
            return c;
        }

        SendLimits sendLimits(const ConnectionOptions& o)
        {
            SendLimits limits;
            limits.bytes = o.sendBufferLimit;
            limits.policy = o.slowConsumerPolicy;
            limits.timeoutMs = o.sendTimeoutMs;
            return limits;
        }
    } // namespace

    Connection::Connection(EventLoop& loop, ConnectionOptions options, std::shared_ptr<ConnectionOwner> owner)
        : _loop(loop),
          _options(std::move(options)),
          _owner(std::move(owner)),
          _machine(machineConfig(_options)),
          _output(loop, *this, _options.role, sendLimits(_options))
    {
    }

    Connection::~Connection()
    {
        if (_fd >= 0) ::close(_fd);
    }

    void Connection::adoptSocket(int fd, bool writeInterest)
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _fd = fd;
            _stream.reset(new PlainStream(fd));
            _output.attach(_stream.get(), writeInterest);
        }
        _registered = true;
        _loop.add(fd, EPOLLIN | EPOLLRDHUP | (writeInterest ? EPOLLOUT : 0u), shared_from_this());
    }

    // ------------------------------------------------------------------ client

    std::shared_ptr<Connection> Connection::connectClient(EventLoop& loop,
                                                          ConnectionOptions options,
                                                          std::shared_ptr<ConnectionOwner> owner)
    {
        auto conn = createClient(loop, std::move(options), std::move(owner));
        // Posted, never run inline: the owner stores the returned pointer first.
        loop.post([conn] { conn->startClient(); });
        return conn;
    }

    std::shared_ptr<Connection> Connection::createClient(EventLoop& loop,
                                                         ConnectionOptions options,
                                                         std::shared_ptr<ConnectionOwner> owner)
    {
        std::shared_ptr<Connection> conn(new Connection(loop, std::move(options), std::move(owner)));
        conn->_dialer.reset(new Dialer(conn->_options.url.host, conn->_options.url.port));
        return conn;
    }

    void Connection::startClient()
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _machine.startClient(now());
        }
        if (_machine.phase() != Phase::Resolving) return; // cancelled before it started
        syncTimer();
        if (_dialer->resolveNumeric())
        {
            onResolved(nullptr, "");
            return;
        }
        // Name resolution blocks, so it runs on the resolver's threads; the
        // result comes back as a task. A cancelled lookup is dropped (finish()).
        std::weak_ptr<Connection> weak = shared_from_this();
        EventLoop* loop = &_loop;
        _dialer->resolve(Resolver::shared(), [weak, loop](addrinfo* list, const std::string& error) {
            if (auto conn = weak.lock())
                loop->post([conn, list, error] { conn->onResolved(list, error); });
            else if (list)
                ::freeaddrinfo(list);
        });
    }

    void Connection::onResolved(addrinfo* list, const std::string& error)
    {
        // list == nullptr with no error: the numeric address is in the dialer already.
        const bool ready = list ? _dialer->adopt(list) : error.empty();
        if (_machine.phase() != Phase::Resolving) return; // timed out or cancelled meanwhile
        if (!ready)
        {
            step([&](MachineOutput& o) { _machine.fail(0, _dialer->dnsFailure(error), o); });
            return;
        }
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _machine.resolved();
        }
        connectNext();
    }

    void Connection::connectNext()
    {
        int fd;
        while ((fd = _dialer->connectNext()) >= 0)
        {
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _fd = fd;
                _stream.reset(new PlainStream(fd));
            }
            int sendError = 0;
            if (!_options.tls && sendRequestIfConnected(sendError))
            {
                // Handshake already: only the response is waited for.
                bool pending;
                {
                    std::lock_guard<std::mutex> lock(_mutex);
                    pending = _output.pending() > 0;
                }
                adoptSocket(fd, pending);
                return;
            }
            if (sendError == 0)
            {
                adoptSocket(fd, true); // EPOLLOUT is armed until the connect completes
                return;
            }
            // The connect failed: try the next address.
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _stream.reset();
                _fd = -1;
            }
            _dialer->failed(fd, sendError);
        }
        step([&](MachineOutput& o) { _machine.fail(0, _dialer->connectFailure(), o); });
    }

    bool Connection::sendRequestIfConnected(int& error)
    {
        // Right after connect(): over loopback and to near peers the TCP
        // handshake is usually complete already, so the request goes out now,
        // saving a loop round and the EPOLLOUT arm/disarm. A socket that is still
        // connecting refuses the send with EAGAIN (error stays 0); any other
        // error is the connect's own (ECONNREFUSED...), reported in `error`.
        std::lock_guard<std::mutex> lock(_mutex);
        const std::string& request = _machine.clientRequest();
        ssize_t n;
        do
            n = ::send(_fd, request.data(), request.size(), MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
        {
            error = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno;
            return false;
        }
        if (static_cast<size_t>(n) < request.size()) _output.queue().append(request, static_cast<size_t>(n));
        _machine.connected(_output.queue(), true);
        return true;
    }

    void Connection::onConnected(uint32_t events)
    {
        const int err = _dialer->connectResult(_fd, events);
        if (err != 0)
        {
            _loop.remove(_fd);
            _registered = false;
            int fd;
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _output.detach();
                _stream.reset();
                fd = _fd;
                _fd = -1;
            }
            _dialer->failed(fd, err);
            connectNext();
            return;
        }
        if (_options.tls)
        {
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _machine.connected(_output.queue(), false); // Securing
            }
            if (startTls()) driveTlsHandshake();
            return;
        }
        step([this](MachineOutput&) { _machine.connected(_output.queue(), false); });
    }

    // ------------------------------------------------------------------ server

    std::shared_ptr<Connection> Connection::acceptServer(EventLoop& loop,
                                                         int fd,
                                                         ConnectionOptions options,
                                                         std::shared_ptr<ConnectionOwner> owner)
    {
        std::shared_ptr<Connection> conn(new Connection(loop, std::move(options), std::move(owner)));
        if (!conn->_options.noDelayInherited) setNoDelay(fd);
        {
            std::lock_guard<std::mutex> lock(conn->_mutex);
            conn->_machine.startServer(now());
        }
        conn->adoptSocket(fd, false);
        // The TLS handshake runs on the loop like everything else: a peer that
        // never speaks TLS only holds its own socket until the handshake timeout.
        if (conn->_options.tls && !conn->startTls()) return conn;
        conn->syncTimer();
        return conn;
    }

    void Connection::rejectServer(EventLoop& loop, int fd, const std::string& response, int closeTimeoutMs,
                                  std::shared_ptr<TlsContext> tls)
    {
        ConnectionOptions options;
        options.role = Role::Server;
        options.closeTimeoutMs = closeTimeoutMs;
        options.tls = std::move(tls);
        std::shared_ptr<Connection> conn(new Connection(loop, std::move(options), nullptr));
        setNoDelay(fd);
        conn->adoptSocket(fd, false);
        // With TLS the answer goes out after the TLS handshake (bounded by
        // closeTimeoutMs); without, the request (if any) is read and discarded.
        if (conn->_options.tls && !conn->startTls()) return;
        conn->step([&](MachineOutput& o) { conn->_machine.startRejecting(now(), response, conn->_output.queue(), o); });
    }

    // ------------------------------------------------------------------ TLS

    bool Connection::startTls()
    {
        // Loop thread, the socket registered.
        std::string error;
        const std::string host = _options.role == Role::Client ? _options.url.host : std::string();
        std::unique_ptr<TlsStream> stream = TlsStream::create(_options.tls, _fd, host, error);
        if (!stream)
        {
            auto self = shared_from_this();
            // Never inline: the server's owner attaches this connection first.
            _loop.post([self, error] {
                self->step([&](MachineOutput& o) { self->_machine.fail(0, "TLS setup failed: " + error, o); });
            });
            return false;
        }
        std::lock_guard<std::mutex> lock(_mutex);
        _stream = std::move(stream);
        _output.swapStream(_stream.get());
        return true;
    }

    void Connection::driveTlsHandshake()
    {
        Stream::HandshakeResult r;
        std::string error;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            if (!_stream || _machine.phase() != Phase::Securing) return;
            r = _stream->handshake(error);
            _output.updateInterest();
        }
        if (r == Stream::HandshakeResult::Pending) return;
        if (r == Stream::HandshakeResult::Failed)
        {
            step([&](MachineOutput& o) { _machine.secureFailed(error, o); });
            return;
        }
        // Client: the upgrade request goes out. A rejected server socket: its
        // answer goes out and the connection drains.
        step([this](MachineOutput& o) { _machine.secured(_output.queue(), o); });
        // Application data may have arrived with the peer's last handshake flight.
        if (_machine.phase() == Phase::Handshake) readAvailable();
    }
} // namespace ix::detail
