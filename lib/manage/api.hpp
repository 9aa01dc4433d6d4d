// The Manage REST API on top of client::https_client: where to talk (cloud site -> api- host,
// codebase from /login/companyinfo, cached and re-read once after a 404), how (Basic auth
// company+public:private, clientId, versioned Accept, retries from the settings), paging
// (navigable Link rel="next" or forward-only pageId) and system/callbacks CRUD.
// Failures are `failure` values whose message is one line naming what to check.
// Thread-safe: one api may serve several coroutines; the codebase cache takes a mutex that is
// never held across a co_await. The https_client must outlive the api.
#pragma once

#include "client/https_client.hpp"
#include "core/metrics.hpp"
#include "json/rest_records.hpp"
#include "manage/callback.hpp"
#include "manage/conditions.hpp"
#include "manage/errors.hpp"
#include "manage/settings.hpp"
#include "manage/site.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::manage {

// "Basic base64(company+public:private)"
std::string basic_auth(const settings& s);

struct list_stats {
    unsigned pages = 0;
};

class api {
public:
    api(client::https_client& http, settings s);

    // Every entry matching `where` (all pages).
    boost::asio::awaitable<outcome<std::vector<callback>>> list_callbacks(const conditions& where);
    boost::asio::awaitable<outcome<std::vector<callback>>> list_callbacks(const conditions& where, paging_mode mode,
                                                                          std::size_t page_size);
    boost::asio::awaitable<outcome<std::int64_t>> count_callbacks(const conditions& where);
    boost::asio::awaitable<outcome<callback>> get_callback(std::int64_t id);
    // ObjectExists: failure.existing_id and the message name the matching entry when found.
    boost::asio::awaitable<outcome<callback>> create_callback(const subscription& s, bool inactive);
    boost::asio::awaitable<outcome<void>> delete_callback(std::int64_t id);
    // PATCH with JSON Patch "replace" operations (retried like an idempotent request: setting
    // a field to a value twice is the same as once).
    boost::asio::awaitable<outcome<callback>> patch_callback(std::int64_t id, std::optional<bool> inactive,
                                                             const std::optional<std::string>& description);

    // Every record of a REST collection ("service/tickets") matching `where`, all pages, with
    // the paging mode and page size of the settings; `fields` ("id,_info") and `order_by`
    // ("lastUpdated asc") are passed on when not empty (order_by in navigable paging only:
    // forward-only paging is in id order and Manage refuses orderBy there).
    boost::asio::awaitable<outcome<std::vector<json::rest_record>>>
    list_records(std::string_view collection, const conditions& where, std::string_view fields,
                 std::string_view order_by);

    // The codebase in use ("v2025_1/"), discovering it when needed.
    boost::asio::awaitable<std::string> codebase();

    const settings& config() const noexcept { return cfg_; }
    // Request options every call starts from (timeouts, retry policy); tests shorten delays here.
    client::options& request_options() noexcept { return opt_; }
    // Pages read by the last list_callbacks (tests, logs).
    unsigned last_pages() const;

private:
    struct answer;
    // Views, copied before the first suspension (docs/STYLE.md, coroutines).
    boost::asio::awaitable<outcome<answer>> call(std::string_view method, std::string_view api_path,
                                                 std::string_view body, bool forward_only, bool full_target,
                                                 bool retry_writes);
    // One page's body; *link gets its Link header.
    boost::asio::awaitable<outcome<std::string>> read_page(const std::string& target, bool forward_only,
                                                           bool full_target, std::string* link);
    // Every page of a collection; Parse: body -> outcome<std::vector<Item>>, Item with an id.
    template <class Item, class Parse>
    boost::asio::awaitable<outcome<std::vector<Item>>> list_all(std::string collection_path, std::string query,
                                                                paging_mode mode, std::size_t page_size,
                                                                Parse parse);
    // call() for an answer that is one callback entry.
    boost::asio::awaitable<outcome<callback>> entry_call(std::string_view method, std::string_view path,
                                                         std::string_view body, bool retry_writes);
    boost::asio::awaitable<std::optional<std::string>> discover_codebase();

    client::https_client& http_;
    settings cfg_;
    client::options opt_;
    std::optional<endpoint> api_ep_;
    std::string api_ep_error_;
    std::optional<endpoint> site_ep_;
    mutable std::mutex mutex_;
    std::string codebase_; // "" until discovered
    unsigned last_pages_ = 0;
};

// A blocking facade for command-line tools: its own io_context, TLS context and client.
class blocking_api {
public:
    // Fails (one line) when required settings are missing or the CA file is unusable.
    static boost::system::result<std::unique_ptr<blocking_api>, std::string> create(const settings& s);
    ~blocking_api();

    api& async() noexcept { return *api_; }
    // The io_context's executor that run() drives (timers of coroutines run on it).
    boost::asio::any_io_executor executor() noexcept { return ioc_.get_executor(); }
    // Retries and connections of this object's client (cwhook_client_*).
    metrics::registry& metrics() noexcept { return metrics_; }

    // Runs an api coroutine to completion on this object's io_context.
    template <class T> T run(boost::asio::awaitable<T> work);

private:
    blocking_api() = default;
    void run_until_done();
    boost::asio::io_context ioc_;
    metrics::registry metrics_;
    std::unique_ptr<client::https_client> http_;
    std::unique_ptr<api> api_;
    bool done_ = false;
};

} // namespace cwhook::manage

#include <boost/asio/co_spawn.hpp>

#include <exception>

template <class T> T cwhook::manage::blocking_api::run(boost::asio::awaitable<T> work)
{
    std::optional<T> out;
    std::exception_ptr error;
    boost::asio::co_spawn(ioc_, std::move(work), [&out, &error](const std::exception_ptr& e, T v) {
        if (e) {
            error = e;
        } else {
            out.emplace(std::move(v));
        }
    });
    run_until_done();
    if (error) {
        std::rethrow_exception(error);
    }
    return std::move(*out);
}
