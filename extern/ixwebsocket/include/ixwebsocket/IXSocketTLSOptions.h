#pragma once
#include <string>

namespace ix
{
    struct SocketTLSOptions
    {
    public:
        std::string certFile;
        std::string keyFile;
        std::string caFile = "SYSTEM";
        std::string ciphers = "DEFAULT";
        bool tls = false;
        bool disable_hostname_validation = false;

        bool isValid() const;
        bool hasCertAndKey() const;
        bool isUsingSystemDefaults() const;
        bool isUsingInMemoryCAs() const;
        bool isPeerVerifyDisabled() const;
        bool isUsingDefaultCiphers() const;
        const std::string& getErrorMsg() const;
        std::string getDescription() const;

    private:
        mutable std::string _errMsg;
        mutable bool _validated = false;
    };
} // namespace ix
