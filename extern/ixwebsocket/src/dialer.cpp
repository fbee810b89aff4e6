#include "dialer.h"

#include "plain_stream.h"
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ix::detail
{
    Dialer::~Dialer()
    {
        cancel();
        if (_addresses) ::freeaddrinfo(_addresses);
    }

    bool Dialer::resolveNumeric()
    {
        addrinfo hints {};
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* result = nullptr;
        const std::string service = std::to_string(_port);
        if (::getaddrinfo(_host.c_str(), service.c_str(), &hints, &result) != 0) return false;
        return adopt(result);
    }

    void Dialer::resolve(Resolver& resolver, Resolver::Callback done)
    {
        _resolver = &resolver;
        _ticket = resolver.resolve(_host, _port, std::move(done));
    }

    void Dialer::cancel()
    {
        if (_ticket) _resolver->cancel(_ticket);
        _ticket = 0;
    }

    bool Dialer::adopt(addrinfo* list)
    {
        _ticket = 0;
        if (_addresses) ::freeaddrinfo(_addresses);
        _addresses = list;
        _next = list;
        return list != nullptr;
    }

    int Dialer::connectNext()
    {
        while (_next)
        {
            addrinfo* ai = _next;
            _next = ai->ai_next;
            int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                _connectError = std::strerror(errno);
                continue;
            }
            setNoDelay(fd);
            if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) return fd;
            failed(fd, errno);
        }
        return -1;
    }

    int Dialer::connectResult(int fd, uint32_t events) const
    {
        // Writable without an error or hang-up: the connect succeeded (SO_ERROR
        // would read 0). Only a failed attempt needs the getsockopt for its reason.
        int err = 0;
        if (events & (EPOLLERR | EPOLLHUP))
        {
            socklen_t len = sizeof(err);
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
        return err;
    }

    void Dialer::failed(int fd, int error)
    {
        _connectError = std::strerror(error);
        ::close(fd);
    }

    std::string Dialer::dnsFailure(const std::string& error) const
    {
        return "Unable to connect to " + _host + " on port " + std::to_string(_port) +
               ", error: DNS lookup error: " + error;
    }

    std::string Dialer::connectFailure() const
    {
        return "Unable to connect to " + _host + " on port " + std::to_string(_port) +
               ", error: Connect error: " + _connectError;
    }
} // namespace ix::detail
