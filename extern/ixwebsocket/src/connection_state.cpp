// ConnectionState: per-connection identity and termination flag handed to the
// server's connection callbacks.
#include "IXConnectionState.h"

namespace ix
{
    // Process-wide counter shared by every server: ids are "0", "1", ...
    std::atomic<uint64_t> ConnectionState::_globalId(0);

    ConnectionState::ConnectionState()
        : _terminated(false)
    {
        // Runs in the base constructor, so a subclass override is not used here.
        ConnectionState::computeId();
    }

    void ConnectionState::computeId() { _id = std::to_string(_globalId++); }

    const std::string& ConnectionState::getId() const { return _id; }

    void ConnectionState::setTerminated()
    {
        _terminated = true;
        if (_onSetTerminatedCallback) _onSetTerminatedCallback();
    }

    bool ConnectionState::isTerminated() const { return _terminated; }

    const std::string& ConnectionState::getRemoteIp() { return _remoteIp; }

    int ConnectionState::getRemotePort() { return _remotePort; }

    std::shared_ptr<ConnectionState> ConnectionState::createConnectionState()
    {
        return std::make_shared<ConnectionState>();
    }

    void ConnectionState::setOnSetTerminatedCallback(const OnSetTerminatedCallback& callback)
    {
        _onSetTerminatedCallback = callback;
    }

    void ConnectionState::setRemoteIp(const std::string& remoteIp) { _remoteIp = remoteIp; }

    void ConnectionState::setRemotePort(int remotePort) { _remotePort = remotePort; }
} // namespace ix
