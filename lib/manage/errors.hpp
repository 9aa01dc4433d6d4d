// What went wrong talking to Manage, as one line an operator can act on:
//   401 Unauthorized: check manage.company_id, manage.public_key and manage.private_key
//   400 ObjectExists: a matching callback entry already exists (id 42)
// built from Manage's error bodies ({"code","message","errors":[{code,message,resource,field}]}).
// Never holds credentials. Pure, thread-safe.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook::manage {

struct failure {
    unsigned status = 0;          // HTTP status; 0 when there was no answer
    std::string code;             // Manage's code (errors[0].code when that is the specific one), or
                                  // "transport", "config", "bad_answer"
    std::string message;          // the whole line
    std::int64_t existing_id = 0; // ObjectExists: the matching entry, when it was found
    std::int64_t retry_after_s = 0; // 429/503: the Retry-After header's seconds (0 when none)
};

template <class T> using outcome = boost::system::result<T, failure>;

// For boost::system::result<T, failure>::value().
[[noreturn]] void throw_exception_from_error(const failure& f, const boost::source_location& loc);

// A non-2xx answer. retry_after: the Retry-After header ("" when none).
failure describe_answer(unsigned status, std::string_view body, std::string_view retry_after = {});

// No answer: `where` is "host:port", `why` the client's reason.
failure transport_failure(std::string_view where, std::string_view why);

failure bad_answer(std::string_view what);

// Manage's text made safe for one log/terminal line: control characters dropped, length capped.
std::string one_line(std::string_view text, std::size_t max = 300);

} // namespace cwhook::manage
