#pragma once
#include <string>

namespace ix
{
    std::string userAgent();
} // namespace ix
