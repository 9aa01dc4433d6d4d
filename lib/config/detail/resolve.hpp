// From sources to settings and back: a parsed TOML file and the environment are matched
// against a key table (unknown sections and keys are errors), secret keys may be read from
// files, the winning values are applied, and render() writes the table back as TOML.
// Pure functions apart from reading the files that *_file keys name; thread-safe.
#pragma once

#include "config/config.hpp"
#include "config/detail/key_table.hpp"

#include <boost/system/result.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cwhook::config::detail {

template <class T>
using outcome = boost::system::result<T, std::string>;  // error: one line saying why

// A parsed TOML file reduced to what a key table understands, in the file's key order.
struct document {
    struct item {
        std::string name;
        std::optional<value> v; // nullopt: a TOML type no key accepts (date, table, array of non-strings)
    };
    struct section {
        std::string name;
        bool is_table = true;
        std::vector<item> items;
        // An array of tables ([[name]]): is_table is false and each element's items are here.
        bool is_table_array = false;
        std::vector<std::vector<item>> elements;
    };
    std::vector<section> sections;
};

// Defined in config.cpp, the only file that includes toml++.
// `source` names the text in syntax errors: "/etc/cwhook/cwhook.toml:3:7: <what toml++ says>".
outcome<document> parse_toml(std::string_view text, std::string_view source);
// An environment value spelled as a TOML array: ["a", "b"]. The error says why (no value).
outcome<std::vector<std::string>> parse_toml_array(std::string_view text);

// Why `path` cannot be used as an input file, or nullopt when it is a readable regular file.
inline std::optional<std::string> file_problem(const std::string& path)
{
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (st.type() == std::filesystem::file_type::not_found) {
        return "no such file";
    }
    if (ec) {
        return "cannot access: " + ec.message();
    }
    if (!std::filesystem::is_regular_file(st)) {
        return "not a regular file";
    }
    if (!std::ifstream(path, std::ios::binary)) {
        return "not readable";
    }
    return std::nullopt;
}

inline outcome<std::string> read_text_file(const std::string& path)
{
    if (auto why = file_problem(path)) {
        return {boost::system::in_place_error, std::move(*why)};
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        return {boost::system::in_place_error, "read error"};
    }
    return {boost::system::in_place_value, std::move(text).str()};
}

// The value of a secret given as <key>_file. Relative paths that do not exist as given are
// looked up in $CREDENTIALS_DIRECTORY, where systemd's LoadCredential= puts them, so a unit
// can say `private_key_file = "manage.key"`. The error reads "<path>: why".
inline outcome<std::string> read_secret_file(const std::string& path, const std::optional<std::string>& credentials_dir)
{
    std::string found = path;
    bool looked_in_credentials = false;
    std::error_code ec;
    if (std::filesystem::path(path).is_relative() && credentials_dir && !credentials_dir->empty() &&
        !std::filesystem::exists(path, ec)) {
        found = (std::filesystem::path(*credentials_dir) / path).string();
        looked_in_credentials = true;
    }
    auto text = read_text_file(found);
    if (!text) {
        if (looked_in_credentials) {
            return {boost::system::in_place_error,
                    fmt::format("{}: {} (nor in {})", path, text.error(), *credentials_dir)};
        }
        return {boost::system::in_place_error, fmt::format("{}: {}", path, text.error())};
    }
    // `echo secret > file` and editors add a newline nobody means as part of the secret.
    std::string secret = std::move(*text);
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) {
        secret.pop_back();
    }
    // An empty secret means "not set" to its users (admin.token: no authentication at all).
    // A file that was meant to hold one but is empty - a truncated copy, a credential that was
    // never filled in - must stop the start, not quietly switch the protection off.
    if (secret.find_first_not_of(" \t\r\n\v\f") == std::string::npos) {
        return {boost::system::in_place_error,
                fmt::format("{}: is empty (a secret file must hold the secret; remove the key to leave it unset)",
                            looked_in_credentials ? found : path)};
    }
    return {boost::system::in_place_value, std::move(secret)};
}

// CWHOOK_<SECTION>_<KEY>
inline std::string env_name(std::string_view section, std::string_view name)
{
    std::string out = "CWHOOK_";
    for (const char c : section) {
        out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
    }
    out.push_back('_');
    for (const char c : name) {
        out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
    }
    return out;
}

inline std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// An environment value as the key's kind: strings raw, integers and numbers decimal, arrays
// either a TOML array literal or a comma-separated list (containers and unit files find the
// latter easier to write; "" is the empty array). The error says why (no value).
inline outcome<value> value_from_env(kind k, const std::string& text)
{
    switch (k) {
    case kind::string:
        return {boost::system::in_place_value, text};
    case kind::integer: {
        std::int64_t n = 0;
        const auto* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, n);
        if (ec == std::errc::result_out_of_range) {
            return {boost::system::in_place_error, "out of range"};
        }
        if (ec != std::errc{} || ptr != end) {
            return {boost::system::in_place_error, "not an integer"};
        }
        return {boost::system::in_place_value, n};
    }
    case kind::number: {
        double n = 0;
        const auto* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, n);
        if (ec == std::errc::result_out_of_range) {
            return {boost::system::in_place_error, "out of range"};
        }
        if (ec != std::errc{} || ptr != end) {
            return {boost::system::in_place_error, "not a number"};
        }
        return {boost::system::in_place_value, n};
    }
    case kind::boolean: {
        const auto t = trim(text);
        if (t == "true" || t == "1" || t == "yes" || t == "on") {
            return {boost::system::in_place_value, true};
        }
        if (t == "false" || t == "0" || t == "no" || t == "off") {
            return {boost::system::in_place_value, false};
        }
        return {boost::system::in_place_error, "expected true or false"};
    }
    case kind::string_list: {
        const auto t = trim(text);
        if (t.starts_with('[')) {
            auto items = parse_toml_array(t);
            if (!items) {
                return {boost::system::in_place_error, items.error()};
            }
            return {boost::system::in_place_value, std::move(*items)};
        }
        std::vector<std::string> items;
        if (!t.empty()) {
            std::string_view rest = t;
            for (;;) {
                const auto comma = rest.find(',');
                items.emplace_back(trim(rest.substr(0, comma)));
                if (comma == std::string_view::npos) {
                    break;
                }
                rest.remove_prefix(comma + 1);
            }
        }
        return {boost::system::in_place_value, std::move(items)};
    }
    }
    return {boost::system::in_place_error, "unsupported kind"};
}

// A value chosen for one key of the table, and where it came from.
struct given {
    value v;
    std::string origin;    // "server.listen" or "CWHOOK_SERVER_LISTEN": errors name it
    bool is_path = false;  // v is the path of a secret's file, read only if this value wins
};
using choices = std::vector<std::optional<given>>;  // one a key of the table

// The file's values into `chosen`; the first problem (unknown section or key, wrong type, a
// secret given twice) otherwise.
template <class S>
std::optional<std::string> choose_from_file(const std::vector<key<S>>& table, const document& file, choices& chosen)
{
    constexpr auto none = static_cast<std::size_t>(-1);
    std::vector<bool> set_here(table.size(), false);
    for (const auto& section : file.sections) {
        const bool known =
            std::any_of(table.begin(), table.end(), [&](const key<S>& k) { return k.section == section.name; });
        if (!known) {
            return section.name + ": unknown section";
        }
        if (!section.is_table) {
            return section.name + ": expected a table";
        }
        for (const auto& item : section.items) {
            const std::string dotted = section.name + "." + item.name;
            std::size_t index = none;
            bool via_file = false;
            for (std::size_t i = 0; i < table.size() && index == none; ++i) {
                const auto& k = table[i];
                if (k.section != section.name) {
                    continue;
                }
                if (k.name == item.name) {
                    index = i;
                } else if (k.secret && item.name == fmt::format("{}_file", k.name)) {
                    index = i;
                    via_file = true;
                }
            }
            if (index == none) {
                return dotted + ": unknown key";
            }
            const auto& k = table[index];
            if (set_here[index]) {
                return fmt::format("{0}.{1} and {0}.{1}_file: give one, not both", k.section, k.name);
            }
            const kind wanted = via_file ? kind::string : k.type;
            auto v = as_kind(wanted, item.v);
            if (!v) {
                return fmt::format("{}: {}", dotted, expected_text(wanted));
            }
            chosen[index] = given{std::move(*v), dotted, via_file};
            set_here[index] = true;
        }
    }
    return std::nullopt;
}

// The environment's values into `chosen` (they win over the file's); the first problem otherwise.
template <class S>
std::optional<std::string> choose_from_env(const std::vector<key<S>>& table, const env_lookup& env, choices& chosen)
{
    for (std::size_t i = 0; i < table.size(); ++i) {
        const auto& k = table[i];
        const auto name = env_name(k.section, k.name);
        const auto direct = env(name);
        const auto path = k.secret ? env(name + "_FILE") : std::nullopt;
        if (direct && path) {
            return fmt::format("{0} and {0}_FILE: give one, not both", name);
        }
        if (direct) {
            auto v = value_from_env(k.type, *direct);
            if (!v) {
                return fmt::format("{}: {}: {}", name, k.secret ? "<redacted>" : quote(*direct), v.error());
            }
            chosen[i] = given{std::move(*v), name, false};
        } else if (path) {
            chosen[i] = given{*path, name + "_FILE", true};
        }
    }
    return std::nullopt;
}

// The settings `defaults` changed by the file (may be null) and then the environment (which
// wins). Values are applied once, after both sources are merged, so a file value that the
// environment overrides is never checked. The first problem is returned as one line naming
// the key (or variable), the value and why.
template <class S>
outcome<S> resolve(const std::vector<key<S>>& table, const document* file, const env_lookup& env, S defaults = S{})
{
    const auto error = [](std::string text) { return outcome<S>{boost::system::in_place_error, std::move(text)}; };
    choices chosen(table.size());
    if (file != nullptr) {
        if (auto why = choose_from_file(table, *file, chosen)) {
            return error(std::move(*why));
        }
    }
    std::optional<std::string> credentials_dir;
    if (env) {
        credentials_dir = env("CREDENTIALS_DIRECTORY");
        if (auto why = choose_from_env(table, env, chosen)) {
            return error(std::move(*why));
        }
    }

    S out = std::move(defaults);
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (!chosen[i]) {
            continue;
        }
        const auto& k = table[i];
        auto& g = *chosen[i];
        if (g.is_path) {
            auto secret = read_secret_file(std::get<std::string>(g.v), credentials_dir);
            if (!secret) {
                return error(fmt::format("{}: {}", g.origin, secret.error()));
            }
            g.v = std::move(*secret);
        }
        if (auto refused = k.set(out, g.v)) {
            if (refused->shown.empty()) {
                return error(fmt::format("{}: {}", g.origin, refused->why));
            }
            return error(fmt::format("{}: {}: {}", g.origin, k.secret ? "<redacted>" : refused->shown, refused->why));
        }
    }
    return {boost::system::in_place_value, std::move(out)};
}

// Every key of the table as a TOML document, section by section in table order. A secret that
// is set prints as "<redacted>"; an empty one prints as "" (that it is unset is no secret and
// is what an operator checking the configuration wants to see).
template <class S>
std::string render(const std::vector<key<S>>& table, const S& s)
{
    std::string out;
    std::set<std::string_view> done;
    std::string_view current;
    for (const auto& k : table) {
        if (k.section != current) {
            // A section split across the table would repeat its [header]: invalid TOML.
            CWHOOK_CHECK(done.insert(k.section).second);
            if (!out.empty()) {
                out += '\n';
            }
            out += fmt::format("[{}]\n", k.section);
            current = k.section;
        }
        const value v = k.get(s);
        const bool redact = k.secret && !std::get<std::string>(v).empty();
        out += fmt::format("{} = {}\n", k.name, redact ? quote("<redacted>") : toml_literal(v));
    }
    return out;
}

} // namespace cwhook::config::detail
