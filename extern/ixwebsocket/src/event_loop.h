#pragma once
// The reactor: one thread, one epoll set, a timer heap and an eventfd for
// cross-thread wake-ups. Every socket of a server (listening and accepted) and
// every client connection lives on a loop; the thread count never depends on the
// number of connections.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace ix::detail
{
    // Something with a file descriptor on the loop. Called on the loop thread only.
    class IoHandler
    {
    public:
        virtual ~IoHandler() = default;
        virtual void onIoEvents(uint32_t events) = 0;
    };

    class EventLoop
    {
    public:
        using Task = std::function<void()>;
        using Clock = std::chrono::steady_clock;
        using TimerId = uint64_t;

        // A new loop with its own thread, running until stop().
        static std::shared_ptr<EventLoop> create(const std::string& name);
        // The process-wide loop that client WebSockets share (never stopped).
        static EventLoop& shared();

        ~EventLoop();
        EventLoop(const EventLoop&) = delete;
        EventLoop& operator=(const EventLoop&) = delete;

        // Runs task on the loop thread, soon. Thread-safe. Tasks posted after
        // stop() are dropped.
        void post(Task task);
        // Runs task now when called on the loop thread, else posts it.
        void dispatch(Task task);
        bool inLoopThread() const { return std::this_thread::get_id() == _threadId; }
        // True on any loop's thread.
        static bool onAnyLoopThread();
        // Called on a loop thread before each wait and when the loop exits (see
        // WebSocket::setLoopPassHook). Thread-safe.
        static void setPassHook(void (*hook)(bool loopExiting));
        // A wait on a loop thread inside its pass hook (where a binding runs
        // application callbacks) must not stop the loop: such a wait calls
        // pumpWhileWaiting() until its condition holds. It runs one iteration of
        // the loop (tasks, timers, I/O, waiting at most maxWaitMs) and returns
        // false when the loop is stopping. canPumpWhileWaiting() says whether
        // the calling thread is at such a point; elsewhere a wait on the loop
        // thread would deadlock and must be refused.
        static bool canPumpWhileWaiting();
        static bool pumpWhileWaiting(int maxWaitMs);

        // Per thread: see waitTurning. Returns the previous check.
        using InterruptCheck = bool (*)();
        static InterruptCheck setThreadInterruptCheck(InterruptCheck check);
        static InterruptCheck threadInterruptCheck();

        // fork(): only the forking thread goes on in the child, so no loop
        // created before the fork runs there. Such a loop is orphaned: it
        // drops posted tasks, never touches its epoll set (shared with the
        // parent) and is never joined; objects on it must be left alone (the
        // binding leaks them). shared() gives the child a new loop.
        bool orphaned() const;

        // Waits with `lock` held on entry and exit until pred() or the deadline.
        // At a pass hook it turns that loop meanwhile (what we wait for may need
        // it, e.g. the peer is a connection of that same loop), looking at pred()
        // at least every kPumpSliceMs: another thread may meet it without waking
        // this loop. Elsewhere it waits on `cv`.
        // Elsewhere, a thread with an interrupt check (setThreadInterruptCheck)
        // waits in slices of kInterruptSliceMs and runs the check between them
        // with `lock` released; a check returning true ends the wait early (the
        // result is then pred(), as on a timeout).
        static constexpr int kPumpSliceMs = 2;
        static constexpr int kInterruptSliceMs = 40;
        template <class Pred>
        static bool waitTurning(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                                Clock::time_point deadline, Pred pred)
        {
            if (!canPumpWhileWaiting())
            {
                InterruptCheck check = threadInterruptCheck();
                if (check == nullptr) return cv.wait_until(lock, deadline, pred);
                while (!pred())
                {
                    const auto now = Clock::now();
                    if (now >= deadline) return false;
                    const auto sliceEnd = std::min(deadline, now + std::chrono::milliseconds(kInterruptSliceMs));
                    if (cv.wait_until(lock, sliceEnd, pred)) return true;
                    lock.unlock();
                    const bool interrupted = check();
                    lock.lock();
                    if (interrupted) return pred();
                }
                return true;
            }
            while (!pred())
            {
                if (Clock::now() >= deadline) return false;
                lock.unlock();
                const bool running = pumpWhileWaiting(kPumpSliceMs);
                lock.lock();
                if (!running) return pred();
            }
            return true;
        }

        // fd registration (loop thread only). The loop keeps the handler alive
        // while it is registered and until the current batch of events is done.
        void add(int fd, uint32_t events, std::shared_ptr<IoHandler> handler);
        // Changes the interest set of a registered fd. Thread-safe: the caller
        // guarantees fd is still registered to handler (it holds the lock that
        // guards closing fd).
        void modify(int fd, uint32_t events, IoHandler* handler);
        void remove(int fd);

        // Timers (loop thread only).
        TimerId addTimer(std::chrono::milliseconds delay, Task task);
        void cancelTimer(TimerId id);

        // Stops the thread and joins it. From the loop thread itself it only asks
        // the loop to exit; the thread is then detached by the destructor.
        void stop();

    private:
        explicit EventLoop(const std::string& name);
        void run();
        bool iterate(int maxWaitMs); // one pass; false once stopping
        void runTasks();
        int runTimers(); // returns ms until the next timer, or -1
        void wake();

        std::string _name;
        int _epollFd = -1;
        int _wakeFd = -1;
        std::thread _thread;
        std::thread::id _threadId;
        bool _running = true; // loop thread only after start
        bool _deleteWhenDone = false; // loop thread only: its last owner let go on it
        uint64_t _forkEpoch = 0;      // see orphaned()

        std::mutex _taskMutex;
        std::vector<Task> _tasks;
        bool _stopRequested = false;

        std::unordered_map<int, std::shared_ptr<IoHandler>> _handlers;
        std::vector<std::shared_ptr<IoHandler>> _retired; // freed after each batch

        struct TimerEntry
        {
            Clock::time_point deadline;
            TimerId id;
            bool operator>(const TimerEntry& o) const
            {
                return deadline > o.deadline || (deadline == o.deadline && id > o.id);
            }
        };
        // A min-heap (std::greater) of deadlines. Cancelling only forgets the
        // task; its entry is skipped when it comes up, or dropped all at once by
        // compactTimers() when cancelled entries outnumber live ones: most
        // timers are cancelled (handshake and close timeouts), and their entries
        // would otherwise stay for the whole timeout (60 s for a client's
        // handshake: the heap would grow with the connection rate).
        std::vector<TimerEntry> _timerHeap;
        std::unordered_map<TimerId, Task> _timerTasks;
        size_t _cancelledTimers = 0; // cancelled entries still in _timerHeap
        TimerId _nextTimerId = 1;
        void compactTimers();
    };
} // namespace ix::detail
