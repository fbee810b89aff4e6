#pragma once
// An OpenSSL SSL_CTX configured from ix::SocketTLSOptions for one role.
//
// Client: the peer is verified against caFile ("SYSTEM" = the OS store, a path,
// an in-memory PEM bundle, or "NONE" = no verification); an optional certificate
// and key are presented for mutual TLS.
// Server: certFile/keyFile are required; any caFile other than "NONE" demands and
// verifies a client certificate (upstream semantics).
//
// A context is immutable once built and shared by many connections (OpenSSL
// contexts are thread-safe for SSL_new).
#include "ixwebsocket/IXSocketTLSOptions.h"
#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace ix::detail
{
    class TlsContext
    {
    public:
        enum class Role
        {
            Client,
            Server
        };

        // Returns null and sets error (naming the option that failed) when the
        // options cannot be loaded.
        static std::shared_ptr<TlsContext> create(Role role, const SocketTLSOptions& options, std::string& error);

        ~TlsContext();
        TlsContext(const TlsContext&) = delete;
        TlsContext& operator=(const TlsContext&) = delete;

        SSL_CTX* native() const { return _ctx; }
        Role role() const { return _role; }
        bool verifiesPeer() const { return _verifyPeer; }
        bool validatesHostname() const { return _validateHostname; }

        // A client context shared by every client with the same options (and the
        // same files on disk): one CA store in memory, not one per client.
        static std::shared_ptr<TlsContext> sharedClient(const SocketTLSOptions& options, std::string& error);

        // A stable key of the options that shape a client context, including the
        // identity of the files they name (a replaced file changes the key).
        static std::string cacheKey(const SocketTLSOptions& options);

    private:
        TlsContext(SSL_CTX* ctx, Role role) : _ctx(ctx), _role(role) {}

        SSL_CTX* _ctx;
        Role _role;
        bool _verifyPeer = false;
        bool _validateHostname = false;
    };

    // The first error on OpenSSL's thread-local error queue as text (and clears
    // the queue); `fallback` when it is empty.
    std::string takeOpenSslError(const std::string& fallback);
} // namespace ix::detail
