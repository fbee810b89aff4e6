#include "send_batch.h"

#include <vector>

namespace ix::detail
{
    namespace
    {
        struct Batch
        {
            bool active = false;
            std::vector<std::shared_ptr<BatchedWriter>> pending;
        };
        thread_local Batch tBatch;
    } // namespace

    bool sendBatchActive() { return tBatch.active; }

    void sendBatchEnlist(std::shared_ptr<BatchedWriter> writer)
    {
        tBatch.pending.push_back(std::move(writer));
    }

    void sendBatchBegin() { tBatch.active = true; }

    void sendBatchEnd()
    {
        tBatch.active = false;
        // Flushing may run owner code that sends again: take the list first.
        std::vector<std::shared_ptr<BatchedWriter>> pending;
        pending.swap(tBatch.pending);
        for (auto& writer : pending) writer->flushBatched();
        pending.clear();
        if (tBatch.pending.capacity() == 0) tBatch.pending.swap(pending); // keep the allocation
    }
} // namespace ix::detail
