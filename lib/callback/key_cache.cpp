#include "callback/key_cache.hpp"

#include "callback/detail/await.hpp"
#include "core/log.hpp"
#include "json/payload.hpp"

#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace cwhook::callback {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

bool is_transient(const boost::system::error_code& ec) { return ec == errc::key_fetch_failed; }

struct key_cache::state {
    client::https_client& client;
    verify_settings cfg;
    metrics::counter& hits;
    metrics::counter& misses;
    metrics::counter& fetches;
    metrics::counter& fetch_errors;
    metrics::counter& coalesced;
    metrics::histogram& fetch_seconds;

    enum class kind { ready, failed, fetching };
    struct entry {
        kind k = kind::fetching;
        crypto::key_digest digest{};
        boost::system::error_code error;
        clock::time_point fetched_at{};
        clock::time_point expires{};
        std::vector<std::function<void(result<crypto::key_digest>)>> waiters;
    };

    std::mutex mutex;
    std::unordered_map<std::string, entry> entries;

    state(client::https_client& c, const verify_settings& s, metrics::registry& m)
        : client(c), cfg(s), hits(m.get_counter("cwhook_key_cache_hits_total")),
          misses(m.get_counter("cwhook_key_cache_misses_total")),
          fetches(m.get_counter("cwhook_key_fetches_total")),
          fetch_errors(m.get_counter("cwhook_key_fetch_errors_total")),
          coalesced(m.get_counter("cwhook_key_fetch_coalesced_total")),
          fetch_seconds(m.get_histogram("cwhook_key_fetch_duration_seconds", {}, metrics::latency_buckets()))
    {
    }

    // Called with the mutex held, before inserting: keeps the map within its bound.
    void make_room(clock::time_point now)
    {
        if (entries.size() < cfg.key_cache_entries) {
            return;
        }
        std::erase_if(entries, [now](const auto& kv) { return kv.second.k != kind::fetching && kv.second.expires <= now; });
        for (auto it = entries.begin(); entries.size() >= cfg.key_cache_entries && it != entries.end();) {
            it = it->second.k == kind::fetching ? std::next(it) : entries.erase(it);
        }
    }

    net::awaitable<result<crypto::key_digest>> fetch(const key_target& t, const std::string& url)
    {
        fetches.inc();
        client::request req;
        req.host = t.host;
        req.port = t.port;
        req.target = t.target;
        req.headers.emplace_back("Accept", "application/json");
        client::options opt;
        opt.timeout = cfg.key_fetch_timeout;
        opt.max_response_bytes = cfg.key_max_bytes;
        opt.allow_private = t.operator_listed;
        const auto started = clock::now();
        auto res = co_await client.fetch(req, opt);
        const auto ms = std::chrono::duration<double, std::milli>(clock::now() - started).count();
        fetch_seconds.observe(ms / 1000);
        // The URL is logged without its query: the id there names the key.
        const std::string where = t.host + ":" + std::to_string(t.port);
        if (!res) {
            fetch_errors.inc();
            log::warn("key fetch failed", {{"host", where}, {"error", client::https_client::last_error()}, {"ms", ms}});
            co_return res.error();
        }
        const auto status = res->status;
        if (status >= 300 && status < 400) {
            fetch_errors.inc();
            log::warn("key server redirected; not followed", {{"host", where}, {"status", status}});
            co_return errc::redirect_refused;
        }
        if (status == 429 || status >= 500) {
            fetch_errors.inc();
            log::warn("key server failed", {{"host", where}, {"status", status}});
            co_return errc::key_fetch_failed;
        }
        if (status != 200) {
            fetch_errors.inc();
            log::warn("key server refused", {{"host", where}, {"status", status}});
            co_return errc::key_unavailable;
        }
        auto key = json::parse_signing_key(res->body);
        if (!key) {
            fetch_errors.inc();
            log::warn("key server answer holds no signing_key", {{"host", where}, {"bytes", res->body.size()}});
            co_return errc::key_unavailable;
        }
        log::debug("key fetched", {{"host", where}, {"ms", ms}});
        co_return crypto::digest_signing_key(*key);
    }
};

key_cache::key_cache(client::https_client& client, const verify_settings& cfg, metrics::registry& metrics)
    : state_(std::make_shared<state>(client, cfg, metrics))
{
}

key_cache::~key_cache() = default;

net::awaitable<key_lookup> key_cache::get(const key_target& target, const std::string& url, bool refresh)
{
    auto st = state_;
    bool wait = false;
    {
        std::lock_guard lock(st->mutex);
        const auto now = clock::now();
        auto it = st->entries.find(url);
        if (it != st->entries.end()) {
            auto& e = it->second;
            if (e.k == state::kind::ready && now < e.expires &&
                (!refresh || now - e.fetched_at < st->cfg.key_refetch_interval)) {
                st->hits.inc();
                co_return key_lookup{e.digest, true};
            }
            if (e.k == state::kind::failed && now < e.expires) {
                st->hits.inc();
                co_return key_lookup{e.error, true};
            }
            if (e.k == state::kind::fetching) {
                wait = true;
            } else {
                e.k = state::kind::fetching;
            }
        } else {
            st->make_room(now);
            st->entries.emplace(url, state::entry{});
        }
        st->misses.inc();
    }

    if (wait) {
        st->coalesced.inc();
        auto r = co_await detail::await_completion<result<crypto::key_digest>>([&](auto done) {
            std::lock_guard lock(st->mutex);
            auto it = st->entries.find(url);
            if (it == st->entries.end() || it->second.k != state::kind::fetching) {
                // The fetch finished between our two looks: answer from what it left.
                if (it != st->entries.end()) {
                    done(it->second.k == state::kind::ready ? result<crypto::key_digest>(it->second.digest)
                                                            : result<crypto::key_digest>(it->second.error));
                    return true;
                }
                return false;
            }
            it->second.waiters.push_back(std::move(done));
            return true;
        });
        if (!r) {
            co_return key_lookup{errc::key_fetch_failed, false};
        }
        co_return key_lookup{*r, false};
    }

    auto fetched = co_await st->fetch(target, url);
    std::vector<std::function<void(result<crypto::key_digest>)>> waiters;
    {
        std::lock_guard lock(st->mutex);
        auto& e = st->entries[url];
        const auto now = clock::now();
        if (fetched) {
            e.k = state::kind::ready;
            e.digest = *fetched;
            e.fetched_at = now;
            e.expires = now + st->cfg.key_cache_ttl;
        } else {
            e.k = state::kind::failed;
            e.error = fetched.error();
            e.expires = now + st->cfg.key_failure_ttl;
        }
        waiters.swap(e.waiters);
    }
    for (auto& w : waiters) {
        w(fetched);
    }
    co_return key_lookup{fetched, false};
}

} // namespace cwhook::callback
