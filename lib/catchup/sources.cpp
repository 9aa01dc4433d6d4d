#include "catchup/sources.hpp"

#include <algorithm>
#include <array>

namespace cwhook::catchup {

namespace {

// manage-api-guide.txt names service/tickets, company/companies and company/contacts (its
// examples); the other paths follow the same module/collection layout of the REST API and are
// assumptions to check against a live Manage (in_guide = false). Project tickets arrive as
// Type "ticket" (PROTOCOL.md) but live in project/tickets: catch-up reads service/tickets only.
constexpr std::array<source, 15> table{{
    {"ticket", "service/tickets", true},
    {"project", "project/projects", false},
    {"company", "company/companies", true},
    {"contact", "company/contacts", true},
    {"opportunity", "sales/opportunities", false},
    {"activity", "sales/activities", false},
    {"agreement", "finance/agreements", false},
    {"configuration", "company/configurations", false},
    {"invoice", "finance/invoices", false},
    {"member", "system/members", false},
    {"time", "time/entries", false},
    {"schedule", "schedule/entries", false},
    {"purchaseorder", "procurement/purchaseorders", false},
    {"expense", "expense/entries", false},
    {"productcatalog", "procurement/catalog", false},
}};

} // namespace

std::span<const source> sources()
{
    return table;
}

std::optional<source> find_source(std::string_view type)
{
    const auto it = std::find_if(table.begin(), table.end(), [type](const source& s) { return s.type == type; });
    if (it == table.end()) {
        return std::nullopt;
    }
    return *it;
}

std::vector<std::string> types_to_read(const std::vector<std::string>& configured,
                                       std::span<const manage::subscription> subscriptions)
{
    if (!configured.empty()) {
        return configured;
    }
    std::vector<std::string> out;
    for (const auto& sub : subscriptions) {
        if (find_source(sub.type) && std::find(out.begin(), out.end(), sub.type) == out.end()) {
            out.push_back(sub.type);
        }
    }
    return out;
}

} // namespace cwhook::catchup
