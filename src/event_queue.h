// Process-wide queue that carries engine events to the Python dispatcher.
//
// Engine callbacks run on engine threads and never hold the GIL: they only build
// a plain C++ Event and push it here. The Python side calls next_events(), which
// waits with the GIL released and converts a whole batch at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ix
{
    class WebSocket;
}

namespace ixws
{
    // Same numbering as ix::WebSocketMessageType.
    enum class EventKind : uint8_t
    {
        Message = 0,
        Open = 1,
        Close = 2,
        Error = 3,
        Ping = 4,
        Pong = 5,
        Fragment = 6,
        Log = 7,      // not an ix event: a server log line (errorReason, httpStatus = level)
        Handshake = 8 // not an ix event: a request for the server's onHandshake (engine extension)
    };

    // Answers a handshake request: (accept, status, reason). Callable once, from
    // any thread, without the GIL.
    using HandshakeAnswer = std::function<void(bool accept, int status, const std::string& reason)>;

    struct Event
    {
        EventKind kind = EventKind::Message;
        int64_t ref = 0;        // the Python object's ref (servers < 0, clients > 0)
        int64_t connection = 0; // server: connection id; client: its own ref
        std::string payload;    // message / ping / pong data
        bool binary = false;
        size_t wireSize = 0;
        bool decompressionError = false;
        // close
        uint16_t closeCode = 0;
        std::string closeReason;
        bool closeRemote = false;
        // open
        std::string uri;
        std::vector<std::pair<std::string, std::string>> headers;
        std::string protocol;
        // error
        std::string errorReason;
        int httpStatus = 0;
        double waitTime = 0;
        uint32_t retries = 0;
        // Set for data events (message/fragment/ping/pong) of a connection that
        // wants delivery acknowledgements (engine extension): next_events()
        // acknowledges them once Python has handled the batch.
        std::weak_ptr<ix::WebSocket> ackTarget;
        // Runs (without the GIL) once Python has handled this event; the server
        // uses it to free a connection id only after its Close was handled, so a
        // late send() to that id can never reach a newer connection.
        std::function<void()> afterHandled;
        // handshake (uri and headers above)
        std::string remoteIp;
        int remotePort = 0;
        HandshakeAnswer answer;
    };

    // Events reach Python in one of two ways, never both at once for the same
    // moment: the dispatcher thread takes batches from the queue, or an engine
    // thread, at the end of a loop pass, delivers what that pass produced itself
    // ("inline", see module.cpp) when the queue is empty and nobody is running
    // callbacks. The delivery token decides who runs callbacks: whoever holds
    // it. Every connection's events come from one engine thread and go inline
    // only when nothing is queued, so each connection's order is kept.
    class EventQueue
    {
    public:
        // On an engine thread the event is kept for the end of the loop pass
        // (passEvents()); elsewhere it is queued for the dispatcher.
        void push(Event&& event);
        void pushAll(std::vector<Event>& events);
        // The calling engine thread's events of the current pass.
        std::vector<Event>& passEvents();

        // Dispatcher: waits up to timeoutSeconds (< 0: forever) for events or a
        // wake-up, then returns everything queued so far (possibly nothing).
        // With events it also takes the delivery token, held until releaseToken().
        std::deque<Event> takeAll(double timeoutSeconds);
        // Gives the token back if the calling thread holds it.
        void releaseToken();
        // Engine thread: takes the token only if it is free and nothing is queued.
        bool tryTakeTokenWhenIdle();
        bool holdsToken() const;
        // Takes the token if it is free (whatever is queued).
        bool tryTakeToken();
        // Waits until whoever holds the token lets go (the caller must not hold it).
        void awaitToken();

        // Makes one pending or the next takeAll() return at once.
        void wake();

        size_t size();

    private:
        std::mutex _mutex;
        std::condition_variable _cond;
        std::deque<Event> _events;
        bool _woken = false;
        std::mutex _token;
    };

    // The single queue of the process. Never destroyed, so an engine thread that
    // outlives interpreter shutdown can still push safely.
    EventQueue& globalQueue();
    // In a forked child: a fresh queue (the old one's mutexes may be held by
    // threads that do not exist there; it is leaked with its events).
    void replaceGlobalQueueInChild();
} // namespace ixws
