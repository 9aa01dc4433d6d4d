#include "json/utf8.hpp"

namespace cwhook::json {

void replace_invalid_utf8(char* data, std::size_t size) noexcept
{
    std::size_t i = 0;
    while (i < size) {
        const auto lead = static_cast<unsigned char>(data[i]);
        if (lead < 0x80) {
            ++i;
            continue;
        }
        std::size_t continuation = 0;
        unsigned char first_low = 0x80;
        unsigned char first_high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            continuation = 1;
        } else if (lead == 0xE0) {
            continuation = 2;
            first_low = 0xA0;  // below is an overlong 3-byte form
        } else if (lead == 0xED) {
            continuation = 2;
            first_high = 0x9F;  // above are the UTF-16 surrogates
        } else if (lead >= 0xE1 && lead <= 0xEF) {
            continuation = 2;
        } else if (lead == 0xF0) {
            continuation = 3;
            first_low = 0x90;  // below is an overlong 4-byte form
        } else if (lead >= 0xF1 && lead <= 0xF3) {
            continuation = 3;
        } else if (lead == 0xF4) {
            continuation = 3;
            first_high = 0x8F;  // above is beyond U+10FFFF
        } else {
            // 0x80-0xC1 (stray continuation, overlong 2-byte lead) and 0xF5-0xFF.
            data[i] = '?';
            ++i;
            continue;
        }

        bool well_formed = i + continuation < size;
        for (std::size_t k = 1; well_formed && k <= continuation; ++k) {
            const auto byte = static_cast<unsigned char>(data[i + k]);
            const unsigned char low = k == 1 ? first_low : 0x80;
            const unsigned char high = k == 1 ? first_high : 0xBF;
            well_formed = byte >= low && byte <= high;
        }
        if (well_formed) {
            i += continuation + 1;
        } else {
            // Only the lead is replaced here: the bytes after it are examined on their own, so
            // a quote that cut a sequence short keeps its meaning.
            data[i] = '?';
            ++i;
        }
    }
}

std::string valid_utf8(std::string_view s)
{
    std::string out(s);
    replace_invalid_utf8(out.data(), out.size());
    return out;
}

} // namespace cwhook::json
