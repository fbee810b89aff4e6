// Incremental UTF-8 validation (RFC 3629, section 4 syntax), written as a
// range check: each lead byte fixes how many continuation bytes follow and the
// allowed range of the first one (which is where overlong forms, surrogates and
// code points above U+10FFFF are excluded); later continuation bytes are always
// 80..BF.
#include "utf8.h"

#include <cstring>

namespace ix::detail
{
    namespace
    {
        constexpr uint64_t kHighBits = 0x8080808080808080ULL;
    } // namespace

    void Utf8Validator::reset()
    {
        _ok = true;
        _pending = 0;
        _lo = 0x80;
        _hi = 0xBF;
    }

    bool Utf8Validator::feed(const char* data, size_t size)
    {
        if (!_ok) return false;

        const uint8_t* p = reinterpret_cast<const uint8_t*>(data);
        const uint8_t* const end = p + size;
        uint8_t pending = _pending;
        uint8_t lo = _lo;
        uint8_t hi = _hi;

        for (;;)
        {
            // Continuation bytes of the sequence in progress.
            while (pending != 0)
            {
                if (p == end)
                {
                    _pending = pending;
                    _lo = lo;
                    _hi = hi;
                    return true;
                }
                const uint8_t c = *p++;
                if (c < lo || c > hi)
                {
                    _ok = false;
                    return false;
                }
                lo = 0x80;
                hi = 0xBF;
                --pending;
            }

            // ASCII fast path: eight bytes per step.
            while (static_cast<size_t>(end - p) >= 8)
            {
                uint64_t word;
                std::memcpy(&word, p, 8);
                if (word & kHighBits) break;
                p += 8;
            }
            while (p != end && *p < 0x80)
            {
                ++p;
                // Go back to the word loop after a short ASCII stretch.
                if ((reinterpret_cast<uintptr_t>(p) & 7) == 0) break;
            }
            if (p == end)
            {
                _pending = 0;
                _lo = 0x80;
                _hi = 0xBF;
                return true;
            }
            const uint8_t b = *p;
            if (b < 0x80) continue;
            ++p;

            // Lead byte.
            if (b < 0xC2) // stray continuation byte (80..BF) or overlong lead C0/C1
            {
                _ok = false;
                return false;
            }
            if (b < 0xE0)
            {
                pending = 1;
                lo = 0x80;
                hi = 0xBF;
            }
            else if (b < 0xF0)
            {
                pending = 2;
                lo = (b == 0xE0) ? 0xA0 : 0x80; // E0 80..9F would be overlong
                hi = (b == 0xED) ? 0x9F : 0xBF; // ED A0..BF would be a surrogate
            }
            else if (b < 0xF5)
            {
                pending = 3;
                lo = (b == 0xF0) ? 0x90 : 0x80; // F0 80..8F would be overlong
                hi = (b == 0xF4) ? 0x8F : 0xBF; // F4 90.. would exceed U+10FFFF
            }
            else // F5..FF never occur
            {
                _ok = false;
                return false;
            }
        }
    }

    bool isValidUtf8(const char* data, size_t size)
    {
        Utf8Validator v;
        return v.feed(data, size) && v.complete();
    }
} // namespace ix::detail
