// The stored fields of an event_record, listed once. The store's INSERT/UPDATE statements and
// their bindings, event_db's reader and import, and the export/import lines of `cwhook events`
// all walk this list: a new field is added here (and to the schema) and nowhere else.
#pragma once

#include "store/event_store.hpp"

#include <string_view>

namespace cwhook::store {

enum class field_use : unsigned char {
    plain,
    blob,      // stored as a BLOB; exported as <name>_base64
    identity,  // fixed by the first receipt: a verified redelivery that upgrades the row keeps it
};

struct field_info {
    std::string_view name;  // column name and export key
    field_use use = field_use::plain;
    bool required = false;  // an export line without it is refused
};

// Calls f(field_info, member) for each stored field of r (const or not), in column order.
template <class Record, class F>
void for_each_field(Record& r, F&& f)
{
    f(field_info{"received_at_us", field_use::identity, true}, r.received_at_us);
    f(field_info{"status", field_use::plain, true}, r.status);
    f(field_info{"verify_reason"}, r.verify_reason);
    f(field_info{"dedupe_key", field_use::identity, true}, r.dedupe_key);
    f(field_info{"body_sha256"}, r.body_sha256);
    f(field_info{"body", field_use::blob, true}, r.body);
    f(field_info{"method"}, r.method);
    f(field_info{"path"}, r.path);
    f(field_info{"query"}, r.query);
    f(field_info{"client_addr"}, r.client_addr);
    f(field_info{"headers"}, r.headers);
    f(field_info{"content_type"}, r.content_type);
    f(field_info{"signature"}, r.signature);
    f(field_info{"message_id"}, r.message_id);
    f(field_info{"type", field_use::plain, true}, r.type);
    f(field_info{"action", field_use::plain, true}, r.action);
    f(field_info{"entity_id"}, r.entity_id);
    f(field_info{"company_id"}, r.company_id);
    f(field_info{"member_id"}, r.member_id);
    f(field_info{"from_url"}, r.from_url);
    f(field_info{"product_instance_id"}, r.product_instance_id);
    f(field_info{"partner_id"}, r.partner_id);
    f(field_info{"callback_id"}, r.callback_id);
    f(field_info{"key_url"}, r.key_url);
    f(field_info{"next_verify_at_us"}, r.next_verify_at_us);
    f(field_info{"source", field_use::identity}, r.source);
    f(field_info{"twin_of"}, r.twin_of);
    f(field_info{"entity_updated_at_us"}, r.entity_updated_at_us);
}

} // namespace cwhook::store
