#pragma once
// TLS over a connected, non-blocking socket (OpenSSL), as a Stream. The
// connection drives it from readiness events: every call returns at once, and
// what an operation waits for (WantRead/WantWrite) becomes epoll interest
// (wantsWritable). Not thread-safe: the caller serialises all calls (the
// connection's mutex, for reads too: readsNeedLock()).
#include "stream.h"
#include "tls_context.h"
#include <cstddef>
#include <memory>
#include <string>

typedef struct ssl_st SSL;

namespace ix::detail
{
    class TlsStream final : public Stream
    {
    public:
        enum class Result
        {
            Ok,        // done / some bytes moved
            WantRead,  // retry when the socket is readable
            WantWrite, // retry when the socket is writable
            Closed,    // the peer closed the TLS session (close_notify or EOF)
            Error      // failed; see error
        };

        // Client: `host` is the server name (SNI for host names, and what the
        // certificate must match unless hostname validation is off). Server: empty.
        static std::unique_ptr<TlsStream> create(std::shared_ptr<TlsContext> context, int fd,
                                                 const std::string& host, std::string& error);
        ~TlsStream() override;

        // Stream: reads gather records up to the buffer (SSL_read hands out
        // one record at a time).
        ReadResult read(char* buf, size_t capacity, size_t& got, std::string& error) override;
        WriteResult write(const char* data, size_t size, size_t& written) override;
        // close_notify (best effort, once), then FIN.
        void shutdownWrite() override;
        HandshakeResult handshake(std::string& error) override;
        bool handshakeDone() const override { return _handshakeDone; }
        bool wantsWritable(bool outputPending) const override { return needsWritable(outputPending); }
        bool hasBufferedInput() const override;
        bool writeWaitsForRead() const override { return _writeWantsRead; }
        bool readsNeedLock() const override { return true; }

        // Advances the handshake; Ok once it is complete.
        Result stepHandshake(std::string& error);
        Result readRecord(char* buf, size_t capacity, size_t& got, std::string& error);
        Result writeRecord(const char* data, size_t size, size_t& written, std::string& error);
        // Best effort, once: tells the peer we will send nothing more.
        void sendCloseNotify();

        // The last read waits for writability (or the last write for readability).
        bool readWantsWrite() const { return _readWantsWrite; }
        bool writeWantsRead() const { return _writeWantsRead; }
        // Whether the socket's writability matters now (EPOLLOUT interest), given
        // whether the caller has output queued.
        bool needsWritable(bool outputPending) const
        {
            return (outputPending && !_writeWantsRead) || _readWantsWrite || _handshakeWantsWrite;
        }
        // Bytes already inside OpenSSL, decrypted or read ahead (epoll cannot
        // see them).

        // "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done.
        std::string description() const;

    private:
        TlsStream(std::shared_ptr<TlsContext> context, SSL* ssl, int fd)
            : Stream(fd), _context(std::move(context)), _ssl(ssl)
        {
        }
        Result classify(int ret, std::string& error, const char* what);

        std::shared_ptr<TlsContext> _context;
        SSL* _ssl;
        bool _handshakeDone = false;
        bool _closeNotifySent = false;
        bool _readWantsWrite = false;
        bool _handshakeWantsWrite = false;
        bool _writeWantsRead = false;
        bool _shutdown = false;
    };

    // True for an IPv4 or IPv6 literal (no SNI for those, RFC 6066 section 3).
    bool isIpLiteral(const std::string& host);
} // namespace ix::detail
