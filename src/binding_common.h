// Helpers shared by the server and client bindings. Only the public ix API is
// used here, so the module also builds against an installed upstream IXWebSocket.
#pragma once

#include "event_queue.h"
#include "gil_release.h"

#include <ixwebsocket/IXSocketTLSOptions.h>
#include <ixwebsocket/IXWebSocket.h>
#include <ixwebsocket/IXWebSocketMessage.h>
#include <ixwebsocket/IXWebSocketSendInfo.h>

#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace ixws
{
    namespace py = pybind11;

    // Builds a queue event from an engine message. Runs on engine threads: no
    // Python API may be touched here.
    Event eventFromMessage(int64_t ref, int64_t connection, const ix::WebSocketMessagePtr& msg);

    // Bytes to send, borrowed from a Python str (its cached UTF-8 form) or from a
    // bytes-like object. Construct and destroy with the GIL held; data/size stay
    // valid in between, also while the GIL is released.
    class SendPayload
    {
    public:
        // Raises TypeError for other types and ValueError for a str that cannot
        // be encoded as UTF-8 (lone surrogates).
        explicit SendPayload(const py::handle& obj);
        ~SendPayload();
        SendPayload(const SendPayload&) = delete;
        SendPayload& operator=(const SendPayload&) = delete;

        const char* data() const { return _data; }
        size_t size() const { return _size; }
        bool binary() const { return _binary; }

    private:
        py::object _owner;
        Py_buffer _view{};
        bool _hasView = false;
        const char* _data = nullptr;
        size_t _size = 0;
        bool _binary = false;
    };

    // Decodes UTF-8 from the engine; invalid bytes become surrogate escapes.
    py::object decodeText(const std::string& s);

    py::dict sendInfoToDict(const ix::WebSocketSendInfo& info);
    // {"client" (when given), "success", "compressionError", "payloadSize",
    //  "wireSize"} plus "reason": "send buffer full" when the buffer limit refused it.
    py::dict sendResultDict(const ix::WebSocketSendInfo& info, const int64_t* client);

    // Converts the Python-side TLS dict (keys: certFile, keyFile, caFile, ciphers,
    // tls, disable_hostname_validation) into engine options.
    ix::SocketTLSOptions tlsOptionsFromDict(const py::dict& d);

    // Releases the GIL for the lifetime of the guard if this thread holds it.
    // Used in destructors, which may run with or without the GIL.
    class ReleaseGilIfHeld
    {
    public:
        ReleaseGilIfHeld()
        {
            if (Py_IsInitialized() && PyGILState_Check()) _state = PyEval_SaveThread();
        }
        ~ReleaseGilIfHeld()
        {
            if (_state) restoreThreadOrPark(_state);
        }
        ReleaseGilIfHeld(const ReleaseGilIfHeld&) = delete;
        ReleaseGilIfHeld& operator=(const ReleaseGilIfHeld&) = delete;

    private:
        PyThreadState* _state = nullptr;
    };

    // A handshake request's answer as a Python object (see EventKind::Handshake).
    // Unanswered, the engine rejects the request with 500 once this is gone.
    class HandshakeReply
    {
    public:
        explicit HandshakeReply(HandshakeAnswer answer) : _answer(std::move(answer)) {}
        void accept() { send(true, 101, ""); }
        void reject(int status, const std::string& reason) { send(false, status, reason); }
        bool answered() const { return _answered.load(); }

    private:
        void send(bool accept, int status, const std::string& reason)
        {
            if (_answered.exchange(true) || !_answer) return;
            GilRelease nogil;
            _answer(accept, status, reason);
        }
        HandshakeAnswer _answer;
        std::atomic<bool> _answered{false};
    };

    void registerServer(py::module_& m);
    void registerClient(py::module_& m);
} // namespace ixws
