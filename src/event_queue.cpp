#include "event_queue.h"

#include <ixwebsocket/IXWebSocket.h>

#include <chrono>

namespace ixws
{
    namespace
    {
        thread_local std::vector<Event> t_passEvents;
        thread_local bool t_holdsToken = false;
    } // namespace

    void EventQueue::push(Event&& event)
    {
#ifdef IXWS_ENGINE_EXTENSIONS
        // Handshake requests always go to the dispatcher: the onHandshake hook
        // may take its time, and the engine must stay free to time it out.
        if (event.kind != EventKind::Handshake && ix::WebSocket::onEngineThread())
        {
            t_passEvents.push_back(std::move(event));
            return;
        }
#endif
        bool wasEmpty;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            wasEmpty = _events.empty();
            _events.push_back(std::move(event));
        }
        // Only the transition empty -> non-empty can matter to a waiter.
        if (wasEmpty) _cond.notify_all();
    }

    void EventQueue::pushAll(std::vector<Event>& events)
    {
        if (events.empty()) return;
        bool wasEmpty;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            wasEmpty = _events.empty();
            for (Event& ev : events) _events.push_back(std::move(ev));
        }
        events.clear();
        if (wasEmpty) _cond.notify_all();
    }

    std::vector<Event>& EventQueue::passEvents() { return t_passEvents; }

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
        if (_events.empty()) return batch;
        if (!t_holdsToken)
        {
            // An engine thread may be running callbacks inline; wait for it (the
            // queue lock is not held meanwhile, so engine threads keep queueing).
            lock.unlock();
            _token.lock();
            t_holdsToken = true;
            lock.lock();
        }
        batch.swap(_events);
        return batch;
    }

    void EventQueue::releaseToken()
    {
        if (!t_holdsToken) return;
        t_holdsToken = false;
        _token.unlock();
    }

    bool EventQueue::tryTakeTokenWhenIdle()
    {
        if (!tryTakeToken()) return false;
        bool idle;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            idle = _events.empty();
        }
        if (!idle) releaseToken();
        return idle;
    }

    bool EventQueue::holdsToken() const { return t_holdsToken; }

    bool EventQueue::tryTakeToken()
    {
        if (t_holdsToken || !_token.try_lock()) return false;
        t_holdsToken = true;
        return true;
    }

    void EventQueue::awaitToken()
    {
        std::lock_guard<std::mutex> lock(_token);
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

    namespace
    {
        EventQueue* g_queue = new EventQueue();
    } // namespace

    EventQueue& globalQueue() { return *g_queue; }

    void replaceGlobalQueueInChild()
    {
        // Only the forking thread exists now: plain writes are safe.
        g_queue = new EventQueue();
        t_holdsToken = false;
        new std::vector<Event>(std::move(t_passEvents));
    }
} // namespace ixws
