// UTF-8 validator: code point boundaries, overlong forms, surrogates, the range
// limit, fail-fast positions, every split point, and an exhaustive comparison
// with an independent by-value reference decoder.
#include "check.h"
#include "utf8.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using ix::detail::isValidUtf8;
using ix::detail::Utf8Validator;

namespace
{
    std::string bytes(std::initializer_list<int> list)
    {
        std::string s;
        for (int b : list) s += static_cast<char>(b);
        return s;
    }

    // Reference: decodes by value (lead-bit patterns, then range checks on the
    // resulting code point), a different formulation from the validator's ranges.
    bool referenceValid(const std::string& s)
    {
        size_t i = 0;
        while (i < s.size())
        {
            const uint8_t b = static_cast<uint8_t>(s[i]);
            size_t len;
            uint32_t cp;
            if ((b & 0x80) == 0)
            {
                len = 1;
                cp = b;
            }
            else if ((b & 0xE0) == 0xC0)
            {
                len = 2;
                cp = b & 0x1F;
            }
            else if ((b & 0xF0) == 0xE0)
            {
                len = 3;
                cp = b & 0x0F;
            }
            else if ((b & 0xF8) == 0xF0)
            {
                len = 4;
                cp = b & 0x07;
            }
            else
            {
                return false;
            }
            if (i + len > s.size()) return false;
            for (size_t k = 1; k < len; ++k)
            {
                const uint8_t c = static_cast<uint8_t>(s[i + k]);
                if ((c & 0xC0) != 0x80) return false;
                cp = (cp << 6) | (c & 0x3F);
            }
            static const uint32_t minFor[5] = {0, 0, 0x80, 0x800, 0x10000};
            if (cp < minFor[len]) return false;            // overlong
            if (cp >= 0xD800 && cp <= 0xDFFF) return false; // surrogate
            if (cp > 0x10FFFF) return false;
            i += len;
        }
        return true;
    }

    // Index of the byte at which byte-by-byte feeding first fails, or -1.
    long failIndex(const std::string& s)
    {
        Utf8Validator v;
        for (size_t i = 0; i < s.size(); ++i)
        {
            if (!v.feed(&s[i], 1)) return static_cast<long>(i);
        }
        return -1;
    }

    // Runs s through the validator in two pieces split at every point, and in
    // single bytes, and checks all agree with the one-shot verdict.
    void checkAllSplits(const std::string& s, bool expectValid)
    {
        CHECK_EQ(isValidUtf8(s.data(), s.size()), expectValid);
        for (size_t cut = 0; cut <= s.size(); ++cut)
        {
            Utf8Validator v;
            const bool a = v.feed(s.data(), cut);
            const bool b = a && v.feed(s.data() + cut, s.size() - cut);
            if (!CHECK_EQ(b && v.complete(), expectValid))
            {
                std::fprintf(stderr, "    split at %zu of %s\n", cut, ixtest::escape(s).c_str());
            }
        }
        Utf8Validator v;
        bool ok = true;
        for (char c : s) ok = ok && v.feed(&c, 1);
        CHECK_EQ(ok && v.complete(), expectValid);
    }

    void testBoundaries()
    {
        const std::vector<std::string> valid = {
            "",
            bytes({0x00}),
            bytes({0x7F}),
            bytes({0xC2, 0x80}),             // U+0080
            bytes({0xDF, 0xBF}),             // U+07FF
            bytes({0xE0, 0xA0, 0x80}),       // U+0800
            bytes({0xE1, 0x80, 0x80}),       // U+1000
            bytes({0xEC, 0xBF, 0xBF}),       // U+CFFF
            bytes({0xED, 0x80, 0x80}),       // U+D000
            bytes({0xED, 0x9F, 0xBF}),       // U+D7FF
            bytes({0xEE, 0x80, 0x80}),       // U+E000
            bytes({0xEF, 0xBF, 0xBD}),       // U+FFFD
            bytes({0xEF, 0xBF, 0xBF}),       // U+FFFF
            bytes({0xF0, 0x90, 0x80, 0x80}), // U+10000
            bytes({0xF1, 0x80, 0x80, 0x80}), // U+40000
            bytes({0xF3, 0xBF, 0xBF, 0xBF}), // U+FFFFF
            bytes({0xF4, 0x80, 0x80, 0x80}), // U+100000
            bytes({0xF4, 0x8F, 0xBF, 0xBF}), // U+10FFFF
            "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",
            "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", // kosme
        };
        for (const auto& s : valid)
        {
            CHECK(referenceValid(s));
            checkAllSplits(s, true);
        }

        const std::vector<std::string> invalid = {
            bytes({0x80}), bytes({0xBF}), bytes({0xC0, 0x80}), bytes({0xC1, 0xBF}),
            bytes({0xC2}), bytes({0xC2, 0x41}), bytes({0xC2, 0xC0}),
            bytes({0xE0, 0x80, 0x80}), bytes({0xE0, 0x9F, 0xBF}), // overlong
            bytes({0xED, 0xA0, 0x80}), bytes({0xED, 0xBF, 0xBF}), // surrogates
            bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}),          // surrogate pair
            bytes({0xF0, 0x80, 0x80, 0x80}), bytes({0xF0, 0x8F, 0xBF, 0xBF}), // overlong
            bytes({0xF4, 0x90, 0x80, 0x80}), bytes({0xF7, 0xBF, 0xBF, 0xBF}), // > U+10FFFF
            bytes({0xF5}), bytes({0xF8, 0x88, 0x80, 0x80, 0x80}), bytes({0xFC}), bytes({0xFE}),
            bytes({0xFF}), bytes({0xE1, 0x80}), bytes({0xF1, 0x80, 0x80}),
            bytes({0xEF, 0xBF}), // truncated at the end
            "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80" "edited", // Autobahn 6.3.1 style
            "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80" "edited", // 6.4.1 style
        };
        for (const auto& s : invalid)
        {
            CHECK(!referenceValid(s));
            checkAllSplits(s, false);
        }
    }

    void testFailFast()
    {
        struct Case
        {
            std::string s;
            long at;
        };
        const std::vector<Case> cases = {
            {bytes({0xC0}), 0},
            {bytes({0xC1}), 0},
            {bytes({0xF5}), 0},
            {bytes({0xFF}), 0},
            {bytes({0x80}), 0},
            {bytes({0x41, 0xBF}), 1},
            {bytes({0xED, 0xA0}), 1},       // surrogate, known at the second byte
            {bytes({0xF4, 0x90}), 1},       // above U+10FFFF
            {bytes({0xE0, 0x80}), 1},       // overlong
            {bytes({0xE0, 0x9F}), 1},
            {bytes({0xF0, 0x8F}), 1},
            {bytes({0xC2, 0x41}), 1},
            {bytes({0xE1, 0x80, 0x41}), 2},
            {bytes({0xF1, 0x80, 0x80, 0xC0}), 3},
            {bytes({0xE1, 0x80, 0x80, 0xED, 0xA0, 0x80}), 4},
            {"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80" "edited", 12},
            {"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80" "edited", 12},
        };
        for (const auto& c : cases)
        {
            if (!CHECK_EQ(failIndex(c.s), c.at)) std::fprintf(stderr, "    for %s\n", ixtest::escape(c.s).c_str());
        }

        // A valid but incomplete prefix is not a failure, only not complete.
        Utf8Validator v;
        CHECK(v.feed("\xF4\x8F\xBF", 3));
        CHECK(!v.complete());
        CHECK(!v.failed());
        CHECK(v.feed("\xBF", 1));
        CHECK(v.complete());

        // Once failed, stays failed until reset.
        CHECK(!v.feed("\xFF", 1));
        CHECK(v.failed());
        CHECK(!v.feed("a", 1));
        CHECK(!v.complete());
        v.reset();
        CHECK(v.complete());
        CHECK(v.feed("a", 1));
    }

    void testAsciiFastPath()
    {
        // A bad byte at every position of a long ASCII run, at every alignment.
        std::string base(80, 'x');
        for (size_t align = 0; align < 8; ++align)
        {
            for (size_t pos = 0; pos < 64; ++pos)
            {
                std::string buf(align, ' ');
                std::string s = base;
                s[pos] = '\xFF';
                buf += s;
                const char* p = buf.data() + align;
                CHECK(!isValidUtf8(p, s.size()));
                CHECK_EQ(failIndex(s), static_cast<long>(pos));

                std::string t = base;
                t[pos] = '\xC3';
                t[pos + 1] = '\xA9';
                CHECK(isValidUtf8(t.data(), t.size()));
                t[pos + 1] = 'A';
                CHECK(!isValidUtf8(t.data(), t.size()));
            }
        }
        std::string big(1 << 20, 'a');
        CHECK(isValidUtf8(big.data(), big.size()));
        big[big.size() - 1] = '\x80';
        CHECK(!isValidUtf8(big.data(), big.size()));
    }

    void testExhaustive()
    {
        long mismatches = 0;
        std::string s;
        // All 1- and 2-byte strings.
        for (int a = 0; a < 256; ++a)
        {
            s = bytes({a});
            if (isValidUtf8(s.data(), 1) != referenceValid(s)) ++mismatches;
            for (int b = 0; b < 256; ++b)
            {
                s = bytes({a, b});
                if (isValidUtf8(s.data(), 2) != referenceValid(s)) ++mismatches;
            }
        }
        // All 3-byte strings with a multi-byte lead.
        for (int a = 0xC0; a < 256; ++a)
        {
            for (int b = 0; b < 256; ++b)
            {
                for (int c = 0; c < 256; ++c)
                {
                    const char t[3] = {char(a), char(b), char(c)};
                    if (isValidUtf8(t, 3) != referenceValid(std::string(t, 3))) ++mismatches;
                }
            }
        }
        // 4-byte strings: every first two bytes of a 4-byte lead, interesting tails.
        const int tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xFF};
        for (int a = 0xF0; a < 256; ++a)
        {
            for (int b = 0; b < 256; ++b)
            {
                for (int c : tails)
                {
                    for (int d : tails)
                    {
                        const char t[4] = {char(a), char(b), char(c), char(d)};
                        if (isValidUtf8(t, 4) != referenceValid(std::string(t, 4))) ++mismatches;
                    }
                }
            }
        }
        CHECK_EQ(mismatches, 0L);
    }

    // Every code point encodes to bytes the validator accepts.
    void testAllCodePoints()
    {
        long bad = 0;
        for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp)
        {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            char t[4];
            size_t n;
            if (cp < 0x80)
            {
                t[0] = char(cp);
                n = 1;
            }
            else if (cp < 0x800)
            {
                t[0] = char(0xC0 | (cp >> 6));
                t[1] = char(0x80 | (cp & 0x3F));
                n = 2;
            }
            else if (cp < 0x10000)
            {
                t[0] = char(0xE0 | (cp >> 12));
                t[1] = char(0x80 | ((cp >> 6) & 0x3F));
                t[2] = char(0x80 | (cp & 0x3F));
                n = 3;
            }
            else
            {
                t[0] = char(0xF0 | (cp >> 18));
                t[1] = char(0x80 | ((cp >> 12) & 0x3F));
                t[2] = char(0x80 | ((cp >> 6) & 0x3F));
                t[3] = char(0x80 | (cp & 0x3F));
                n = 4;
            }
            if (!isValidUtf8(t, n)) ++bad;
        }
        CHECK_EQ(bad, 0L);
    }

    void testRandom()
    {
        std::mt19937 rng(12345);
        const int alphabet[] = {0x41, 0x7F, 0x80, 0xBF, 0xC2, 0xDF, 0xE0, 0xED, 0xEF,
                                0xF0, 0xF4, 0xF5, 0xA0, 0x9F, 0x90, 0x8F, 0xC0, 0xFF};
        long mismatches = 0;
        for (int iter = 0; iter < 20000; ++iter)
        {
            std::string s;
            const size_t len = rng() % 24;
            for (size_t i = 0; i < len; ++i)
            {
                s += (rng() % 3 == 0) ? char('a' + rng() % 26)
                                      : char(alphabet[rng() % (sizeof(alphabet) / sizeof(int))]);
            }
            const bool ref = referenceValid(s);
            if (isValidUtf8(s.data(), s.size()) != ref) ++mismatches;
            // Random three-way split.
            const size_t c1 = len ? rng() % (len + 1) : 0;
            const size_t c2 = c1 + (len - c1 ? rng() % (len - c1 + 1) : 0);
            Utf8Validator v;
            bool ok = v.feed(s.data(), c1) && v.feed(s.data() + c1, c2 - c1) &&
                      v.feed(s.data() + c2, s.size() - c2);
            if ((ok && v.complete()) != ref) ++mismatches;
            // Fail-fast: a failure index is the end of a prefix no valid string has;
            // at minimum the string up to and including it must be invalid.
            const long f = failIndex(s);
            if (f >= 0 && referenceValid(s.substr(0, static_cast<size_t>(f) + 1))) ++mismatches;
            if (ref && f >= 0) ++mismatches;
        }
        CHECK_EQ(mismatches, 0L);
    }
} // namespace

int main()
{
    testBoundaries();
    testFailFast();
    testAsciiFastPath();
    testExhaustive();
    testAllCodePoints();
    testRandom();
    return CHECK_REPORT();
}
