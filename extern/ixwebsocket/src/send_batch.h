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
    class Connection;

    constexpr size_t kBatchFlushBytes = 64 * 1024;

    // True while the calling thread has a batch open.
    bool sendBatchActive();
    // Remembers a connection to flush at the end of the calling thread's batch.
    void sendBatchEnlist(std::shared_ptr<Connection> connection);
    void sendBatchBegin();
    // Flushes every enlisted connection, then closes the batch.
    void sendBatchEnd();
} // namespace ix::detail
