#include "crypto/tls.hpp"

#include "crypto/digest.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace cwhook::crypto {
namespace {

namespace fs = std::filesystem;

struct x509_deleter {
    void operator()(X509* cert) const noexcept { X509_free(cert); }
};
struct pkey_deleter {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct ssl_deleter {
    void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
struct store_deleter {
    void operator()(X509_STORE* store) const noexcept { X509_STORE_free(store); }
};
struct store_ctx_deleter {
    void operator()(X509_STORE_CTX* ctx) const noexcept { X509_STORE_CTX_free(ctx); }
};

class Tls : public testing::Test {
protected:
    std::string path(const std::string& name) const { return dir_.file(name); }

    void write_text(const std::string& name, const std::string& text) const
    {
        std::ofstream out{path(name), std::ios::binary};
        out << text;
    }

    // Writes cert.pem/key.pem for localhost and 127.0.0.1 under `prefix`.
    void write_pair(const std::string& prefix = "") const
    {
        const auto written = write_self_signed(path(prefix + "cert.pem"), path(prefix + "key.pem"),
                                               {"localhost", "127.0.0.1", "::1"});
        ASSERT_TRUE(written) << written.error().message;
    }

    std::unique_ptr<X509, x509_deleter> read_cert(const std::string& name) const
    {
        std::FILE* file = std::fopen(path(name).c_str(), "r");
        if (file == nullptr) {
            return nullptr;
        }
        std::unique_ptr<X509, x509_deleter> cert{PEM_read_X509(file, nullptr, nullptr, nullptr)};
        std::fclose(file);
        return cert;
    }

    test::temp_dir dir_;
};

TEST_F(Tls, ServerContextLoadsSelfSignedPair)
{
    write_pair();
    const auto context = make_server_context(path("cert.pem"), path("key.pem"));
    ASSERT_TRUE(context) << context.error().message;
    EXPECT_NE((*context)->native_handle(), nullptr);
}

TEST_F(Tls, ServerContextRequiresTls12AndServerCipherOrder)
{
    write_pair();
    const auto context = make_server_context(path("cert.pem"), path("key.pem"));
    ASSERT_TRUE(context) << context.error().message;
    SSL_CTX* native = (*context)->native_handle();
    EXPECT_EQ(SSL_CTX_get_min_proto_version(native), TLS1_2_VERSION);
    const auto options = SSL_CTX_get_options(native);
    EXPECT_NE(options & SSL_OP_CIPHER_SERVER_PREFERENCE, 0U);
    EXPECT_NE(options & SSL_OP_NO_COMPRESSION, 0U);
    EXPECT_NE(options & SSL_OP_NO_RENEGOTIATION, 0U);
}

TEST_F(Tls, SelfSignedKeyFileIsOwnerOnly)
{
    write_pair();
    struct stat info {};
    ASSERT_EQ(::stat(path("key.pem").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600U);
}

TEST_F(Tls, SelfSignedCertificateCarriesNamesAsSubjectAltNames)
{
    write_pair();
    const auto cert = read_cert("cert.pem");
    ASSERT_TRUE(cert);
    EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
    EXPECT_NE(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 1);
}

TEST_F(Tls, SelfSignedCertificateVerifiesAsItsOwnTrustAnchor)
{
    write_pair();
    const auto cert = read_cert("cert.pem");
    ASSERT_TRUE(cert);
    const std::unique_ptr<X509_STORE, store_deleter> store{X509_STORE_new()};
    ASSERT_EQ(X509_STORE_add_cert(store.get(), cert.get()), 1);
    const std::unique_ptr<X509_STORE_CTX, store_ctx_deleter> ctx{X509_STORE_CTX_new()};
    ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr), 1);
    X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx.get()), "localhost", 0);
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
    EXPECT_EQ(X509_verify_cert(ctx.get()), 1)
        << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

TEST_F(Tls, WriteSelfSignedRejectsEmptyNames)
{
    EXPECT_FALSE(write_self_signed(path("cert.pem"), path("key.pem"), {}));
}

TEST_F(Tls, WriteSelfSignedNamesUnwritablePath)
{
    const std::string missing_dir = path("no-such-dir/cert.pem");
    const auto written = write_self_signed(missing_dir, path("key.pem"), {"localhost"});
    ASSERT_FALSE(written);
    EXPECT_EQ(written.error().message, missing_dir + ": no such file");
}

TEST_F(Tls, MissingCertificateFileIsNamed)
{
    write_pair();
    const auto context = make_server_context(path("absent.pem"), path("key.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("absent.pem") + ": no such file");
}

TEST_F(Tls, MissingKeyFileIsNamed)
{
    write_pair();
    const auto context = make_server_context(path("cert.pem"), path("absent.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("absent.pem") + ": no such file");
}

TEST_F(Tls, UnreadableFileIsReported)
{
    if (::geteuid() == 0) {
        GTEST_SKIP() << "root reads any file";
    }
    write_pair();
    ::chmod(path("key.pem").c_str(), 0);
    const auto context = make_server_context(path("cert.pem"), path("key.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("key.pem") + ": permission denied");
}

TEST_F(Tls, DirectoryIsNotACertificate)
{
    write_pair();
    const auto context = make_server_context(dir_.path().string(), path("key.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, dir_.path().string() + ": is a directory");
}

TEST_F(Tls, GarbageCertificateFileIsReported)
{
    write_pair();
    write_text("garbage.pem", "this is not a certificate\n");
    const auto context = make_server_context(path("garbage.pem"), path("key.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("garbage.pem") + ": not a PEM certificate");
}

TEST_F(Tls, KeyGivenAsCertificateIsReported)
{
    write_pair();
    const auto context = make_server_context(path("key.pem"), path("key.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("key.pem") + ": not a PEM certificate");
}

TEST_F(Tls, GarbageKeyFileIsReported)
{
    write_pair();
    write_text("garbage.pem", "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n");
    const auto context = make_server_context(path("cert.pem"), path("garbage.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("garbage.pem") + ": not a PEM private key (or encrypted)");
}

TEST_F(Tls, MismatchedKeyIsReported)
{
    write_pair("a-");
    write_pair("b-");
    const auto context = make_server_context(path("a-cert.pem"), path("b-key.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("b-key.pem") + ": key does not match the certificate");
}

TEST_F(Tls, KeyOfAnotherTypeIsReportedAsMismatch)
{
    write_pair();
    const std::unique_ptr<EVP_PKEY, pkey_deleter> rsa{EVP_RSA_gen(2048)};
    ASSERT_TRUE(rsa);
    std::FILE* file = std::fopen(path("rsa-key.pem").c_str(), "w");
    ASSERT_NE(file, nullptr);
    const int written = PEM_write_PrivateKey(file, rsa.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(file);
    ASSERT_EQ(written, 1);
    const auto context = make_server_context(path("cert.pem"), path("rsa-key.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("rsa-key.pem") + ": key does not match the certificate");
}

TEST_F(Tls, ClientContextWithoutCaFileVerifiesPeers)
{
    const auto context = make_client_context("");
    ASSERT_TRUE(context) << context.error().message;
    SSL_CTX* native = (*context)->native_handle();
    EXPECT_EQ(SSL_CTX_get_min_proto_version(native), TLS1_2_VERSION);
    EXPECT_NE(SSL_CTX_get_verify_mode(native) & SSL_VERIFY_PEER, 0);
}

TEST_F(Tls, ClientContextLoadsSelfSignedCertificateAsCaFile)
{
    write_pair();
    const auto context = make_client_context(path("cert.pem"));
    ASSERT_TRUE(context) << context.error().message;
}

TEST_F(Tls, ClientContextMissingCaFileIsNamed)
{
    const auto context = make_client_context(path("absent-ca.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("absent-ca.pem") + ": no such file");
}

TEST_F(Tls, ClientContextGarbageCaFileIsNamed)
{
    write_text("garbage.pem", "not a bundle\n");
    const auto context = make_client_context(path("garbage.pem"));
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error().message, path("garbage.pem") + ": not a PEM certificate bundle");
}

class PeerName : public testing::Test {
protected:
    void SetUp() override
    {
        auto context = make_client_context("");
        ASSERT_TRUE(context) << context.error().message;
        context_ = *context;
        ssl_.reset(SSL_new(context_->native_handle()));
        ASSERT_TRUE(ssl_);
    }

    std::shared_ptr<ssl::context> context_;
    std::unique_ptr<SSL, ssl_deleter> ssl_;
};

TEST_F(PeerName, HostNameSetsServerNameIndication)
{
    ASSERT_TRUE(set_peer_name(ssl_.get(), "na.myconnectwise.net"));
    const char* server_name = SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name);
    ASSERT_NE(server_name, nullptr);
    EXPECT_STREQ(server_name, "na.myconnectwise.net");
}

TEST_F(PeerName, HostNameIsCheckedAgainstTheCertificate)
{
    ASSERT_TRUE(set_peer_name(ssl_.get(), "na.myconnectwise.net"));
    EXPECT_STREQ(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl_.get()), 0), "na.myconnectwise.net");
}

TEST_F(PeerName, IpLiteralSkipsServerNameIndication)
{
    ASSERT_TRUE(set_peer_name(ssl_.get(), "127.0.0.1"));
    EXPECT_EQ(SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name), nullptr);
}

TEST_F(PeerName, BracketedIpv6LiteralIsAccepted)
{
    ASSERT_TRUE(set_peer_name(ssl_.get(), "[::1]"));
    EXPECT_EQ(SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name), nullptr);
}

TEST_F(PeerName, EmptyHostIsRefused)
{
    EXPECT_FALSE(set_peer_name(ssl_.get(), ""));
}

TEST_F(PeerName, HostWithEmbeddedNulIsRefused)
{
    EXPECT_FALSE(set_peer_name(ssl_.get(), std::string{"good.example\0evil.example", 25}));
}

} // namespace
} // namespace cwhook::crypto
