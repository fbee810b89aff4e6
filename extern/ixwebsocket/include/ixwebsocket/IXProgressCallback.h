#pragma once
#include <functional>
#include <string>

namespace ix
{
    using OnProgressCallback = std::function<bool(int current, int total)>;
    using OnChunkCallback = std::function<void(const std::string&)>;
} // namespace ix
