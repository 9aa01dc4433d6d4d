#include "callback/reverify.hpp"

#include <fmt/format.h>

namespace cwhook::callback {

namespace net = boost::asio;
using store::event_status;

std::string reverify_summary::json() const
{
    return fmt::format(R"({{"checked":{},"verified":{},"failed":{},"unchanged":{},"skipped":{},"errors":{}}})", checked,
                       verified, failed, unchanged, skipped, errors);
}

std::string reverify_summary::text() const
{
    return fmt::format("checked {}: {} verified, {} failed, {} unchanged, {} skipped, {} errors", checked, verified,
                       failed, unchanged, skipped, errors);
}

std::optional<store::status_update> settled_by(std::int64_t id, event_status from, const key_verdict& v)
{
    store::status_update u;
    u.id = id;
    u.from = from;
    u.verify_reason = std::string(v.reason());
    switch (v.what) {
    case key_verdict::kind::verified: u.status = event_status::verified; return u;
    case key_verdict::kind::bad_signature:
    case key_verdict::kind::no_key:
    case key_verdict::kind::refused: u.status = event_status::failed; return u;
    case key_verdict::kind::transient:
    case key_verdict::kind::busy: break;
    }
    return std::nullopt;
}

net::awaitable<reverify_summary> reverify(key_cache& keys, const key_url_policy& policy, std::chrono::milliseconds wait,
                                          const std::vector<std::int64_t>& ids, const row_loader& load,
                                          const row_writer& write)
{
    reverify_summary sum;
    for (const auto id : ids) {
        auto row = co_await load(id);
        if (!row || (row->record.status != event_status::pending && row->record.status != event_status::failed)) {
            ++sum.skipped;
            continue;
        }
        ++sum.checked;
        store::pending_event p;
        p.id = row->id;
        p.received_at_us = row->record.received_at_us;
        p.key_url = row->record.key_url;
        p.signature = row->record.signature;
        p.body = std::move(row->record.body);
        p.verify_attempts = row->verify_attempts;
        const auto v = co_await recheck(keys, policy, p, wait);
        const auto u = settled_by(id, row->record.status, v);
        if (!u) {
            ++sum.unchanged;
            continue;
        }
        const auto changed = co_await write(*u);
        if (!changed) {
            ++sum.errors;
        } else if (!*changed) {
            ++sum.unchanged;
        } else if (u->status == event_status::verified) {
            ++sum.verified;
        } else {
            ++sum.failed;
        }
    }
    co_return sum;
}

} // namespace cwhook::callback
