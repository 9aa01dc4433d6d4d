// Design: simdjson validates (so the formatter below only ever sees well-formed JSON), then
// a small single-pass formatter copies every token byte for byte and only changes the
// whitespace between tokens. Nothing is parsed into numbers and written back, which is what
// keeps "2.00" and 1.0E+2 exactly as sent.
#include "json/pretty.hpp"

#include "json/detail/validate.hpp"

#include <cstdint>

namespace cwhook::json {

namespace {

// Leaves every Entity alone (nested values, plain reformat()).
constexpr auto no_hook = [](std::string_view, int) { return false; };

class formatter {
public:
    formatter(std::string& out, int indent, int base_depth) : out_(out), indent_(indent), depth_(base_depth) {}

    // Formats one value starting at text[pos] (whitespace allowed before it); returns the
    // position after it. entity_hook: called for the top-level object's "Entity" value.
    template <class Hook>
    std::size_t value(std::string_view t, std::size_t pos, bool top_object, Hook&& entity_hook)
    {
        pos = skip_ws(t, pos);
        const char c = t[pos];
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            out_.push_back(c);
            pos = skip_ws(t, pos + 1);
            if (t[pos] == close) {
                out_.push_back(close);
                return pos + 1;
            }
            ++depth_;
            for (;;) {
                newline();
                if (c == '{') {
                    const std::size_t key_start = pos;
                    pos = string_end(t, pos);
                    const auto key = t.substr(key_start, pos - key_start);
                    out_ += key;
                    pos = skip_ws(t, pos);  // at ':'
                    out_ += indent_ > 0 ? ": " : ":";
                    pos = skip_ws(t, pos + 1);
                    if (top_object && key == "\"Entity\"" && t[pos] == '"') {
                        const std::size_t end = string_end(t, pos);
                        if (!entity_hook(t.substr(pos, end - pos), depth_)) {
                            out_ += t.substr(pos, end - pos);
                        }
                        pos = end;
                    } else {
                        pos = value(t, pos, false, no_hook);
                    }
                } else {
                    pos = value(t, pos, false, no_hook);
                }
                pos = skip_ws(t, pos);
                if (t[pos] == ',') {
                    out_.push_back(',');
                    pos = skip_ws(t, pos + 1);
                    continue;
                }
                --depth_;
                newline();
                out_.push_back(close);
                return pos + 1;
            }
        }
        if (c == '"') {
            const std::size_t end = string_end(t, pos);
            out_ += t.substr(pos, end - pos);
            return end;
        }
        // Numbers and literals: copied as written.
        std::size_t end = pos;
        while (end < t.size() && !is_ws(t[end]) && t[end] != ',' && t[end] != '}' && t[end] != ']') {
            ++end;
        }
        out_ += t.substr(pos, end - pos);
        return end;
    }

private:
    static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

    static std::size_t skip_ws(std::string_view t, std::size_t pos)
    {
        while (pos < t.size() && is_ws(t[pos])) {
            ++pos;
        }
        return pos;
    }

    // t[pos] is the opening quote; returns the position after the closing one.
    static std::size_t string_end(std::string_view t, std::size_t pos)
    {
        ++pos;
        while (pos < t.size() && t[pos] != '"') {
            pos += t[pos] == '\\' ? 2 : 1;
        }
        return pos + 1;
    }

    void newline()
    {
        if (indent_ <= 0) {
            return;
        }
        out_.push_back('\n');
        out_.append(static_cast<std::size_t>(indent_) * static_cast<std::size_t>(depth_), ' ');
    }

    std::string& out_;
    int indent_;
    int depth_;
};

void append_utf8(std::string& out, std::uint32_t cp)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::optional<std::uint32_t> hex4(std::string_view s, std::size_t pos)
{
    if (pos + 4 > s.size()) {
        return std::nullopt;
    }
    std::uint32_t v = 0;
    for (std::size_t i = pos; i < pos + 4; ++i) {
        const char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= static_cast<std::uint32_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= static_cast<std::uint32_t>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= static_cast<std::uint32_t>(c - 'A' + 10);
        } else {
            return std::nullopt;
        }
    }
    return v;
}

// Formats the decoded text of an Entity at `depth`; false when it is not JSON.
bool format_entity(std::string& out, std::string_view decoded, int indent, int depth)
{
    const auto checked = detail::validate(decoded);
    if (!checked) {
        return false;
    }
    formatter f(out, indent, depth);
    f.value(*checked, 0, false, no_hook);
    return true;
}

} // namespace

std::string unescape_string(std::string_view lit)
{
    std::string out;
    if (lit.size() < 2) {
        return out;
    }
    const auto s = lit.substr(1, lit.size() - 2);
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c != '\\' || i + 1 >= s.size()) {
            out.push_back(c);
            continue;
        }
        const char e = s[++i];
        switch (e) {
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
            auto cp = hex4(s, i + 1);
            if (!cp) {
                out.push_back('?');
                break;
            }
            i += 4;
            std::uint32_t code = *cp;
            if (code >= 0xD800 && code <= 0xDBFF) {
                const auto low = i + 2 < s.size() && s[i + 1] == '\\' && s[i + 2] == 'u' ? hex4(s, i + 3) : std::nullopt;
                if (low && *low >= 0xDC00 && *low <= 0xDFFF) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (*low - 0xDC00);
                    i += 6;
                } else {
                    code = 0xFFFD;
                }
            } else if (code >= 0xDC00 && code <= 0xDFFF) {
                code = 0xFFFD;
            }
            append_utf8(out, code);
            break;
        }
        default: out.push_back(e); break;  // \" \\ \/
        }
    }
    return out;
}

std::optional<std::string> reformat(std::string_view text, int indent)
{
    const auto checked = detail::validate(text);
    if (!checked) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(checked->size() + checked->size() / 4);
    formatter f(out, indent, 0);
    f.value(*checked, 0, false, no_hook);
    return out;
}

std::optional<std::string> reformat_payload(std::string_view body, int indent)
{
    const auto checked = detail::validate(body);
    if (!checked) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(checked->size() * 2);
    formatter f(out, indent, 0);
    f.value(*checked, 0, true,
            [&out, indent](std::string_view literal, int depth) {
                return format_entity(out, unescape_string(literal), indent, depth);
            });
    return out;
}

std::optional<std::string> decoded_entity(std::string_view body, int indent)
{
    const auto checked = detail::validate(body);
    if (!checked) {
        return std::nullopt;
    }
    const auto entity = detail::top_level_string(*checked, "Entity");
    if (!entity) {
        return std::string("null");
    }
    std::string out;
    if (!format_entity(out, *entity, indent, 0)) {
        return std::nullopt;
    }
    return out;
}

} // namespace cwhook::json
