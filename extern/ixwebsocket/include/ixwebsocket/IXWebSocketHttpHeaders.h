#pragma once
#include "IXStrCaseCompare.h"
#include <map>
#include <string>

namespace ix
{
    using WebSocketHttpHeaders = std::map<std::string, std::string, CaseInsensitiveLess>;
} // namespace ix
