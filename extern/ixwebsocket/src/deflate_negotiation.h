#pragma once
// RFC 7692 section 7.1: negotiating permessage-deflate, as pure functions of
// header values. No zlib here (see deflate_codec.h for the data side).
//
// Window bits: zlib cannot compress with a 256-byte window (raw deflate with
// windowBits 8 is refused), while it can inflate with one. So an endpoint here
// never agrees to *compress* with 8 bits: a server declines an offer that limits
// the server's window to 8, and a client rejects a response that limits the
// client's window to 8. Limiting the peer to 8 is fine (we inflate with 8).
#include <string>
#include <vector>

namespace ix::detail
{
    // ----- Sec-WebSocket-Extensions syntax (RFC 6455 section 9.1)
    struct ExtensionParam
    {
        std::string name;   // as sent
        std::string value;  // unquoted; empty when !hasValue
        bool hasValue = false;
    };

    struct ExtensionElement
    {
        std::string name;
        std::vector<ExtensionParam> params;
    };

    // Splits a header value into its comma-separated elements and their
    // ';'-separated parameters. Whitespace around every token, ';', ',' and '='
    // is allowed; values are tokens or quoted strings (backslash escapes). Empty
    // list elements are skipped. Returns false for anything else (a stray
    // character, an empty token, an unterminated quote).
    bool parseExtensionList(const std::string& value, std::vector<ExtensionElement>& out);

    // ----- the four permessage-deflate parameters, as written in one element
    constexpr int kWindowBitsAbsent = 0;
    constexpr int kWindowBitsNoValue = -1; // "client_max_window_bits" without a value (offers only)

    struct DeflateParams
    {
        bool serverNoContextTakeover = false;
        bool clientNoContextTakeover = false;
        int serverMaxWindowBits = kWindowBitsAbsent; // 8..15 or absent
        int clientMaxWindowBits = kWindowBitsAbsent; // 8..15, absent, or no value
    };

    // Reads one element as a permessage-deflate offer (isOffer) or response.
    // False (with a reason) when the name is not permessage-deflate
    // (case-insensitive), a parameter is unknown, duplicated, lacks a required
    // value or has a value it must not have, or a window size is not a decimal
    // 8..15 without leading zeros. A bare client_max_window_bits is valid only in
    // an offer.
    bool readDeflateParams(const ExtensionElement& element, bool isOffer, DeflateParams& out,
                           std::string* why = nullptr);

    // "permessage-deflate[; server_no_context_takeover][; client_no_context_takeover]
    //  [; server_max_window_bits=N][; client_max_window_bits[=N]]"
    std::string formatDeflateParams(const DeflateParams& params);

    // ----- the outcome of a negotiation
    struct DeflateAgreement
    {
        bool enabled = false;
        // Client -> server direction: the client compresses, the server inflates.
        int clientMaxWindowBits = 15;
        bool clientNoContextTakeover = false;
        // Server -> client direction.
        int serverMaxWindowBits = 15;
        bool serverNoContextTakeover = false;
    };

    // What a server is willing to do (an engine extension; upstream has only
    // "accept or not").
    struct ServerDeflatePolicy
    {
        bool enabled = false;
        // Largest window the server compresses with. Announced in the response
        // when below 15 or when the client asked for a limit. 8 counts as 9.
        int serverMaxWindowBits = 15;
        // Largest window the server asks the client to use; can only be asked
        // when the offer carries client_max_window_bits. 8 counts as 9.
        int clientMaxWindowBits = 15;
        bool serverNoContextTakeover = false; // always announce server_no_context_takeover
        bool clientNoContextTakeover = false; // always ask for client_no_context_takeover
    };

    // Server: answers the first acceptable permessage-deflate offer of a
    // request's Sec-WebSocket-Extensions value. Offers that are invalid (see
    // readDeflateParams) or that limit the server's window to 8 bits are
    // declined; other extensions are ignored; a malformed header declines all.
    // Returns true and sets `response` (a header value) and `agreed` when an offer
    // is accepted; false (agreed.enabled == false) otherwise.
    bool negotiateDeflateServer(const std::string& offerHeader, const ServerDeflatePolicy& policy,
                                std::string& response, DeflateAgreement& agreed);

    // Client: checks the response's Sec-WebSocket-Extensions value against what
    // we offered (`offerHeader`, the value we sent; a whole "Name: value\r\n" line
    // is accepted too). An empty response means "declined" (true, disabled).
    // False with a reason when the response is malformed, names an extension we
    // did not offer, accepts permessage-deflate twice, has invalid parameters, or
    // fits none of our offers: a server_no_context_takeover or
    // server_max_window_bits we asked for is missing (a missing
    // server_max_window_bits is tolerated when we offered 15, which limits
    // nothing), server_max_window_bits above ours, client_max_window_bits when we
    // did not offer it or above our value, or client_max_window_bits=8.
    bool negotiateDeflateClient(const std::string& offerHeader, const std::string& responseHeader,
                                DeflateAgreement& agreed, std::string& error);

    // The value of a Sec-WebSocket-Extensions offer given either as a bare value
    // or as a whole header line (what WebSocketPerMessageDeflateOptions::
    // generateHeader() returns), trimmed.
    std::string extensionsHeaderValue(const std::string& offerOrLine);
} // namespace ix::detail
