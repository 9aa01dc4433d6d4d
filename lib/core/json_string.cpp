#include "core/json_string.hpp"


namespace cwhook {

void append_json_string(std::string& out, std::string_view s)
{
    static constexpr char hex_digits[] = "0123456789abcdef";
    out.push_back('"');
    for (const char c : s) {
        const auto byte = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (byte < 0x20 || byte == 0x7f) {
                out += "\\u00";
                out.push_back(hex_digits[byte >> 4]);
                out.push_back(hex_digits[byte & 0x0F]);
            } else {
                out.push_back(c);
            }
            break;
        }
    }
    out.push_back('"');
}

std::string json_quoted(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 2);
    append_json_string(out, s);
    return out;
}

} // namespace cwhook
