#pragma once
// Host name resolution off the event loops, on a small fixed pool of threads.
//
// getaddrinfo() blocks, so lookups run on resolver threads. Their number is
// bounded (threads start on demand, up to maxThreads, and end after a while
// idle): a storm of reconnecting clients queues lookups instead of creating a
// thread per lookup. A lookup can be cancelled: a queued one is dropped
// unheard, a running one has its result freed and its callback never called.
// The callback holds what it captures only while the lookup is queued or
// running, so cancelling releases it at once (queued) or when getaddrinfo
// returns (running).
//
// The lookup function is injectable so that tests can drive the queue and
// cancellation without DNS (tests/test_resolver.cpp).
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

struct addrinfo;

namespace ix::detail
{
    class Resolver
    {
    public:
        // Called on a resolver thread with the result, whose list it owns
        // (freeaddrinfo), or with nullptr and an error text.
        using Callback = std::function<void(addrinfo* list, const std::string& error)>;
        // Resolves host:port (TCP); returns the list or nullptr with `error` set.
        using LookupFunction = std::function<addrinfo*(const std::string& host, int port, std::string& error)>;
        using Ticket = uint64_t;

        static constexpr size_t kDefaultMaxThreads = 4;

        // The process-wide resolver of client connections (getaddrinfo).
        static Resolver& shared();

        Resolver(size_t maxThreads, LookupFunction lookup, int idleExitMs = 2000);
        // Cancels what is queued and waits for running lookups to finish.
        ~Resolver();
        Resolver(const Resolver&) = delete;
        Resolver& operator=(const Resolver&) = delete;

        // Queues a lookup. Thread-safe. The ticket is never 0.
        Ticket resolve(const std::string& host, int port, Callback done);
        // Forgets a lookup; true when it was still queued or running (its
        // callback will not be called). Thread-safe.
        bool cancel(Ticket ticket);

        // Threads alive now (never more than maxThreads()).
        size_t threadCount() const;
        size_t maxThreads() const { return _maxThreads; }
        // Lookups waiting for a thread.
        size_t queued() const;

        // getaddrinfo() for TCP (AF_UNSPEC, AI_ADDRCONFIG).
        static addrinfo* systemLookup(const std::string& host, int port, std::string& error);

    private:
        struct Job
        {
            Ticket ticket;
            std::string host;
            int port;
            Callback done;
        };

        void workerMain();
        void resetAfterFork(); // in a forked child: the pool's threads do not exist there

        const size_t _maxThreads;
        const LookupFunction _lookup;
        const int _idleExitMs;

        mutable std::mutex _mutex;
        std::condition_variable _work;     // a job was queued, or stopping
        std::condition_variable _finished; // a thread ended (destructor)
        std::deque<Job> _queue;
        size_t _threads = 0;
        size_t _idle = 0;
        bool _stopping = false;
        Ticket _nextTicket = 1;
        // Tickets of lookups running now; a cancelled one is removed, so its
        // result is dropped.
        std::deque<Ticket> _running;
    };
} // namespace ix::detail
