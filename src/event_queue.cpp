#include "event_queue.h"

#include <chrono>

namespace ixws
{
    void EventQueue::push(Event&& event)
    {
        bool wasEmpty;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            wasEmpty = _events.empty();
            _events.push_back(std::move(event));
        }
        // Only the transition empty -> non-empty can matter to a waiter.
        if (wasEmpty) _cond.notify_all();
    }

    std::deque<Event> EventQueue::takeAll(double timeoutSeconds)
    {
        std::deque<Event> batch;
        std::unique_lock<std::mutex> lock(_mutex);
        auto ready = [this] { return !_events.empty() || _woken; };
        if (!ready())
        {
            if (timeoutSeconds < 0)
            {
                _cond.wait(lock, ready);
            }
            else if (timeoutSeconds > 0)
            {
                auto budget = std::chrono::duration<double>(timeoutSeconds);
                _cond.wait_for(lock,
                               std::chrono::duration_cast<std::chrono::steady_clock::duration>(budget),
                               ready);
            }
        }
        _woken = false;
        batch.swap(_events);
        return batch;
    }

    void EventQueue::wake()
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _woken = true;
        }
        _cond.notify_all();
    }

    size_t EventQueue::size()
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _events.size();
    }

    EventQueue& globalQueue()
    {
        static EventQueue* queue = new EventQueue();
        return *queue;
    }
} // namespace ixws
