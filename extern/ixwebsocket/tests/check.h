#pragma once
// A tiny assertion helper for the engine's unit tests: failed checks are
// reported with file, line and the values involved, and counted; main() ends
// with `return CHECK_REPORT();`, which prints a summary and yields the exit code.
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

namespace ixtest
{
    inline int& failures()
    {
        static int n = 0;
        return n;
    }
    inline long& checks()
    {
        static long n = 0;
        return n;
    }

    template <typename T, typename = void>
    struct Printable : std::false_type
    {
    };
    template <typename T>
    struct Printable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
        : std::true_type
    {
    };

    inline std::string escape(const std::string& s)
    {
        std::string r = "\"";
        for (unsigned char c : s)
        {
            if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"')
            {
                r += static_cast<char>(c);
            }
            else
            {
                char buf[8];
                std::snprintf(buf, sizeof(buf), "\\x%02X", c);
                r += buf;
            }
            if (r.size() > 300)
            {
                r += "...";
                break;
            }
        }
        return r + "\"";
    }

    template <typename T>
    std::string show(const T& v)
    {
        if constexpr (std::is_convertible_v<const T&, std::string>)
        {
            return escape(std::string(v));
        }
        else if constexpr (std::is_same_v<T, bool>)
        {
            return v ? "true" : "false";
        }
        else if constexpr (std::is_enum_v<T>)
        {
            return std::to_string(static_cast<long long>(v));
        }
        else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t> ||
                           std::is_same_v<T, char>)
        {
            return std::to_string(static_cast<int>(v));
        }
        else if constexpr (Printable<T>::value)
        {
            std::ostringstream os;
            os << v;
            return os.str();
        }
        else
        {
            return "<value>";
        }
    }

    inline bool check(bool ok, const char* expr, const char* file, int line)
    {
        ++checks();
        if (!ok)
        {
            ++failures();
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
        }
        return ok;
    }

    template <typename A, typename B>
    bool checkEq(const A& a, const B& b, const char* ea, const char* eb, const char* file, int line)
    {
        ++checks();
        if (a == b) return true;
        ++failures();
        std::fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s\n    left:  %s\n    right: %s\n", file,
                     line, ea, eb, show(a).c_str(), show(b).c_str());
        return false;
    }

    inline int report()
    {
        if (failures() == 0)
        {
            std::printf("OK: %ld checks passed\n", checks());
            return 0;
        }
        std::printf("FAILED: %d of %ld checks failed\n", failures(), checks());
        return 1;
    }
} // namespace ixtest

#define CHECK(cond) ::ixtest::check(static_cast<bool>(cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ(a, b) ::ixtest::checkEq((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_REPORT() ::ixtest::report()
