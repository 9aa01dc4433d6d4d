// Design: every request goes through call(), which builds the target under
// /<codebase>apis/3.0, adds the headers Manage wants on every call (Basic auth, clientId,
// versioned Accept), and turns a non-2xx answer into a failure whose message says what to
// check. The codebase is discovered once per api from /login/companyinfo (no auth) and cached;
// a 404 re-reads it once, because a cloud upgrade moves the codebase while we run, and the
// request is repeated only if the codebase actually changed. Retries (429, 5xx, connection
// failures) are the client's, configured from the settings; POST is never retried after it
// may have reached Manage (a create that is sent twice answers ObjectExists, which the callers
// handle); PATCH replace is. Credentials go into headers only, never into messages or logs.
#include "manage/api.hpp"

#include "core/log.hpp"
#include "core/text.hpp"
#include "crypto/digest.hpp"
#include "crypto/tls.hpp"
#include "manage/paging.hpp"
#include "manage/types.hpp"
#include "json/rest_records.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <iterator>

namespace cwhook::manage {

namespace net = boost::asio;

namespace {

constexpr std::string_view default_codebase = "v4_6_release/";
constexpr unsigned max_pages = 100'000;

constexpr std::string_view collection = "/system/callbacks";

std::string item_path(std::int64_t id)
{
    return fmt::format("/system/callbacks/{}", id);
}

} // namespace

std::string basic_auth(const settings& s)
{
    const auto user = fmt::format("{}+{}:{}", s.company_id, s.public_key, s.private_key);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(user.data());
    return "Basic " + crypto::base64_encode(std::span<const std::uint8_t>(bytes, user.size()));
}

std::optional<std::string> missing_keys(const settings& s)
{
    std::vector<std::string_view> missing;
    if (s.site.empty()) {
        missing.push_back("manage.site");
    }
    if (s.company_id.empty()) {
        missing.push_back("manage.company_id");
    }
    if (s.public_key.empty()) {
        missing.push_back("manage.public_key");
    }
    if (s.private_key.empty()) {
        missing.push_back("manage.private_key");
    }
    if (s.client_id.empty()) {
        missing.push_back("manage.client_id");
    }
    if (missing.empty()) {
        return std::nullopt;
    }
    return fmt::format("{}: not set", fmt::join(missing, ", "));
}

struct api::answer {
    client::response res;
};

api::api(client::https_client& http, settings s) : http_(http), cfg_(std::move(s))
{
    opt_.timeout = cfg_.timeout;
    opt_.connect_timeout = cfg_.connect_timeout;
    opt_.handshake_timeout = cfg_.connect_timeout;
    opt_.exchange_timeout = cfg_.timeout;
    opt_.max_response_bytes = cfg_.max_response_bytes;
    // The operator names the Manage host; an on-premise one may well be on a private network.
    opt_.allow_private = true;
    opt_.retry.max_attempts = std::max(1u, cfg_.max_attempts);
    opt_.retry.max_delay = cfg_.retry_max_delay;
    if (auto ep = api_endpoint(cfg_)) {
        api_ep_ = *ep;
    } else {
        api_ep_error_ = ep.error();
    }
    if (auto ep = parse_site(cfg_.site)) {
        site_ep_ = *ep;
    }
    if (!cfg_.codebase.empty()) {
        codebase_ = cfg_.codebase;
        while (!codebase_.empty() && codebase_.front() == '/') {
            codebase_.erase(0, 1);
        }
        if (!codebase_.empty() && codebase_.back() != '/') {
            codebase_.push_back('/');
        }
    }
}

unsigned api::last_pages() const
{
    std::lock_guard lock(mutex_);
    return last_pages_;
}

net::awaitable<std::optional<std::string>> api::discover_codebase()
{
    if (!site_ep_) {
        co_return std::nullopt;
    }
    client::request req;
    req.tls = site_ep_->tls;
    req.host = site_ep_->host;
    req.port = site_ep_->port;
    req.target = "/login/companyinfo/" + url_encode(cfg_.company_id);
    req.headers.emplace_back("Accept", "application/json");
    const client::options opt = opt_;
    auto res = co_await http_.fetch(req, opt);
    if (!res) {
        log::warn("manage companyinfo failed", {{"site", site_ep_->display()}, {"error", res.error().detail}});
        co_return std::nullopt;
    }
    if (res->status != 200) {
        log::warn("manage companyinfo failed", {{"site", site_ep_->display()}, {"status", res->status}});
        co_return std::nullopt;
    }
    auto cb = parse_company_info(res->body);
    if (!cb) {
        log::warn("manage companyinfo names no codebase (unknown company?)",
                  {{"site", site_ep_->display()}, {"company", cfg_.company_id}});
    }
    co_return cb;
}

net::awaitable<std::string> api::codebase()
{
    {
        std::lock_guard lock(mutex_);
        if (!codebase_.empty()) {
            co_return codebase_;
        }
    }
    auto found = co_await discover_codebase();
    std::lock_guard lock(mutex_);
    if (codebase_.empty()) {
        codebase_ = found ? *found : std::string(default_codebase);
        log::debug("manage codebase", {{"codebase", codebase_}});
    }
    co_return codebase_;
}

net::awaitable<outcome<api::answer>> api::call(std::string_view method_in, std::string_view path_in,
                                               std::string_view body_in, bool forward_only, bool full_target,
                                               bool retry_writes)
{
    // Owned copies before the first suspension: the caller need not keep its arguments.
    const std::string method(method_in);
    const std::string api_path(path_in);
    const std::string body(body_in);
    if (auto missing = missing_keys(cfg_)) {
        co_return failure{0, "config", *missing, 0};
    }
    if (!api_ep_) {
        co_return failure{0, "config", api_ep_error_, 0};
    }
    const endpoint ep = *api_ep_;
    bool reread = false;
    for (;;) {
        std::string used_codebase;
        client::request req;
        req.method = method;
        req.tls = ep.tls;
        req.host = ep.host;
        req.port = ep.port;
        if (full_target) {
            req.target = api_path;
        } else {
            used_codebase = co_await codebase();
            req.target = fmt::format("/{}apis/3.0{}", used_codebase, api_path);
        }
        req.headers.emplace_back("Authorization", basic_auth(cfg_));
        req.headers.emplace_back("clientId", cfg_.client_id);
        req.headers.emplace_back("Accept",
                                 fmt::format("application/vnd.connectwise.com+json; version={}", cfg_.api_version));
        if (forward_only) {
            req.headers.emplace_back("pagination-type", "forward-only");
        }
        if (!body.empty()) {
            req.headers.emplace_back("Content-Type", "application/json");
            req.body = body;
        }
        client::options opt = opt_;
        opt.retry.retry_non_idempotent = retry_writes;
        auto res = co_await http_.fetch(req, opt);
        if (!res) {
            co_return transport_failure(fmt::format("{}:{}", ep.host, ep.port), res.error().detail);
        }
        if (res->status >= 200 && res->status < 300) {
            co_return answer{std::move(*res)};
        }
        if (res->status == 404 && !full_target && cfg_.codebase.empty() && !reread) {
            reread = true;
            auto fresh = co_await discover_codebase();
            if (fresh && *fresh != used_codebase) {
                log::info("manage codebase moved", {{"from", used_codebase}, {"to", *fresh}});
                std::lock_guard lock(mutex_);
                codebase_ = *fresh;
                continue;
            }
        }
        co_return describe_answer(res->status, res->body, res->header("Retry-After"));
    }
}

net::awaitable<outcome<std::string>> api::read_page(const std::string& target, bool forward_only, bool full_target,
                                                    std::string* link)
{
    auto r = co_await call("GET", target, {}, forward_only, full_target, false);
    if (!r) {
        co_return r.error();
    }
    *link = std::string(r->res.header("Link"));
    co_return std::move(r->res.body);
}

template <class Item, class Parse>
net::awaitable<outcome<std::vector<Item>>> api::list_all(std::string collection_path, std::string query,
                                                         paging_mode mode, std::size_t page_size_in, Parse parse)
{
    const std::size_t page_size = std::clamp<std::size_t>(page_size_in, 1, 1000);
    std::vector<Item> all;
    unsigned pages = 0;
    std::string link;

    if (mode == paging_mode::forward_only) {
        // pageId acts as "id > pageId"; the next pageId is the last id we got. A short or
        // empty page is the end (the Link header is always there in this mode).
        std::int64_t page_id = 0;
        for (;;) {
            std::string path = fmt::format("{}?pageSize={}{}", collection_path, page_size, query);
            if (page_id > 0) {
                path += fmt::format("&pageId={}", page_id);
            }
            auto body = co_await read_page(path, true, false, &link);
            if (!body) {
                co_return body.error();
            }
            auto items = parse(*body);
            if (!items) {
                co_return items.error();
            }
            ++pages;
            const std::size_t n = items->size();
            if (n > 0 && items->back().id <= page_id) {
                co_return bad_answer("forward-only paging did not advance");
            }
            if (n > 0) {
                page_id = items->back().id;
            }
            all.insert(all.end(), std::make_move_iterator(items->begin()), std::make_move_iterator(items->end()));
            if (n < page_size || pages >= max_pages) {
                break;
            }
        }
    } else {
        std::string target = fmt::format("{}?page=1&pageSize={}{}", collection_path, page_size, query);
        bool full = false;
        for (;;) {
            auto body = co_await read_page(target, false, full, &link);
            if (!body) {
                co_return body.error();
            }
            auto items = parse(*body);
            if (!items) {
                co_return items.error();
            }
            ++pages;
            const bool empty = items->empty();
            all.insert(all.end(), std::make_move_iterator(items->begin()), std::make_move_iterator(items->end()));
            auto next = find_link(link, "next");
            if (!next) {
                break;
            }
            // Only the path and query of the link are used: credentials never go to a host the
            // answer names.
            auto next_target = link_target(*next);
            if (!next_target) {
                co_return bad_answer(fmt::format("Link rel=\"next\" is not a URL: {}", one_line(*next, 200)));
            }
            if (*next_target == target || empty || pages >= max_pages) {
                co_return bad_answer("navigable paging did not advance");
            }
            target = std::move(*next_target);
            full = true;
        }
    }
    {
        std::lock_guard lock(mutex_);
        last_pages_ = pages;
    }
    co_return all;
}

net::awaitable<outcome<std::vector<callback>>> api::list_callbacks(const conditions& where)
{
    co_return co_await list_callbacks(where, cfg_.paging, cfg_.page_size);
}

net::awaitable<outcome<std::vector<callback>>> api::list_callbacks(const conditions& where, paging_mode mode,
                                                                   std::size_t page_size)
{
    // Owned before the first suspension: the caller need not keep its arguments.
    std::string query = where.empty() ? std::string() : "&conditions=" + where.encoded();
    std::string path(collection);
    // Named locals, no temporaries inside the co_await expression (GCC 12 coroutines).
    auto parse = [](const std::string& body) -> outcome<std::vector<callback>> {
        auto items = parse_callbacks(body);
        if (!items) {
            return bad_answer("system/callbacks is not an array of callback entries");
        }
        return std::move(*items);
    };
    auto all = co_await list_all<callback>(std::move(path), std::move(query), mode, page_size, parse);
    co_return all;
}

net::awaitable<outcome<std::vector<json::rest_record>>> api::list_records(std::string_view collection_in,
                                                                          const conditions& where,
                                                                          std::string_view fields,
                                                                          std::string_view order_by)
{
    // Owned before the first suspension: the caller need not keep its arguments.
    const std::string path = "/" + std::string(collection_in);
    std::string query;
    if (!where.empty()) {
        query += "&conditions=" + where.encoded();
    }
    // Forward-only paging is in id order and refuses orderBy: callers sort what they need.
    if (!order_by.empty() && cfg_.paging == paging_mode::navigable) {
        query += "&orderBy=" + url_encode(order_by);
    }
    if (!fields.empty()) {
        query += "&fields=" + url_encode(fields);
    }
    std::string what = path.substr(1);
    auto parse = [what](const std::string& body) -> outcome<std::vector<json::rest_record>> {
        auto items = json::parse_rest_records(body);
        if (!items) {
            return bad_answer(fmt::format("{} is not an array of records with an id", what));
        }
        return std::move(*items);
    };
    std::string target = path;
    auto all =
        co_await list_all<json::rest_record>(std::move(target), std::move(query), cfg_.paging, cfg_.page_size, parse);
    co_return all;
}

net::awaitable<outcome<std::int64_t>> api::count_callbacks(const conditions& where_in)
{
    // Owned before the first suspension: the caller need not keep its arguments.
    const conditions where = where_in; // NOLINT(performance-unnecessary-copy-initialization)
    const std::string path = where.empty() ? std::string("/system/callbacks/count")
                                           : "/system/callbacks/count?conditions=" + where.encoded();
    auto r = co_await call("GET", path, {}, false, false, false);
    if (!r) {
        co_return r.error();
    }
    auto n = parse_count(r->res.body);
    if (!n) {
        co_return bad_answer("system/callbacks/count holds no count");
    }
    // In place: failure is an aggregate, so C++20 would also build one from an integer.
    co_return outcome<std::int64_t>{boost::system::in_place_value, *n};
}

net::awaitable<outcome<callback>> api::entry_call(std::string_view method, std::string_view path,
                                                  std::string_view body, bool retry_writes)
{
    auto r = co_await call(method, path, body, false, false, retry_writes);
    if (!r) {
        co_return r.error();
    }
    auto c = parse_callback(r->res.body);
    if (!c) {
        co_return bad_answer(fmt::format("{} {} answered something that is not a callback entry", method, path));
    }
    co_return *c;
}

net::awaitable<outcome<callback>> api::get_callback(std::int64_t id)
{
    const std::string path = item_path(id);
    co_return co_await entry_call("GET", path, {}, false);
}

net::awaitable<outcome<callback>> api::create_callback(const subscription& s_in, bool inactive)
{
    const subscription s = s_in;
    const std::string body = create_body(s, inactive);
    auto r = co_await entry_call("POST", collection, body, false);
    if (r || r.error().code != "ObjectExists") {
        co_return r;
    }
    // Manage does not say which entry matches; find it so the operator (and sync) can.
    failure f = r.error();
    conditions w;
    w.where("type", op::eq, s.type).where("level", op::eq, s.level).where("url", op::eq, s.url);
    auto found = co_await list_callbacks(w);
    if (found) {
        for (const auto& c : *found) {
            if (c.object_id == s.object_id) {
                f.existing_id = c.id;
                f.message += fmt::format(" (id {})", c.id);
                break;
            }
        }
    }
    co_return f;
}

net::awaitable<outcome<void>> api::delete_callback(std::int64_t id)
{
    const std::string path = item_path(id);
    auto r = co_await call("DELETE", path, {}, false, false, false);
    if (!r) {
        co_return r.error();
    }
    co_return outcome<void>{};
}

net::awaitable<outcome<callback>> api::patch_callback(std::int64_t id, std::optional<bool> inactive,
                                                      const std::optional<std::string>& description)
{
    const std::string body = patch_body(inactive, description);
    const std::string path = item_path(id);
    co_return co_await entry_call("PATCH", path, body, true);
}

// ---------------------------------------------------------------------------------------

boost::system::result<std::unique_ptr<blocking_api>, std::string> blocking_api::create(const settings& s)
{
    if (auto missing = missing_keys(s)) {
        return {boost::system::in_place_error, *missing + " (needed to talk to Manage)"};
    }
    if (auto ep = api_endpoint(s); !ep) {
        return {boost::system::in_place_error, ep.error()};
    }
    auto tls = crypto::make_client_context(s.ca_file);
    if (!tls) {
        return {boost::system::in_place_error, "manage.ca_file: " + tls.error().message};
    }
    std::unique_ptr<blocking_api> b(new blocking_api());
    b->http_ = std::make_unique<client::https_client>(b->ioc_.get_executor(), *tls, &b->metrics_);
    b->api_ = std::make_unique<api>(*b->http_, s);
    return {boost::system::in_place_value, std::move(b)};
}

blocking_api::~blocking_api()
{
    api_.reset();
    http_.reset(); // pooled connections close before the io_context goes
}

void blocking_api::run_until_done()
{
    ioc_.restart();
    ioc_.run();
}

} // namespace cwhook::manage
