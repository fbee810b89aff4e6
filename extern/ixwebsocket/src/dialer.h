#pragma once
// The client side of TCP: resolves host:port (numeric hosts at once, names on
// the bounded resolver pool) and opens non-blocking connects over the address
// list, one address after another until one connects. It knows nothing of
// WebSocket; the connection reports its failures with the texts made here.
#include "resolver.h"
#include <cstdint>
#include <string>

struct addrinfo;

namespace ix::detail
{
    class Dialer
    {
    public:
        Dialer(std::string host, int port) : _host(std::move(host)), _port(port) {}
        ~Dialer();
        Dialer(const Dialer&) = delete;
        Dialer& operator=(const Dialer&) = delete;

        // A numeric host needs no lookup: true, and the addresses are ready.
        bool resolveNumeric();
        // Queues the lookup; `done` runs on a resolver thread (see resolver.h).
        void resolve(Resolver& resolver, Resolver::Callback done);
        // A lookup in flight is dropped (its callback is not called).
        void cancel();
        // The lookup's answer (owned from now on); false with no address.
        bool adopt(addrinfo* list);

        // The next address's non-blocking socket, its connect() started (maybe
        // complete already), or -1 when no address is left.
        int connectNext();
        // After EPOLLOUT/EPOLLERR/EPOLLHUP on a connecting socket: 0 when the
        // connect succeeded, else its errno (see failed()).
        int connectResult(int fd, uint32_t events) const;
        // The attempt on `fd` failed with `error`: the socket is closed.
        void failed(int fd, int error);

        std::string dnsFailure(const std::string& error) const;
        std::string connectFailure() const;

    private:
        const std::string _host;
        const int _port;
        Resolver* _resolver = nullptr;
        Resolver::Ticket _ticket = 0;
        addrinfo* _addresses = nullptr;
        addrinfo* _next = nullptr;
        std::string _connectError;
    };
} // namespace ix::detail
