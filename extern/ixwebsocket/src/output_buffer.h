#pragma once
// The bytes a connection has yet to write, for one socket: the queue, flushing
// through its Stream (write-first: EPOLLOUT is armed only after a short write),
// direct writes of large frames from the caller's memory, the FIN once a
// draining connection has written everything, and slow-consumer admission
// (the send-buffer limit and its SlowConsumerPolicy).
//
// Threads: every method runs with the connection's mutex held (admit() gets
// that lock, as a blocked sender waits on it). Senders on any thread and the
// loop thread share it.
#include "event_loop.h"
#include "stream.h"
#include "ws_session.h"
#include "ixwebsocket/IXWebSocket.h"
#include <condition_variable>
#include <mutex>
#include <string>

namespace ix::detail
{
    struct SendLimits
    {
        size_t bytes = 0; // 0: no limit
        SlowConsumerPolicy policy = SlowConsumerPolicy::Drop;
        int timeoutMs = 5000; // Block: how long a sender waits for room
    };

    class OutputBuffer
    {
    public:
        // Messages at least this large skip the queue when nothing is queued.
        static constexpr size_t kDirectWriteBytes = 64 * 1024;

        OutputBuffer(EventLoop& loop, IoHandler& handler, Role role, SendLimits limits)
            : _loop(loop), _handler(handler), _role(role), _limits(limits)
        {
        }

        // The socket of `stream` is registered on the loop (EPOLLIN|EPOLLRDHUP,
        // plus EPOLLOUT when writeInterest).
        void attach(Stream* stream, bool writeInterest);
        // The same socket under a new stream (TLS after the TCP connect).
        void swapStream(Stream* stream) { _stream = stream; }
        // The socket closes: the queue is dropped, blocked senders give up.
        void detach();
        // The socket is gone after a failed connect: nothing registered any more.
        void unregister() { _registered = false; }

        std::string& queue() { return _out; } // append bytes for the peer here
        size_t pending() const { return _out.size() - _offset; }
        bool failed() const { return _failed; }
        bool usable() const { return _stream && !_failed; }
        bool attached() const { return _stream != nullptr; }

        // Writes what the socket takes; false once writing has failed.
        bool flush();
        // EPOLLOUT interest follows what is pending (and what TLS waits for).
        void updateInterest();
        void flushAndUpdate()
        {
            flush();
            updateInterest();
        }
        // Draining: FIN after the last byte, now when nothing is queued.
        void finishAfterFlush();

        enum class Admission { Admitted, Refused, RefusedClose };
        // Room for `bytes` more under the limit, applying the policy (Block
        // waits, keeping the loop turning when called at a pass hook).
        Admission admit(std::unique_lock<std::mutex>& lock, size_t bytes);

        // A large message with nothing queued, over plain TCP, outside a batch.
        bool canWriteDirect(size_t size) const
        {
            return size >= kDirectWriteBytes && pending() == 0 && !_batched && _stream && _stream->directWrites();
        }
        // One frame from the caller's buffer (masked on the way for clients);
        // what the socket does not take is queued.
        void writeDirect(bool binary, const char* data, size_t size);

        // After appending: writes now, or leaves it to the thread's send batch.
        // True when the caller must enlist itself in that batch.
        bool writeOrBatch();
        // The batch ended: write what it held.
        void batchEnded()
        {
            _batched = false;
            flushAndUpdate();
        }

    private:
        void fail();

        EventLoop& _loop;
        IoHandler& _handler;
        const Role _role;
        const SendLimits _limits;
        Stream* _stream = nullptr;
        std::string _out; // bytes not yet written, from _offset
        size_t _offset = 0;
        bool _registered = false;
        bool _wantWrite = false; // EPOLLOUT armed
        bool _failed = false;
        bool _batched = false;   // queued in a thread's send batch
        bool _finAfterFlush = false;
        std::condition_variable _drained; // the queue shrank (Block waits on it)
    };
} // namespace ix::detail
