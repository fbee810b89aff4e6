#pragma once
#include <string>

namespace ix
{
    // Byte-wise, C-locale, case-insensitive ordering used by WebSocketHttpHeaders.
    struct CaseInsensitiveLess
    {
        static bool cmp(const std::string& a, const std::string& b);
        bool operator()(const std::string& a, const std::string& b) const { return cmp(a, b); }
    };
} // namespace ix
