#pragma once
// Per-thread send batching: while a batch is open on a thread, connections that
// this thread sent to keep their new bytes queued and are written once, when
// the batch ends (or as soon as one holds kBatchFlushBytes). A binding opens a
// batch around a run of application callbacks, so N replies to N pipelined
// messages cost one write per connection instead of N.
#include <cstddef>
#include <memory>

namespace ix::detail
{
    // What a batch flushes at its end (a connection). The batch knows nothing
    // else of it: the arrow goes from connections to batches only.
    class BatchedWriter
    {
    public:
        virtual ~BatchedWriter() = default;
        // Writes what the batch left queued. Any thread.
        virtual void flushBatched() = 0;
    };

    constexpr size_t kBatchFlushBytes = 64 * 1024;

    // True while the calling thread has a batch open.
    bool sendBatchActive();
    // Remembers a connection to flush at the end of the calling thread's batch.
    void sendBatchEnlist(std::shared_ptr<BatchedWriter> writer);
    void sendBatchBegin();
    // Flushes every enlisted connection, then closes the batch.
    void sendBatchEnd();
} // namespace ix::detail
