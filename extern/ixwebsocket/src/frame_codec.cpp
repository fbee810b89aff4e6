// RFC 6455 section 5.2 framing.
#include "frame_codec.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/random.h>
#include <unistd.h>

namespace ix::detail
{
    HeaderParse parseFrameHeader(const uint8_t* data, size_t size, FrameHeader& header)
    {
        if (size < 2) return HeaderParse::NeedMore;

        const uint8_t b0 = data[0];
        const uint8_t b1 = data[1];
        const bool masked = (b1 & 0x80) != 0;
        const uint8_t len7 = b1 & 0x7F;
        const size_t lengthBytes = (len7 == 126) ? 2 : (len7 == 127) ? 8 : 0;
        const size_t needed = 2 + lengthBytes + (masked ? 4 : 0);

        if (len7 == 127 && size >= 3 && (data[2] & 0x80) != 0)
        {
            return HeaderParse::Invalid; // known as soon as the first length byte is in
        }
        if (size < needed) return HeaderParse::NeedMore;

        uint64_t length = len7;
        if (lengthBytes == 2)
        {
            length = (uint64_t(data[2]) << 8) | data[3];
        }
        else if (lengthBytes == 8)
        {
            length = 0;
            for (size_t i = 0; i < 8; ++i) length = (length << 8) | data[2 + i];
        }

        header.fin = (b0 & 0x80) != 0;
        header.rsv1 = (b0 & 0x40) != 0;
        header.rsv2 = (b0 & 0x20) != 0;
        header.rsv3 = (b0 & 0x10) != 0;
        header.opcode = b0 & 0x0F;
        header.masked = masked;
        if (masked)
        {
            std::memcpy(header.mask, data + 2 + lengthBytes, 4);
        }
        else
        {
            std::memset(header.mask, 0, 4);
        }
        header.payloadLength = length;
        header.headerLength = needed;
        return HeaderParse::Ok;
    }

    size_t writeFrameHeader(uint8_t* out, bool fin, bool rsv1, uint8_t opcode,
                            uint64_t payloadLength, const uint8_t* mask)
    {
        out[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
        const uint8_t maskBit = mask ? 0x80 : 0;
        size_t n;
        if (payloadLength <= 125)
        {
            out[1] = static_cast<uint8_t>(maskBit | payloadLength);
            n = 2;
        }
        else if (payloadLength <= 0xFFFF)
        {
            out[1] = static_cast<uint8_t>(maskBit | 126);
            out[2] = static_cast<uint8_t>(payloadLength >> 8);
            out[3] = static_cast<uint8_t>(payloadLength);
            n = 4;
        }
        else
        {
            out[1] = static_cast<uint8_t>(maskBit | 127);
            for (size_t i = 0; i < 8; ++i)
            {
                out[2 + i] = static_cast<uint8_t>(payloadLength >> (8 * (7 - i)));
            }
            n = 10;
        }
        if (mask)
        {
            std::memcpy(out + n, mask, 4);
            n += 4;
        }
        return n;
    }

    void maskCopy(uint8_t* dst, const uint8_t* src, size_t size, const uint8_t mask[4], uint64_t offset)
    {
        // The key as it lines up with src[0], repeated to 8 bytes. Built byte by
        // byte, so the word XOR below is independent of endianness.
        uint8_t key[8];
        const unsigned shift = static_cast<unsigned>(offset & 3);
        for (unsigned i = 0; i < 8; ++i) key[i] = mask[(shift + i) & 3];

        // Words go through memcpy (alignment-safe, and fine when dst == src);
        // the compiler turns the 64-byte block into vector loads and stores.
        size_t i = 0;
        if (size >= 16)
        {
            uint64_t k64;
            std::memcpy(&k64, key, 8);
            for (; i + 64 <= size; i += 64)
            {
                uint64_t w[8];
                std::memcpy(w, src + i, 64);
                for (int j = 0; j < 8; ++j) w[j] ^= k64;
                std::memcpy(dst + i, w, 64);
            }
            for (; i + 8 <= size; i += 8)
            {
                uint64_t w;
                std::memcpy(&w, src + i, 8);
                w ^= k64;
                std::memcpy(dst + i, &w, 8);
            }
        }
        // i is a multiple of 8 here, so key[i & 7] stays aligned with the payload.
        for (; i < size; ++i) dst[i] = static_cast<uint8_t>(src[i] ^ key[i & 7]);
    }

    void applyMask(uint8_t* data, size_t size, const uint8_t mask[4], uint64_t offset)
    {
        maskCopy(data, data, size, mask, offset);
    }

    namespace
    {
        // Fills buf from the kernel CSPRNG. getrandom() first; /dev/urandom if the
        // syscall is missing; std::random_device as a last resort.
        void fillFromKernel(uint8_t* buf, size_t size)
        {
            size_t got = 0;
            while (got < size)
            {
                const ssize_t r = ::getrandom(buf + got, size - got, 0);
                if (r > 0)
                {
                    got += static_cast<size_t>(r);
                    continue;
                }
                if (r < 0 && errno == EINTR) continue;
                break;
            }
            if (got == size) return;

            const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
            {
                while (got < size)
                {
                    const ssize_t r = ::read(fd, buf + got, size - got);
                    if (r > 0)
                    {
                        got += static_cast<size_t>(r);
                        continue;
                    }
                    if (r < 0 && errno == EINTR) continue;
                    break;
                }
                ::close(fd);
            }
            if (got == size) return;

            std::random_device rd;
            while (got < size)
            {
                const unsigned v = rd();
                for (size_t j = 0; j < sizeof(v) && got < size; ++j)
                {
                    buf[got++] = static_cast<uint8_t>(v >> (8 * j));
                }
            }
        }

        struct RandomPool
        {
            static constexpr size_t kSize = 512;
            uint8_t bytes[kSize];
            size_t pos = kSize; // empty: refilled on first use

            void take(uint8_t* out, size_t size)
            {
                while (size > 0)
                {
                    if (pos == kSize)
                    {
                        fillFromKernel(bytes, kSize);
                        pos = 0;
                    }
                    const size_t n = (size < kSize - pos) ? size : kSize - pos;
                    std::memcpy(out, bytes + pos, n);
                    // Bytes handed out are wiped so they cannot leak a second time.
                    std::memset(bytes + pos, 0, n);
                    pos += n;
                    out += n;
                    size -= n;
                }
            }
        };

        thread_local RandomPool tlsPool;
    } // namespace

    void randomMask(uint8_t mask[4]) { tlsPool.take(mask, 4); }

    void randomBytes(uint8_t* out, size_t size)
    {
        if (size >= RandomPool::kSize)
        {
            fillFromKernel(out, size);
            return;
        }
        tlsPool.take(out, size);
    }

    void appendFrame(std::string& out, uint8_t opcode, bool fin, bool rsv1,
                     const char* payload, size_t size, bool mask)
    {
        uint8_t header[kMaxFrameHeaderSize];
        uint8_t key[4];
        if (mask) randomMask(key);
        const size_t headerLength =
            writeFrameHeader(header, fin, rsv1, opcode, size, mask ? key : nullptr);

        const size_t start = out.size();
        out.reserve(start + headerLength + size);
        out.append(reinterpret_cast<const char*>(header), headerLength);
        if (size == 0) return;
        out.append(payload, size);
        if (mask)
        {
            applyMask(reinterpret_cast<uint8_t*>(&out[start + headerLength]), size, key, 0);
        }
    }
} // namespace ix::detail
