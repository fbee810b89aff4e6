#pragma once
// Incremental, fail-fast UTF-8 validation (RFC 3629): rejects overlong forms,
// surrogates and code points above U+10FFFF at the first byte that makes the
// input impossible, so a text message can be failed before it is complete.
#include <cstddef>
#include <cstdint>

namespace ix::detail
{
    class Utf8Validator
    {
    public:
        // Feeds more bytes. Returns false as soon as the bytes seen so far cannot be
        // the prefix of valid UTF-8; after that the validator stays failed until reset().
        bool feed(const char* data, size_t size);
        // True when everything fed so far is valid and ends on a code point boundary.
        bool complete() const { return _ok && _pending == 0; }
        bool failed() const { return !_ok; }
        void reset();

    private:
        bool _ok = true;
        uint8_t _pending = 0; // continuation bytes still expected
        uint8_t _lo = 0x80;   // allowed range of the next continuation byte
        uint8_t _hi = 0xBF;
    };

    bool isValidUtf8(const char* data, size_t size);
} // namespace ix::detail
