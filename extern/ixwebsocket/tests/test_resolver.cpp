// Resolver: the bounded lookup pool. A fake lookup function, held at a gate,
// shows how many lookups run at once, what waits in the queue and what a
// cancellation does to queued and running lookups. No DNS is used.
#include "check.h"
#include "resolver.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <netdb.h>
#include <sys/socket.h>
#include <thread>

using namespace ix::detail;
using namespace std::chrono_literals;

namespace
{
    // A lookup that blocks until opened, counting callers; it answers with a
    // real (numeric) list so that a dropped result must be freed.
    struct Gate
    {
        std::mutex m;
        std::condition_variable cv;
        bool open = false;
        int inside = 0;
        int mostInside = 0;
        int calls = 0;

        Resolver::LookupFunction function()
        {
            return [this](const std::string& host, int port, std::string& error) -> addrinfo* {
                std::unique_lock<std::mutex> lock(m);
                ++calls;
                ++inside;
                mostInside = std::max(mostInside, inside);
                cv.notify_all();
                cv.wait(lock, [this] { return open; });
                --inside;
                if (host == "fail")
                {
                    error = "no such host";
                    return nullptr;
                }
                addrinfo hints {};
                hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
                hints.ai_socktype = SOCK_STREAM;
                addrinfo* list = nullptr;
                ::getaddrinfo("127.0.0.1", std::to_string(port).c_str(), &hints, &list);
                return list;
            };
        }
        void release()
        {
            std::lock_guard<std::mutex> lock(m);
            open = true;
            cv.notify_all();
        }
        bool waitInside(int n)
        {
            std::unique_lock<std::mutex> lock(m);
            return cv.wait_for(lock, 5s, [&] { return inside >= n; });
        }
    };

    // Counts callbacks; waits for an expected number.
    struct Results
    {
        std::mutex m;
        std::condition_variable cv;
        int answered = 0;
        int failed = 0;
        std::string lastError;
        Resolver::Callback callback(std::shared_ptr<int> token = nullptr)
        {
            return [this, token](addrinfo* list, const std::string& error) {
                std::lock_guard<std::mutex> lock(m);
                if (list)
                {
                    ::freeaddrinfo(list);
                    ++answered;
                }
                else
                {
                    ++failed;
                    lastError = error;
                }
                cv.notify_all();
            };
        }
        bool waitFor(int total)
        {
            std::unique_lock<std::mutex> lock(m);
            return cv.wait_for(lock, 5s, [&] { return answered + failed >= total; });
        }
    };

    template <class Pred>
    bool eventually(Pred pred)
    {
        for (int i = 0; i < 500; ++i)
        {
            if (pred()) return true;
            std::this_thread::sleep_for(10ms);
        }
        return pred();
    }

    void testBoundedPool()
    {
        Gate gate;
        Results results;
        {
            Resolver resolver(3, gate.function());
            for (int i = 0; i < 20; ++i) resolver.resolve("host", 1000 + i, results.callback());
            CHECK(gate.waitInside(3));
            CHECK(resolver.threadCount() <= 3);
            CHECK_EQ(resolver.maxThreads(), size_t(3));
            CHECK_EQ(resolver.queued(), size_t(17));
            gate.release();
            CHECK(results.waitFor(20));
            CHECK_EQ(results.answered, 20);
            CHECK(resolver.threadCount() <= 3);
        }
        CHECK_EQ(gate.mostInside, 3);
        CHECK_EQ(gate.calls, 20);
    }

    void testCancelQueued()
    {
        Gate gate;
        Results results;
        Resolver resolver(1, gate.function());
        resolver.resolve("host", 1, results.callback());
        CHECK(gate.waitInside(1));
        auto token = std::make_shared<int>(7);
        auto ticket = resolver.resolve("host", 2, results.callback(token));
        CHECK_EQ(token.use_count(), 2L);
        CHECK(resolver.cancel(ticket));
        // Dropped at once: what the callback held is released.
        CHECK_EQ(token.use_count(), 1L);
        CHECK_EQ(resolver.queued(), size_t(0));
        CHECK(!resolver.cancel(ticket));
        gate.release();
        CHECK(results.waitFor(1));
        CHECK(eventually([&] { return resolver.queued() == 0 && gate.calls == 1; }));
        std::this_thread::sleep_for(50ms);
        std::lock_guard<std::mutex> lock(results.m);
        CHECK_EQ(results.answered, 1);
        CHECK_EQ(gate.calls, 1);
    }

    void testCancelRunning()
    {
        Gate gate;
        Results results;
        Resolver resolver(2, gate.function());
        auto token = std::make_shared<int>(7);
        auto ticket = resolver.resolve("host", 3, results.callback(token));
        CHECK(gate.waitInside(1));
        CHECK(resolver.cancel(ticket));
        CHECK(!resolver.cancel(ticket));
        gate.release();
        // The result is freed (ASan's leak check), the callback never runs, and
        // it is released once the lookup has returned.
        CHECK(eventually([&] { return token.use_count() == 1; }));
        resolver.resolve("host", 4, results.callback());
        CHECK(results.waitFor(1));
        std::lock_guard<std::mutex> lock(results.m);
        CHECK_EQ(results.answered, 1);
    }

    void testErrorsAndLateCancel()
    {
        Gate gate;
        gate.release();
        Results results;
        Resolver resolver(2, gate.function());
        auto ticket = resolver.resolve("fail", 5, results.callback());
        CHECK(results.waitFor(1));
        CHECK_EQ(results.failed, 1);
        CHECK_EQ(results.lastError, std::string("no such host"));
        CHECK(!resolver.cancel(ticket)); // already answered
        auto other = resolver.resolve("host", 6, results.callback());
        CHECK(other != ticket);
        CHECK(other != 0);
        CHECK(results.waitFor(2));
    }

    void testIdleThreadsEnd()
    {
        Gate gate;
        gate.release();
        Results results;
        Resolver resolver(4, gate.function(), 30);
        for (int i = 0; i < 8; ++i) resolver.resolve("host", 7, results.callback());
        CHECK(results.waitFor(8));
        CHECK(eventually([&] { return resolver.threadCount() == 0; }));
        // And the pool starts again on demand.
        resolver.resolve("host", 8, results.callback());
        CHECK(results.waitFor(9));
    }

    void testDestructorDropsQueue()
    {
        Gate gate;
        Results results;
        auto token = std::make_shared<int>(7);
        std::thread opener;
        {
            Resolver resolver(1, gate.function());
            resolver.resolve("host", 9, results.callback());
            CHECK(gate.waitInside(1));
            for (int i = 0; i < 5; ++i) resolver.resolve("host", 10, results.callback(token));
            CHECK_EQ(token.use_count(), 6L);
            // The destructor waits for the running lookup: open the gate soon.
            opener = std::thread([&] {
                std::this_thread::sleep_for(50ms);
                gate.release();
            });
        }
        opener.join();
        CHECK_EQ(token.use_count(), 1L);
        CHECK_EQ(gate.calls, 1);
    }

    void testSystemLookupOfNumericHost()
    {
        std::string error;
        addrinfo* list = Resolver::systemLookup("127.0.0.1", 80, error);
        CHECK(list != nullptr);
        if (list) ::freeaddrinfo(list);
        CHECK(Resolver::shared().maxThreads() == Resolver::kDefaultMaxThreads);
    }
} // namespace

int main()
{
    testBoundedPool();
    testCancelQueued();
    testCancelRunning();
    testErrorsAndLateCancel();
    testIdleThreadsEnd();
    testDestructorDropsQueue();
    testSystemLookupOfNumericHost();
    return CHECK_REPORT();
}
