// A downstream receiver for forwarding tests: the project's own HTTP(S) server on 127.0.0.1
// (port 0, or a given port to come back on after being "down"), recording every request and
// answering as the test's responder says (status, headers, a delay before answering).
// Thread-safe: the server runs on a thread of its own; the accessors lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cwhook::test {

struct sink_request {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers; // lower-case names
    std::string body;

    std::string header(const std::string& name) const; // lower-case name; "" when absent
};

struct sink_answer {
    unsigned status = 200;
    std::map<std::string, std::string> headers;
    std::chrono::milliseconds delay{0}; // before answering (a slow destination)
};

class sink {
public:
    // n: 1-based number of this request at the sink.
    using responder = std::function<sink_answer(const sink_request& r, std::size_t n)>;

    struct tls_files {
        std::string cert;
        std::string key;
    };

    // Answers 200 until respond() says otherwise. tls: serve HTTPS with these files.
    explicit sink(std::uint16_t port = 0, const tls_files* tls = nullptr);
    ~sink();
    sink(const sink&) = delete;
    sink& operator=(const sink&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url(const std::string& path = "/hook") const;

    void respond(responder r);
    std::vector<sink_request> requests() const;
    std::size_t count() const;
    // Waits until at least n requests arrived (true) or the timeout passed (false).
    bool wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
    bool tls_ = false;
};

} // namespace cwhook::test
