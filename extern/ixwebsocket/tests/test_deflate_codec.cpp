// permessage-deflate data path (RFC 7692 section 7.2): round trips for every
// window and context setting, the RFC's own examples, bounded inflation of a
// "deflate bomb", windows enforced, garbage refused without a crash.
#include "check.h"
#include "deflate_codec.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>
#include <zlib.h>

using namespace ix::detail;
using Status = MessageInflater::Status;

// The largest single allocation made through operator new while armed: proves
// that inflating a bomb never allocates its expanded size.
static std::atomic<size_t> gLargestAllocation {0};
static std::atomic<bool> gTrack {false};

void* operator new(size_t size)
{
    if (gTrack.load(std::memory_order_relaxed))
    {
        size_t prev = gLargestAllocation.load(std::memory_order_relaxed);
        while (size > prev && !gLargestAllocation.compare_exchange_weak(prev, size)) {}
    }
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace
{
    std::string bytes(std::initializer_list<unsigned> list)
    {
        std::string s;
        for (unsigned b : list) s.push_back(static_cast<char>(b));
        return s;
    }

    std::string randomBytes(size_t n, unsigned seed)
    {
        std::mt19937 rng(seed);
        std::string s(n, '\0');
        for (auto& c : s) c = static_cast<char>(rng());
        return s;
    }

    std::string jsonLike(size_t n)
    {
        std::string s;
        for (int i = 0; s.size() < n; ++i)
            s += "{\"id\":" + std::to_string(i) + ",\"name\":\"user" + std::to_string(i * 7 % 1000) +
                 "\",\"active\":" + (i % 3 ? "true" : "false") + ",\"score\":" + std::to_string(i * 31 % 977) + "},";
        s.resize(n);
        return s;
    }

    std::string inflateAll(MessageInflater& inf, const std::string& payload, uint64_t limit, Status& st,
                           size_t piece = 0)
    {
        std::string out;
        st = Status::Ok;
        if (piece == 0) piece = payload.size() ? payload.size() : 1;
        for (size_t at = 0; at < payload.size() && st == Status::Ok; at += piece)
            st = inf.feed(payload.data() + at, std::min(piece, payload.size() - at), out, limit);
        if (st == Status::Ok) st = inf.finish(out, limit);
        return out;
    }

    // Every window (8 means 9 for the compressor) and context setting, a run of
    // messages of many kinds, fed whole and in small pieces.
    void testRoundTrips()
    {
        const std::vector<std::string> messages = {
            "", "a", "Hello", "Hello", jsonLike(70000), std::string(300000, 'z'), randomBytes(40000, 1), "",
            jsonLike(1000), "Hello", std::string(1, '\0'), randomBytes(3, 2), jsonLike(65536)};
        for (int bits = 8; bits <= 15; ++bits)
        {
            for (bool nct : {false, true})
            {
                MessageDeflater def(bits, nct);
                MessageInflater whole(bits == 8 ? 9 : bits, nct);
                MessageInflater pieces(bits == 8 ? 9 : bits, nct);
                size_t repeatSize = 0;
                for (size_t i = 0; i < messages.size(); ++i)
                {
                    std::string payload;
                    if (!CHECK(def.compress(messages[i].data(), messages[i].size(), payload))) continue;
                    if (messages[i].empty()) CHECK_EQ(payload, std::string(1, '\0'));
                    Status st;
                    const std::string a = inflateAll(whole, payload, 0, st);
                    CHECK(st == Status::Ok);
                    const std::string b = inflateAll(pieces, payload, 0, st, 1 + i * 7);
                    CHECK(st == Status::Ok);
                    if (!CHECK(a == messages[i] && b == messages[i]))
                        std::fprintf(stderr, "    bits %d nct %d message %zu\n", bits, nct, i);
                    if (i == 2) repeatSize = payload.size();
                    if (i == 3)
                    {
                        // "Hello" again: with context takeover it is a back-reference.
                        if (nct)
                            CHECK_EQ(payload.size(), repeatSize);
                        else
                            CHECK(payload.size() < repeatSize);
                    }
                }
            }
        }
        // Compression does compress, and a 16 MiB message round-trips.
        MessageDeflater def(15, false);
        MessageInflater inf(15, false);
        const std::string big = jsonLike(16 << 20);
        std::string payload;
        CHECK(def.compress(big.data(), big.size(), payload));
        CHECK(payload.size() < big.size() / 4);
        Status st;
        CHECK(inflateAll(inf, payload, big.size(), st, 1 << 18) == big);
        CHECK(st == Status::Ok);
    }

    // RFC 7692 section 7.2.3: the examples, as a receiver sees them.
    void testRfcExamples()
    {
        Status st;
        {
            MessageInflater inf(15, false);
            // 7.2.3.1 "Hello", then 7.2.3.2 the same with context takeover.
            CHECK_EQ(inflateAll(inf, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), 0, st), std::string("Hello"));
            CHECK(st == Status::Ok);
            CHECK_EQ(inflateAll(inf, bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), 0, st), std::string("Hello"));
            CHECK(st == Status::Ok);
        }
        {
            // Our compressor produces exactly the RFC's bytes.
            MessageDeflater def(15, false);
            std::string p1, p2;
            CHECK(def.compress("Hello", 5, p1));
            CHECK(def.compress("Hello", 5, p2));
            CHECK_EQ(p1, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
            CHECK_EQ(p2, bytes({0xf2, 0x00, 0x11, 0x00, 0x00}));
        }
        {
            MessageInflater inf(15, false);
            // 7.2.3.3: a stored ("no compression") block.
            CHECK_EQ(inflateAll(inf, bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}), 0, st),
                     std::string("Hello"));
            CHECK(st == Status::Ok);
            // 7.2.3.4: a block with BFINAL set; the stream ends, the next message
            // starts a new one that may refer back to "Hello".
            CHECK_EQ(inflateAll(inf, bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), 0, st), std::string("Hello"));
            CHECK(st == Status::Ok);
            CHECK_EQ(inflateAll(inf, bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}), 0, st),
                     std::string("Hello"));
            CHECK(st == Status::Ok);
            CHECK_EQ(inflateAll(inf, bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), 0, st), std::string("Hello"));
            CHECK(st == Status::Ok);
            // 7.2.3.5: two DEFLATE blocks in one message.
            CHECK_EQ(inflateAll(inf, bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}),
                                0, st),
                     std::string("Hello"));
            CHECK(st == Status::Ok);
            // 7.2.3.6: an empty message as a single 00 byte.
            CHECK_EQ(inflateAll(inf, bytes({0x00}), 0, st), std::string());
            CHECK(st == Status::Ok);
            CHECK_EQ(inflateAll(inf, bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), 0, st), std::string("Hello"));
            CHECK(st == Status::Ok);
        }
    }

    // A stream of `copies` x 64 MiB of zeros in about copies x 64 KiB: one
    // sync-flushed unit that starts and ends on a block boundary, repeated, with
    // the final 00 00 FF FF left for the receiver to append.
    std::string deflateBomb(int copies)
    {
        z_stream z {};
        deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_RLE);
        std::string zeros(1 << 20, '\0');
        std::string unit;
        char buf[1 << 16];
        for (int i = 0; i < 64; ++i)
        {
            z.next_in = reinterpret_cast<Bytef*>(&zeros[0]);
            z.avail_in = static_cast<uInt>(zeros.size());
            do
            {
                z.next_out = reinterpret_cast<Bytef*>(buf);
                z.avail_out = sizeof(buf);
                deflate(&z, i == 63 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
                unit.append(buf, sizeof(buf) - z.avail_out);
            } while (z.avail_out == 0);
        }
        deflateEnd(&z);
        std::string bomb;
        for (int i = 0; i < copies; ++i) bomb += unit;
        bomb.resize(bomb.size() - 4);
        return bomb;
    }

    void testBomb()
    {
        // 64 copies: 4 GiB of zeros from a few MiB.
        const std::string bomb = deflateBomb(64);
        CHECK(bomb.size() < (8u << 20));
        {
            // Sanity: the bomb is valid data (its first units, inflated and discarded).
            MessageInflater inf(15, false);
            std::string out;
            size_t total = 0;
            Status st = Status::Ok;
            const std::string quarter = bomb.substr(0, bomb.size() / 64 * 4); // about 4 units
            for (size_t at = 0; at < quarter.size() && st == Status::Ok; at += 4096)
            {
                st = inf.feed(quarter.data() + at, std::min<size_t>(4096, quarter.size() - at), out, 0);
                total += out.size();
                if (out.find_first_not_of('\0') != std::string::npos) CHECK(false);
                out.clear();
            }
            CHECK(st == Status::Ok);
            CHECK(total > (200u << 20));
        }
        for (uint64_t limit : {uint64_t(1) << 20, uint64_t(64) << 20})
        {
            gLargestAllocation = 0;
            gTrack = true;
            MessageInflater inf(15, false);
            Status st;
            const std::string out = inflateAll(inf, bomb, limit, st);
            gTrack = false;
            CHECK(st == Status::TooBig);
            CHECK(out.size() <= limit + 1);
            // Never anything near the expanded size (string growth may double).
            if (!CHECK(gLargestAllocation.load() <= 2 * limit + (1 << 20)))
                std::fprintf(stderr, "    largest allocation %zu for limit %llu\n", gLargestAllocation.load(),
                             static_cast<unsigned long long>(limit));
        }
    }

    void testLimits()
    {
        const std::string msg = jsonLike(100000);
        MessageDeflater def(15, false);
        std::string payload;
        CHECK(def.compress(msg.data(), msg.size(), payload));
        Status st;
        {
            MessageInflater inf(15, false);
            CHECK(inflateAll(inf, payload, msg.size(), st, 999) == msg); // exactly the limit: fine
            CHECK(st == Status::Ok);
        }
        {
            MessageInflater inf(15, false);
            inflateAll(inf, payload, msg.size() - 1, st, 999);
            CHECK(st == Status::TooBig);
        }
        {
            MessageInflater inf(15, false);
            inflateAll(inf, payload, 1, st);
            CHECK(st == Status::TooBig);
        }
    }

    // The inflater enforces the negotiated window: data compressed with more
    // history than agreed fails (upstream defect 1 silently truncated instead).
    void testWindowEnforced()
    {
        // Back-references 2000 bytes away, across the inflater's output chunks
        // (within one chunk zlib cannot tell, across them it checks the window).
        std::string msg;
        const std::string unit = randomBytes(2000, 9);
        for (int i = 0; i < 50; ++i) msg += unit;
        MessageDeflater def(15, false);
        std::string payload;
        CHECK(def.compress(msg.data(), msg.size(), payload));
        Status st;
        for (int bits : {8, 9, 10})
        {
            MessageInflater small(bits, false);
            inflateAll(small, payload, 0, st);
            CHECK(st == Status::Error);
        }
        MessageInflater enough(15, false);
        CHECK(inflateAll(enough, payload, 0, st) == msg);
        CHECK(st == Status::Ok);

        // A 9-bit compressor's output is understood by a 9-bit inflater.
        MessageDeflater def9(9, false);
        MessageInflater inf9(9, false);
        for (int i = 0; i < 20; ++i)
        {
            const std::string m = jsonLike(5000 + i * 100);
            std::string p;
            CHECK(def9.compress(m.data(), m.size(), p));
            CHECK(inflateAll(inf9, p, 0, st) == m);
            CHECK(st == Status::Ok);
        }
    }

    void testGarbage()
    {
        Status st;
        {
            MessageInflater inf(15, false);
            inflateAll(inf, bytes({0xff, 0xff, 0xff}), 0, st); // reserved block type 11
            CHECK(st == Status::Error);
        }
        {
            // A stored block whose length check fails.
            MessageInflater inf(15, false);
            inflateAll(inf, bytes({0x00, 0x05, 0x00, 0x00, 0x00, 'H', 'e', 'l', 'l', 'o'}), 0, st);
            CHECK(st == Status::Error);
        }
        // Random input of every size in pieces: any status, no crash, bounded output.
        std::mt19937 rng(1234);
        int errors = 0;
        for (int i = 0; i < 3000; ++i)
        {
            MessageInflater inf(8 + static_cast<int>(rng() % 8), rng() % 2);
            const std::string junk = randomBytes(rng() % 600, static_cast<unsigned>(i));
            const std::string out = inflateAll(inf, junk, 100000, st, 1 + rng() % 50);
            CHECK(out.size() <= 100001);
            errors += st == Status::Error;
        }
        CHECK(errors > 1000);
    }
} // namespace

int main()
{
    testRoundTrips();
    testRfcExamples();
    testBomb();
    testLimits();
    testWindowEnforced();
    testGarbage();
    return CHECK_REPORT();
}
