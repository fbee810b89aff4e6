#include "output_buffer.h"

#include "frame_codec.h"
#include "send_batch.h"
#include <algorithm>
#include <cerrno>
#include <memory>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <vector>

namespace ix::detail
{
    namespace
    {
        // Client role: a large message is masked up to this much at a time into
        // a per-thread scratch buffer and sent from there (writeDirect).
        // Smaller chunks (64 KiB) measured worse: each send wakes the reader.
        constexpr size_t kMaskChunkBytes = 1024 * 1024;
        // Grows to the largest chunk the thread masked (at most kMaskChunkBytes).
        thread_local std::vector<uint8_t> tMaskBuffer;
        // A written-out queue larger than this gives its memory back.
        constexpr size_t kKeepCapacity = 1024 * 1024;
    } // namespace

    void OutputBuffer::attach(Stream* stream, bool writeInterest)
    {
        _stream = stream;
        _registered = true;
        _wantWrite = writeInterest;
    }

    void OutputBuffer::detach()
    {
        _stream = nullptr;
        _registered = false;
        _out.clear();
        _out.shrink_to_fit();
        _offset = 0;
        _drained.notify_all(); // senders blocked on a full buffer give up
    }

    void OutputBuffer::fail()
    {
        _failed = true;
        _drained.notify_all();
    }

    bool OutputBuffer::flush()
    {
        if (!_stream || _failed) return false;
        if (!_stream->handshakeDone()) return true; // nothing goes out before the TLS handshake
        bool progressed = false;
        while (_offset < _out.size())
        {
            size_t written = 0;
            auto r = _stream->write(_out.data() + _offset, _out.size() - _offset, written);
            if (r == Stream::WriteResult::Ok)
            {
                _offset += written;
                progressed = true;
                continue;
            }
            if (r == Stream::WriteResult::WouldBlock) break;
            fail();
            return false;
        }
        if (progressed && _limits.bytes != 0) _drained.notify_all();
        if (_offset == _out.size())
        {
            _out.clear();
            _offset = 0;
            if (_out.capacity() > kKeepCapacity) _out.shrink_to_fit();
            if (_finAfterFlush) _stream->shutdownWrite();
        }
        else if (_offset > kKeepCapacity && _offset > _out.size() / 2)
        {
            _out.erase(0, _offset);
            _offset = 0;
        }
        return true;
    }

    void OutputBuffer::updateInterest()
    {
        if (!_stream || !_registered) return;
        const bool want = _stream->wantsWritable(_offset < _out.size() && !_failed);
        if (want == _wantWrite) return;
        _wantWrite = want;
        _loop.modify(_stream->fd(), EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u), &_handler);
    }

    void OutputBuffer::finishAfterFlush()
    {
        _finAfterFlush = true;
        flush(); // sends our FIN when everything is out
        if (_stream && _out.size() == _offset) _stream->shutdownWrite();
        updateInterest();
    }

    OutputBuffer::Admission OutputBuffer::admit(std::unique_lock<std::mutex>& lock, size_t bytes)
    {
        const size_t limit = _limits.bytes;
        if (limit == 0) return Admission::Admitted;
        auto fits = [&] {
            const size_t buffered = _out.size() - _offset;
            return buffered == 0 || buffered + bytes <= limit || !_stream || _failed;
        };
        if (fits()) return Admission::Admitted;
        if (_batched) flush(); // our own batched bytes may just need a write
        if (fits()) return Admission::Admitted;
        switch (_limits.policy)
        {
            case SlowConsumerPolicy::Block:
            {
                if (_limits.timeoutMs <= 0) return Admission::Refused;
                // Inside an I/O callback of our own loop nothing could drain. At a
                // pass hook (a binding's callback) waitTurning keeps it turning.
                if (_loop.inLoopThread() && !EventLoop::canPumpWhileWaiting()) return Admission::Refused;
                updateInterest();
                EventLoop::waitTurning(_drained, lock,
                                       EventLoop::Clock::now() + std::chrono::milliseconds(_limits.timeoutMs), fits);
                if (!_stream || _failed) return Admission::Refused;
                return fits() ? Admission::Admitted : Admission::Refused;
            }
            case SlowConsumerPolicy::Close: return Admission::RefusedClose;
            default: return Admission::Refused;
        }
    }

    void OutputBuffer::writeDirect(bool binary, const char* data, size_t size)
    {
        // No copy into the queue. Server role: header and payload go out
        // straight from the caller's buffer (one sendmsg). Client role: the
        // payload is masked (up to 1 MiB at a time) into a per-thread buffer:
        // one pass over the data instead of a copy into the queue and a masking
        // pass there, and no per-message allocation.
        const bool mask = _role == Role::Client;
        uint8_t key[4];
        if (mask) randomMask(key);
        uint8_t header[kMaxFrameHeaderSize];
        const size_t headerLength =
            writeFrameHeader(header, true, false, binary ? kBinary : kText, size, mask ? key : nullptr);
        uint8_t* scratch = nullptr;
        if (mask)
        {
            const size_t need = std::min(size, kMaskChunkBytes);
            if (tMaskBuffer.size() < need) tMaskBuffer.resize(need);
            scratch = tMaskBuffer.data();
        }
        size_t headerSent = 0;
        size_t payloadSent = 0;
        while (true)
        {
            const size_t chunkLength = mask ? std::min(size - payloadSent, kMaskChunkBytes) : size - payloadSent;
            const char* chunk = data + payloadSent;
            if (mask)
            {
                maskCopy(scratch, reinterpret_cast<const uint8_t*>(chunk), chunkLength, key, payloadSent);
                chunk = reinterpret_cast<const char*>(scratch);
            }
            iovec iov[2];
            int count = 0;
            if (headerSent < headerLength) iov[count++] = {header + headerSent, headerLength - headerSent};
            iov[count++] = {const_cast<char*>(chunk), chunkLength};
            msghdr msg {};
            msg.msg_iov = iov;
            msg.msg_iovlen = count;
            ssize_t n;
            do
                n = ::sendmsg(_stream->fd(), &msg, MSG_NOSIGNAL);
            while (n < 0 && errno == EINTR);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            {
                fail();
                return;
            }
            size_t written = n > 0 ? static_cast<size_t>(n) : 0;
            const size_t headerPart = std::min(written, headerLength - headerSent);
            headerSent += headerPart;
            written -= headerPart;
            const size_t chunkStart = payloadSent;
            payloadSent += written;
            if (written < chunkLength)
            {
                // The socket is full: queue the rest of the frame.
                _out.append(reinterpret_cast<const char*>(header) + headerSent, headerLength - headerSent);
                if (!mask)
                {
                    _out.append(data + payloadSent, size - payloadSent);
                    break;
                }
                _out.append(chunk + written, chunkLength - written);
                const size_t restStart = chunkStart + chunkLength;
                if (restStart < size)
                {
                    const size_t at = _out.size();
                    _out.append(data + restStart, size - restStart);
                    applyMask(reinterpret_cast<uint8_t*>(&_out[at]), size - restStart, key, restStart);
                }
                break;
            }
            if (payloadSent == size) break;
        }
        updateInterest();
    }

    bool OutputBuffer::writeOrBatch()
    {
        if (sendBatchActive() && pending() < kBatchFlushBytes)
        {
            if (_batched) return false;
            _batched = true;
            return true;
        }
        flushAndUpdate();
        return false;
    }
} // namespace ix::detail
