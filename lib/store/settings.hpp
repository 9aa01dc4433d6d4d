// Settings of the event store (the [storage] section). Plain data; defaults are the member
// initializers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook::store {

enum class synchronous_mode { full, normal };

// Where events live: an embedded SQLite file (one process) or a PostgreSQL server that several
// instances share.
enum class backend { sqlite, postgres };

struct settings {
    store::backend backend = store::backend::sqlite;
    std::string path = "./var/cwhook.db";  // sqlite: parent folder is created; ":memory:" for tests
    // postgres: a libpq connection string or postgresql:// URL (multi-host URLs fail over). A
    // secret (it may hold a password): never logged, see redact_url().
    std::string url;
    std::size_t pool = 4;  // reader connections (events/admin API); the writer has its own
    synchronous_mode synchronous = synchronous_mode::full;
    std::chrono::milliseconds busy_timeout{250};  // sqlite: how long a commit waits for another process's lock
    std::size_t queue_limit = 10000;              // jobs waiting for the writer; beyond: storage_queue_full
    std::size_t max_batch = 1024;                 // jobs per transaction
    std::size_t max_rejections = 10000;           // rejected-request rows kept (oldest deleted)
    // Rejected-request rows waiting for the writer, queued apart from queue_limit so that a
    // flood of junk requests cannot crowd out deliveries; beyond it they are dropped.
    std::size_t rejection_queue_limit = 1000;
    std::int64_t max_page_count = 0;              // sqlite: 0 = default; tests use it to simulate a full disk
    // The writer's page cache. Inserting into a large database touches index pages all over the
    // file; SQLite's default 2 MiB makes each of those a read (bench/events.sh at 1M rows: 3,942
    // req/s with 2 MiB, 5,576 with 16 MiB, no better with 32 or 64; RESULTS-events.md).
    std::size_t cache_mib = 16;  // sqlite
    // Retention (run by the application through submit_prune): events older than this are
    // deleted, retention_batch rows per writer batch, every retention_interval. 0 = keep all.
    std::chrono::milliseconds retention{0};
    std::size_t retention_batch = 1000;
    std::chrono::milliseconds retention_interval{600'000};
    // Pending rows the re-verifier claims are not handed to anyone else for this long (another
    // instance on the same PostgreSQL, or this one after a crash mid-round).
    std::chrono::milliseconds claim_lease{60'000};
};

// "sqlite: <path>" or "postgres: <url without password>", for logs and errors.
std::string describe(const settings& s);

// A PostgreSQL connection string (keyword=value or postgresql:// URL) with any password
// replaced by "***"; text libpq cannot parse comes back as "(unparsable connection string)".
std::string redact_url(std::string_view url);

// Checks a connection string as libpq parses it, without connecting: empty on success, else
// libpq's reason (which never quotes a password).
std::string check_url(std::string_view url);

} // namespace cwhook::store
