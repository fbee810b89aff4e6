#pragma once
// RFC 7692 section 7.2: the permessage-deflate data path, one object per
// direction of a connection. Raw DEFLATE (zlib) with the 00 00 FF FF tail of a
// sync flush stripped on send and appended on receive. zlib state is allocated
// on first use, so a negotiated but unused direction costs no memory.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ix::detail
{
    // Compresses whole messages with a window of `windowBits` (9..15; 8 cannot be
    // done by zlib and is raised to 9, see deflate_negotiation.h) and, unless
    // noContextTakeover, the previous messages as dictionary.
    class MessageDeflater
    {
    public:
        MessageDeflater(int windowBits, bool noContextTakeover);
        ~MessageDeflater();
        MessageDeflater(const MessageDeflater&) = delete;
        MessageDeflater& operator=(const MessageDeflater&) = delete;

        // Appends the compressed payload of one message to `out`. An empty message
        // becomes the single byte 00 (an empty stored block once the receiver has
        // appended the tail). False when zlib fails (out is then unchanged).
        bool compress(const char* data, size_t size, std::string& out);

    private:
        struct State;
        std::unique_ptr<State> _state;
        int _windowBits;
        bool _noContextTakeover;
    };

    // Inflates messages piece by piece (as their frames arrive) into a bounded
    // output, so a small frame cannot expand into unbounded memory.
    class MessageInflater
    {
    public:
        enum class Status
        {
            Ok,
            TooBig, // the output would exceed the limit (nothing beyond limit+1 bytes is produced)
            Error   // not valid DEFLATE data for this window
        };

        MessageInflater(int windowBits, bool noContextTakeover);
        ~MessageInflater();
        MessageInflater(const MessageInflater&) = delete;
        MessageInflater& operator=(const MessageInflater&) = delete;

        // Inflates the next part of a message's payload, appending to `out`; `out`
        // (the whole message so far) may not grow beyond `limit` bytes (0: no limit).
        Status feed(const char* data, size_t size, std::string& out, uint64_t limit);
        // The message's last byte has been fed: inflates the 00 00 FF FF tail and,
        // with noContextTakeover, forgets the window.
        Status finish(std::string& out, uint64_t limit);

    private:
        struct State;
        Status run(const unsigned char* data, size_t size, std::string& out, uint64_t limit);
        std::unique_ptr<State> _state;
        int _windowBits;
        bool _noContextTakeover;
    };
} // namespace ix::detail
