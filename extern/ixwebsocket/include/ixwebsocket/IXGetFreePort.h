#pragma once

namespace ix
{
    int getFreePort();
} // namespace ix
