// The _ixws extension module: event queue access, engine info, and the
// ServerCore / ClientCore classes (registered from the other translation units).
#include "binding_common.h"
#include "event_queue.h"

#include <ixwebsocket/IXWebSocketVersion.h>

#include <pybind11/stl.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <new>

#include <pthread.h>
#include <utility>
#include <vector>

#ifndef IXWS_ENGINE_NAME
#define IXWS_ENGINE_NAME "bundled"
#endif

namespace ixws
{
    // ---------------------------------------------------------------- helpers

    Event eventFromMessage(int64_t ref, int64_t connection, const ix::WebSocketMessagePtr& msg)
    {
        Event ev;
        ev.ref = ref;
        ev.connection = connection;
        switch (msg->type)
        {
            case ix::WebSocketMessageType::Message: ev.kind = EventKind::Message; break;
            case ix::WebSocketMessageType::Open: ev.kind = EventKind::Open; break;
            case ix::WebSocketMessageType::Close: ev.kind = EventKind::Close; break;
            case ix::WebSocketMessageType::Error: ev.kind = EventKind::Error; break;
            case ix::WebSocketMessageType::Ping: ev.kind = EventKind::Ping; break;
            case ix::WebSocketMessageType::Pong: ev.kind = EventKind::Pong; break;
            case ix::WebSocketMessageType::Fragment: ev.kind = EventKind::Fragment; break;
        }
        switch (ev.kind)
        {
            case EventKind::Message:
            case EventKind::Ping:
            case EventKind::Pong:
            case EventKind::Fragment:
#ifdef IXWS_ENGINE_EXTENSIONS
                // The bundled engine lets us take the payload: no copy here, the
                // only one is into the Python object.
                if (msg->movablePayload)
                    ev.payload.swap(*msg->movablePayload);
                else
#endif
                    // msg->str is engine storage that dies with the callback: copy once.
                    ev.payload.assign(msg->str.data(), msg->str.size());
                ev.binary = msg->binary;
                ev.wireSize = msg->wireSize;
                ev.decompressionError = msg->errorInfo.decompressionError;
                break;
            case EventKind::Open:
                ev.uri = msg->openInfo.uri;
                ev.protocol = msg->openInfo.protocol;
                ev.headers.reserve(msg->openInfo.headers.size());
                for (const auto& kv : msg->openInfo.headers) ev.headers.emplace_back(kv.first, kv.second);
                break;
            case EventKind::Close:
                ev.closeCode = msg->closeInfo.code;
                ev.closeReason = msg->closeInfo.reason;
                ev.closeRemote = msg->closeInfo.remote;
                break;
            case EventKind::Error:
                ev.errorReason = msg->errorInfo.reason;
                ev.httpStatus = msg->errorInfo.http_status;
                ev.waitTime = msg->errorInfo.wait_time;
                ev.retries = msg->errorInfo.retries;
                ev.decompressionError = msg->errorInfo.decompressionError;
                break;
            case EventKind::Log:
            case EventKind::Handshake: break; // not ix events
        }
        return ev;
    }

    SendPayload::SendPayload(const py::handle& obj)
    {
        PyObject* o = obj.ptr();
        if (PyUnicode_Check(o))
        {
            Py_ssize_t n = 0;
            // The UTF-8 form is cached inside the str object and lives as long as
            // the object does; _owner keeps it alive while the GIL is released.
            const char* p = PyUnicode_AsUTF8AndSize(o, &n);
            if (p == nullptr)
            {
                PyErr_Clear();
                throw py::value_error(
                    "cannot send text: the str is not valid UTF-8 (it contains a lone surrogate)");
            }
            _owner = py::reinterpret_borrow<py::object>(obj);
            _data = p;
            _size = static_cast<size_t>(n);
            _binary = false;
            return;
        }
        if (PyBytes_Check(o))
        {
            _owner = py::reinterpret_borrow<py::object>(obj);
            _data = PyBytes_AS_STRING(o);
            _size = static_cast<size_t>(PyBytes_GET_SIZE(o));
            _binary = true;
            return;
        }
        if (PyObject_CheckBuffer(o))
        {
            if (PyObject_GetBuffer(o, &_view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
            _hasView = true;
            _owner = py::reinterpret_borrow<py::object>(obj);
            _data = static_cast<const char*>(_view.buf);
            _size = static_cast<size_t>(_view.len);
            _binary = true;
            return;
        }
        throw py::type_error(std::string("data must be str or bytes-like, not ") +
                             Py_TYPE(o)->tp_name);
    }

    SendPayload::~SendPayload()
    {
        if (_hasView) PyBuffer_Release(&_view);
    }

    // Decodes bytes the engine has already validated as UTF-8 (text messages,
    // close reasons). The strict decoder has an ASCII fast path; on the rare
    // invalid input (e.g. an unvalidated peer under upstream) fall back to
    // surrogateescape so nothing is lost and nothing raises.
    py::object decodeText(const std::string& s)
    {
        PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
        if (o == nullptr)
        {
            PyErr_Clear();
            o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogateescape");
            if (o == nullptr) throw py::error_already_set();
        }
        return py::reinterpret_steal<py::object>(o);
    }

    namespace
    {
        // Interned result keys, created once (the GIL is held when used).
        PyObject* g_keys[6] = {};
        enum { kClient, kSuccess, kCompressionError, kPayloadSize, kWireSize, kReason };

        void initResultKeys()
        {
            static const char* names[6] = {"client", "success", "compressionError", "payloadSize", "wireSize",
                                           "reason"};
            for (int i = 0; i < 6; ++i)
                if (g_keys[i] == nullptr && (g_keys[i] = PyUnicode_InternFromString(names[i])) == nullptr)
                    throw py::error_already_set();
        }

        void setItem(PyObject* d, int key, PyObject* value)
        {
            if (value == nullptr || PyDict_SetItem(d, g_keys[key], value) != 0)
            {
                Py_XDECREF(value);
                throw py::error_already_set();
            }
            Py_DECREF(value);
        }
    } // namespace

    py::dict sendResultDict(const ix::WebSocketSendInfo& info, const int64_t* client)
    {
        py::dict d;
        PyObject* o = d.ptr();
        if (client) setItem(o, kClient, PyLong_FromLongLong(*client));
        setItem(o, kSuccess, PyBool_FromLong(info.success));
        setItem(o, kCompressionError, PyBool_FromLong(info.compressionError));
        setItem(o, kPayloadSize, PyLong_FromSize_t(info.payloadSize));
        setItem(o, kWireSize, PyLong_FromSize_t(info.wireSize));
#ifdef IXWS_ENGINE_EXTENSIONS
        if (info.bufferFull) setItem(o, kReason, PyUnicode_FromString("send buffer full"));
#endif
        return d;
    }

    py::dict sendInfoToDict(const ix::WebSocketSendInfo& info) { return sendResultDict(info, nullptr); }

    ix::SocketTLSOptions tlsOptionsFromDict(const py::dict& d)
    {
        ix::SocketTLSOptions o;
        if (d.contains("certFile")) o.certFile = d["certFile"].cast<std::string>();
        if (d.contains("keyFile")) o.keyFile = d["keyFile"].cast<std::string>();
        if (d.contains("caFile")) o.caFile = d["caFile"].cast<std::string>();
        if (d.contains("ciphers")) o.ciphers = d["ciphers"].cast<std::string>();
        if (d.contains("tls")) o.tls = d["tls"].cast<bool>();
        if (d.contains("disable_hostname_validation"))
            o.disable_hostname_validation = d["disable_hostname_validation"].cast<bool>();
        return o;
    }

    // ------------------------------------------------------ event conversion

    namespace
    {
        // Interned event type names, created once and kept for the process life.
        constexpr int kTypeCount = 9;
        PyObject* g_typeNames[kTypeCount] = {};

        void initTypeNames()
        {
            static const char* names[kTypeCount] = {"message", "open",     "close", "error",    "ping",
                                                    "pong",    "fragment", "log",   "handshake"};
            for (int i = 0; i < kTypeCount; ++i)
            {
                if (g_typeNames[i] == nullptr)
                {
                    g_typeNames[i] = PyUnicode_InternFromString(names[i]);
                    if (g_typeNames[i] == nullptr) throw py::error_already_set();
                }
            }
        }

        py::object toBytes(const std::string& s)
        {
            PyObject* o = PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
            if (o == nullptr) throw py::error_already_set();
            return py::reinterpret_steal<py::object>(o);
        }

        // Tuple layouts (all start with type, ref, connection):
        //   message/ping/pong/fragment: (type, ref, conn, data, binary, wireSize, decompressionError)
        //   open:  (type, ref, conn, uri, headers: dict, protocol)
        //   close: (type, ref, conn, code, reason, remote)
        //   error: (type, ref, conn, reason, http_status, wait_time, retries, decompressionError)
        //   log:   (type, ref, conn, level (0 info, 1 error), message)
        //   handshake: (type, ref, 0, uri, headers: dict, remote_ip, remote_port, reply: HandshakeReply)
        py::tuple toTuple(const Event& ev)
        {
            py::object type = py::reinterpret_borrow<py::object>(g_typeNames[static_cast<int>(ev.kind)]);
            py::int_ ref(ev.ref);
            py::int_ conn(ev.connection);
            switch (ev.kind)
            {
                case EventKind::Message:
                case EventKind::Ping:
                case EventKind::Pong:
                case EventKind::Fragment:
                {
                    py::object data = ev.binary ? toBytes(ev.payload) : decodeText(ev.payload);
                    return py::make_tuple(type, ref, conn, data, py::bool_(ev.binary),
                                          py::int_(ev.wireSize), py::bool_(ev.decompressionError));
                }
                case EventKind::Open:
                {
                    py::dict headers;
                    for (const auto& kv : ev.headers) headers[decodeText(kv.first)] = decodeText(kv.second);
                    return py::make_tuple(type, ref, conn, decodeText(ev.uri), headers,
                                          decodeText(ev.protocol));
                }
                case EventKind::Close:
                    return py::make_tuple(type, ref, conn, py::int_(ev.closeCode),
                                          decodeText(ev.closeReason), py::bool_(ev.closeRemote));
                case EventKind::Error:
                    return py::make_tuple(type, ref, conn, decodeText(ev.errorReason),
                                          py::int_(ev.httpStatus), py::float_(ev.waitTime),
                                          py::int_(ev.retries), py::bool_(ev.decompressionError));
                case EventKind::Log:
                    return py::make_tuple(type, ref, conn, py::int_(ev.httpStatus), decodeText(ev.errorReason));
                case EventKind::Handshake:
                {
                    py::dict headers;
                    for (const auto& kv : ev.headers) headers[decodeText(kv.first)] = decodeText(kv.second);
                    auto reply = std::make_shared<HandshakeReply>(ev.answer);
                    return py::make_tuple(type, ref, conn, decodeText(ev.uri), headers, decodeText(ev.remoteIp),
                                          py::int_(ev.remotePort), py::cast(reply));
                }
            }
            return py::tuple();
        }

        // Delivery acknowledgements (engine extension). The dispatcher calls
        // next_events() again only after every event of the previous batch went
        // through its callback, so the previous batch is acknowledged then. This
        // lets the engine hold a protocol failure until the replies to earlier
        // messages have been sent.
        std::mutex g_ackMutex;
        using AckList = std::vector<std::pair<std::weak_ptr<ix::WebSocket>, size_t>>;
        AckList g_pendingAcks;
        std::vector<std::function<void()>> g_pendingAfter;

        // Runs the after-handled tasks, then tells each connection how many of
        // its events were handled.
        void applyAcks(std::vector<std::function<void()>>& after, AckList& acks)
        {
            for (auto& fn : after) fn();
#ifdef IXWS_ENGINE_EXTENSIONS
            for (auto& entry : acks)
            {
                if (auto ws = entry.first.lock()) ws->acknowledgeDeliveries(entry.second);
            }
#endif
        }

        void acknowledgePrevious()
        {
            std::vector<std::function<void()>> after;
            AckList acks;
            {
                std::lock_guard<std::mutex> lock(g_ackMutex);
                after.swap(g_pendingAfter);
                acks.swap(g_pendingAcks);
            }
            applyAcks(after, acks);
        }

        // Moves the after-handled tasks and delivery counts of `events` into
        // `after` and `acks` (consecutive events of one connection counted once).
        template <class Events>
        void collectAcks(Events& events, std::vector<std::function<void()>>& after,
                         AckList& acks)
        {
            for (Event& ev : events)
            {
                if (ev.afterHandled) after.push_back(std::move(ev.afterHandled));
#ifdef IXWS_ENGINE_EXTENSIONS
                if (ev.ackTarget.expired()) continue;
                bool same = !acks.empty() && !acks.back().first.owner_before(ev.ackTarget) &&
                            !ev.ackTarget.owner_before(acks.back().first);
                if (same)
                    ++acks.back().second;
                else
                    acks.emplace_back(ev.ackTarget, 1);
#endif
            }
        }

        void rememberAcks(std::deque<Event>& batch)
        {
            std::lock_guard<std::mutex> lock(g_ackMutex);
            collectAcks(batch, g_pendingAfter, g_pendingAcks);
        }

        template <class Events>
        py::list toList(const Events& events)
        {
            py::list out(events.size());
            size_t i = 0;
            for (const Event& ev : events)
            {
                PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), toTuple(ev).release().ptr());
                ++i;
            }
            return out;
        }

        py::list nextEvents(double timeoutSeconds)
        {
            std::deque<Event> batch;
            {
                GilRelease release;
#ifdef IXWS_ENGINE_EXTENSIONS
                // Replies sent by the callbacks of the previous batch go out now,
                // one write per connection, before their deliveries are acknowledged.
                ix::WebSocket::endSendBatch();
#endif
                acknowledgePrevious();
                globalQueue().releaseToken();
                batch = globalQueue().takeAll(timeoutSeconds);
                rememberAcks(batch);
#ifdef IXWS_ENGINE_EXTENSIONS
                if (!batch.empty()) ix::WebSocket::beginSendBatch();
#endif
            }
            return toList(batch);
        }

        // ------------------------------------------------ inline delivery
        //
        // When an engine thread ends a loop pass with events, nothing is queued
        // and no thread runs callbacks, it calls Python itself (one GIL
        // acquisition for the pass) instead of waking the dispatcher thread:
        // a request and its reply then cost no thread switch. Otherwise the
        // events go to the queue as before. _dispatch.shutdown() switches this
        // off (at exit, before the interpreter finalizes) and after that no
        // engine thread touches Python again.

        std::atomic<bool> g_inlineEnabled {false};
        PyObject* g_inlineDeliver = nullptr; // _dispatch._deliver_inline; owned
        thread_local bool t_pinnedThreadState = false;

        // Runs `events` through Python on this engine thread. The token is held.
        void deliverInline(std::vector<Event>& events)
        {
            std::vector<std::function<void()>> after;
            AckList acks;
            collectAcks(events, after, acks);
#ifdef IXWS_ENGINE_EXTENSIONS
            ix::WebSocket::beginSendBatch();
#endif
            // Once Python is finalizing the events are never delivered.
            PyGILState_STATE state;
            if (ensureGilUnlessFinalizing(state))
            {
                if (!t_pinnedThreadState)
                {
                    // Keep this thread's Python thread state for the next passes
                    // (freed when the loop exits, see onLoopPass).
                    PyGILState_Ensure();
                    t_pinnedThreadState = true;
                }
                try
                {
                    py::list batch = toList(events);
                    // Our own reference: set_inline_delivery() may replace it meanwhile.
                    py::object deliver = py::reinterpret_borrow<py::object>(g_inlineDeliver);
                    PyObject* r = PyObject_CallOneArg(deliver.ptr(), batch.ptr());
                    if (r == nullptr)
                        PyErr_WriteUnraisable(deliver.ptr());
                    else
                        Py_DECREF(r);
                }
                catch (py::error_already_set& e)
                {
                    e.discard_as_unraisable("ixws inline delivery");
                }
                catch (const std::exception& e)
                {
                    PyErr_SetString(PyExc_RuntimeError, e.what());
                    PyErr_WriteUnraisable(g_inlineDeliver);
                }
                PyGILState_Release(state);
            }
            events.clear(); // engine objects held by events are released without the GIL
#ifdef IXWS_ENGINE_EXTENSIONS
            ix::WebSocket::endSendBatch();
#endif
            applyAcks(after, acks);
        }

        // Installed as the engine's loop-pass hook (see IXWebSocket.h).
        void onLoopPass(bool loopExiting)
        {
            EventQueue& queue = globalQueue();
            std::vector<Event> events;
            events.swap(queue.passEvents());
            if (!events.empty())
            {
                if (g_inlineEnabled.load(std::memory_order_acquire) && queue.tryTakeTokenWhenIdle())
                {
                    if (g_inlineEnabled.load(std::memory_order_acquire))
                        deliverInline(events);
                    else
                        queue.pushAll(events);
                    queue.releaseToken();
                }
                else
                {
                    queue.pushAll(events);
                }
            }
            if (loopExiting && t_pinnedThreadState && queue.tryTakeToken())
            {
                // Free the pinned thread state while Python is alive (the token
                // keeps it so); if the token is busy or at exit, the OS reclaims it.
                t_pinnedThreadState = false;
                PyGILState_STATE ignored;
                if (g_inlineEnabled.load(std::memory_order_acquire) && ensureGilUnlessFinalizing(ignored))
                {
                    PyGILState_Release(PyGILState_LOCKED);
                    PyGILState_Release(PyGILState_UNLOCKED); // counter 0: deleted
                }
                queue.releaseToken();
            }
        }

        // _ixws.set_inline_delivery(fn or None). Switching off returns once no
        // engine thread is inside Python; none enters afterwards.
        void setInlineDelivery(py::object fn)
        {
            if (!fn.is_none())
            {
                PyObject* old = g_inlineDeliver;
                g_inlineDeliver = fn.release().ptr();
                Py_XDECREF(old);
                g_inlineEnabled.store(true, std::memory_order_release);
                return;
            }
            g_inlineEnabled.store(false, std::memory_order_release);
            EventQueue& queue = globalQueue();
            if (queue.holdsToken()) return; // called from a callback: nobody else is inside
            GilRelease nogil;
            queue.awaitToken();
        }

        // fork(): the child has only the forking thread. Locks other threads
        // held stay locked there, so the queue and the acknowledgement state
        // start afresh (the old ones are leaked, their events never delivered).
        void resetAfterForkInChild()
        {
            replaceGlobalQueueInChild();
            new (&g_ackMutex) std::mutex();
            new AckList(std::move(g_pendingAcks));
            new std::vector<std::function<void()>>(std::move(g_pendingAfter));
            mainThreadIdent() = PyThread_get_thread_ident(); // as CPython decides in the child
        }

        py::dict engineInfo()
        {
            py::dict d;
            d["engine"] = IXWS_ENGINE_NAME;
            d["version"] = IX_WEBSOCKET_VERSION;
#ifdef IXWS_ENGINE_EXTENSIONS
            d["extensions"] = true;
#ifdef IXWS_ENGINE_VERSION
            d["engine_version"] = IXWS_ENGINE_VERSION;
#endif
#else
            d["extensions"] = false;
#endif
            return d;
        }
    } // namespace
} // namespace ixws

PYBIND11_MODULE(_ixws, m)
{
    namespace py = pybind11;
    m.doc() = "ixws engine binding: WebSocket server/client cores and the process-wide event queue";

    ixws::initTypeNames();
    ixws::initResultKeys();
    ixws::mainThreadIdent() =
        py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
    pthread_atfork(nullptr, nullptr, &ixws::resetAfterForkInChild);
#ifdef IXWS_ENGINE_EXTENSIONS
    ix::WebSocket::setLoopPassHook(&ixws::onLoopPass);
    m.def("resolver_threads", [] {
        py::dict d;
        d["threads"] = ix::WebSocket::getResolverThreadCount();
        d["max_threads"] = ix::WebSocket::getResolverMaxThreads();
        return d;
    }, "The engine's name-resolver pool: {threads: alive now, max_threads: its bound}.");
#endif

    m.def("next_events", &ixws::nextEvents, py::arg("timeout_seconds") = -1.0,
          "Wait (GIL released) up to timeout_seconds (< 0: forever) for engine events or a "
          "wake(), and return every queued event as a list of tuples.");
    m.def("flush_sends", [] {
        ixws::GilRelease nogil;
#ifdef IXWS_ENGINE_EXTENSIONS
        ix::WebSocket::endSendBatch();
#endif
        ixws::acknowledgePrevious();
        ixws::globalQueue().releaseToken();
    }, "End the dispatcher's batch: write what the calling thread's send batch holds, acknowledge "
       "the batch and let engine threads deliver inline again.");
    m.def("set_inline_delivery", &ixws::setInlineDelivery, py::arg("deliver"),
          "deliver(batch) is called on engine threads with the events of a loop pass when "
          "no other thread runs callbacks (None: never; returns once no engine thread is inside).");
    m.def("mark_exit_thread", [] { ixws::exitThreadIdent() = PyThread_get_thread_ident(); },
          "Called by the atexit handler: this thread finalizes the interpreter (see gil_release.h).");
    m.def("wake", [] { ixws::globalQueue().wake(); },
          "Make a waiting (or the next) next_events() call return at once.");
    m.def("pending_events", [] { return ixws::globalQueue().size(); },
          "Number of events queued and not yet taken.");
    m.def("engine_info", &ixws::engineInfo,
          "Which engine the module was built with: {engine, version, extensions}.");

    py::class_<ixws::HandshakeReply, std::shared_ptr<ixws::HandshakeReply>>(
        m, "HandshakeReply", "The answer to one server handshake request (first answer wins).")
        .def("accept", &ixws::HandshakeReply::accept, "Write the 101 and open the connection.")
        .def("reject", &ixws::HandshakeReply::reject, py::arg("status"), py::arg("reason"),
             "Answer an HTTP error and close the connection.")
        .def_property_readonly("answered", &ixws::HandshakeReply::answered);

    ixws::registerServer(m);
    ixws::registerClient(m);
}
