#include "plain_stream.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace ix::detail
{
    namespace
    {
        thread_local std::unique_ptr<char[]> tReadBuffer;
        constexpr int kDiscardRounds = 8;
    } // namespace

    char* threadReadBuffer()
    {
        if (!tReadBuffer) tReadBuffer.reset(new char[kReadBufferSize]);
        return tReadBuffer.get();
    }

    Stream::ReadResult PlainStream::read(char* buf, size_t capacity, size_t& got, std::string& error)
    {
        got = 0;
        while (true)
        {
            ssize_t n = ::recv(fd(), buf, capacity, 0);
            if (n > 0)
            {
                got = static_cast<size_t>(n);
                // A short read took everything there was: no second recv() for EAGAIN.
                return got == capacity ? ReadResult::Full : ReadResult::Drained;
            }
            if (n == 0) return ReadResult::Closed;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadResult::Drained;
            error = std::strerror(errno);
            return ReadResult::Error;
        }
    }

    Stream::WriteResult PlainStream::write(const char* data, size_t size, size_t& written)
    {
        written = 0;
        while (true)
        {
            ssize_t n = ::send(fd(), data, size, MSG_NOSIGNAL);
            if (n >= 0)
            {
                written = static_cast<size_t>(n);
                return WriteResult::Ok;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return WriteResult::WouldBlock;
            return WriteResult::Failed;
        }
    }

    void PlainStream::shutdownWrite()
    {
        if (_shutdown) return;
        _shutdown = true;
        ::shutdown(fd(), SHUT_WR);
    }

    bool discardUntilEnd(int fd)
    {
        char* buf = threadReadBuffer();
        for (int round = 0; round < kDiscardRounds; ++round)
        {
            ssize_t n = ::recv(fd, buf, kReadBufferSize, 0);
            if (n > 0) continue;
            if (n == 0) return true;
            if (errno == EINTR) continue;
            return errno != EAGAIN && errno != EWOULDBLOCK; // reset: gone as well
        }
        return false;
    }

    void setNoDelay(int fd)
    {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
} // namespace ix::detail
