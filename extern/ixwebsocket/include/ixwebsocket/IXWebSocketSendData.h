#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ix
{
    // A non-owning view over bytes to send: the source must outlive the call.
    class IXWebSocketSendData
    {
    public:
        using const_iterator = const char*;
        using iterator = const char*;

        IXWebSocketSendData(const std::string& s) : _data(s.data()), _size(s.size()) {}
        IXWebSocketSendData(const std::vector<char>& v) : _data(v.data()), _size(v.size()) {}
        IXWebSocketSendData(const std::vector<uint8_t>& v)
            : _data(reinterpret_cast<const char*>(v.data())), _size(v.size())
        {
        }
        IXWebSocketSendData(const char* data, size_t size)
            : _data(data), _size(data == nullptr ? 0 : size)
        {
        }

        bool empty() const { return _size == 0; }
        const char* c_str() const { return _data; }
        const char* data() const { return _data; }
        size_t size() const { return _size; }
        const_iterator begin() const { return _data; }
        const_iterator end() const { return _data + _size; }
        const_iterator cbegin() const { return _data; }
        const_iterator cend() const { return _data + _size; }

    private:
        const char* _data;
        const size_t _size;
    };
} // namespace ix
