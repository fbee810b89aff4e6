// RFC 7692 section 7.2 with zlib (see deflate_codec.h).
#include "deflate_codec.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <zlib.h>

namespace ix::detail
{
    namespace
    {
        const unsigned char kTail[4] = {0x00, 0x00, 0xFF, 0xFF};
        // Inflate output grows by at most this much per zlib call.
        constexpr size_t kInflateChunk = 64 * 1024;
        // zlib counts in uInt: feed larger inputs in pieces.
        constexpr size_t kMaxZlibInput = 1u << 30;

        // Level 1: on text it compresses 3-8 times faster than zlib's default level
        // 6 for output about 15% larger (upstream uses the default level).
        constexpr int kCompressionLevel = Z_BEST_SPEED;

        int deflateBits(int bits) { return std::max(9, std::min(15, bits)); }
        int inflateBits(int bits) { return std::max(8, std::min(15, bits)); }
    } // namespace

    // ------------------------------------------------------------------ deflate

    struct MessageDeflater::State
    {
        z_stream z {};
        ~State() { deflateEnd(&z); }
    };

    MessageDeflater::MessageDeflater(int windowBits, bool noContextTakeover)
        : _windowBits(deflateBits(windowBits)), _noContextTakeover(noContextTakeover)
    {
    }

    MessageDeflater::~MessageDeflater() = default;

    bool MessageDeflater::compress(const char* data, size_t size, std::string& out)
    {
        if (size == 0)
        {
            // Deflating nothing after a previous flush makes no progress in zlib;
            // an empty stored block header says the same and leaves the context alone.
            out.push_back('\0');
            return true;
        }
        if (!_state)
        {
            std::unique_ptr<State> s(new State());
            // A small negotiated window signals a small peer: keep the hash small too.
            const int memLevel = std::max(1, std::min(8, _windowBits - 7));
            if (deflateInit2(&s->z, kCompressionLevel, Z_DEFLATED, -_windowBits, memLevel,
                             Z_DEFAULT_STRATEGY) != Z_OK)
            {
                // deflateEnd on a stream that failed to initialise is harmless.
                return false;
            }
            _state = std::move(s);
        }
        z_stream& z = _state->z;
        const size_t start = out.size();
        // deflateBound does not count the flush markers; a few bytes more do.
        size_t capacity = static_cast<size_t>(deflateBound(&z, static_cast<uLong>(size))) + 16;
        out.resize(start + capacity);
        size_t produced = 0;
        const char* in = data;
        size_t left = size;
        bool ok = true;
        for (;;)
        {
            if (z.avail_in == 0 && left > 0)
            {
                const size_t n = std::min(left, kMaxZlibInput);
                z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
                z.avail_in = static_cast<uInt>(n);
                in += n;
                left -= n;
            }
            if (capacity - produced < 64)
            {
                capacity += std::max<size_t>(capacity / 2, 4096);
                out.resize(start + capacity);
            }
            const size_t room = std::min(capacity - produced, kMaxZlibInput);
            z.next_out = reinterpret_cast<Bytef*>(&out[start + produced]);
            z.avail_out = static_cast<uInt>(room);
            const int rc = deflate(&z, left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
            produced += room - z.avail_out;
            if (rc != Z_OK && rc != Z_BUF_ERROR)
            {
                ok = false;
                break;
            }
            // Done once all input is in and the flush left output space unused.
            if (left == 0 && z.avail_in == 0 && z.avail_out != 0) break;
        }
        z.next_in = nullptr;
        z.next_out = nullptr;
        if (ok && produced >= 4 && std::memcmp(&out[start + produced - 4], kTail, 4) == 0)
        {
            out.resize(start + produced - 4);
            if (_noContextTakeover) deflateReset(&z);
            return true;
        }
        // Our history now differs from what the peer will see: start afresh.
        out.resize(start);
        deflateReset(&z);
        return false;
    }

    // ------------------------------------------------------------------ inflate

    struct MessageInflater::State
    {
        z_stream z {};
        bool ended = false; // the peer's DEFLATE stream ended (BFINAL) and nothing followed yet
        ~State() { inflateEnd(&z); }
    };

    MessageInflater::MessageInflater(int windowBits, bool noContextTakeover)
        : _windowBits(inflateBits(windowBits)), _noContextTakeover(noContextTakeover)
    {
    }

    MessageInflater::~MessageInflater() = default;

    MessageInflater::Status MessageInflater::run(const unsigned char* data, size_t size, std::string& out,
                                                 uint64_t limit)
    {
        if (!_state)
        {
            std::unique_ptr<State> s(new State());
            if (inflateInit2(&s->z, -_windowBits) != Z_OK) return Status::Error;
            _state = std::move(s);
        }
        z_stream& z = _state->z;
        size_t left = size;
        const unsigned char* in = data;
        Status status = Status::Ok;
        for (;;)
        {
            if (z.avail_in == 0 && left > 0)
            {
                const size_t n = std::min(left, kMaxZlibInput);
                z.next_in = const_cast<Bytef*>(in);
                z.avail_in = static_cast<uInt>(n);
                in += n;
                left -= n;
                _state->ended = false;
            }
            const size_t have = out.size();
            size_t room = kInflateChunk;
            if (limit != 0)
            {
                if (have > limit) return Status::TooBig;
                // One byte beyond the limit tells "too big" without producing more.
                room = static_cast<size_t>(std::min<uint64_t>(room, limit + 1 - have));
            }
            out.resize(have + room);
            z.next_out = reinterpret_cast<Bytef*>(&out[have]);
            z.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&z, Z_SYNC_FLUSH);
            out.resize(have + (room - z.avail_out));
            if (limit != 0 && out.size() > limit)
            {
                status = Status::TooBig;
                break;
            }
            switch (rc)
            {
                case Z_OK:
                    break;
                case Z_BUF_ERROR:
                    // No progress possible: fine when all input is used and nothing is
                    // pending (output space was given, so input left over is corrupt).
                    if (z.avail_in != 0) status = Status::Error;
                    break;
                case Z_STREAM_END:
                {
                    // The sender closed its DEFLATE stream (a block with BFINAL set,
                    // RFC 7692 7.2.3.3). Whatever follows starts a new stream that
                    // may still refer to the data before it.
                    Bytef window[32768];
                    uInt windowSize = 0;
                    const bool keep = !_noContextTakeover && inflateGetDictionary(&z, window, &windowSize) == Z_OK;
                    const Bytef* nextIn = z.next_in;
                    const uInt availIn = z.avail_in;
                    inflateReset(&z);
                    if (keep && windowSize > 0) inflateSetDictionary(&z, window, windowSize);
                    z.next_in = const_cast<Bytef*>(nextIn);
                    z.avail_in = availIn;
                    _state->ended = (availIn == 0 && left == 0);
                    break;
                }
                default:
                    status = Status::Error;
                    break;
            }
            if (status != Status::Ok) break;
            // Done when all input is used and the last call did not fill the output
            // (a full output may mean more is pending).
            if (z.avail_in == 0 && left == 0 && z.avail_out != 0) break;
        }
        z.next_in = nullptr;
        z.avail_in = 0;
        z.next_out = nullptr;
        return status;
    }

    MessageInflater::Status MessageInflater::feed(const char* data, size_t size, std::string& out, uint64_t limit)
    {
        if (size == 0) return Status::Ok;
        return run(reinterpret_cast<const unsigned char*>(data), size, out, limit);
    }

    MessageInflater::Status MessageInflater::finish(std::string& out, uint64_t limit)
    {
        Status status = Status::Ok;
        if (_state && _state->ended)
        {
            // The tail completes an empty block of the sender's stream; that stream
            // has ended, so there is nothing left to complete.
            _state->ended = false;
        }
        else
        {
            status = run(kTail, sizeof(kTail), out, limit);
        }
        if (status == Status::Ok && _noContextTakeover && _state) inflateReset(&_state->z);
        return status;
    }
} // namespace ix::detail
