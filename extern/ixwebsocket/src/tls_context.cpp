#include "tls_context.h"

#include <pthread.h>

#include <map>
#include <mutex>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

namespace ix::detail
{
    namespace
    {
        // TLS 1.2 suites when ciphers is "DEFAULT" or empty: forward secrecy and
        // AEAD first. TLS 1.3 suites keep OpenSSL's defaults.
        const char kDefaultCipherList[] =
            "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:DHE+AES:"
            "!aNULL:!eNULL:!MD5:!DSS:!RC4:!3DES";

        // Server: how deep a client certificate chain may be (upstream uses 4).
        constexpr int kServerVerifyDepth = 4;

        // Adds every certificate of an in-memory PEM bundle to the context's store.
        bool loadPemBundle(SSL_CTX* ctx, const std::string& pem, std::string& error)
        {
            BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
            if (!bio)
            {
                error = takeOpenSslError("out of memory");
                return false;
            }
            X509_STORE* store = SSL_CTX_get_cert_store(ctx);
            int count = 0;
            while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr))
            {
                if (X509_STORE_add_cert(store, cert) == 1) ++count;
                X509_free(cert);
            }
            BIO_free(bio);
            ERR_clear_error(); // the read loop ends with a "no start line" error
            if (count == 0)
            {
                error = "caFile: no usable certificate in the in-memory PEM bundle";
                return false;
            }
            return true;
        }

        bool loadTrustAnchors(SSL_CTX* ctx, const SocketTLSOptions& options, std::string& error)
        {
            if (options.isUsingSystemDefaults() || options.caFile.empty())
            {
                if (SSL_CTX_set_default_verify_paths(ctx) != 1)
                {
                    error = "caFile: cannot load the system certificate store: " +
                            takeOpenSslError("unknown error");
                    return false;
                }
                return true;
            }
            if (options.isUsingInMemoryCAs()) return loadPemBundle(ctx, options.caFile, error);
            if (SSL_CTX_load_verify_locations(ctx, options.caFile.c_str(), nullptr) != 1)
            {
                error = "caFile: cannot load '" + options.caFile + "': " + takeOpenSslError("unknown error");
                return false;
            }
            return true;
        }

        bool loadCertAndKey(SSL_CTX* ctx, const SocketTLSOptions& options, std::string& error)
        {
            if (SSL_CTX_use_certificate_chain_file(ctx, options.certFile.c_str()) != 1)
            {
                error = "certFile: cannot load '" + options.certFile + "': " + takeOpenSslError("unknown error");
                return false;
            }
            if (SSL_CTX_use_PrivateKey_file(ctx, options.keyFile.c_str(), SSL_FILETYPE_PEM) != 1)
            {
                error = "keyFile: cannot load '" + options.keyFile + "': " + takeOpenSslError("unknown error");
                return false;
            }
            if (SSL_CTX_check_private_key(ctx) != 1)
            {
                error = "keyFile: the key does not match certFile: " + takeOpenSslError("unknown error");
                return false;
            }
            return true;
        }
    } // namespace

    std::string takeOpenSslError(const std::string& fallback)
    {
        unsigned long code = ERR_get_error();
        ERR_clear_error();
        if (code == 0) return fallback;
        char buf[256];
        ERR_error_string_n(code, buf, sizeof(buf));
        // "error:0A000086:SSL routines::certificate verify failed": keep the reason.
        const char* reason = ERR_reason_error_string(code);
        return reason ? std::string(reason) : std::string(buf);
    }

    std::string TlsContext::cacheKey(const SocketTLSOptions& o)
    {
        std::string key;
        for (const std::string* s : {&o.certFile, &o.keyFile, &o.caFile, &o.ciphers})
        {
            key += std::to_string(s->size());
            key += ':';
            key += *s;
        }
        key += o.disable_hostname_validation ? '1' : '0';
        // A replaced file (new certificate, rotated CA bundle) changes the key.
        for (const std::string* path : {&o.certFile, &o.keyFile, &o.caFile})
        {
            struct stat st;
            if (path->empty() || path->find('\n') != std::string::npos || ::stat(path->c_str(), &st) != 0) continue;
            key += '|' + std::to_string(st.st_ino) + '.' + std::to_string(st.st_size) + '.' +
                   std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec);
        }
        return key;
    }

    namespace
    {
        // Guards the shared client contexts. Held across fork() so that a
        // child never inherits it locked by a thread that is gone there.
        std::mutex g_sharedClientMutex;
        const bool g_sharedClientForkSafe =
            ::pthread_atfork([] { g_sharedClientMutex.lock(); }, [] { g_sharedClientMutex.unlock(); },
                             [] { g_sharedClientMutex.unlock(); }) == 0;
    } // namespace

    std::shared_ptr<TlsContext> TlsContext::sharedClient(const SocketTLSOptions& options, std::string& error)
    {
        (void) g_sharedClientForkSafe;
        std::mutex& mutex = g_sharedClientMutex;
        static std::map<std::string, std::weak_ptr<TlsContext>> cache;
        const std::string key = cacheKey(options);
        {
            std::lock_guard<std::mutex> lock(mutex);
            auto it = cache.find(key);
            if (it != cache.end())
                if (auto context = it->second.lock()) return context;
        }
        auto context = create(Role::Client, options, error);
        if (!context) return nullptr;
        std::lock_guard<std::mutex> lock(mutex);
        for (auto it = cache.begin(); it != cache.end();) // drop contexts nobody uses
            it = it->second.expired() ? cache.erase(it) : std::next(it);
        cache[key] = context;
        return context;
    }

    std::shared_ptr<TlsContext> TlsContext::create(Role role, const SocketTLSOptions& options, std::string& error)
    {
        ERR_clear_error();
        SSL_CTX* ctx = SSL_CTX_new(role == Role::Client ? TLS_client_method() : TLS_server_method());
        if (!ctx)
        {
            error = "cannot create a TLS context: " + takeOpenSslError("unknown error");
            return nullptr;
        }
        std::shared_ptr<TlsContext> result(new TlsContext(ctx, role));

        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        long opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
        // WebSocket has its own close handshake: a peer that drops TCP without
        // close_notify is an ordinary EOF, reported as such (1006).
        opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
        SSL_CTX_set_options(ctx, opts);
        // Partial writes and a buffer that may move between retries fit the
        // connection's append-only output queue; idle connections free their buffers.
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
        // Read whatever the socket holds, not one record header and body at a
        // time (two recv calls per record): small messages cost far fewer
        // syscalls. The stream drains OpenSSL's buffer (SSL_has_pending).
        SSL_CTX_set_read_ahead(ctx, 1);

        const char* cipherList = options.isUsingDefaultCiphers() ? kDefaultCipherList : options.ciphers.c_str();
        if (SSL_CTX_set_cipher_list(ctx, cipherList) != 1)
        {
            error = "ciphers: no usable cipher in '" + options.ciphers + "'";
            ERR_clear_error();
            return nullptr;
        }

        if (role == Role::Server)
        {
            if (!options.hasCertAndKey())
            {
                error = "certFile and keyFile are required for a TLS server";
                return nullptr;
            }
            if (!loadCertAndKey(ctx, options, error)) return nullptr;
            if (options.isPeerVerifyDisabled())
            {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
            }
            else
            {
                if (!loadTrustAnchors(ctx, options, error)) return nullptr;
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
                SSL_CTX_set_verify_depth(ctx, kServerVerifyDepth);
                result->_verifyPeer = true;
            }
            // No session cache across servers: a context-unique id is enough.
            static const unsigned char kSessionId[] = "ixws";
            SSL_CTX_set_session_id_context(ctx, kSessionId, sizeof(kSessionId) - 1);
            return result;
        }

        if (!options.certFile.empty() || !options.keyFile.empty())
        {
            if (!options.hasCertAndKey())
            {
                error = options.certFile.empty() ? "keyFile is set but certFile is empty"
                                                 : "certFile is set but keyFile is empty";
                return nullptr;
            }
            if (!loadCertAndKey(ctx, options, error)) return nullptr;
        }
        if (options.isPeerVerifyDisabled())
        {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
        }
        else
        {
            if (!loadTrustAnchors(ctx, options, error)) return nullptr;
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
            result->_verifyPeer = true;
            result->_validateHostname = !options.disable_hostname_validation;
        }
        return result;
    }

    TlsContext::~TlsContext() { SSL_CTX_free(_ctx); }
} // namespace ix::detail
