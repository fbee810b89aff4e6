// Frame headers (RFC 6455 5.2), masking (5.3), random keys, appendFrame, and the
// close-code table (7.4).
#include "check.h"
#include "close_codes.h"
#include "frame_codec.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

using namespace ix::detail;

namespace
{
    void testRoundTrips()
    {
        const uint64_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, (1ULL << 32),
                                    (1ULL << 32) + 5, (1ULL << 63) - 1};
        const uint8_t opcodes[] = {kContinuation, kText, kBinary, kClose, kPing, kPong, 3, 0xF};
        const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
        for (uint64_t len : lengths)
        {
            for (uint8_t op : opcodes)
            {
                for (int flags = 0; flags < 8; ++flags)
                {
                    const bool fin = flags & 1, rsv1 = flags & 2, masked = flags & 4;
                    uint8_t buf[kMaxFrameHeaderSize];
                    const size_t n = writeFrameHeader(buf, fin, rsv1, op, len, masked ? key : nullptr);
                    const size_t expectLen = (len <= 125 ? 2 : len <= 65535 ? 4 : 10) + (masked ? 4 : 0);
                    CHECK_EQ(n, expectLen);

                    FrameHeader h;
                    CHECK(parseFrameHeader(buf, n, h) == HeaderParse::Ok);
                    CHECK_EQ(h.fin, fin);
                    CHECK_EQ(h.rsv1, rsv1);
                    CHECK(!h.rsv2);
                    CHECK(!h.rsv3);
                    CHECK_EQ(h.opcode, op);
                    CHECK_EQ(h.masked, masked);
                    CHECK_EQ(h.payloadLength, len);
                    CHECK_EQ(h.headerLength, n);
                    if (masked) CHECK(std::memcmp(h.mask, key, 4) == 0);

                    // Every strict prefix needs more bytes.
                    for (size_t cut = 0; cut < n; ++cut)
                    {
                        FrameHeader p;
                        CHECK(parseFrameHeader(buf, cut, p) == HeaderParse::NeedMore);
                    }
                    // Trailing bytes are not part of the header.
                    uint8_t longer[kMaxFrameHeaderSize + 4];
                    std::memcpy(longer, buf, n);
                    std::memset(longer + n, 0xAA, 4);
                    FrameHeader q;
                    CHECK(parseFrameHeader(longer, n + 4, q) == HeaderParse::Ok);
                    CHECK_EQ(q.headerLength, n);
                }
            }
        }
    }

    void testWireBytes()
    {
        uint8_t buf[kMaxFrameHeaderSize];
        // RFC 6455 5.7 examples: unmasked "Hello", 256-byte and 64 KiB binary.
        CHECK_EQ(writeFrameHeader(buf, true, false, kText, 5, nullptr), size_t(2));
        CHECK_EQ(buf[0], 0x81);
        CHECK_EQ(buf[1], 0x05);
        CHECK_EQ(writeFrameHeader(buf, true, false, kBinary, 256, nullptr), size_t(4));
        CHECK(std::memcmp(buf, "\x82\x7E\x01\x00", 4) == 0);
        CHECK_EQ(writeFrameHeader(buf, true, false, kBinary, 65536, nullptr), size_t(10));
        CHECK(std::memcmp(buf, "\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10) == 0);

        // Masked "Hello" from RFC 6455 5.7.
        const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
        FrameHeader h;
        CHECK(parseFrameHeader(masked, sizeof(masked), h) == HeaderParse::Ok);
        CHECK_EQ(h.headerLength, size_t(6));
        CHECK_EQ(h.payloadLength, uint64_t(5));
        uint8_t payload[5];
        std::memcpy(payload, masked + 6, 5);
        applyMask(payload, 5, h.mask, 0);
        CHECK(std::memcmp(payload, "Hello", 5) == 0);

        // Reserved bits and opcode nibble.
        const uint8_t rsv[] = {0x7A, 0x00};
        CHECK(parseFrameHeader(rsv, 2, h) == HeaderParse::Ok);
        CHECK(!h.fin);
        CHECK(h.rsv1);
        CHECK(h.rsv2);
        CHECK(h.rsv3);
        CHECK_EQ(h.opcode, 0xA);
    }

    void testInvalidLength()
    {
        uint8_t buf[14] = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0};
        FrameHeader h;
        CHECK(parseFrameHeader(buf, 10, h) == HeaderParse::Invalid);
        CHECK(parseFrameHeader(buf, 3, h) == HeaderParse::Invalid); // known at the first length byte
        CHECK(parseFrameHeader(buf, 2, h) == HeaderParse::NeedMore);
        buf[2] = 0xFF;
        CHECK(parseFrameHeader(buf, 10, h) == HeaderParse::Invalid);
        buf[2] = 0x7F;
        buf[1] = 0xFF; // masked
        CHECK(parseFrameHeader(buf, 10, h) == HeaderParse::NeedMore);
        CHECK(parseFrameHeader(buf, 14, h) == HeaderParse::Ok);
        CHECK_EQ(h.payloadLength, 0x7F00000000000000ULL);
    }

    void naiveMask(uint8_t* d, size_t n, const uint8_t m[4], uint64_t off)
    {
        for (size_t i = 0; i < n; ++i) d[i] ^= m[(off + i) % 4];
    }

    void testMask()
    {
        const uint8_t key[4] = {0xA1, 0x02, 0xF3, 0x44};
        std::vector<uint8_t> src(300);
        for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7 + 3);

        long bad = 0;
        for (size_t size = 0; size <= 100; ++size)
        {
            for (uint64_t off = 0; off < 9; ++off)
            {
                for (size_t align = 0; align < 8; ++align)
                {
                    std::vector<uint8_t> a(src.begin(), src.begin() + size + align);
                    std::vector<uint8_t> b = a;
                    applyMask(a.data() + align, size, key, off);
                    naiveMask(b.data() + align, size, key, off);
                    if (a != b) ++bad;
                }
            }
        }
        CHECK_EQ(bad, 0L);

        // Unmasking in two pieces at every split point equals one pass.
        std::vector<uint8_t> whole(src);
        applyMask(whole.data(), whole.size(), key, 0);
        for (size_t cut = 0; cut <= src.size(); ++cut)
        {
            std::vector<uint8_t> pieces(src);
            applyMask(pieces.data(), cut, key, 0);
            applyMask(pieces.data() + cut, pieces.size() - cut, key, cut);
            if (pieces != whole) ++bad;
        }
        CHECK_EQ(bad, 0L);

        // Masking twice restores; large offsets work.
        std::vector<uint8_t> twice(src);
        applyMask(twice.data(), twice.size(), key, (1ULL << 40) + 3);
        applyMask(twice.data(), twice.size(), key, (1ULL << 40) + 3);
        CHECK(twice == src);
        std::vector<uint8_t> far(src), ref(src);
        applyMask(far.data(), far.size(), key, (1ULL << 40) + 3);
        naiveMask(ref.data(), ref.size(), key, 3);
        CHECK(far == ref);

        // maskCopy: the same bytes as applyMask on a copy, for every size, offset
        // and (mis)alignment of source and destination; the source is untouched
        // and nothing around the destination is written.
        bad = 0;
        for (size_t size = 0; size <= 200; ++size)
        {
            for (uint64_t off : {0ULL, 1ULL, 2ULL, 3ULL, 4ULL, 5ULL, 7ULL, (1ULL << 40) + 1})
            {
                for (size_t salign = 0; salign < 8; ++salign)
                {
                    for (size_t dalign = 0; dalign < 8; dalign += 3)
                    {
                        std::vector<uint8_t> s(src.begin(), src.begin() + salign + size);
                        const std::vector<uint8_t> sBefore = s;
                        std::vector<uint8_t> d(dalign + size + 8, 0xEE);
                        maskCopy(d.data() + dalign, s.data() + salign, size, key, off);
                        std::vector<uint8_t> expect(s.begin() + salign, s.end());
                        naiveMask(expect.data(), size, key, off);
                        if (s != sBefore || !std::equal(expect.begin(), expect.end(), d.begin() + dalign)) ++bad;
                        for (size_t k = 0; k < dalign; ++k) bad += d[k] != 0xEE;
                        for (size_t k = dalign + size; k < d.size(); ++k) bad += d[k] != 0xEE;
                    }
                }
            }
        }
        CHECK_EQ(bad, 0L);
        // Copied in pieces at every split point equals one pass.
        for (size_t cut = 0; cut <= src.size(); ++cut)
        {
            std::vector<uint8_t> pieces(src.size());
            maskCopy(pieces.data(), src.data(), cut, key, 0);
            maskCopy(pieces.data() + cut, src.data() + cut, src.size() - cut, key, cut);
            if (pieces != whole) ++bad;
        }
        CHECK_EQ(bad, 0L);
    }

    void testRandom()
    {
        std::set<uint32_t> seen;
        int zero = 0;
        for (int i = 0; i < 1000; ++i)
        {
            uint8_t m[4];
            randomMask(m);
            uint32_t v;
            std::memcpy(&v, m, 4);
            seen.insert(v);
            if (v == 0) ++zero;
        }
        CHECK(seen.size() > 990); // 32-bit values: collisions are very rare
        CHECK(zero < 2);

        std::vector<uint8_t> big(5000, 0);
        randomBytes(big.data(), big.size());
        size_t zeros = 0;
        for (uint8_t b : big) zeros += (b == 0);
        CHECK(zeros < 100); // expected ~20
        uint8_t small[7] = {};
        randomBytes(small, sizeof(small));
        randomBytes(small, 0);
    }

    void testAppendFrame()
    {
        const size_t sizes[] = {0, 1, 5, 125, 126, 1000, 65535, 65536, 70000};
        for (size_t size : sizes)
        {
            std::string payload(size, '\0');
            for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 31);
            for (int masked = 0; masked < 2; ++masked)
            {
                std::string out = "prefix";
                appendFrame(out, kBinary, size % 2 == 0, size == 5, payload.data(), payload.size(), masked);
                CHECK_EQ(out.compare(0, 6, "prefix"), 0);
                FrameHeader h;
                const uint8_t* p = reinterpret_cast<const uint8_t*>(out.data()) + 6;
                CHECK(parseFrameHeader(p, out.size() - 6, h) == HeaderParse::Ok);
                CHECK_EQ(h.masked, bool(masked));
                CHECK_EQ(h.fin, size % 2 == 0);
                CHECK_EQ(h.rsv1, size == 5);
                CHECK_EQ(h.opcode, uint8_t(kBinary));
                CHECK_EQ(h.payloadLength, uint64_t(size));
                CHECK_EQ(out.size(), 6 + h.headerLength + size);
                std::string body = out.substr(6 + h.headerLength);
                if (masked)
                {
                    if (size >= 8) CHECK(body != payload);
                    applyMask(reinterpret_cast<uint8_t*>(&body[0]), body.size(), h.mask, 0);
                }
                CHECK(body == payload);
            }
        }
        // Fresh key per frame.
        std::string a, b;
        appendFrame(a, kText, true, false, "abcdefgh", 8, true);
        appendFrame(b, kText, true, false, "abcdefgh", 8, true);
        CHECK(a.substr(2, 4) != b.substr(2, 4));
    }

    void testCloseCodes()
    {
        long bad = 0;
        for (uint32_t c = 0; c <= 0xFFFF; ++c)
        {
            const bool expect = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) ||
                                (c >= 3000 && c <= 4999);
            if (isValidWireCloseCode(static_cast<uint16_t>(c)) != expect) ++bad;
        }
        CHECK_EQ(bad, 0L);
        // Autobahn 7.7.x (valid) and 7.9.x (invalid) codes.
        for (uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
            CHECK(isValidWireCloseCode(c));
        for (uint16_t c : {0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
            CHECK(!isValidWireCloseCode(c));
    }

    void testOpcodeHelpers()
    {
        for (int op = 0; op < 16; ++op)
        {
            CHECK_EQ(isKnownOpcode(uint8_t(op)), op <= 2 || (op >= 8 && op <= 10));
            CHECK_EQ(isControlOpcode(uint8_t(op)), op >= 8);
        }
    }
} // namespace

int main()
{
    testRoundTrips();
    testWireBytes();
    testInvalidLength();
    testMask();
    testRandom();
    testAppendFrame();
    testCloseCodes();
    testOpcodeHelpers();
    return CHECK_REPORT();
}
