#include "http/router.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace cwhook::http {
namespace {

using beast_http::verb;
using handler_fn = boost::asio::awaitable<response> (*)(request&);

// Distinct functions so that a found handler can be told apart by its target.
boost::asio::awaitable<response> callbacks_handler(request&) { co_return error_response(200, "callbacks"); }
boost::asio::awaitable<response> status_handler(request&) { co_return error_response(200, "status"); }
boost::asio::awaitable<response> health_handler(request&) { co_return error_response(200, "health"); }
boost::asio::awaitable<response> health_post_handler(request&) { co_return error_response(200, "health_post"); }

handler_fn target_of(const handler* h)
{
    if (h == nullptr) {
        return nullptr;
    }
    const auto* fn = h->target<handler_fn>();
    return fn == nullptr ? nullptr : *fn;
}

struct lookup {
    handler_fn found = nullptr;
    unsigned status = 0;
    std::string allow;
};

lookup find(const router& r, verb method, std::string_view path)
{
    lookup out;
    out.found = target_of(r.find(method, path, &out.status, &out.allow));
    return out;
}

router sample_router()
{
    router r;
    r.add(verb::get, "/healthz", health_handler);
    r.add(verb::post, "/callbacks", callbacks_handler, true);
    return r;
}

TEST(Router, ExactRouteMatchesItsPath)
{
    EXPECT_EQ(find(sample_router(), verb::get, "/healthz").found, &health_handler);
}

TEST(Router, ExactRouteDoesNotMatchLongerPaths)
{
    const auto r = sample_router();
    for (const std::string_view path : {"/healthz/", "/healthz/x", "/healthzx", "/healthz?x"}) {
        SCOPED_TRACE(path);
        const auto l = find(r, verb::get, path);
        EXPECT_EQ(l.found, nullptr);
        EXPECT_EQ(l.status, 404U);
    }
}

TEST(Router, PrefixRouteMatchesPathAndSubpaths)
{
    const auto r = sample_router();
    for (const std::string_view path : {"/callbacks", "/callbacks/", "/callbacks/x", "/callbacks/a/b"}) {
        SCOPED_TRACE(path);
        EXPECT_EQ(find(r, verb::post, path).found, &callbacks_handler);
    }
}

TEST(Router, PrefixRouteDoesNotMatchLookAlikes)
{
    const auto r = sample_router();
    for (const std::string_view path : {"/callbacksx", "/callbacks-x", "/callback", "/", "", "/x/callbacks"}) {
        SCOPED_TRACE(path);
        const auto l = find(r, verb::post, path);
        EXPECT_EQ(l.found, nullptr);
        EXPECT_EQ(l.status, 404U);
    }
}

TEST(Router, PathMatchIsCaseSensitive)
{
    const auto l = find(sample_router(), verb::post, "/Callbacks");
    EXPECT_EQ(l.found, nullptr);
    EXPECT_EQ(l.status, 404U);
}

TEST(Router, EmptyRouterAnswers404)
{
    const auto l = find(router{}, verb::get, "/");
    EXPECT_EQ(l.found, nullptr);
    EXPECT_EQ(l.status, 404U);
}

TEST(Router, KnownPathWithOtherMethodAnswers405WithAllow)
{
    const auto r = sample_router();
    const struct {
        verb method;
        std::string_view path;
        std::string_view allow;
    } cases[] = {
        {verb::post, "/healthz", "GET, HEAD"},
        {verb::delete_, "/healthz", "GET, HEAD"},
        {verb::get, "/callbacks", "POST"},
        {verb::put, "/callbacks/x", "POST"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(beast_http::to_string(c.method)) + " " + std::string(c.path));
        const auto l = find(r, c.method, c.path);
        EXPECT_EQ(l.found, nullptr);
        EXPECT_EQ(l.status, 405U);
        EXPECT_EQ(l.allow, c.allow);
    }
}

TEST(Router, AllowListsEveryMethodOfThePathInOrder)
{
    router r;
    r.add(verb::get, "/healthz", health_handler);
    r.add(verb::post, "/healthz", health_post_handler);
    const auto l = find(r, verb::delete_, "/healthz");
    EXPECT_EQ(l.status, 405U);
    EXPECT_EQ(l.allow, "GET, HEAD, POST");
}

TEST(Router, AllowReplacesCallerContent)
{
    const auto r = sample_router();
    unsigned status = 0;
    std::string allow = "stale";
    EXPECT_EQ(r.find(verb::get, "/callbacks", &status, &allow), nullptr);
    EXPECT_EQ(status, 405U);
    EXPECT_EQ(allow, "POST");
}

TEST(Router, MethodsOfTheSamePathGoToTheirHandlers)
{
    router r;
    r.add(verb::get, "/healthz", health_handler);
    r.add(verb::post, "/healthz", health_post_handler);
    EXPECT_EQ(find(r, verb::get, "/healthz").found, &health_handler);
    EXPECT_EQ(find(r, verb::post, "/healthz").found, &health_post_handler);
}

TEST(Router, HeadIsServedByGetRoute)
{
    EXPECT_EQ(find(sample_router(), verb::head, "/healthz").found, &health_handler);
}

TEST(Router, HeadIsNotServedByPostRoute)
{
    const auto l = find(sample_router(), verb::head, "/callbacks");
    EXPECT_EQ(l.found, nullptr);
    EXPECT_EQ(l.status, 405U);
    EXPECT_EQ(l.allow, "POST");
}

TEST(Router, ExactRouteAndPrefixRouteCoexist)
{
    router r;
    r.add(verb::get, "/callbacks/status", status_handler);
    r.add(verb::post, "/callbacks", callbacks_handler, true);
    EXPECT_EQ(find(r, verb::get, "/callbacks/status").found, &status_handler);
    EXPECT_EQ(find(r, verb::post, "/callbacks/status").found, &callbacks_handler);
    const auto l = find(r, verb::get, "/callbacks/other");
    EXPECT_EQ(l.status, 405U);
    EXPECT_EQ(l.allow, "POST");
}

TEST(Request, SplitsTargetIntoPathAndQuery)
{
    const struct {
        std::string_view target;
        std::string_view path;
        std::string_view query;
    } cases[] = {
        {"/callbacks/x?a=1&b=2", "/callbacks/x", "a=1&b=2"},
        {"/callbacks", "/callbacks", ""},
        {"/callbacks?", "/callbacks", ""},
        {"/x?a?b", "/x", "a?b"},
        {"?q", "", "q"},
        {"/", "/", ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.target);
        request req;
        req.msg.target(c.target);
        EXPECT_EQ(req.path(), c.path);
        EXPECT_EQ(req.query(), c.query);
    }
}

TEST(ErrorResponse, BodyIsErrorCodeOnly)
{
    const auto res = error_response(404, "not_found");
    EXPECT_EQ(res.result_int(), 404U);
    EXPECT_EQ(res.body(), "{\"error\":\"not_found\"}\n");
}

TEST(ErrorResponse, BodyCarriesDetail)
{
    const auto res = error_response(400, "bad_request", "missing ID");
    EXPECT_EQ(res.body(), "{\"error\":\"bad_request\",\"detail\":\"missing ID\"}\n");
}

TEST(ErrorResponse, EscapesCodeAndDetail)
{
    const struct {
        std::string detail;
        std::string_view written;
    } cases[] = {
        {R"(a"b)", R"("a\"b")"},
        {R"(a\b)", R"("a\\b")"},
        {"a\nb", R"("a\nb")"},
        {"a\rb", R"("a\rb")"},
        {std::string("a\0b", 3), R"("a\u0000b")"},
        {"a\x1f" "b", R"("a\u001fb")"},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(testing::PrintToString(c.detail));
        const auto res = error_response(400, c.detail, c.detail);
        EXPECT_EQ(res.body(),
                  "{\"error\":" + std::string(c.written) + ",\"detail\":" + std::string(c.written) + "}\n");
    }
}

TEST(ErrorResponse, IsUncachedJsonWithLength)
{
    const auto res = error_response(405, "method_not_allowed");
    EXPECT_EQ(res[beast_http::field::content_type], "application/json");
    EXPECT_EQ(res[beast_http::field::cache_control], "no-store");
    EXPECT_EQ(res[beast_http::field::content_length], std::to_string(res.body().size()));
}

TEST(ErrorResponse, KeepsRequestedHttpVersion)
{
    EXPECT_EQ(error_response(400, "x").version(), 11U);
    EXPECT_EQ(error_response(400, "x", {}, 10).version(), 10U);
}

TEST(JsonResponse, AppendsNewlineToBody)
{
    const auto res = json_response(202, R"({"status":"accepted"})");
    EXPECT_EQ(res.result_int(), 202U);
    EXPECT_EQ(res.body(), "{\"status\":\"accepted\"}\n");
    EXPECT_EQ(res[beast_http::field::content_type], "application/json");
    EXPECT_EQ(res[beast_http::field::content_length], "22");
}

} // namespace
} // namespace cwhook::http
