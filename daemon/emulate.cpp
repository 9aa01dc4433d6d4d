// `cwhook emulate`: run the local Manage stand-in (lib/emulator) until SIGINT/SIGTERM, and
// `cwhook emulate trigger|rotate-key|fault`, which drive a running one through its loopback
// control endpoints. The running emulator leaves its base URL in <state-dir>/url and its
// certificate in <state-dir>/cert.pem, so the driving commands find it without options.
#include "commands.hpp"

#include "client/https_client.hpp"
#include "core/duration.hpp"
#include "core/json_string.hpp"
#include "core/log.hpp"
#include "crypto/tls.hpp"
#include "emulator/emulator.hpp"
#include "http/server.hpp"
#include "json/value.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <pthread.h>
#include <sstream>

namespace cwhook::daemon {

namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;

struct run_options {
    std::string listen = "127.0.0.1:8443";
    bool plain_http = false;
    std::string host_name;
    std::string state_dir = "var/emulator";
    std::string company;
    std::string public_key;
    std::string private_key;
    std::string client_id;
    std::string codebase;
    std::string retry_delays = "2s,4s";
    unsigned disable_after = 3;
    std::string delivery_ca_file;
};

struct target_options {
    std::string emulator_url;  // "" = <state-dir>/url
    std::string ca_file;       // "" = <state-dir>/cert.pem for https
    std::string state_dir = "var/emulator";
    bool json = false;
};

struct trigger_options {
    std::string type;
    std::string action;
    std::int64_t id = 0;
    std::vector<std::string> levels;  // "board=1"
    std::string entity;
    bool no_callback = false;
};

struct fault_options {
    unsigned status = 429;
    unsigned count = 1;
    unsigned retry_after = 0;
    std::string delay = "0";
    std::string path_prefix;
    bool clear = false;
};

int usage(const std::string& what)
{
    std::fprintf(stderr, "cwhook emulate: %s\n", what.c_str());
    return 2;
}

void print_setup(const emulator::emulator& emu, const fs::path& state)
{
    const auto& c = emu.config();
    const auto ca = emu.ca_file().empty() ? std::string{} : fs::absolute(emu.ca_file()).string();
    std::string out = fmt::format("Manage emulator on {} (state in {})\n\n", emu.base_url(), state.string());
    out += "# For cwhook's configuration file:\n[manage]\n";
    out += fmt::format("site = \"{}\"\ncompany_id = \"{}\"\npublic_key = \"{}\"\nprivate_key = \"{}\"\n"
                       "client_id = \"{}\"\n",
                       emu.base_url(), c.company, c.public_key, c.private_key, c.client_id);
    if (!ca.empty()) {
        out += fmt::format("ca_file = \"{}\"\n", ca);
    }
    // companies: the key_url's companyName must be listed (manage.company_id above counts too,
    // but the [verify] block is complete on its own).
    out += fmt::format("\n[verify]\ncompanies = [\"{}\"]\nallowed_key_hosts = [\"{}\"]\n", c.company, emu.site());
    if (!ca.empty()) {
        out += fmt::format("ca_file = \"{}\"\n", ca);
    } else {
        out += "# key_url is http here: cwhook verifies only https key URLs, so run the emulator\n"
               "# without --http (or set verify.mode = \"off\") for deliveries to be stored.\n";
    }
    out += "\n# Fire a callback at every matching subscription:\n"
           "#   cwhook emulate trigger --type ticket --action updated --id 5000\n\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
}

int run(const run_options& o)
{
    emulator::settings s;
    if (!http::parse_listen(o.listen)) {
        return usage(fmt::format("--listen: \"{}\": expected host:port", o.listen));
    }
    s.listen = o.listen;
    s.tls = !o.plain_http;
    s.host_name = o.host_name;
    s.state_dir = o.state_dir;
    s.persist = true;
    if (!o.company.empty()) {
        s.company = o.company;
    }
    if (!o.public_key.empty()) {
        s.public_key = o.public_key;
    }
    if (!o.private_key.empty()) {
        s.private_key = o.private_key;
    }
    if (!o.client_id.empty()) {
        s.client_id = o.client_id;
    }
    if (!o.codebase.empty()) {
        s.codebase = o.codebase;
    }
    s.retry_delays.clear();
    std::stringstream delays(o.retry_delays);
    for (std::string d; std::getline(delays, d, ',');) {
        auto ms = parse_duration(d);
        if (!ms) {
            return usage(fmt::format("--retry-delays: \"{}\": expected durations like 2s,4s", o.retry_delays));
        }
        s.retry_delays.push_back(*ms);
    }
    s.disable_after_failures = o.disable_after;
    s.delivery_ca_file = o.delivery_ca_file;

    // Block the signals before the emulator's thread exists so it inherits the mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    emulator::emulator emu(s);
    auto port = emu.start();
    if (!port) {
        std::fprintf(stderr, "cwhook emulate: %s\n", port.error().c_str());
        return 1;
    }
    const fs::path state = fs::absolute(o.state_dir);
    {
        std::ofstream url(state / "url", std::ios::trunc);
        url << emu.base_url() << "\n";
    }
    print_setup(emu, state);
    log::info("emulator ready", {{"url", emu.base_url()}});

    int sig = 0;
    sigwait(&set, &sig);
    log::info("emulator stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    emu.stop();
    std::error_code ec;
    fs::remove(state / "url", ec);
    return 0;
}

struct call_result {
    std::optional<client::fetch_result> res; // empty until the call completed
};

// Spawned, so it owns its arguments (by value: see the coroutine rule in lib/http/server.cpp).
// cppcheck-suppress passedByValue
net::awaitable<void> do_call(client::https_client* http, client::request req, client::options opt, call_result* out)
{
    out->res = co_await http->fetch(req, opt);
    co_return;
}

// One request to the running emulator's control endpoint; the answer body, or exit code 1
// with a message naming the URL.
std::optional<std::string> control_call(const target_options& t, std::string_view method, std::string_view path,
                                        std::string body)
{
    std::string base = t.emulator_url;
    if (base.empty()) {
        std::ifstream in(fs::path(t.state_dir) / "url");
        std::getline(in, base);
        if (base.empty()) {
            std::fprintf(stderr,
                         "cwhook emulate: no running emulator found in %s (start `cwhook emulate`, or pass "
                         "--emulator URL)\n",
                         t.state_dir.c_str());
            return std::nullopt;
        }
    }
    auto url = boost::urls::parse_absolute_uri(base);
    if (!url || (url->scheme_id() != boost::urls::scheme::http && url->scheme_id() != boost::urls::scheme::https)) {
        std::fprintf(stderr, "cwhook emulate: --emulator: \"%s\": expected http(s)://host:port\n", base.c_str());
        return std::nullopt;
    }
    client::request req;
    req.method = std::string(method);
    req.tls = url->scheme_id() == boost::urls::scheme::https;
    req.host = url->host_type() == boost::urls::host_type::ipv6 ? url->host_ipv6_address().to_string()
                                                                  : std::string(url->encoded_host());
    req.port = url->has_port() ? url->port_number() : static_cast<std::uint16_t>(req.tls ? 443 : 80);
    req.target = std::string(emulator::control_prefix) + std::string(path);
    req.body = std::move(body);
    req.headers = {{"Content-Type", "application/json"}};
    client::options opt;
    opt.timeout = std::chrono::seconds(120);  // a trigger waits for deliveries and their retries
    opt.allow_private = true;

    std::string ca = t.ca_file;
    if (ca.empty() && req.tls) {
        ca = (fs::path(t.state_dir) / "cert.pem").string();
    }
    auto tls = crypto::make_client_context(req.tls ? ca : std::string{});
    if (!tls) {
        std::fprintf(stderr, "cwhook emulate: --ca-file: %s\n", tls.error().message.c_str());
        return std::nullopt;
    }
    net::io_context ioc;
    client::https_client http(ioc.get_executor(), *tls);
    call_result out;
    net::co_spawn(ioc, do_call(&http, req, opt, &out), net::detached);
    ioc.run();
    if (!out.res || !*out.res) {
        const std::string why = out.res ? out.res->error().detail : std::string("no answer");
        std::fprintf(stderr, "cwhook emulate: %s: %s\n", base.c_str(), why.c_str());
        return std::nullopt;
    }
    auto& answer = **out.res;
    if (answer.status != 200) {
        std::fprintf(stderr, "cwhook emulate: %s answered %u: %s\n", base.c_str(), answer.status, answer.body.c_str());
        return std::nullopt;
    }
    return std::move(answer.body);
}

int trigger(const target_options& t, const trigger_options& o)
{
    std::string body = "{\"type\":";
    append_json_string(body, o.type);
    body += ",\"action\":";
    append_json_string(body, o.action);
    body += fmt::format(",\"id\":{}", o.id);
    if (!o.levels.empty()) {
        body += ",\"levels\":{";
        bool first = true;
        for (const auto& l : o.levels) {
            const auto eq = l.find('=');
            std::int64_t n = 0;
            const auto value = eq == std::string::npos ? std::string_view{} : std::string_view(l).substr(eq + 1);
            const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (eq == std::string::npos || value.empty() || ec != std::errc{} || ptr != value.data() + value.size()) {
                return usage(fmt::format("--level: \"{}\": expected LEVEL=ID, e.g. board=1", l));
            }
            body += first ? "" : ",";
            first = false;
            append_json_string(body, l.substr(0, eq));
            body += fmt::format(":{}", n);
        }
        body += "}";
    }
    if (!o.entity.empty()) {
        auto parsed = json::parse_value(o.entity);
        if (std::holds_alternative<json::parse_error>(parsed)) {
            return usage(fmt::format("--entity: not JSON: {}", std::get<json::parse_error>(parsed).detail));
        }
        body += ",\"entity\":" + o.entity;
    }
    if (o.no_callback) {
        body += ",\"callback\":false";
    }
    body += "}";
    auto answer = control_call(t, "POST", "/trigger", body);
    if (!answer) {
        return 1;
    }
    if (t.json) {
        std::fwrite(answer->data(), 1, answer->size(), stdout);
    }
    auto parsed = json::parse_value(*answer);
    const auto* root = std::get_if<json::value>(&parsed);
    const auto* list = root ? root->find("deliveries") : nullptr;
    const auto* items = list ? list->as_array() : nullptr;
    if (items == nullptr) {
        std::fprintf(stderr, "cwhook emulate: unexpected answer: %s\n", answer->c_str());
        return 1;
    }
    if (o.no_callback) {
        if (!t.json) {
            std::printf("%s %lld %s without a callback\n", o.type.c_str(), static_cast<long long>(o.id),
                        o.action.c_str());
        }
        return 0;
    }
    if (items->empty()) {
        std::fprintf(stderr, "cwhook emulate: no active subscription matches %s %lld\n", o.type.c_str(),
                     static_cast<long long>(o.id));
        return 1;
    }
    bool all = true;
    for (const auto& d : *items) {
        const bool delivered = d.find("delivered") && d.find("delivered")->as_bool().value_or(false);
        all = all && delivered;
        if (t.json) {
            continue;
        }
        auto num = [&](std::string_view k) { return d.find(k) ? d.find(k)->as_int().value_or(0) : 0; };
        auto str = [&](std::string_view k) {
            const auto* v = d.find(k);
            return v && v->as_string() ? std::string(*v->as_string()) : std::string{};
        };
        const bool disabled = d.find("disabled") && d.find("disabled")->as_bool().value_or(false);
        std::printf("callback %lld  %s  status %lld  attempts %lld  %s%s%s\n", static_cast<long long>(num("callback_id")),
                    str("url").c_str(), static_cast<long long>(num("status")), static_cast<long long>(num("attempts")),
                    delivered ? "delivered" : "failed", disabled ? " (subscription disabled)" : "",
                    str("error").empty() ? "" : (" - " + str("error")).c_str());
    }
    return all ? 0 : 1;
}

int rotate_key(const target_options& t)
{
    auto answer = control_call(t, "POST", "/rotate-key", "{}");
    if (!answer) {
        return 1;
    }
    std::fwrite(answer->data(), 1, answer->size(), stdout);
    return 0;
}

int fault(const target_options& t, const fault_options& o)
{
    if (o.clear) {
        auto answer = control_call(t, "DELETE", "/faults", "");
        return answer ? 0 : 1;
    }
    auto delay = parse_duration(o.delay);
    if (!delay) {
        return usage(fmt::format("--delay: \"{}\": expected a duration like 500ms", o.delay));
    }
    std::string body = fmt::format("{{\"status\":{},\"count\":{},\"retry_after\":{},\"delay_ms\":{},\"path_prefix\":",
                                   o.status, o.count, o.retry_after, delay->count());
    append_json_string(body, o.path_prefix);
    body += "}";
    auto answer = control_call(t, "POST", "/faults", body);
    if (!answer) {
        return 1;
    }
    std::fwrite(answer->data(), 1, answer->size(), stdout);
    return 0;
}

void add_target_options(CLI::App& cmd, target_options& t)
{
    cmd.add_option("--emulator", t.emulator_url, "Base URL of the running emulator (default: from <state-dir>/url)")
        ->type_name("URL");
    cmd.add_option("--ca-file", t.ca_file, "Its certificate (default: <state-dir>/cert.pem)")->type_name("FILE");
    cmd.add_option("--state-dir", t.state_dir, "The emulator's state directory")->capture_default_str()->type_name("DIR");
}

} // namespace

command add_emulate(CLI::App& app, common_options& /*common*/)
{
    auto* cmd = app.add_subcommand("emulate", "Run a local ConnectWise Manage emulator (API, key endpoint, callbacks)");
    cmd->require_subcommand(0, 1);
    auto ro = std::make_shared<run_options>();
    cmd->add_option("--listen", ro->listen, "host:port to listen on (port 0: any free port)")->capture_default_str();
    cmd->add_flag("--http", ro->plain_http, "Plain HTTP instead of HTTPS with a generated certificate");
    cmd->add_option("--host-name", ro->host_name, "Host name used in URLs and the certificate (default: the address)");
    cmd->add_option("--state-dir", ro->state_dir, "Certificate, subscriptions and URL live here")
        ->capture_default_str()
        ->type_name("DIR");
    cmd->add_option("--company", ro->company, "Login company id (default: cwhook_emulator)");
    cmd->add_option("--public-key", ro->public_key, "API public key to accept");
    cmd->add_option("--private-key", ro->private_key, "API private key to accept");
    cmd->add_option("--client-id", ro->client_id, "clientId to accept");
    cmd->add_option("--codebase", ro->codebase, "Codebase answered by companyinfo (default: v2025_1/)");
    cmd->add_option("--retry-delays", ro->retry_delays, "Delivery retry delays after 404/409/419/429")
        ->capture_default_str();
    cmd->add_option("--disable-after", ro->disable_after,
                    "Failed deliveries in a row that disable a subscription (0: never)")
        ->capture_default_str();
    cmd->add_option("--delivery-ca-file", ro->delivery_ca_file, "Extra CA bundle for https subscription URLs")
        ->type_name("FILE");

    auto tt = std::make_shared<target_options>();
    auto to = std::make_shared<trigger_options>();
    auto* trig = cmd->add_subcommand("trigger", "Change a record of the running emulator and fire its callback");
    trig->add_option("--type", to->type, "Record type (ticket, contact, company, ...)")->required();
    trig->add_option("--action", to->action, "added, updated or deleted")
        ->required()
        ->check(CLI::IsMember({"added", "updated", "deleted"}));
    trig->add_option("--id", to->id, "Record id (appended to each subscription URL)")->required();
    trig->add_option("--level", to->levels, "LEVEL=ID of the record, e.g. board=1 (repeatable)");
    trig->add_option("--entity", to->entity, "Fields (a JSON object) merged into the record, which is the Entity");
    trig->add_flag("--no-callback", to->no_callback, "Change the record only, deliver nothing (as in an outage)");
    trig->add_flag("--json", tt->json, "Print the emulator's JSON answer");
    add_target_options(*trig, *tt);

    auto* rot = cmd->add_subcommand("rotate-key", "Give the running emulator a new signing key (the old key_url expires)");
    add_target_options(*rot, *tt);

    auto fo = std::make_shared<fault_options>();
    auto* flt = cmd->add_subcommand("fault", "Make the running emulator answer the next requests with an error");
    flt->add_option("--status", fo->status, "HTTP status (0: only delay)")->capture_default_str();
    flt->add_option("--count", fo->count, "How many requests (0: until cleared)")->capture_default_str();
    flt->add_option("--retry-after", fo->retry_after, "Retry-After seconds (0: none)")->capture_default_str();
    flt->add_option("--delay", fo->delay, "Answer this late, e.g. 500ms")->capture_default_str();
    flt->add_option("--path-prefix", fo->path_prefix, "Only paths starting with this (default: all)");
    flt->add_flag("--clear", fo->clear, "Remove every fault");
    add_target_options(*flt, *tt);

    return {cmd, [=] {
                if (trig->parsed()) {
                    return trigger(*tt, *to);
                }
                if (rot->parsed()) {
                    return rotate_key(*tt);
                }
                if (flt->parsed()) {
                    return fault(*tt, *fo);
                }
                return run(*ro);
            }};
}

} // namespace cwhook::daemon
