// Giving up the GIL around engine calls, safely at interpreter exit and with
// signal handlers kept running.
//
// Exit: a thread that takes the GIL back after finalization began is ended by
// CPython (3.9-3.13: pthread_exit, whose forced unwind runs our C++ cleanups
// without the GIL and aborts at the first noexcept frame; 3.14+: it hangs the
// thread). So a thread that finds the interpreter finalizing never returns to
// Python: it parks itself until the process exits. Finalization may start
// after that check while the thread waits for the GIL; the forced unwind is
// then caught right at the call (no cleanup of ours has run yet) and the
// thread parks inside the handler. Such a unwind never leaves this file.
//
// Signals: a blocking call on the main thread (start, stop, a send blocked by
// the slow-consumer policy) waits in slices (see EventLoop::waitTurning); at
// every slice the guard takes the GIL back and runs the signal handlers. If a
// handler raised (KeyboardInterrupt), the engine wait ends early, the call site
// cleans up (e.g. cancels the connection attempt) and throwIfSignalled() raises
// the handler's exception.
#pragma once

// Defines IXWS_ENGINE_EXTENSIONS with the bundled engine.
#include <ixwebsocket/IXWebSocket.h>

#include <pybind11/pybind11.h>

#include <atomic>
#include <cxxabi.h>
#include <unistd.h>

namespace ixws
{
    namespace py = pybind11;

    inline bool pythonFinalizing()
    {
#if PY_VERSION_HEX >= 0x030D0000
        return Py_IsFinalizing() != 0;
#else
        return _Py_IsFinalizing() != 0;
#endif
    }

    // The interpreter is going away: this thread must never run Python (or our
    // cleanups that need the GIL) again. The process exit ends it.
    [[noreturn]] inline void parkUntilExit()
    {
        for (;;) ::pause();
    }

    // The main thread's ident: only there do signal handlers run. Set at import
    // and again in a forked child (where the forking thread is the main one).
    inline unsigned long& mainThreadIdent()
    {
        static unsigned long ident = 0;
        return ident;
    }

    // The thread that runs the atexit callbacks, set by _dispatch.shutdown():
    // the same thread then finalizes the interpreter and may keep calling us
    // (a __del__ at module teardown). 0: not known yet, the main thread then.
    inline std::atomic<unsigned long>& exitThreadIdent()
    {
        static std::atomic<unsigned long> ident {0};
        return ident;
    }

    // Whether this thread would be ended (or hung) by CPython on taking the GIL:
    // the interpreter is finalizing and this is not the finalizing thread.
    inline bool shutOutOfPython()
    {
        if (!pythonFinalizing()) return false;
        const unsigned long exiting = exitThreadIdent().load(std::memory_order_relaxed);
        return PyThread_get_thread_ident() != (exiting != 0 ? exiting : mainThreadIdent());
    }

    // PyEval_RestoreThread that never returns into a finalizing interpreter.
    inline void restoreThreadOrPark(PyThreadState* state)
    {
        if (shutOutOfPython()) parkUntilExit();
        try
        {
            PyEval_RestoreThread(state);
        }
        catch (abi::__forced_unwind&)
        {
            // Ending the handler without rethrowing would abort; staying in it
            // is allowed, and nothing above us has been unwound.
            parkUntilExit();
        }
    }

    // PyGILState_Ensure for threads Python did not create (engine threads).
    // Returns false, without the GIL, once the interpreter is finalizing.
    inline bool ensureGilUnlessFinalizing(PyGILState_STATE& state)
    {
        if (pythonFinalizing()) return false;
        try
        {
            state = PyGILState_Ensure();
        }
        catch (abi::__forced_unwind&)
        {
            parkUntilExit();
        }
        return true;
    }

    // Releases the GIL for its lifetime. Interruptible: on the main thread,
    // engine waits inside let signal handlers run every few tens of ms.
    class GilRelease
    {
    public:
        enum Mode
        {
            Plain,
            Interruptible
        };

        explicit GilRelease(Mode mode = Plain)
        {
            _state = PyEval_SaveThread();
#ifdef IXWS_ENGINE_EXTENSIONS
            if (mode == Interruptible && PyThread_get_thread_ident() == mainThreadIdent())
            {
                _outer = current();
                current() = this;
                _previousCheck = ix::WebSocket::setThreadWaitInterrupt(&GilRelease::pollCurrent);
                _hooked = true;
            }
#else
            (void) mode;
#endif
        }

        ~GilRelease()
        {
            endInterruptible();
            restoreThreadOrPark(_state);
        }

        // From here on engine waits run to their end (e.g. the cleanup after
        // an interruption); the GIL stays released.
        void endInterruptible()
        {
#ifdef IXWS_ENGINE_EXTENSIONS
            if (!_hooked) return;
            _hooked = false;
            ix::WebSocket::setThreadWaitInterrupt(_previousCheck);
            current() = _outer;
#endif
        }

        GilRelease(const GilRelease&) = delete;
        GilRelease& operator=(const GilRelease&) = delete;

        // A signal handler raised during the wait (its exception is pending).
        bool interrupted() const { return _interrupted; }

    private:
        static GilRelease*& current()
        {
            static thread_local GilRelease* guard = nullptr;
            return guard;
        }

        // Called by engine waits between slices, without engine locks held.
        // Returns true to end the wait. Once a handler raised, no handler runs
        // again in this call (its exception stays pending).
        static bool pollCurrent()
        {
            GilRelease* self = current();
            if (self == nullptr) return false;
            if (self->_interrupted) return true;
            restoreThreadOrPark(self->_state);
            self->_interrupted = PyErr_CheckSignals() != 0;
            self->_state = PyEval_SaveThread();
            return self->_interrupted;
        }

        PyThreadState* _state = nullptr;
        bool _interrupted = false;
        bool _hooked = false;
        GilRelease* _outer = nullptr;
        bool (*_previousCheck)() = nullptr;
    };

    // Raises what a signal handler raised during an Interruptible release
    // (call with the GIL held, after the guard is gone).
    inline void throwIfSignalled()
    {
        if (PyErr_Occurred()) throw py::error_already_set();
    }
} // namespace ixws
