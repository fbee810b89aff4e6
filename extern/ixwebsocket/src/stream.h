#pragma once
// A connected, non-blocking byte stream: plain TCP (plain_stream) or TLS over
// TCP (tls_stream). Every call returns at once; the connection drives it from
// readiness events. The stream does not own the socket (the connection closes
// it). Not thread-safe: the connection serialises writes (its mutex), and
// reads too when readsNeedLock().
#include <cstddef>
#include <string>

namespace ix::detail
{
    class Stream
    {
    public:
        enum class ReadResult
        {
            Full,    // the buffer filled up: read again
            Drained, // nothing more to read now
            Closed,  // the peer's end of stream
            Error    // see error
        };
        enum class WriteResult { Ok, WouldBlock, Failed };
        enum class HandshakeResult { Done, Pending, Failed };

        explicit Stream(int fd) : _fd(fd) {}
        virtual ~Stream() = default;
        Stream(const Stream&) = delete;
        Stream& operator=(const Stream&) = delete;

        int fd() const { return _fd; }

        // Reads what is there, up to capacity; the first `got` bytes of buf are
        // valid whatever the result.
        virtual ReadResult read(char* buf, size_t capacity, size_t& got, std::string& error) = 0;
        virtual WriteResult write(const char* data, size_t size, size_t& written) = 0;
        // Our side is done: FIN (after TLS close_notify). Once.
        virtual void shutdownWrite() = 0;

        // A stream with its own handshake (TLS) moves nothing before it is done.
        virtual HandshakeResult handshake(std::string&) { return HandshakeResult::Done; }
        virtual bool handshakeDone() const { return true; }
        // Whether the socket's writability matters now (EPOLLOUT interest).
        virtual bool wantsWritable(bool outputPending) const { return outputPending; }
        // Bytes inside the stream that epoll cannot see (TLS records read ahead).
        virtual bool hasBufferedInput() const { return false; }
        // The last write waits for readability (TLS renegotiation-like states).
        virtual bool writeWaitsForRead() const { return false; }
        // Frames may be written straight from the caller's memory with sendmsg().
        virtual bool directWrites() const { return false; }
        // Reads share state with writes from other threads (TLS): take the lock.
        virtual bool readsNeedLock() const { return false; }

    private:
        int _fd;
    };
} // namespace ix::detail
