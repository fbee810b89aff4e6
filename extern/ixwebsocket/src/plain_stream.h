#pragma once
// Plain TCP as a Stream, and the raw socket helpers around it: the per-thread
// read buffer shared by every connection of a thread, and discarding input
// until the peer's FIN.
#include "stream.h"

namespace ix::detail
{
    // One read buffer per thread: idle connections cost no buffer memory.
    constexpr size_t kReadBufferSize = 256 * 1024;
    char* threadReadBuffer();

    class PlainStream final : public Stream
    {
    public:
        explicit PlainStream(int fd) : Stream(fd) {}
        ReadResult read(char* buf, size_t capacity, size_t& got, std::string& error) override;
        WriteResult write(const char* data, size_t size, size_t& written) override;
        void shutdownWrite() override;
        bool directWrites() const override { return true; }

    private:
        bool _shutdown = false;
    };

    // Reads and drops what the socket holds (bounded rounds). True when the
    // peer's FIN (or a reset) was reached; false when more may come later.
    bool discardUntilEnd(int fd);

    // Turns Nagle off (sockets arrive non-blocking from socket()/accept4()).
    void setNoDelay(int fd);
} // namespace ix::detail
