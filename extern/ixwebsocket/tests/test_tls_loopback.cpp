// wss:// end to end over 127.0.0.1 through the public ix API, with a throwaway
// CA and certificates made here with OpenSSL (nothing is read from disk but
// what this test writes into a temporary directory).
#include "check.h"
#include "ixwebsocket/IXWebSocket.h"
#include "ixwebsocket/IXWebSocketServer.h"

#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace
{
    // ------------------------------------------------------------ test PKI

    struct Pem
    {
        std::string cert;
        std::string key;
    };

    std::string bioText(BIO* bio)
    {
        char* data = nullptr;
        long n = BIO_get_mem_data(bio, &data);
        std::string s(data, static_cast<size_t>(n));
        BIO_free(bio);
        return s;
    }

    void addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value)
    {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
        CHECK(ext != nullptr);
        if (!ext) return;
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }

    // A P-256 key and a certificate for it, signed by `issuer` (self-signed
    // when issuer is null). Validity in days relative to now.
    struct Issued
    {
        EVP_PKEY* key = nullptr;
        X509* cert = nullptr;
        ~Issued()
        {
            X509_free(cert);
            EVP_PKEY_free(key);
        }
        Pem pem() const
        {
            Pem p;
            BIO* b = BIO_new(BIO_s_mem());
            PEM_write_bio_X509(b, cert);
            p.cert = bioText(b);
            b = BIO_new(BIO_s_mem());
            PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
            p.key = bioText(b);
            return p;
        }
    };

    void issue(Issued& out, const std::string& cn, const Issued* issuer, bool ca, const char* san, long fromDays,
               long toDays)
    {
        static long serial = 1;
        out.key = EVP_EC_gen("P-256");
        out.cert = X509_new();
        X509_set_version(out.cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(out.cert), serial++);
        X509_gmtime_adj(X509_getm_notBefore(out.cert), fromDays * 86400L);
        X509_gmtime_adj(X509_getm_notAfter(out.cert), toDays * 86400L);
        X509_set_pubkey(out.cert, out.key);
        X509_NAME* name = X509_get_subject_name(out.cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                                   -1, 0);
        X509_set_issuer_name(out.cert, issuer ? X509_get_subject_name(issuer->cert) : name);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer ? issuer->cert : out.cert, out.cert, nullptr, nullptr, 0);
        addExtension(out.cert, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
        if (ca) addExtension(out.cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
        if (san) addExtension(out.cert, &ctx, NID_subject_alt_name, san);
        X509_sign(out.cert, issuer ? issuer->key : out.key, EVP_sha256());
    }

    struct Pki
    {
        std::string dir;
        Issued ca, otherCa, server, wrongName, expired, client;
        Pem caPem;
        std::string caFile, serverCert, serverKey, wrongCert, wrongKey, expiredCert, expiredKey, clientCert,
            clientKey, otherServerCert, otherServerKey;
        Issued otherServer;

        std::string write(const std::string& name, const std::string& text)
        {
            std::string path = dir + "/" + name;
            std::ofstream(path) << text;
            return path;
        }

        Pki()
        {
            char tmpl[] = "/tmp/ixws-tls-XXXXXX";
            dir = ::mkdtemp(tmpl);
            issue(ca, "test CA", nullptr, true, nullptr, -1, 30);
            issue(otherCa, "other CA", nullptr, true, nullptr, -1, 30);
            issue(server, "server", &ca, false, "DNS:localhost,IP:127.0.0.1", -1, 10);
            issue(wrongName, "example", &ca, false, "DNS:example.com", -1, 10);
            issue(expired, "expired", &ca, false, "DNS:localhost,IP:127.0.0.1", -10, -2);
            issue(client, "client", &ca, false, nullptr, -1, 10);
            issue(otherServer, "server", &otherCa, false, "DNS:localhost,IP:127.0.0.1", -1, 10);
            caPem = ca.pem();
            caFile = write("ca.pem", caPem.cert);
            Pem p = server.pem();
            serverCert = write("server.crt", p.cert);
            serverKey = write("server.key", p.key);
            p = wrongName.pem();
            wrongCert = write("wrong.crt", p.cert);
            wrongKey = write("wrong.key", p.key);
            p = expired.pem();
            expiredCert = write("expired.crt", p.cert);
            expiredKey = write("expired.key", p.key);
            p = client.pem();
            clientCert = write("client.crt", p.cert);
            clientKey = write("client.key", p.key);
            p = otherServer.pem();
            otherServerCert = write("other.crt", p.cert);
            otherServerKey = write("other.key", p.key);
        }

        ~Pki()
        {
            for (const char* f : {"ca.pem", "server.crt", "server.key", "wrong.crt", "wrong.key", "expired.crt",
                                  "expired.key", "client.crt", "client.key", "other.crt", "other.key"})
                ::unlink((dir + "/" + f).c_str());
            ::rmdir(dir.c_str());
        }
    };

    // ------------------------------------------------------------ helpers

    struct Inbox
    {
        struct Item
        {
            ix::WebSocketMessageType type;
            std::string str;
            bool binary;
            uint16_t code;
            std::string reason;
        };
        std::mutex m;
        std::condition_variable cv;
        std::deque<Item> items;

        void push(const ix::WebSocketMessagePtr& msg)
        {
            std::lock_guard<std::mutex> lock(m);
            items.push_back(Item {msg->type, msg->str, msg->binary, msg->closeInfo.code,
                                  msg->type == ix::WebSocketMessageType::Error ? msg->errorInfo.reason
                                                                               : msg->closeInfo.reason});
            cv.notify_all();
        }

        bool next(ix::WebSocketMessageType type, Item& out, std::chrono::milliseconds timeout = 10000ms)
        {
            std::unique_lock<std::mutex> lock(m);
            auto deadline = std::chrono::steady_clock::now() + timeout;
            while (true)
            {
                while (!items.empty())
                {
                    Item it = items.front();
                    items.pop_front();
                    if (it.type == type)
                    {
                        out = it;
                        return true;
                    }
                }
                if (cv.wait_until(lock, deadline) == std::cv_status::timeout && items.empty()) return false;
            }
        }
    };

    struct TlsEchoServer
    {
        Inbox inbox; // outlives the server, whose stop() still delivers events
        ix::WebSocketServer server;
        std::pair<bool, std::string> listened;

        TlsEchoServer(const std::string& cert, const std::string& key, const std::string& ca = "NONE",
                      int handshakeTimeoutSecs = 5)
            : server(0, "127.0.0.1", 64, 128, handshakeTimeoutSecs)
        {
            ix::SocketTLSOptions tls;
            tls.tls = true;
            tls.certFile = cert;
            tls.keyFile = key;
            tls.caFile = ca;
            server.setTLSOptions(tls);
            server.setOnClientMessageCallback(
                [this](std::shared_ptr<ix::ConnectionState>, ix::WebSocket& ws, const ix::WebSocketMessagePtr& msg) {
                    inbox.push(msg);
                    if (msg->type == ix::WebSocketMessageType::Message) ws.send(msg->str, msg->binary);
                });
            listened = server.listen();
            if (listened.first) server.start();
        }

        std::string url(const std::string& scheme = "wss", const std::string& host = "localhost")
        {
            return scheme + "://" + host + ":" + std::to_string(server.getPort()) + "/";
        }
    };

    struct Client
    {
        Inbox inbox; // outlives ws, whose destructor still delivers events
        ix::WebSocket ws;
        Client(const std::string& url, const ix::SocketTLSOptions& tls)
        {
            ws.setUrl(url);
            ws.setTLSOptions(tls);
            ws.disableAutomaticReconnection();
            ws.setOnMessageCallback([this](const ix::WebSocketMessagePtr& msg) { inbox.push(msg); });
        }
    };

    ix::SocketTLSOptions trusting(const std::string& caFile)
    {
        ix::SocketTLSOptions tls;
        tls.caFile = caFile;
        return tls;
    }

    bool contains(const std::string& text, const std::string& needle)
    {
        if (text.find(needle) != std::string::npos) return true;
        std::fprintf(stderr, "  expected %s in: %s\n", needle.c_str(), text.c_str());
        return false;
    }

    // ------------------------------------------------------------ tests

    void testEchoOverTls(Pki& pki)
    {
        TlsEchoServer echo(pki.serverCert, pki.serverKey);
        CHECK(echo.listened.first);
        Client c(echo.url(), trusting(pki.caPem.cert)); // in-memory PEM
        auto res = c.ws.connect(10);
        CHECK(res.success);
        CHECK_EQ(res.http_status, 101);
        Inbox::Item item;
        CHECK(c.inbox.next(ix::WebSocketMessageType::Open, item));
        CHECK(c.ws.send("hello").success);
        CHECK(c.inbox.next(ix::WebSocketMessageType::Message, item));
        CHECK_EQ(item.str, std::string("hello"));

        std::string big(5 * 1024 * 1024 + 3, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
        for (int i = 0; i < 3; ++i) CHECK(c.ws.sendBinary(big).success);
        for (int i = 0; i < 3; ++i)
        {
            CHECK(c.inbox.next(ix::WebSocketMessageType::Message, item, 30000ms));
            CHECK(item.binary);
            CHECK(item.str == big);
        }
        for (int i = 0; i < 200; ++i) CHECK(c.ws.send("m" + std::to_string(i)).success);
        for (int i = 0; i < 200; ++i)
        {
            CHECK(c.inbox.next(ix::WebSocketMessageType::Message, item));
            CHECK_EQ(item.str, "m" + std::to_string(i));
        }
        CHECK(c.ws.ping("tls ping").success);
        CHECK(c.inbox.next(ix::WebSocketMessageType::Pong, item));
        CHECK_EQ(item.str, std::string("tls ping"));
        c.ws.stop(4000, "bye");
        CHECK(c.inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 4000);
        CHECK(echo.inbox.next(ix::WebSocketMessageType::Close, item));
        CHECK_EQ(item.code, 4000);
        CHECK_EQ(item.reason, std::string("bye"));
    }

    void testHttpsSchemeUsesTls(Pki& pki)
    {
        // Upstream connects https:// URLs in plaintext (defect 33).
        TlsEchoServer echo(pki.serverCert, pki.serverKey);
        Client c(echo.url("https", "127.0.0.1"), trusting(pki.caFile));
        CHECK(c.ws.connect(10).success);
    }

    void testVerificationFailures(Pki& pki)
    {
        {
            TlsEchoServer echo(pki.otherServerCert, pki.otherServerKey);
            Client c(echo.url(), trusting(pki.caFile));
            auto res = c.ws.connect(10);
            CHECK(!res.success);
            CHECK(contains(res.errorStr, "unknown CA"));
            // the default is the system store, which does not know our CA either
            Client d(echo.url(), ix::SocketTLSOptions());
            CHECK(contains(d.ws.connect(10).errorStr, "unknown CA"));
            // "NONE" turns verification off
            Client e(echo.url(), trusting("NONE"));
            CHECK(e.ws.connect(10).success);
        }
        {
            TlsEchoServer echo(pki.wrongCert, pki.wrongKey);
            Client c(echo.url(), trusting(pki.caFile));
            CHECK(contains(c.ws.connect(10).errorStr, "hostname mismatch"));
            Client ip(echo.url("wss", "127.0.0.1"), trusting(pki.caFile));
            CHECK(contains(ip.ws.connect(10).errorStr, "hostname mismatch"));
            ix::SocketTLSOptions off = trusting(pki.caFile);
            off.disable_hostname_validation = true;
            Client d(echo.url(), off);
            CHECK(d.ws.connect(10).success);
        }
        {
            TlsEchoServer echo(pki.expiredCert, pki.expiredKey);
            Client c(echo.url(), trusting(pki.caFile));
            CHECK(contains(c.ws.connect(10).errorStr, "expired certificate"));
        }
    }

    void testMutualTls(Pki& pki)
    {
        TlsEchoServer echo(pki.serverCert, pki.serverKey, pki.caFile);
        Client none(echo.url(), trusting(pki.caFile));
        auto res = none.ws.connect(10);
        CHECK(!res.success);
        CHECK(contains(res.errorStr, "TLS alert from the peer"));

        ix::SocketTLSOptions withCert = trusting(pki.caFile);
        withCert.certFile = pki.clientCert;
        withCert.keyFile = pki.clientKey;
        Client c(echo.url(), withCert);
        CHECK(c.ws.connect(10).success);
        CHECK(c.ws.send("mtls").success);
        Inbox::Item item;
        CHECK(c.inbox.next(ix::WebSocketMessageType::Message, item));
        CHECK_EQ(item.str, std::string("mtls"));
    }

    void testSilentTcpClientDoesNotBlockOthers(Pki& pki)
    {
        // Long handshake timeout: the test only passes if the silent socket does
        // not hold up the server (upstream runs TLS accept on one thread, defect 22).
        TlsEchoServer echo(pki.serverCert, pki.serverKey, "NONE", 60);
        int silent = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr {};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(echo.server.getPort()));
        CHECK_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        for (int i = 0; i < 3; ++i)
        {
            Client c(echo.url(), trusting(pki.caFile));
            CHECK(c.ws.connect(10).success);
        }
        ::close(silent);
    }

    void testServerConfigurationErrors(Pki& pki)
    {
        {
            TlsEchoServer echo(pki.dir + "/missing.crt", pki.serverKey);
            CHECK(!echo.listened.first);
            CHECK(contains(echo.listened.second, "certFile"));
        }
        {
            TlsEchoServer echo(pki.serverCert, pki.clientKey);
            CHECK(!echo.listened.first);
            CHECK(contains(echo.listened.second, "keyFile"));
        }
        {
            TlsEchoServer echo("", "");
            CHECK(!echo.listened.first);
            CHECK(contains(echo.listened.second, "certFile and keyFile are required"));
        }
        {
            Client c("wss://localhost:1/", trusting(pki.dir + "/missing-ca.pem"));
            CHECK(contains(c.ws.connect(5).errorStr, "caFile"));
        }
    }
} // namespace

int main()
{
    Pki pki;
    testEchoOverTls(pki);
    testHttpsSchemeUsesTls(pki);
    testVerificationFailures(pki);
    testMutualTls(pki);
    testSilentTcpClientDoesNotBlockOthers(pki);
    testServerConfigurationErrors(pki);
    return CHECK_REPORT();
}
