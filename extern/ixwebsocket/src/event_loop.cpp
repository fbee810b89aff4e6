#include "event_loop.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ix::detail
{
    namespace
    {
        thread_local bool t_onLoopThread = false;
        // The loop whose pass hook is running on this thread (nullptr elsewhere,
        // e.g. inside an I/O handler).
        thread_local EventLoop* t_atPassHook = nullptr;
        std::atomic<void (*)(bool)> g_passHook {nullptr};
        thread_local EventLoop::InterruptCheck t_interruptCheck = nullptr;

        // Bumped in a forked child: loops of an older epoch are orphaned.
        std::atomic<uint64_t> g_forkEpoch {0};
        // The shared client loop of this epoch (a leaked holder: see shared()).
        std::mutex g_sharedMutex;
        std::shared_ptr<EventLoop>* g_shared = nullptr;

        // Held across fork() so that the child never inherits it locked.
        void lockSharedForFork() { g_sharedMutex.lock(); }
        void unlockSharedInParent() { g_sharedMutex.unlock(); }
        void forgetLoopsInChild()
        {
            g_forkEpoch.fetch_add(1, std::memory_order_relaxed);
            g_shared = nullptr; // the old loop stays allocated: clients still refer to it
            t_onLoopThread = false;
            t_atPassHook = nullptr;
            g_sharedMutex.unlock(); // locked by this (the forking) thread
        }

        const bool g_forkHandlersInstalled =
            ::pthread_atfork(&lockSharedForFork, &unlockSharedInParent, &forgetLoopsInChild) == 0;

        void runPassHook(bool loopExiting)
        {
            if (auto hook = g_passHook.load(std::memory_order_acquire)) hook(loopExiting);
        }
    } // namespace

    bool EventLoop::onAnyLoopThread() { return t_onLoopThread; }

    EventLoop::InterruptCheck EventLoop::setThreadInterruptCheck(InterruptCheck check)
    {
        InterruptCheck previous = t_interruptCheck;
        t_interruptCheck = check;
        return previous;
    }

    EventLoop::InterruptCheck EventLoop::threadInterruptCheck() { return t_interruptCheck; }

    bool EventLoop::orphaned() const { return _forkEpoch != g_forkEpoch.load(std::memory_order_relaxed); }

    void EventLoop::setPassHook(void (*hook)(bool)) { g_passHook.store(hook, std::memory_order_release); }

    std::shared_ptr<EventLoop> EventLoop::create(const std::string& name)
    {
        // The last owner may let go on the loop's own thread (an application
        // callback dropping its server): the loop cannot be destroyed under its
        // own feet then. It stops, and its thread deletes it once run() returned.
        std::shared_ptr<EventLoop> loop(new EventLoop(name), [](EventLoop* p) {
            if (p->inLoopThread())
            {
                p->_deleteWhenDone = true;
                p->stop(); // on the loop thread: only asks it to exit
            }
            else
            {
                delete p;
            }
        });
        std::mutex m;
        std::condition_variable cv;
        bool started = false;
        loop->_thread = std::thread([&m, &cv, &started, raw = loop.get()] {
            {
                std::lock_guard<std::mutex> lock(m);
                raw->_threadId = std::this_thread::get_id();
                started = true;
            }
            cv.notify_one();
            raw->run();
            if (raw->_deleteWhenDone) delete raw; // set on this thread, see above
        });
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return started; });
        return loop;
    }

    EventLoop& EventLoop::shared()
    {
        // Deliberately never destroyed: client objects may still be closing while
        // static destructors run at exit, and the OS reclaims the thread. A
        // forked child makes its own on first use (forgetLoopsInChild).
        (void) g_forkHandlersInstalled;
        std::lock_guard<std::mutex> lock(g_sharedMutex);
        if (g_shared == nullptr) g_shared = new std::shared_ptr<EventLoop>(create("ixws-client"));
        return **g_shared;
    }

    EventLoop::EventLoop(const std::string& name)
        : _name(name), _forkEpoch(g_forkEpoch.load(std::memory_order_relaxed))
    {
        _epollFd = ::epoll_create1(EPOLL_CLOEXEC);
        _wakeFd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        epoll_event ev {};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr; // nullptr marks the wake-up fd
        ::epoll_ctl(_epollFd, EPOLL_CTL_ADD, _wakeFd, &ev);
    }

    EventLoop::~EventLoop()
    {
        if (orphaned())
        {
            // Inherited through fork(): its thread does not exist here (joining
            // would hang, a joinable std::thread would abort) and its handlers
            // own sockets shared with the parent. Leave all of it alone.
            new std::thread(std::move(_thread));
            new std::unordered_map<int, std::shared_ptr<IoHandler>>(std::move(_handlers));
            new std::vector<std::shared_ptr<IoHandler>>(std::move(_retired));
            new std::unordered_map<TimerId, Task>(std::move(_timerTasks));
            new std::vector<Task>(std::move(_tasks));
            return;
        }
        stop();
        if (_thread.joinable()) _thread.detach();
        _handlers.clear();
        _retired.clear();
        if (_wakeFd >= 0) ::close(_wakeFd);
        if (_epollFd >= 0) ::close(_epollFd);
    }

    void EventLoop::post(Task task)
    {
        if (orphaned()) return; // nobody would run it; its mutex may be held by a thread gone with fork()
        bool needWake;
        {
            std::lock_guard<std::mutex> lock(_taskMutex);
            if (_stopRequested) return;
            // Every pass of the loop looks for tasks (under this mutex) right
            // before it sleeps, so one wake-up per batch is enough: when tasks
            // are already queued, whoever queued the first one woke the loop, or
            // it was the loop itself, which finds them before sleeping. A task
            // posted from the loop thread never needs the eventfd write.
            needWake = _tasks.empty() && !inLoopThread();
            _tasks.push_back(std::move(task));
        }
        if (needWake) wake();
    }

    void EventLoop::dispatch(Task task)
    {
        if (inLoopThread())
            task();
        else
            post(std::move(task));
    }

    void EventLoop::wake()
    {
        uint64_t one = 1;
        ssize_t r = ::write(_wakeFd, &one, sizeof(one));
        (void) r; // EAGAIN means a wake-up is already pending
    }

    void EventLoop::add(int fd, uint32_t events, std::shared_ptr<IoHandler> handler)
    {
        epoll_event ev {};
        ev.events = events;
        ev.data.ptr = handler.get();
        _handlers[fd] = std::move(handler);
        ::epoll_ctl(_epollFd, EPOLL_CTL_ADD, fd, &ev);
    }

    void EventLoop::modify(int fd, uint32_t events, IoHandler* handler)
    {
        if (orphaned()) return; // the epoll set is the parent's too
        epoll_event ev {};
        ev.events = events;
        ev.data.ptr = handler;
        ::epoll_ctl(_epollFd, EPOLL_CTL_MOD, fd, &ev);
    }

    void EventLoop::remove(int fd)
    {
        auto it = _handlers.find(fd);
        if (it == _handlers.end()) return;
        ::epoll_ctl(_epollFd, EPOLL_CTL_DEL, fd, nullptr);
        _retired.push_back(std::move(it->second));
        _handlers.erase(it);
    }

    EventLoop::TimerId EventLoop::addTimer(std::chrono::milliseconds delay, Task task)
    {
        TimerId id = _nextTimerId++;
        _timerHeap.push_back(TimerEntry {Clock::now() + delay, id});
        std::push_heap(_timerHeap.begin(), _timerHeap.end(), std::greater<TimerEntry>());
        _timerTasks.emplace(id, std::move(task));
        return id;
    }

    void EventLoop::cancelTimer(TimerId id)
    {
        if (_timerTasks.erase(id) == 0) return; // fired or cancelled already
        // The heap entry is skipped when it comes up, or compacted away.
        ++_cancelledTimers;
        if (_cancelledTimers > 64 && _cancelledTimers * 2 > _timerHeap.size()) compactTimers();
    }

    void EventLoop::compactTimers()
    {
        // Amortised O(1) per cancellation: runs after at least size/2 of them.
        auto cancelled = [this](const TimerEntry& e) { return _timerTasks.find(e.id) == _timerTasks.end(); };
        _timerHeap.erase(std::remove_if(_timerHeap.begin(), _timerHeap.end(), cancelled), _timerHeap.end());
        std::make_heap(_timerHeap.begin(), _timerHeap.end(), std::greater<TimerEntry>());
        _cancelledTimers = 0;
    }

    int EventLoop::runTimers()
    {
        auto now = Clock::now();
        auto popTop = [this] {
            std::pop_heap(_timerHeap.begin(), _timerHeap.end(), std::greater<TimerEntry>());
            _timerHeap.pop_back();
        };
        while (!_timerHeap.empty())
        {
            TimerEntry top = _timerHeap.front();
            auto it = _timerTasks.find(top.id);
            if (it == _timerTasks.end())
            {
                popTop();
                if (_cancelledTimers > 0) --_cancelledTimers;
                continue;
            }
            if (top.deadline > now)
            {
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(top.deadline - now).count();
                return static_cast<int>(ms) + 1;
            }
            popTop();
            Task task = std::move(it->second);
            _timerTasks.erase(it);
            task();
            now = Clock::now();
        }
        return -1;
    }

    void EventLoop::runTasks()
    {
        std::vector<Task> tasks;
        {
            std::lock_guard<std::mutex> lock(_taskMutex);
            tasks.swap(_tasks);
        }
        for (auto& task : tasks) task();
    }

    bool EventLoop::iterate(int maxWaitMs)
    {
        runTasks();
        int timeout = runTimers();
        {
            // What this pass produced leaves before we wait (see setPassHook).
            // Waits inside the hook may pump this loop (pumpWhileWaiting).
            t_atPassHook = this;
            runPassHook(false);
            t_atPassHook = nullptr;
        }
        // A child forked from a callback on this thread: the loop belongs to
        // the parent (its epoll set too), it must not wait for its events.
        if (orphaned()) return false;
        {
            std::lock_guard<std::mutex> lock(_taskMutex);
            if (_stopRequested) return false;
            if (!_tasks.empty()) timeout = 0;
        }
        if (maxWaitMs >= 0 && (timeout < 0 || timeout > maxWaitMs)) timeout = maxWaitMs;
        constexpr int kMaxEvents = 256;
        epoll_event events[kMaxEvents];
        int n = ::epoll_wait(_epollFd, events, kMaxEvents, timeout);
        if (n < 0) return errno == EINTR;
        for (int i = 0; i < n; ++i)
        {
            auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
            if (handler == nullptr)
            {
                // One read resets the eventfd counter, however many writes.
                uint64_t value;
                ssize_t r = ::read(_wakeFd, &value, sizeof(value));
                (void) r;
                continue;
            }
            handler->onIoEvents(events[i].events);
        }
        _retired.clear();
        return true;
    }

    void EventLoop::run()
    {
        std::string threadName = _name.substr(0, 15);
        pthread_setname_np(pthread_self(), threadName.c_str());

        t_onLoopThread = true;
        while (iterate(-1))
        {
        }
        if (orphaned()) return; // see iterate(): nothing here is the child's to clean up
        // Drop everything still registered; handlers close their own fds.
        _handlers.clear();
        _retired.clear();
        _timerTasks.clear();
        runPassHook(true);
    }

    bool EventLoop::pumpWhileWaiting(int maxWaitMs)
    {
        EventLoop* loop = t_atPassHook;
        if (loop == nullptr) return false;
        t_atPassHook = nullptr; // nested hooks run from iterate() set it again
        bool running = loop->iterate(maxWaitMs);
        t_atPassHook = loop;
        return running;
    }

    bool EventLoop::canPumpWhileWaiting() { return t_atPassHook != nullptr; }

    void EventLoop::stop()
    {
        if (orphaned()) return;
        {
            std::lock_guard<std::mutex> lock(_taskMutex);
            if (_stopRequested && !_thread.joinable()) return;
            _stopRequested = true;
        }
        wake();
        if (_thread.joinable() && !inLoopThread()) _thread.join();
    }
} // namespace ix::detail
