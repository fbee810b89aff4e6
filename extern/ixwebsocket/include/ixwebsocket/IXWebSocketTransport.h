#pragma once

namespace ix
{
    enum class SendMessageKind
    {
        Text,
        Binary,
        Ping
    };
} // namespace ix
