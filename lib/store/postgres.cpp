#include "store/postgres.hpp"

#include "store/settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace cwhook::store::pg {

namespace {

// Type OIDs of the built-in types used here (server catalog pg_type; stable across versions).
constexpr Oid bytea_oid = 17;
constexpr Oid int8_oid = 20;
constexpr Oid int2_oid = 21;
constexpr Oid int4_oid = 23;
constexpr Oid text_oid = 25;

std::uint64_t read_be(const char* p, int n) noexcept
{
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    }
    return v;
}

} // namespace

std::string trimmed(const char* message)
{
    // libpq's messages span lines ("...\n\tThis probably means..."): one line for the log.
    std::string m;
    bool space = false;
    for (const char* p = message != nullptr ? message : ""; *p != '\0'; ++p) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = !m.empty();
            continue;
        }
        if (space) {
            m += ' ';
            space = false;
        }
        m += *p;
    }
    return m;
}

namespace {

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept
{
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c >= 0x01 && c < 0x80) {
        return 1;
    }
    const auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) {
        return cont(i + 1) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(i + 1) || !cont(i + 2)) {
            return 0;
        }
        const unsigned char c1 = b(i + 1);
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) {
            return 0;  // overlong, or a surrogate
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) {
            return 0;
        }
        const unsigned char c1 = b(i + 1);
        if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) {
            return 0;
        }
        return 4;
    }
    return 0;  // NUL, a stray continuation byte, or an invalid lead byte
}

} // namespace

errc to_errc(const error& e) noexcept
{
    const std::string_view s = e.sqlstate;
    if (e.connection_lost || s.starts_with("08") || s == "25006" || s == "57P01" || s == "57P02" || s == "57P03" ||
        s == "53300") {
        return errc::storage_unavailable;
    }
    if (s == "53100" || s == "53200") {
        return errc::storage_full;
    }
    if (s == "40001" || s == "40P01" || s == "55P03" || s == "57014") {
        return errc::storage_busy;
    }
    return errc::storage_error;
}

std::optional<std::string> clean_text(std::string_view s)
{
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            break;
        }
        i += n;
    }
    if (i == s.size()) {
        return std::nullopt;
    }
    std::string out(s.substr(0, i));
    while (i < s.size()) {
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

// ---- params -----------------------------------------------------------------------------

void params::reserve(std::size_t n)
{
    types_.reserve(n);
    values_.reserve(n);
    lengths_.reserve(n);
    formats_.reserve(n);
}

void params::add(std::int64_t v)
{
    auto& buf = ints_.emplace_back();
    auto u = static_cast<std::uint64_t>(v);
    for (int i = 7; i >= 0; --i) {
        buf[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xFF);
        u >>= 8;
    }
    types_.push_back(int8_oid);
    values_.push_back(buf.data());
    lengths_.push_back(8);
    formats_.push_back(1);
}

void params::add(std::optional<std::int64_t> v)
{
    if (v) {
        add(*v);
        return;
    }
    types_.push_back(int8_oid);
    values_.push_back(nullptr);
    lengths_.push_back(0);
    formats_.push_back(1);
}

void params::add_text(std::string_view v)
{
    if (auto cleaned = clean_text(v)) {
        v = cleaned_.emplace_back(std::move(*cleaned));
    }
    types_.push_back(text_oid);
    // A zero-length binary value still needs a non-null pointer (null means SQL NULL).
    values_.push_back(v.empty() ? "" : v.data());
    lengths_.push_back(static_cast<int>(v.size()));
    formats_.push_back(1);
}

void params::add_text(const std::optional<std::string>& v)
{
    if (v) {
        add_text(std::string_view(*v));
    } else {
        add_null_text();
    }
}

void params::add_null_text()
{
    types_.push_back(text_oid);
    values_.push_back(nullptr);
    lengths_.push_back(0);
    formats_.push_back(1);
}

void params::add_bytea(std::string_view v)
{
    types_.push_back(bytea_oid);
    values_.push_back(v.empty() ? "" : v.data());
    lengths_.push_back(static_cast<int>(v.size()));
    formats_.push_back(1);
}

// ---- rows -------------------------------------------------------------------------------

std::int64_t rows::affected() const noexcept
{
    const char* n = PQcmdTuples(r_.get());
    return n == nullptr || *n == '\0' ? 0 : std::strtoll(n, nullptr, 10);
}

std::int64_t rows::int64(int row, int col) const noexcept
{
    const char* p = PQgetvalue(r_.get(), row, col);
    switch (PQftype(r_.get(), col)) {
    case int2_oid: return static_cast<std::int16_t>(read_be(p, 2));
    case int4_oid: return static_cast<std::int32_t>(read_be(p, 4));
    default: return static_cast<std::int64_t>(read_be(p, 8));
    }
}

std::optional<std::int64_t> rows::int64_or_null(int row, int col) const noexcept
{
    if (is_null(row, col)) {
        return std::nullopt;
    }
    return int64(row, col);
}

std::string_view rows::bytes(int row, int col) const noexcept
{
    return {PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
}

std::optional<std::string> rows::text_or_null(int row, int col) const
{
    if (is_null(row, col)) {
        return std::nullopt;
    }
    return text(row, col);
}

// ---- connection -------------------------------------------------------------------------

outcome<connection> connection::open(const std::string& url, std::chrono::seconds connect_timeout)
{
    const std::string timeout = std::to_string(std::max<std::int64_t>(connect_timeout.count(), 2));
    // Defaults first: dbname (the URL, expanded) comes last, so what the URL says wins.
    const char* keys[] = {"connect_timeout",     "application_name", "keepalives",         "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",   "dbname",
                          nullptr};
    const char* values[] = {timeout.c_str(), "cwhook", "1", "5", "1", "2", "3000", url.c_str(), nullptr};
    connection c;
    c.c_.reset(PQconnectdbParams(keys, values, 1));
    if (!c.c_) {
        return error("", "out of memory", true);
    }
    if (PQstatus(c.c_.get()) != CONNECTION_OK) {
        return error("", trimmed(PQerrorMessage(c.c_.get())), true);
    }
    // The server's NOTICEs ("relation ... already exists, skipping") are not for stderr.
    PQsetNoticeProcessor(c.c_.get(), [](void*, const char*) {}, nullptr);
    return c;
}

error connection::last_error(const PGresult* r) const
{
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const char* message = r != nullptr ? PQresultErrorMessage(r) : nullptr;
    if (message == nullptr || *message == '\0') {
        message = c_ ? PQerrorMessage(c_.get()) : "not connected";
    }
    const bool lost = !c_ || PQstatus(c_.get()) != CONNECTION_OK;
    return error(state != nullptr ? state : "", trimmed(message), lost);
}

outcome<void> connection::exec(const char* sql)
{
    if (!c_) {
        return error("", "not connected", true);
    }
    rows r(PQexec(c_.get(), sql));
    const auto status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return last_error(r.get());
    }
    return {};
}

outcome<rows> connection::query(const std::string& sql, const params& p)
{
    if (!c_) {
        return error("", "not connected", true);
    }
    rows r(PQexecParams(c_.get(), sql.c_str(), static_cast<int>(p.size()), p.types(), p.values(), p.lengths(),
                        p.formats(), 1));
    const auto status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return last_error(r.get());
    }
    return r;
}

outcome<std::string> connection::query_text(const char* sql)
{
    if (!c_) {
        return error("", "not connected", true);
    }
    rows r(PQexec(c_.get(), sql));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
        return last_error(r.get());
    }
    if (r.empty()) {
        return std::string();
    }
    return r.text(0, 0);
}

std::string connection::describe() const
{
    if (!c_) {
        return "(not connected)";
    }
    const char* host = PQhost(c_.get());
    const char* port = PQport(c_.get());
    const char* db = PQdb(c_.get());
    return fmt::format("{}:{}/{}", host != nullptr ? host : "", port != nullptr ? port : "", db != nullptr ? db : "");
}

// ---- transaction ------------------------------------------------------------------------

outcome<transaction> transaction::begin(connection& c)
{
    if (auto r = c.exec("BEGIN"); !r) {
        return r.error();
    }
    return transaction(c);
}

transaction::~transaction()
{
    if (c_ != nullptr && c_->is_open()) {
        (void)c_->exec("ROLLBACK");
    }
}

outcome<void> transaction::commit()
{
    connection* c = std::exchange(c_, nullptr);
    return c->exec("COMMIT");
}

} // namespace cwhook::store::pg

namespace cwhook::store {

std::string redact_url(std::string_view url)
{
    char* err = nullptr;
    const std::string text(url);
    PQconninfoOption* options = PQconninfoParse(text.c_str(), &err);
    if (options == nullptr) {
        PQfreemem(err);
        return "(unparsable connection string)";
    }
    std::string out;
    for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
        if (o->val == nullptr || *o->val == '\0') {
            continue;
        }
        const std::string_view key = o->keyword;
        const bool secret = key == "password" || key == "sslpassword";
        out += fmt::format("{}{}={}", out.empty() ? "" : " ", key, secret ? "***" : o->val);
    }
    PQconninfoFree(options);
    return out;
}

std::string check_url(std::string_view url)
{
    if (url.empty()) {
        return "empty connection string";
    }
    char* err = nullptr;
    const std::string text(url);
    PQconninfoOption* options = PQconninfoParse(text.c_str(), &err);
    if (options == nullptr) {
        std::string why = pg::trimmed(err != nullptr ? err : "cannot parse");
        PQfreemem(err);
        // libpq may quote the part it could not parse; never let that be a password.
        if (const auto scheme = text.find("://"); scheme != std::string::npos) {
            const auto at = text.find('@', scheme + 3);
            const auto colon = text.find(':', scheme + 3);
            if (at != std::string::npos && colon != std::string::npos && colon < at) {
                const std::string password = text.substr(colon + 1, at - colon - 1);
                for (auto pos = why.find(password); !password.empty() && pos != std::string::npos;
                     pos = why.find(password)) {
                    why.replace(pos, password.size(), "***");
                }
            }
        }
        return why;
    }
    PQconninfoFree(options);
    return {};
}

} // namespace cwhook::store
