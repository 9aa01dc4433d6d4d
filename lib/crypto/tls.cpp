// Design: contexts are built once at start-up and then only read, so every failure here is a
// start-up failure that must name the file and the reason in one line. OpenSSL's own errors
// ("PEM routines::no start line") mean little to an operator, so the usual mistakes (missing
// file, unreadable file, wrong file, key of another certificate) are told apart by checking
// the file first and by re-reading a rejected key. Every OpenSSL object is owned by a
// unique_ptr, and the thread's OpenSSL error queue is cleared after a failure so that a stale
// entry cannot be misread by a later SSL_get_error on the same thread.
#include "crypto/tls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <exception>
#include <optional>
#include <string_view>
#include <system_error>

namespace cwhook::crypto {
namespace {

template <auto free_function>
struct openssl_deleter {
    template <class T>
    void operator()(T* object) const noexcept
    {
        free_function(object);
    }
};

using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO_free_all>>;
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BN_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY_free>>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, openssl_deleter<EVP_PKEY_CTX_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_deleter<X509_EXTENSION_free>>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, openssl_deleter<GENERAL_NAMES_free>>;
using general_name_ptr = std::unique_ptr<GENERAL_NAME, openssl_deleter<GENERAL_NAME_free>>;
using ia5_string_ptr = std::unique_ptr<ASN1_IA5STRING, openssl_deleter<ASN1_IA5STRING_free>>;
using octet_string_ptr = std::unique_ptr<ASN1_OCTET_STRING, openssl_deleter<ASN1_OCTET_STRING_free>>;

// Forward secrecy and AEAD only; TLS 1.3 suites are all AEAD and keep OpenSSL's defaults.
constexpr const char* server_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// X.509 caps commonName at 64 characters; subjectAltName carries the real names anyway.
constexpr std::size_t max_common_name = 64;

tls_error file_error(const std::string& path, std::string_view reason)
{
    return tls_error{path + ": " + std::string{reason}};
}

std::string errno_reason(int error)
{
    switch (error) {
    case ENOENT:
    case ENOTDIR: return "no such file";
    case EACCES:
    case EPERM: return "permission denied";
    default: return std::generic_category().message(error);
    }
}

// The most recent OpenSSL error as text, for the rare failures that are not the operator's.
std::string openssl_reason()
{
    const unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0) {
        return "unknown OpenSSL error";
    }
    char buffer[256] = {};
    ERR_error_string_n(code, buffer, sizeof buffer);
    return buffer;
}

// Checked before OpenSSL sees the file, whose own report would not say which of these it was.
std::optional<tls_error> check_readable(const std::string& path)
{
    if (path.empty()) {
        return tls_error{"no file name given"};
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return file_error(path, errno_reason(errno));
    }
    struct stat info {};
    const bool is_directory = ::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode);
    ::close(fd);
    if (is_directory) {
        return file_error(path, "is a directory");
    }
    return std::nullopt;
}

// A daemon must never stop at start-up to prompt for a passphrase on a terminal, which is
// what OpenSSL's default callback does for an encrypted key; refusing makes it a plain error.
int refuse_passphrase(char*, int, int, void*)
{
    return 0;
}

bool is_pem_private_key(const std::string& path)
{
    const bio_ptr bio{BIO_new_file(path.c_str(), "r")};
    if (!bio) {
        return false;
    }
    const pkey_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr)};
    ERR_clear_error();
    return key != nullptr;
}

// Accepts "[::1]" as well as "::1", since hosts taken from URLs keep the brackets.
std::string strip_brackets(const std::string& host)
{
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        return host.substr(1, host.size() - 2);
    }
    return host;
}

bool is_ip_literal(const std::string& text)
{
    unsigned char address[16] = {};
    return ::inet_pton(AF_INET, text.c_str(), address) == 1 || ::inet_pton(AF_INET6, text.c_str(), address) == 1;
}

boost::system::result<std::shared_ptr<ssl::context>, tls_error> new_context(ssl::context::method method)
{
    std::shared_ptr<ssl::context> context;
    try {
        context = std::make_shared<ssl::context>(method);
    } catch (const std::exception& e) {
        ERR_clear_error();
        return tls_error{std::string{"cannot create a TLS context: "} + e.what()};
    }
    SSL_CTX* native = context->native_handle();
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
        return tls_error{"cannot require TLS 1.2: " + openssl_reason()};
    }
    // Compression invites CRIME-style attacks; renegotiation only adds attack surface and
    // neither Manage nor any client of ours needs it.
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_default_passwd_cb(native, refuse_passphrase);
    return context;
}

std::optional<std::string> write_file(const std::string& path, std::string_view data, mode_t mode)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return errno_reason(errno);
    }
    // O_CREAT leaves an existing file's mode alone; a private key must not stay readable.
    if (::fchmod(fd, mode) != 0) {
        const int error = errno;
        ::close(fd);
        return errno_reason(error);
    }
    while (!data.empty()) {
        const ssize_t written = ::write(fd, data.data(), data.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int error = errno;
            ::close(fd);
            return errno_reason(error);
        }
        data.remove_prefix(static_cast<std::size_t>(written));
    }
    if (::close(fd) != 0) {
        return errno_reason(errno);
    }
    return std::nullopt;
}

std::string_view memory_contents(BIO* bio)
{
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    if (size <= 0 || data == nullptr) {
        return {};
    }
    return {data, static_cast<std::size_t>(size)};
}

pkey_ptr generate_p256_key()
{
    const pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr)};
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1) {
        return nullptr;
    }
    EVP_PKEY* key = nullptr;
    if (EVP_PKEY_generate(ctx.get(), &key) != 1) {
        return nullptr;
    }
    return pkey_ptr{key};
}

// subjectAltName is what clients check (RFC 6125); IP literals must be iPAddress entries,
// since a client never matches an address against a dNSName.
std::optional<std::string> add_subject_alt_names(X509* cert, const std::vector<std::string>& names)
{
    const general_names_ptr entries{GENERAL_NAMES_new()};
    if (!entries) {
        return openssl_reason();
    }
    for (const std::string& name : names) {
        general_name_ptr entry{GENERAL_NAME_new()};
        if (!entry) {
            return openssl_reason();
        }
        const std::string literal = strip_brackets(name);
        if (is_ip_literal(literal)) {
            octet_string_ptr address{a2i_IPADDRESS(literal.c_str())};
            if (!address) {
                ERR_clear_error();
                return "invalid IP address " + name;
            }
            GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, address.release());
        } else {
            if (name.empty() || name.size() > INT_MAX ||
                name.find_first_of(std::string_view{"\0 ,", 3}) != std::string::npos) {
                return "invalid DNS name '" + name + "'";
            }
            ia5_string_ptr dns{ASN1_IA5STRING_new()};
            if (!dns || ASN1_STRING_set(dns.get(), name.data(), static_cast<int>(name.size())) != 1) {
                return openssl_reason();
            }
            GENERAL_NAME_set0_value(entry.get(), GEN_DNS, dns.release());
        }
        if (sk_GENERAL_NAME_push(entries.get(), entry.get()) == 0) {
            return openssl_reason();
        }
        static_cast<void>(entry.release());  // now owned by entries
    }
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, entries.get(), 0, X509V3_ADD_DEFAULT) != 1) {
        return openssl_reason();
    }
    return std::nullopt;
}

std::optional<std::string> add_extension(X509* cert, int nid, const char* value)
{
    X509V3_CTX v3{};
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    const extension_ptr extension{X509V3_EXT_conf_nid(nullptr, &v3, nid, value)};
    if (!extension || X509_add_ext(cert, extension.get(), -1) != 1) {
        return openssl_reason();
    }
    return std::nullopt;
}

// Builds the certificate; returns the reason on failure.
std::optional<std::string> fill_certificate(X509* cert, EVP_PKEY* key, const std::vector<std::string>& names,
                                            int valid_days)
{
    if (X509_set_version(cert, X509_VERSION_3) != 1) {
        return openssl_reason();
    }
    // A random positive 127-bit serial: two certificates from one issuer name (every test
    // certificate is "CN=localhost") must not share a serial or clients may reject them.
    const bignum_ptr serial{BN_new()};
    if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
        return openssl_reason();
    }
    // An hour of slack absorbs clock skew between the writer and whoever verifies.
    if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == nullptr ||
        X509_time_adj_ex(X509_getm_notAfter(cert), valid_days, 0, nullptr) == nullptr) {
        return openssl_reason();
    }
    if (X509_set_pubkey(cert, key) != 1) {
        return openssl_reason();
    }

    const std::string& first = names.front();
    const std::string common_name = first.size() <= max_common_name ? first : std::string{"cwhook self-signed"};
    X509_NAME* subject = X509_get_subject_name(cert);
    if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) != 1 ||
        X509_set_issuer_name(cert, subject) != 1) {
        return openssl_reason();
    }

    if (auto reason = add_subject_alt_names(cert, names)) {
        return reason;
    }
    // CA:TRUE lets the certificate serve as its own trust anchor (a client's ca_file);
    // digitalSignature is what an ECDHE-ECDSA handshake needs from the leaf.
    if (auto reason = add_extension(cert, NID_basic_constraints, "critical,CA:TRUE")) {
        return reason;
    }
    if (auto reason = add_extension(cert, NID_key_usage, "critical,digitalSignature,keyCertSign")) {
        return reason;
    }
    if (auto reason = add_extension(cert, NID_subject_key_identifier, "hash")) {
        return reason;
    }
    if (X509_sign(cert, key, EVP_sha256()) <= 0) {
        return openssl_reason();
    }
    return std::nullopt;
}

} // namespace

boost::system::result<std::shared_ptr<ssl::context>, tls_error>
make_server_context(const std::string& cert_file, const std::string& key_file)
{
    if (auto error = check_readable(cert_file)) {
        return *error;
    }
    if (auto error = check_readable(key_file)) {
        return *error;
    }
    auto context = new_context(ssl::context::tls_server);
    if (!context) {
        return context;
    }
    SSL_CTX* native = (*context)->native_handle();
    if (SSL_CTX_set_cipher_list(native, server_ciphers) != 1) {
        return tls_error{"cannot set the cipher list: " + openssl_reason()};
    }
    SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);

    boost::system::error_code ec;
    (*context)->use_certificate_chain_file(cert_file, ec);
    if (ec) {
        ERR_clear_error();
        return file_error(cert_file, "not a PEM certificate");
    }
    (*context)->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) {
        ERR_clear_error();
        // OpenSSL refuses a key of the certificate's type that does not match it at load
        // time, with the same kind of error as an unreadable key: re-read it to tell which.
        if (!is_pem_private_key(key_file)) {
            return file_error(key_file, "not a PEM private key (or encrypted)");
        }
        return file_error(key_file, "key does not match the certificate");
    }
    // A key of another type (RSA key, EC certificate) loads into its own slot; only this
    // check catches it.
    if (SSL_CTX_check_private_key(native) != 1) {
        ERR_clear_error();
        return file_error(key_file, "key does not match the certificate");
    }
    return context;
}

boost::system::result<std::shared_ptr<ssl::context>, tls_error>
make_client_context(const std::string& ca_file)
{
    if (!ca_file.empty()) {
        if (auto error = check_readable(ca_file)) {
            return *error;
        }
    }
    auto context = new_context(ssl::context::tls_client);
    if (!context) {
        return context;
    }
    boost::system::error_code ec;
    (*context)->set_verify_mode(ssl::verify_peer, ec);
    if (ec) {
        ERR_clear_error();
        return tls_error{"cannot enable peer verification: " + ec.message()};
    }
    (*context)->set_default_verify_paths(ec);
    if (ec) {
        ERR_clear_error();
        return tls_error{"cannot load the system CA certificates: " + ec.message()};
    }
    if (!ca_file.empty()) {
        (*context)->load_verify_file(ca_file, ec);
        if (ec) {
            ERR_clear_error();
            return file_error(ca_file, "not a PEM certificate bundle");
        }
    }
    return context;
}

bool set_peer_name(void* native_handle, const std::string& host)
{
    auto* ssl = static_cast<SSL*>(native_handle);
    // OpenSSL takes C strings here: an embedded NUL would silently shorten the checked name.
    if (ssl == nullptr || host.empty() || host.find('\0') != std::string::npos) {
        return false;
    }
    const std::string literal = strip_brackets(host);
    const bool ip = is_ip_literal(literal);
    // RFC 6066 section 3 forbids IP literals in server_name.
    if (!ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
        ERR_clear_error();
        return false;
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, literal.c_str()) != 1) {
            ERR_clear_error();
            return false;
        }
        return true;
    }
    // "*.example.com" matches, "w*.example.com" does not: partial wildcards are a known
    // source of mis-issuance and no legitimate key server needs them.
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1) {
        ERR_clear_error();
        return false;
    }
    return true;
}

std::optional<std::string> peer_verify_failure(void* native_handle)
{
    const auto* ssl = static_cast<const SSL*>(native_handle);
    if (ssl == nullptr) {
        return std::nullopt;
    }
    const long result = SSL_get_verify_result(ssl);
    if (result == X509_V_OK) {
        return std::nullopt;
    }
    return std::string(X509_verify_cert_error_string(result));
}

boost::system::result<void, tls_error>
write_self_signed(const std::string& cert_file, const std::string& key_file, const std::vector<std::string>& names,
                  int valid_days)
{
    if (names.empty()) {
        return tls_error{"no names given for the self-signed certificate"};
    }
    if (valid_days <= 0) {
        return tls_error{"validity of the self-signed certificate must be positive"};
    }
    const pkey_ptr key = generate_p256_key();
    if (!key) {
        return tls_error{"cannot generate an EC P-256 key: " + openssl_reason()};
    }
    const x509_ptr cert{X509_new()};
    if (!cert) {
        return tls_error{"cannot create a certificate: " + openssl_reason()};
    }
    if (auto reason = fill_certificate(cert.get(), key.get(), names, valid_days)) {
        return tls_error{"cannot build the self-signed certificate: " + *reason};
    }

    const bio_ptr key_pem{BIO_new(BIO_s_mem())};
    const bio_ptr cert_pem{BIO_new(BIO_s_mem())};
    if (!key_pem || !cert_pem ||
        PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_X509(cert_pem.get(), cert.get()) != 1) {
        return tls_error{"cannot encode the self-signed certificate: " + openssl_reason()};
    }
    // The key is written first and owner-only, so no reader ever sees a certificate whose
    // key is not in place yet.
    if (auto reason = write_file(key_file, memory_contents(key_pem.get()), 0600)) {
        return file_error(key_file, *reason);
    }
    if (auto reason = write_file(cert_file, memory_contents(cert_pem.get()), 0644)) {
        return file_error(cert_file, *reason);
    }
    return {};
}

} // namespace cwhook::crypto
