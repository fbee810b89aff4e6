// Small free functions and constants of the public ix API: header-name ordering,
// close constants, the net-system shims, free-port lookup and the reconnection
// backoff formula.
#include "IXExponentialBackoff.h"
#include "IXGetFreePort.h"
#include "IXNetSystem.h"
#include "IXStrCaseCompare.h"
#include "IXWebSocketCloseConstants.h"
#include "IXWebSocketVersion.h"

#include <cstring>
#include <random>

namespace ix
{
    // ---------------------------------------------------------------- headers

    namespace
    {
        // ASCII-only lowering: header names are tokens, and the C locale is what the
        // spec asks for, so we avoid std::tolower's locale dependence entirely.
        inline unsigned char asciiLower(unsigned char c)
        {
            return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + ('a' - 'A')) : c;
        }
    } // namespace

    bool CaseInsensitiveLess::cmp(const std::string& a, const std::string& b)
    {
        const size_t n = a.size() < b.size() ? a.size() : b.size();
        for (size_t i = 0; i < n; ++i)
        {
            unsigned char ca = asciiLower(static_cast<unsigned char>(a[i]));
            unsigned char cb = asciiLower(static_cast<unsigned char>(b[i]));
            if (ca != cb) return ca < cb;
        }
        // Equal common prefix: the shorter string sorts first.
        return a.size() < b.size();
    }

    // ------------------------------------------------------- close constants

    const uint16_t WebSocketCloseConstants::kNormalClosureCode = 1000;
    const uint16_t WebSocketCloseConstants::kInternalErrorCode = 1011;
    const uint16_t WebSocketCloseConstants::kAbnormalCloseCode = 1006;
    const uint16_t WebSocketCloseConstants::kProtocolErrorCode = 1002;
    const uint16_t WebSocketCloseConstants::kNoStatusCodeErrorCode = 1005;
    const uint16_t WebSocketCloseConstants::kInvalidFramePayloadData = 1007;

    const std::string WebSocketCloseConstants::kNormalClosureMessage = "Normal closure";
    const std::string WebSocketCloseConstants::kInternalErrorMessage = "Internal error";
    const std::string WebSocketCloseConstants::kAbnormalCloseMessage = "Abnormal closure";
    const std::string WebSocketCloseConstants::kPingTimeoutMessage = "Ping timeout";
    const std::string WebSocketCloseConstants::kSendTimeoutMessage = "Send timeout";
    const std::string WebSocketCloseConstants::kProtocolErrorMessage = "Protocol error";
    const std::string WebSocketCloseConstants::kNoStatusCodeErrorMessage = "No status code";
    const std::string WebSocketCloseConstants::kProtocolErrorReservedBitUsed = "Reserved bit used";
    const std::string WebSocketCloseConstants::kProtocolErrorPingPayloadOversized =
        "Ping reason control frame with payload length > 125 octets";
    const std::string WebSocketCloseConstants::kProtocolErrorCodeControlMessageFragmented =
        "Control message fragmented";
    const std::string WebSocketCloseConstants::kProtocolErrorCodeDataOpcodeOutOfSequence =
        "Fragmentation: data message out of sequence";
    const std::string WebSocketCloseConstants::kProtocolErrorCodeContinuationOpCodeOutOfSequence =
        "Fragmentation: continuation opcode out of sequence";
    const std::string WebSocketCloseConstants::kInvalidFramePayloadDataMessage =
        "Invalid frame payload data";
    const std::string WebSocketCloseConstants::kInvalidCloseCodeMessage = "Invalid close code";

#ifdef IXWS_ENGINE_EXTENSIONS
    const uint16_t WebSocketCloseConstants::kGoingAwayCode = 1001;
    const uint16_t WebSocketCloseConstants::kPolicyViolationCode = 1008;
    const uint16_t WebSocketCloseConstants::kMessageTooBigCode = 1009;
    const std::string WebSocketCloseConstants::kMessageTooBigMessage = "Message too big";
#endif

    // ------------------------------------------------------------ net system

    // POSIX needs no global socket-library setup; these exist for API parity.
    bool initNetSystem() { return true; }
    bool uninitNetSystem() { return true; }

    int poll(struct pollfd* fds, nfds_t nfds, int timeout, void** /*event*/)
    {
        // The extra argument only matters for event-object based platforms.
        return ::poll(fds, nfds, timeout);
    }

    const char* inet_ntop(int af, const void* src, char* dst, socklen_t size)
    {
        return ::inet_ntop(af, src, dst, size);
    }

    int inet_pton(int af, const char* src, void* dst) { return ::inet_pton(af, src, dst); }

    unsigned short network_to_host_short(unsigned short value) { return ntohs(value); }

    // ------------------------------------------------------------- free port

    namespace
    {
        // Try to bind 127.0.0.1:<port> (0 = let the kernel choose). Returns the bound
        // port, or -1 if the bind failed.
        int bindLoopback(int port)
        {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) return -1;

            int result = -1;
            sockaddr_in addr;
            std::memset(&addr, 0, sizeof(addr));
            addr.sin_family = AF_INET;
            addr.sin_port = htons(static_cast<uint16_t>(port));
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

            if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
            {
                sockaddr_in bound;
                socklen_t len = sizeof(bound);
                std::memset(&bound, 0, sizeof(bound));
                if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0)
                {
                    result = ntohs(bound.sin_port);
                }
            }
            ::close(fd);
            return result > 0 ? result : -1;
        }
    } // namespace

    int getFreePort()
    {
        // Normal path: the kernel picks an ephemeral port for us.
        int port = bindLoopback(0);
        if (port > 0) return port;

        // Fallback (e.g. very restricted environments): probe random ports in the
        // unprivileged range until one binds. Bounded so we never spin forever.
        std::random_device rd;
        std::mt19937 gen(rd());
        std::uniform_int_distribution<int> dist(1025, 65535);
        for (int attempt = 0; attempt < 10000; ++attempt)
        {
            int candidate = dist(gen);
            if (bindLoopback(candidate) == candidate) return candidate;
        }
        return -1;
    }

    // --------------------------------------------------------------- backoff

    uint32_t calculateRetryWaitMilliseconds(uint32_t retryCount,
                                            uint32_t maxWaitBetweenReconnectionRetries,
                                            uint32_t minWaitBetweenReconnectionRetries)
    {
        // From the 26th consecutive failure on, 100 * 2^n no longer fits comfortably
        // in 32 bits: the cap applies outright.
        if (retryCount >= 26) return maxWaitBetweenReconnectionRetries;

        uint64_t wait = uint64_t{100} << retryCount;
        if (wait < minWaitBetweenReconnectionRetries) wait = minWaitBetweenReconnectionRetries;
        if (wait > maxWaitBetweenReconnectionRetries) wait = maxWaitBetweenReconnectionRetries;
        return static_cast<uint32_t>(wait);
    }
} // namespace ix
