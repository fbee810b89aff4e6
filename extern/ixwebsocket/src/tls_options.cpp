// SocketTLSOptions: plain settings plus a few predicates. Validation only looks at
// the file system; the TLS backend does the real loading at connect/accept time.
#include "IXSocketTLSOptions.h"

#include <sstream>
#include <sys/stat.h>

namespace ix
{
    namespace
    {
        const char kPemMarker[] = "-----BEGIN CERTIFICATE-----";

        bool fileExists(const std::string& path)
        {
            struct stat st;
            return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
        }
    } // namespace

    bool SocketTLSOptions::isValid() const
    {
        if (_validated) return _errMsg.empty();

        _errMsg.clear();
        if (certFile.empty() != keyFile.empty())
        {
            _errMsg = certFile.empty() ? "keyFile is set but certFile is empty"
                                       : "certFile is set but keyFile is empty";
        }
        else if (!certFile.empty() && !fileExists(certFile))
        {
            _errMsg = "certFile not found: " + certFile;
        }
        else if (!keyFile.empty() && !fileExists(keyFile))
        {
            _errMsg = "keyFile not found: " + keyFile;
        }
        else if (!isUsingSystemDefaults() && !isPeerVerifyDisabled() && !isUsingInMemoryCAs() &&
                 !caFile.empty() && !fileExists(caFile))
        {
            _errMsg = "caFile not found: " + caFile;
        }

        _validated = true;
        return _errMsg.empty();
    }

    bool SocketTLSOptions::hasCertAndKey() const { return !certFile.empty() && !keyFile.empty(); }

    bool SocketTLSOptions::isUsingSystemDefaults() const { return caFile == "SYSTEM"; }

    bool SocketTLSOptions::isUsingInMemoryCAs() const
    {
        return caFile.find(kPemMarker) != std::string::npos;
    }

    bool SocketTLSOptions::isPeerVerifyDisabled() const { return caFile == "NONE"; }

    bool SocketTLSOptions::isUsingDefaultCiphers() const
    {
        return ciphers.empty() || ciphers == "DEFAULT";
    }

    const std::string& SocketTLSOptions::getErrorMsg() const { return _errMsg; }

    std::string SocketTLSOptions::getDescription() const
    {
        std::ostringstream out;
        out << "TLS Options:\n";
        out << "  certFile = " << certFile << "\n";
        out << "  keyFile  = " << keyFile << "\n";
        out << "  caFile   = " << (isUsingInMemoryCAs() ? std::string("<in-memory PEM>") : caFile)
            << "\n";
        out << "  ciphers  = " << ciphers << "\n";
        out << "  tls      = " << (tls ? "true" : "false") << "\n";
        return out.str();
    }
} // namespace ix
