#include "core/error.hpp"

#include <cstdio>

namespace cwhook {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cwhook"; }

    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::ok: return "success";
        case errc::key_unavailable: return "key server gave no usable key";
        case errc::key_fetch_failed: return "key fetch failed";
        case errc::key_fetch_busy: return "no key fetch possible before the answer deadline";
        case errc::redirect_refused: return "redirect refused";
        case errc::storage_busy: return "database is locked";
        case errc::storage_full: return "database or disk is full";
        case errc::storage_queue_full: return "storage queue is full";
        case errc::storage_unavailable: return "database is unreachable or read-only";
        case errc::storage_error: return "storage error";
        case errc::invalid_argument: return "invalid argument";
        }
        return "unknown cwhook error";
    }
};

} // namespace

const boost::system::error_category& error_category() noexcept
{
    static const category instance;
    return instance;
}

void check_failed(const char* expr, const char* file, int line) noexcept
{
    std::fprintf(stderr, "cwhook: check failed: %s at %s:%d\n", expr, file, line);
    std::abort();
}

} // namespace cwhook
