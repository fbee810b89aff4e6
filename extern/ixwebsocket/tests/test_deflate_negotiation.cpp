// permessage-deflate negotiation (RFC 7692 section 7.1): header syntax, the four
// parameters, server answers, client checks of answers, malformed input.
#include "check.h"
#include "deflate_negotiation.h"

#include <random>
#include <string>
#include <vector>

using namespace ix::detail;

namespace
{
    std::string describe(const std::vector<ExtensionElement>& elements)
    {
        std::string d;
        for (const auto& e : elements)
        {
            d += "[" + e.name;
            for (const auto& p : e.params)
            {
                d += " " + p.name;
                if (p.hasValue) d += "=<" + p.value + ">";
            }
            d += "]";
        }
        return d;
    }

    // "ok [..]" or "malformed".
    std::string list(const std::string& value)
    {
        std::vector<ExtensionElement> out;
        if (!parseExtensionList(value, out)) return "malformed";
        return "ok " + describe(out);
    }

    std::string agreement(const DeflateAgreement& a)
    {
        if (!a.enabled) return "off";
        return "client " + std::to_string(a.clientMaxWindowBits) + (a.clientNoContextTakeover ? " nct" : "") +
               ", server " + std::to_string(a.serverMaxWindowBits) + (a.serverNoContextTakeover ? " nct" : "");
    }

    // Whether a client and a server that ended with these agreements understand
    // each other: each compresses within what the other inflates, and an
    // inflater that forgets its context only faces a compressor that does too.
    bool compatible(const DeflateAgreement& server, const DeflateAgreement& client)
    {
        if (server.enabled != client.enabled) return false;
        if (!server.enabled) return true;
        return client.clientMaxWindowBits <= server.clientMaxWindowBits &&
               server.serverMaxWindowBits <= client.serverMaxWindowBits &&
               (!server.clientNoContextTakeover || client.clientNoContextTakeover) &&
               (!client.serverNoContextTakeover || server.serverNoContextTakeover);
    }

    void testList()
    {
        CHECK_EQ(list(""), std::string("ok "));
        CHECK_EQ(list("   "), std::string("ok "));
        CHECK_EQ(list("permessage-deflate"), std::string("ok [permessage-deflate]"));
        CHECK_EQ(list("a; b=1; c=\"x y\", d"), std::string("ok [a b=<1> c=<x y>][d]"));
        CHECK_EQ(list("  permessage-deflate ;\tserver_max_window_bits = \"11\" ; client_no_context_takeover  "),
                 std::string("ok [permessage-deflate server_max_window_bits=<11> client_no_context_takeover]"));
        CHECK_EQ(list(", ,permessage-deflate,,x ,"), std::string("ok [permessage-deflate][x]"));
        CHECK_EQ(list("x; p=\"a\\\"b\\\\\""), std::string("ok [x p=<a\"b\\>]"));
        CHECK_EQ(list("x; p=\"a,b;c\", y"), std::string("ok [x p=<a,b;c>][y]"));
        CHECK_EQ(list("x;p"), std::string("ok [x p]"));
        for (const char* bad : {"permessage-deflate;", "permessage-deflate; =1", "permessage-deflate; a=",
                                "p; a=\"unterminated", "p q", "p; a b", "@", "p;; a", "p; a=1=2", "p; a=\"x\"y",
                                "p; a=\"x\\", ";", "p, ;", "p; a=\"\r\n\"", "p\x01", "\"p\""})
        {
            if (!CHECK_EQ(list(bad), std::string("malformed"))) std::fprintf(stderr, "    for %s\n", bad);
        }
    }

    // "ok <params>" (the canonical form) or "invalid: why".
    std::string params(const std::string& value, bool isOffer)
    {
        std::vector<ExtensionElement> e;
        if (!parseExtensionList(value, e) || e.size() != 1) return "bad list";
        DeflateParams p;
        std::string why;
        if (!readDeflateParams(e[0], isOffer, p, &why)) return "invalid: " + why;
        return "ok " + formatDeflateParams(p);
    }

    void testParams()
    {
        CHECK_EQ(params("permessage-deflate", true), std::string("ok permessage-deflate"));
        CHECK_EQ(params("PerMessage-Deflate; Server_No_Context_Takeover", true),
                 std::string("ok permessage-deflate; server_no_context_takeover"));
        const std::string all = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                                "server_max_window_bits=10; client_max_window_bits=12";
        CHECK_EQ(params(all, true), "ok " + all);
        CHECK_EQ(params(all, false), "ok " + all);
        // Order does not matter; the canonical form has a fixed order.
        CHECK_EQ(params("permessage-deflate; client_max_window_bits=12; server_max_window_bits=10; "
                        "client_no_context_takeover; server_no_context_takeover",
                        true),
                 "ok " + all);
        // Bare client_max_window_bits: offers only.
        CHECK_EQ(params("permessage-deflate; client_max_window_bits", true),
                 std::string("ok permessage-deflate; client_max_window_bits"));
        CHECK_EQ(params("permessage-deflate; client_max_window_bits", false),
                 std::string("invalid: client_max_window_bits needs a value"));
        CHECK_EQ(params("permessage-deflate; server_max_window_bits", true),
                 std::string("invalid: server_max_window_bits needs a value"));
        // Quoted values are unquoted first (RFC 6455 9.1).
        CHECK_EQ(params("permessage-deflate; server_max_window_bits=\"9\"", true),
                 std::string("ok permessage-deflate; server_max_window_bits=9"));
        for (int bits = 8; bits <= 15; ++bits)
        {
            const std::string b = std::to_string(bits);
            CHECK_EQ(params("permessage-deflate; server_max_window_bits=" + b, false),
                     "ok permessage-deflate; server_max_window_bits=" + b);
            CHECK_EQ(params("permessage-deflate; client_max_window_bits=" + b, true),
                     "ok permessage-deflate; client_max_window_bits=" + b);
        }
        // Malformed values and parameters: never accepted, never a crash.
        const char* invalid[] = {
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits=0",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=-9",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; server_max_window_bits=99999999999999999999",
            "permessage-deflate; server_max_window_bits=\"\"",
            "permessage-deflate; server_max_window_bits=\" 9\"",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10; Server_Max_Window_Bits=11",
            "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; unknown_param",
            "permessage-deflate; server_max_window_bits_x=10",
            "x-webkit-deflate-frame",
            "permessage-deflatex",
        };
        for (const char* s : invalid)
        {
            for (bool offer : {true, false})
            {
                const std::string r = params(s, offer);
                if (!CHECK(r.compare(0, 8, "invalid:") == 0)) std::fprintf(stderr, "    for %s: %s\n", s, r.c_str());
            }
        }
        CHECK_EQ(params("permessage-deflate; server_max_window_bits=7", true),
                 std::string("invalid: invalid server_max_window_bits value '7'"));
        CHECK_EQ(params("permessage-deflate; unknown_param", true), std::string("invalid: unknown parameter unknown_param"));
        CHECK_EQ(params("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", true),
                 std::string("invalid: duplicated server_max_window_bits"));
    }

    struct ServerCase
    {
        std::string offer;
        std::string response; // "" = declined
        std::string agreed;   // agreement()
    };

    void expectServer(const ServerDeflatePolicy& policy, const ServerCase& c, int line)
    {
        std::string response;
        DeflateAgreement agreed;
        const bool accepted = negotiateDeflateServer(c.offer, policy, response, agreed);
        CHECK_EQ(accepted, !c.response.empty());
        CHECK_EQ(accepted, agreed.enabled);
        const bool ok1 = CHECK_EQ(response, c.response);
        const bool ok2 = CHECK_EQ(agreement(agreed), c.agreed);
        if (!ok1 || !ok2) std::fprintf(stderr, "    offer '%s' (line %d)\n", c.offer.c_str(), line);
        if (accepted)
        {
            // What we answer must be acceptable to a client that made this offer.
            DeflateAgreement back;
            std::string error;
            // (Only a client that offered client_max_window_bits=8 refuses: it
            // cannot compress with 8 bits, and ours never offers that.)
            if (negotiateDeflateClient(c.offer, response, back, error))
            {
                if (!CHECK(compatible(agreed, back)))
                    std::fprintf(stderr, "    server %s vs client %s (line %d)\n", agreement(agreed).c_str(),
                                 agreement(back).c_str(), line);
            }
            else if (!CHECK(error.find("cannot be honoured") != std::string::npos))
                std::fprintf(stderr, "    client refused our answer '%s': %s (line %d)\n", response.c_str(),
                             error.c_str(), line);
        }
    }

#define SERVER(policy, offer, response, agreed) expectServer(policy, ServerCase {offer, response, agreed}, __LINE__)

    void testServer()
    {
        ServerDeflatePolicy dflt;
        dflt.enabled = true;
        const std::string pmd = "permessage-deflate";
        const std::string full = "client 15, server 15";

        SERVER(dflt, "", "", "off");
        SERVER(dflt, "x-webkit-deflate-frame", "", "off");
        SERVER(dflt, pmd, pmd, full);
        SERVER(dflt, "PERMESSAGE-DEFLATE", pmd, full);
        // Bare client_max_window_bits (browsers): nothing to ask with a 15 limit.
        SERVER(dflt, pmd + "; client_max_window_bits", pmd, full);
        // A client's own limit is a promise: we inflate with it.
        SERVER(dflt, pmd + "; client_max_window_bits=10", pmd, "client 10, server 15");
        SERVER(dflt, pmd + "; client_max_window_bits=8", pmd, "client 8, server 15");
        // Limits on our window are accepted by answering them.
        SERVER(dflt, pmd + "; server_max_window_bits=10", pmd + "; server_max_window_bits=10", "client 15, server 10");
        SERVER(dflt, pmd + "; server_max_window_bits=9", pmd + "; server_max_window_bits=9", "client 15, server 9");
        SERVER(dflt, pmd + "; server_max_window_bits=15", pmd + "; server_max_window_bits=15", full);
        // 8 we cannot compress with: declined (upstream answers 9, defect 3).
        SERVER(dflt, pmd + "; server_max_window_bits=8", "", "off");
        SERVER(dflt, pmd + "; server_max_window_bits=8, " + pmd + "; server_max_window_bits=9",
               pmd + "; server_max_window_bits=9", "client 15, server 9");
        SERVER(dflt, pmd + "; server_no_context_takeover", pmd + "; server_no_context_takeover",
               "client 15, server 15 nct");
        // The client's no_context_takeover hint needs no answer; we keep our
        // inflater's context (harmless when the client does not use it).
        SERVER(dflt, pmd + "; client_no_context_takeover", pmd, full);
        // Autobahn 13.x offers.
        SERVER(dflt, pmd + "; client_no_context_takeover; client_max_window_bits", pmd, full);
        SERVER(dflt, pmd + "; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; "
                           "server_max_window_bits=9",
               pmd + "; server_no_context_takeover; server_max_window_bits=9", "client 15, server 9 nct");
        // Several offers: the first acceptable one wins; invalid ones are skipped.
        SERVER(dflt, "x-foo, " + pmd + "; server_max_window_bits=12, " + pmd, pmd + "; server_max_window_bits=12",
               "client 15, server 12");
        for (const char* bad : {"server_max_window_bits=7", "server_max_window_bits=16", "server_max_window_bits=abc",
                                "client_max_window_bits=7", "client_max_window_bits=16", "client_max_window_bits=abc",
                                "server_max_window_bits=10; server_max_window_bits=10", "server_no_context_takeover=1",
                                "client_no_context_takeover; client_no_context_takeover", "foo", "server_max_window_bits"})
        {
            SERVER(dflt, pmd + "; " + bad, "", "off");
            SERVER(dflt, pmd + "; " + bad + ", " + pmd + "; server_no_context_takeover",
                   pmd + "; server_no_context_takeover", "client 15, server 15 nct");
        }
        // A malformed header declines everything.
        SERVER(dflt, pmd + "; x=\"unterminated, " + pmd, "", "off");
        SERVER(dflt, pmd + " " + pmd, "", "off");

        ServerDeflatePolicy off;
        SERVER(off, pmd, "", "off");

        // Our own limits.
        ServerDeflatePolicy small = dflt;
        small.serverMaxWindowBits = 10;
        SERVER(small, pmd, pmd + "; server_max_window_bits=10", "client 15, server 10");
        SERVER(small, pmd + "; server_max_window_bits=12", pmd + "; server_max_window_bits=10", "client 15, server 10");
        SERVER(small, pmd + "; server_max_window_bits=9", pmd + "; server_max_window_bits=9", "client 15, server 9");
        SERVER(small, pmd + "; server_max_window_bits=8", "", "off");
        ServerDeflatePolicy eight = dflt;
        eight.serverMaxWindowBits = 8; // counts as 9
        SERVER(eight, pmd, pmd + "; server_max_window_bits=9", "client 15, server 9");

        ServerDeflatePolicy clientLimit = dflt;
        clientLimit.clientMaxWindowBits = 10;
        SERVER(clientLimit, pmd, pmd, full); // cannot ask without client_max_window_bits in the offer
        SERVER(clientLimit, pmd + "; client_max_window_bits", pmd + "; client_max_window_bits=10",
               "client 10, server 15");
        SERVER(clientLimit, pmd + "; client_max_window_bits=12", pmd + "; client_max_window_bits=10",
               "client 10, server 15");
        SERVER(clientLimit, pmd + "; client_max_window_bits=9", pmd, "client 9, server 15");
        clientLimit.clientMaxWindowBits = 8; // asking 8 of a zlib client would fail it: 9
        SERVER(clientLimit, pmd + "; client_max_window_bits", pmd + "; client_max_window_bits=9",
               "client 9, server 15");

        ServerDeflatePolicy nct = dflt;
        nct.serverNoContextTakeover = true;
        nct.clientNoContextTakeover = true;
        SERVER(nct, pmd, pmd + "; server_no_context_takeover; client_no_context_takeover",
               "client 15 nct, server 15 nct");
        SERVER(nct, pmd + "; server_no_context_takeover; client_no_context_takeover",
               pmd + "; server_no_context_takeover; client_no_context_takeover", "client 15 nct, server 15 nct");

        ServerDeflatePolicy everything = nct;
        everything.serverMaxWindowBits = 11;
        everything.clientMaxWindowBits = 12;
        SERVER(everything, pmd + "; client_max_window_bits; server_max_window_bits=14",
               pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; "
                     "client_max_window_bits=12",
               "client 12 nct, server 11 nct");
    }

    std::string client(const std::string& offer, const std::string& response)
    {
        DeflateAgreement agreed;
        std::string error;
        if (!negotiateDeflateClient(offer, response, agreed, error))
        {
            CHECK(!agreed.enabled);
            CHECK(!error.empty());
            return "error: " + error;
        }
        CHECK(error.empty());
        return agreement(agreed);
    }

    void testClient()
    {
        const std::string pmd = "permessage-deflate";
        // Upstream's default offer (generateHeader of enabled defaults).
        const std::string up = pmd + "; server_max_window_bits=15; client_max_window_bits=15";
        CHECK_EQ(client(up, ""), std::string("off"));
        CHECK_EQ(client(up, "  "), std::string("off"));
        CHECK_EQ(client(up, pmd), std::string("client 15, server 15")); // offered 15: limits nothing
        CHECK_EQ(client(up, pmd + "; server_max_window_bits=15; client_max_window_bits=15"),
                 std::string("client 15, server 15"));
        CHECK_EQ(client(up, pmd + "; server_max_window_bits=10"), std::string("client 15, server 10"));
        CHECK_EQ(client(up, pmd + "; server_max_window_bits=8"), std::string("client 15, server 8"));
        CHECK_EQ(client(up, pmd + "; client_max_window_bits=9"), std::string("client 9, server 15"));
        CHECK_EQ(client(up, pmd + "; server_no_context_takeover; client_no_context_takeover"),
                 std::string("client 15 nct, server 15 nct"));
        CHECK_EQ(client("Sec-WebSocket-Extensions: " + up + "\r\n", pmd + "; client_max_window_bits=12"),
                 std::string("client 12, server 15"));
        CHECK_EQ(client(up, "PERMESSAGE-DEFLATE ; Server_Max_Window_Bits=\"11\""), std::string("client 15, server 11"));

        // Violations of the offer are refused.
        CHECK_EQ(client(up, pmd + "; client_max_window_bits=8"),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (client_max_window_bits=8 cannot be "
                             "honoured (zlib compresses with 9 bits at least)): permessage-deflate; "
                             "client_max_window_bits=8"));
        CHECK_EQ(client(up, pmd + "; client_max_window_bits"),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (client_max_window_bits needs a value): "
                             "permessage-deflate; client_max_window_bits"));
        CHECK_EQ(client(up, pmd + ", " + pmd),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (more than one extension accepted): "
                             "permessage-deflate, permessage-deflate"));
        CHECK_EQ(client(up, "x-webkit-deflate-frame"),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (not offered): x-webkit-deflate-frame"));
        CHECK_EQ(client(up, pmd + "; foo"),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (unknown parameter foo): "
                             "permessage-deflate; foo"));
        for (const char* bad : {"; server_max_window_bits=16", "; server_max_window_bits=7", "; client_max_window_bits=abc",
                                "; server_no_context_takeover; server_no_context_takeover", "; server_max_window_bits",
                                "; x=\"", " junk"})
        {
            const std::string r = client(up, pmd + bad);
            if (!CHECK(r.compare(0, 6, "error:") == 0)) std::fprintf(stderr, "    for %s: %s\n", bad, r.c_str());
        }

        const std::string s10 = pmd + "; server_max_window_bits=10";
        CHECK_EQ(client(s10, pmd), std::string("error: Invalid Sec-WebSocket-Extensions value (server_max_window_bits "
                                               "was requested but not accepted): permessage-deflate"));
        CHECK_EQ(client(s10, pmd + "; server_max_window_bits=11"),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (server_max_window_bits above the "
                             "offered value): permessage-deflate; server_max_window_bits=11"));
        CHECK_EQ(client(s10, pmd + "; server_max_window_bits=9"), std::string("client 15, server 9"));

        const std::string snct = pmd + "; server_no_context_takeover";
        CHECK_EQ(client(snct, pmd), std::string("error: Invalid Sec-WebSocket-Extensions value (server_no_context_"
                                                "takeover was requested but not accepted): permessage-deflate"));
        CHECK_EQ(client(snct, snct), std::string("client 15, server 15 nct"));

        // client_max_window_bits: only when offered, at most the offered value.
        CHECK_EQ(client(pmd, pmd + "; client_max_window_bits=10"),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (client_max_window_bits was not offered): "
                             "permessage-deflate; client_max_window_bits=10"));
        const std::string c10 = pmd + "; client_max_window_bits=10";
        CHECK_EQ(client(c10, pmd + "; client_max_window_bits=12"),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (client_max_window_bits above the "
                             "offered value): permessage-deflate; client_max_window_bits=12"));
        CHECK_EQ(client(c10, pmd), std::string("client 10, server 15"));
        CHECK_EQ(client(c10, pmd + "; client_max_window_bits=9"), std::string("client 9, server 15"));
        // An offer of 8 (not ours: our options raise it to 9) cannot be kept.
        CHECK_EQ(client(pmd + "; client_max_window_bits=8", pmd),
                 std::string("error: Invalid Sec-WebSocket-Extensions value (client_max_window_bits=8 cannot be "
                             "honoured (zlib compresses with 9 bits at least)): permessage-deflate"));
        CHECK_EQ(client(pmd + "; client_max_window_bits", pmd + "; client_max_window_bits=12"),
                 std::string("client 12, server 15"));
        CHECK_EQ(client(pmd + "; client_max_window_bits", pmd), std::string("client 15, server 15"));

        // Our client_no_context_takeover offer binds us even when not echoed.
        CHECK_EQ(client(pmd + "; client_no_context_takeover", pmd), std::string("client 15 nct, server 15"));
        // server_no_context_takeover may come unasked (RFC 7692 7.1.1.1).
        CHECK_EQ(client(pmd, snct), std::string("client 15, server 15 nct"));

        // Several offers: the answer must fit one of them.
        CHECK_EQ(client(s10 + ", " + pmd, pmd), std::string("client 15, server 15"));
        CHECK_EQ(client(s10 + ", " + snct, pmd + "; server_max_window_bits=10"), std::string("client 15, server 10"));

        // Nothing offered: any extension is refused.
        CHECK_EQ(client("", pmd), std::string("error: Invalid Sec-WebSocket-Extensions value (not offered): "
                                             "permessage-deflate"));
        CHECK_EQ(client("x-foo", pmd), std::string("error: Invalid Sec-WebSocket-Extensions value (not offered): "
                                                  "permessage-deflate"));
    }

    void testHeaderValue()
    {
        CHECK_EQ(extensionsHeaderValue("Sec-WebSocket-Extensions: permessage-deflate; x\r\n"),
                 std::string("permessage-deflate; x"));
        CHECK_EQ(extensionsHeaderValue("sec-websocket-extensions:permessage-deflate"), std::string("permessage-deflate"));
        CHECK_EQ(extensionsHeaderValue("  permessage-deflate \r\n"), std::string("permessage-deflate"));
        CHECK_EQ(extensionsHeaderValue(""), std::string(""));
        CHECK_EQ(extensionsHeaderValue("\r\n"), std::string(""));
    }

    // Random strings over the header alphabet: every path returns, none crashes
    // (ASan/UBSan watch), and a server answer is always acceptable to the offer.
    void testFuzz()
    {
        const std::vector<std::string> atoms = {
            "permessage-deflate", "client_max_window_bits", "server_max_window_bits", "client_no_context_takeover",
            "server_no_context_takeover", "=", ";", ",", " ", "\"", "\\", "8", "9", "15", "16", "abc", "x", "\t", "07"};
        std::mt19937 rng(7692);
        ServerDeflatePolicy policy;
        policy.enabled = true;
        int accepted = 0;
        for (int i = 0; i < 20000; ++i)
        {
            std::string s;
            const int n = static_cast<int>(rng() % 12);
            for (int k = 0; k < n; ++k) s += atoms[rng() % atoms.size()];
            policy.serverMaxWindowBits = 8 + static_cast<int>(rng() % 8);
            policy.clientMaxWindowBits = 8 + static_cast<int>(rng() % 8);
            policy.serverNoContextTakeover = rng() % 2;
            policy.clientNoContextTakeover = rng() % 2;
            std::string response;
            DeflateAgreement agreed;
            if (negotiateDeflateServer(s, policy, response, agreed))
            {
                ++accepted;
                DeflateAgreement back;
                std::string error;
                if (negotiateDeflateClient(s, response, back, error))
                    CHECK(compatible(agreed, back));
                else if (!CHECK(error.find("cannot be honoured") != std::string::npos))
                    std::fprintf(stderr, "    offer '%s' answer '%s': %s\n", s.c_str(), response.c_str(), error.c_str());
                CHECK(agreed.serverMaxWindowBits >= 9); // we never compress with 8
            }
            DeflateAgreement a;
            std::string error;
            negotiateDeflateClient("permessage-deflate; client_max_window_bits", s, a, error);
            if (a.enabled) CHECK(a.clientMaxWindowBits >= 9);
        }
        CHECK(accepted > 100);
    }
} // namespace

int main()
{
    testList();
    testParams();
    testServer();
    testClient();
    testHeaderValue();
    testFuzz();
    return CHECK_REPORT();
}
