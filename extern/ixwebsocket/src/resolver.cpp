#include "resolver.h"

#include <algorithm>
#include <chrono>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>

namespace ix::detail
{
    Resolver& Resolver::shared()
    {
        // Never destroyed: a thread still inside getaddrinfo() must not hold up
        // process exit.
        static Resolver* instance = [] {
            auto* r = new Resolver(kDefaultMaxThreads, &Resolver::systemLookup);
            // A forked child has none of the pool's threads; it starts afresh.
            ::pthread_atfork([] { shared()._mutex.lock(); }, [] { shared()._mutex.unlock(); },
                             [] {
                                 shared()._mutex.unlock();
                                 shared().resetAfterFork();
                             });
            return r;
        }();
        return *instance;
    }

    Resolver::Resolver(size_t maxThreads, LookupFunction lookup, int idleExitMs)
        : _maxThreads(std::max<size_t>(1, maxThreads)), _lookup(std::move(lookup)), _idleExitMs(idleExitMs)
    {
    }

    Resolver::~Resolver()
    {
        std::deque<Job> dropped;
        std::unique_lock<std::mutex> lock(_mutex);
        _stopping = true;
        dropped.swap(_queue);
        _running.clear();
        _work.notify_all();
        _finished.wait(lock, [this] { return _threads == 0; });
        lock.unlock();
        dropped.clear(); // callbacks released outside the lock
    }

    void Resolver::resetAfterFork()
    {
        // Only the forking thread exists here; the parent's lookups belong to
        // the parent's connections. Their callbacks are leaked on purpose:
        // running destructors of the parent's objects in the child is not safe.
        new std::deque<Job>(std::move(_queue));
        _queue.clear();
        _running.clear();
        _threads = 0;
        _idle = 0;
    }

    Resolver::Ticket Resolver::resolve(const std::string& host, int port, Callback done)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        const Ticket ticket = _nextTicket++;
        _queue.push_back(Job {ticket, host, port, std::move(done)});
        if (_queue.size() > _idle && _threads < _maxThreads && !_stopping)
        {
            ++_threads;
            std::thread(&Resolver::workerMain, this).detach();
        }
        else
        {
            _work.notify_one();
        }
        return ticket;
    }

    bool Resolver::cancel(Ticket ticket)
    {
        Callback released;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            auto queued = std::find_if(_queue.begin(), _queue.end(), [&](const Job& j) { return j.ticket == ticket; });
            if (queued != _queue.end())
            {
                released = std::move(queued->done);
                _queue.erase(queued);
                return true; // `released` is destroyed after the lock
            }
            auto running = std::find(_running.begin(), _running.end(), ticket);
            if (running == _running.end()) return false;
            _running.erase(running);
        }
        return true;
    }

    size_t Resolver::threadCount() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _threads;
    }

    size_t Resolver::queued() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _queue.size();
    }

    void Resolver::workerMain()
    {
        ::pthread_setname_np(::pthread_self(), "ixws-resolver");
        std::unique_lock<std::mutex> lock(_mutex);
        while (true)
        {
            if (_queue.empty())
            {
                if (_stopping) break;
                ++_idle;
                const bool woken = _work.wait_for(lock, std::chrono::milliseconds(_idleExitMs),
                                                  [this] { return !_queue.empty() || _stopping; });
                --_idle;
                if (!woken) break; // idle for a while: the pool shrinks
                continue;
            }
            Job job = std::move(_queue.front());
            _queue.pop_front();
            _running.push_back(job.ticket);
            lock.unlock();

            std::string error;
            addrinfo* list = _lookup(job.host, job.port, error);

            lock.lock();
            auto mine = std::find(_running.begin(), _running.end(), job.ticket);
            const bool wanted = mine != _running.end();
            if (wanted) _running.erase(mine);
            lock.unlock();
            if (wanted)
                job.done(list, error);
            else if (list)
                ::freeaddrinfo(list); // cancelled meanwhile: the result is dropped
            job.done = nullptr;       // what the callback holds goes before the lock
            lock.lock();
        }
        --_threads;
        _finished.notify_all();
    }

    addrinfo* Resolver::systemLookup(const std::string& host, int port, std::string& error)
    {
        addrinfo hints {};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;
        addrinfo* result = nullptr;
        const std::string service = std::to_string(port);
        const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
        if (rc != 0)
        {
            error = ::gai_strerror(rc);
            return nullptr;
        }
        return result;
    }
} // namespace ix::detail
