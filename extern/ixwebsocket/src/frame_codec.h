#pragma once
// RFC 6455 section 5.2 frame headers: parsing, serialisation and masking.
// Pure functions of bytes; no state besides what the caller passes in.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ix::detail
{
    enum Opcode : uint8_t
    {
        kContinuation = 0x0,
        kText = 0x1,
        kBinary = 0x2,
        kClose = 0x8,
        kPing = 0x9,
        kPong = 0xA,
    };

    inline bool isControlOpcode(uint8_t op) { return (op & 0x8) != 0; }
    inline bool isKnownOpcode(uint8_t op) { return op <= 2 || (op >= 8 && op <= 10); }

    struct FrameHeader
    {
        bool fin = false;
        bool rsv1 = false;
        bool rsv2 = false;
        bool rsv3 = false;
        uint8_t opcode = 0;
        bool masked = false;
        uint8_t mask[4] = {0, 0, 0, 0};
        uint64_t payloadLength = 0;
        size_t headerLength = 0; // bytes taken by the header itself (2..14)
    };

    enum class HeaderParse
    {
        NeedMore, // not enough bytes yet
        Ok,
        Invalid   // 64-bit length with the most significant bit set (RFC 6455 5.2)
    };

    // Parses the header at the start of [data, data+size). Semantic checks
    // (opcodes, RSV bits, control frame rules, mask direction) are the caller's.
    HeaderParse parseFrameHeader(const uint8_t* data, size_t size, FrameHeader& header);

    // Largest possible header: 2 + 8 (length) + 4 (mask).
    constexpr size_t kMaxFrameHeaderSize = 14;

    // Writes a header for a frame with the given payload length into out (which
    // must have room for kMaxFrameHeaderSize bytes) and returns its length. The
    // mask is written only when mask != nullptr. The shortest length form is used.
    size_t writeFrameHeader(uint8_t* out, bool fin, bool rsv1, uint8_t opcode,
                            uint64_t payloadLength, const uint8_t* mask);

    // XORs data with the mask, as if data started at byte `offset` of the payload
    // (so a payload may be unmasked in pieces). Fast: works on words.
    void applyMask(uint8_t* data, size_t size, const uint8_t mask[4], uint64_t offset);

    // applyMask() while copying: dst = src XOR mask, in one pass. dst and src
    // are either the same pointer or do not overlap.
    void maskCopy(uint8_t* dst, const uint8_t* src, size_t size, const uint8_t mask[4], uint64_t offset);

    // Four unpredictable bytes (RFC 6455 section 5.3), from a buffer refilled with
    // getrandom(); cheap per call and thread-safe.
    void randomMask(uint8_t mask[4]);

    // Fills out with size random bytes from the same source.
    void randomBytes(uint8_t* out, size_t size);

    // Appends one complete frame (header, then the payload, masked with a fresh
    // random key when `mask` is true) to out.
    void appendFrame(std::string& out, uint8_t opcode, bool fin, bool rsv1,
                     const char* payload, size_t size, bool mask);
} // namespace ix::detail
