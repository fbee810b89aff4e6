#include "tls_stream.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

namespace ix::detail
{
    namespace
    {
        // What a certificate verification failure means, in the words a user
        // searches for, followed by OpenSSL's own text.
        std::string describeVerifyFailure(long result)
        {
            const char* kind;
            switch (result)
            {
                case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
                case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
                case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
                case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
                case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
                case X509_V_ERR_CERT_UNTRUSTED: kind = "unknown CA"; break;
                case X509_V_ERR_HOSTNAME_MISMATCH:
                case X509_V_ERR_IP_ADDRESS_MISMATCH:
                case X509_V_ERR_EMAIL_MISMATCH: kind = "hostname mismatch"; break;
                case X509_V_ERR_CERT_HAS_EXPIRED: kind = "expired certificate"; break;
                case X509_V_ERR_CERT_NOT_YET_VALID: kind = "certificate not yet valid"; break;
                case X509_V_ERR_CERT_REVOKED: kind = "revoked certificate"; break;
                default: kind = "invalid certificate"; break;
            }
            return std::string("certificate verification failed (") + kind +
                   "): " + X509_verify_cert_error_string(result);
        }
    } // namespace

    bool isIpLiteral(const std::string& host)
    {
        unsigned char buf[sizeof(struct in6_addr)];
        return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
    }

    std::unique_ptr<TlsStream> TlsStream::create(std::shared_ptr<TlsContext> context, int fd,
                                                 const std::string& host, std::string& error)
    {
        ERR_clear_error();
        SSL* ssl = SSL_new(context->native());
        if (!ssl)
        {
            error = "cannot create a TLS session: " + takeOpenSslError("unknown error");
            return nullptr;
        }
        std::unique_ptr<TlsStream> stream(new TlsStream(context, ssl, fd));
        if (SSL_set_fd(ssl, fd) != 1)
        {
            error = "cannot attach TLS to the socket: " + takeOpenSslError("unknown error");
            return nullptr;
        }
        if (context->role() == TlsContext::Role::Server)
        {
            SSL_set_accept_state(ssl);
            return stream;
        }

        SSL_set_connect_state(ssl);
        const bool ip = isIpLiteral(host);
        if (!ip && !host.empty()) SSL_set_tlsext_host_name(ssl, host.c_str());
        if (context->validatesHostname())
        {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
            int ok;
            if (ip)
            {
                // IP literals match iPAddress SANs only.
                ok = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
            }
            else
            {
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                ok = SSL_set1_host(ssl, host.c_str());
            }
            if (ok != 1)
            {
                error = "cannot set the expected host name '" + host + "': " + takeOpenSslError("invalid name");
                return nullptr;
            }
        }
        return stream;
    }

    TlsStream::~TlsStream() { SSL_free(_ssl); }

    TlsStream::Result TlsStream::classify(int ret, std::string& error, const char* what)
    {
        int code = SSL_get_error(_ssl, ret);
        switch (code)
        {
            case SSL_ERROR_WANT_READ: return Result::WantRead;
            case SSL_ERROR_WANT_WRITE: return Result::WantWrite;
            case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return Result::Closed;
            case SSL_ERROR_SYSCALL:
            {
                int err = errno;
                std::string queued = takeOpenSslError("");
                if (!queued.empty())
                {
                    error = queued;
                    return Result::Error;
                }
                if (err == 0 || ret == 0)
                {
                    if (_handshakeDone) return Result::Closed;
                    error = "the peer closed the connection during the TLS handshake";
                    return Result::Error;
                }
                error = std::string(what) + ": " + std::strerror(err);
                return Result::Error;
            }
            case SSL_ERROR_SSL:
            {
                unsigned long first = ERR_peek_error();
                int reason = ERR_GET_REASON(first);
                long verify = SSL_get_verify_result(_ssl);
                if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK)
                {
                    ERR_clear_error();
                    error = describeVerifyFailure(verify);
                }
                else if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
                {
                    // The peer refused us (e.g. it does not trust our certificate).
                    error = "TLS alert from the peer: " + takeOpenSslError("unknown alert");
                }
                else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
                {
                    ERR_clear_error();
                    error = "client certificate required: the peer did not send one";
                }
                else
                {
                    error = takeOpenSslError(std::string(what) + " failed");
                }
                return Result::Error;
            }
            default:
                error = takeOpenSslError(std::string(what) + " failed (SSL error " + std::to_string(code) + ")");
                return Result::Error;
        }
    }

    TlsStream::Result TlsStream::stepHandshake(std::string& error)
    {
        if (_handshakeDone) return Result::Ok;
        ERR_clear_error();
        errno = 0;
        int ret = SSL_do_handshake(_ssl);
        _handshakeWantsWrite = false;
        if (ret == 1)
        {
            _handshakeDone = true;
            return Result::Ok;
        }
        Result r = classify(ret, error, "TLS handshake");
        _handshakeWantsWrite = r == Result::WantWrite;
        if (r == Result::Closed)
        {
            error = "the peer closed the connection during the TLS handshake";
            return Result::Error;
        }
        return r;
    }

    TlsStream::Result TlsStream::readRecord(char* buf, size_t capacity, size_t& got, std::string& error)
    {
        got = 0;
        ERR_clear_error();
        errno = 0;
        int ret = SSL_read_ex(_ssl, buf, capacity, &got);
        _readWantsWrite = false;
        if (ret == 1) return Result::Ok;
        Result r = classify(ret, error, "TLS read");
        _readWantsWrite = r == Result::WantWrite;
        return r;
    }

    TlsStream::Result TlsStream::writeRecord(const char* data, size_t size, size_t& written, std::string& error)
    {
        written = 0;
        ERR_clear_error();
        errno = 0;
        int ret = SSL_write_ex(_ssl, data, size, &written);
        _writeWantsRead = false;
        if (ret == 1) return Result::Ok;
        Result r = classify(ret, error, "TLS write");
        _writeWantsRead = r == Result::WantRead;
        if (r == Result::Closed)
        {
            error = "TLS write: the peer closed the TLS session";
            return Result::Error;
        }
        return r;
    }

    void TlsStream::sendCloseNotify()
    {
        if (_closeNotifySent || !_handshakeDone) return;
        _closeNotifySent = true;
        ERR_clear_error();
        SSL_shutdown(_ssl); // one attempt; the peer's answer is read like any EOF
        ERR_clear_error();
    }

    bool TlsStream::hasBufferedInput() const { return SSL_has_pending(_ssl) == 1; }

    Stream::ReadResult TlsStream::read(char* buf, size_t capacity, size_t& got, std::string& error)
    {
        got = 0;
        Result r = Result::Ok;
        while (got < capacity)
        {
            size_t one = 0;
            r = readRecord(buf + got, capacity - got, one, error);
            if (r != Result::Ok) break;
            got += one;
        }
        switch (r)
        {
            case Result::Ok: return ReadResult::Full;
            case Result::WantRead:
            case Result::WantWrite: return ReadResult::Drained;
            case Result::Closed: return ReadResult::Closed;
            default: return ReadResult::Error;
        }
    }

    Stream::WriteResult TlsStream::write(const char* data, size_t size, size_t& written)
    {
        std::string error;
        switch (writeRecord(data, size, written, error))
        {
            case Result::Ok: return WriteResult::Ok;
            case Result::WantRead:
            case Result::WantWrite: return WriteResult::WouldBlock;
            default: return WriteResult::Failed;
        }
    }

    void TlsStream::shutdownWrite()
    {
        if (_shutdown) return;
        _shutdown = true;
        sendCloseNotify();
        ::shutdown(fd(), SHUT_WR);
    }

    Stream::HandshakeResult TlsStream::handshake(std::string& error)
    {
        switch (stepHandshake(error))
        {
            case Result::Ok: return HandshakeResult::Done;
            case Result::WantRead:
            case Result::WantWrite: return HandshakeResult::Pending;
            default: return HandshakeResult::Failed;
        }
    }

    std::string TlsStream::description() const
    {
        if (!_handshakeDone) return "";
        return std::string(SSL_get_version(_ssl)) + " " + SSL_CIPHER_get_name(SSL_get_current_cipher(_ssl));
    }
} // namespace ix::detail
