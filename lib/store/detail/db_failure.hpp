// The error of an event_db call, as both backends return it. Internal to lib/store.
#pragma once

#include "store/event_db.hpp"

#include <string>

namespace cwhook::store::detail {

// One line naming what failed and the database's reason. Converts to any db_result<T> as its
// error, so one helper serves every return type.
struct failure_text {
    std::string text;
    template <class T>
    operator db_result<T>() const  // NOLINT(google-explicit-constructor): return-statement sugar
    {
        return db_result<T>(boost::system::in_place_error, text);
    }
};

} // namespace cwhook::store::detail
