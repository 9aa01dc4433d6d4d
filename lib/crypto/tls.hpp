// TLS context builders (OpenSSL via Asio): server contexts from PEM files, verifying client
// contexts (system CAs + optional extra bundle), per-connection peer name checks, and a
// self-signed certificate generator for tests and the emulator.
// Contexts are immutable after construction and may be shared between threads.
#pragma once

#include "core/error.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::crypto {

namespace ssl = boost::asio::ssl;

struct tls_error {
    std::string message;  // "tls_cert: /x/y.pem: no such file", names the file and the reason
};

// TLS 1.2+, ECDHE AEAD ciphers, server cipher preference, no compression, no tickets reuse
// across restarts. The chain and key are checked to match.
boost::system::result<std::shared_ptr<ssl::context>, tls_error>
make_server_context(const std::string& cert_file, const std::string& key_file);

// TLS 1.2+, peer verification on, system default CAs plus ca_file when not empty.
boost::system::result<std::shared_ptr<ssl::context>, tls_error>
make_client_context(const std::string& ca_file);

// Arms SNI and host-name (or IP address) verification on one outbound connection.
// native_handle is the SSL* of the stream. Returns false when OpenSSL refuses.
bool set_peer_name(void* native_handle, const std::string& host);

// After a failed handshake: why the peer certificate was rejected ("certificate has
// expired", "hostname mismatch", ...), or nullopt when verification did not fail.
std::optional<std::string> peer_verify_failure(void* native_handle);

// Writes a fresh EC P-256 key and a self-signed certificate valid for `names` (DNS names or
// IP literals, as subjectAltName) to the two paths. For tests and the emulator.
boost::system::result<void, tls_error>
write_self_signed(const std::string& cert_file, const std::string& key_file,
                  const std::vector<std::string>& names, int valid_days = 30);

} // namespace cwhook::crypto
