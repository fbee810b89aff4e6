#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdint>

namespace ix
{
    using socket_t = int;
    bool initNetSystem();
    bool uninitNetSystem();
    int poll(struct pollfd* fds, nfds_t nfds, int timeout, void** event = nullptr);
    const char* inet_ntop(int af, const void* src, char* dst, socklen_t size);
    int inet_pton(int af, const char* src, void* dst);
    unsigned short network_to_host_short(unsigned short value);
} // namespace ix
