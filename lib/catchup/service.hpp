// When catch-up runs inside the daemon: once at start (trigger "gap" when this instance's last
// clean stop or heartbeat is older than gap_after, else "start"), every interval, and at once
// when the heartbeat loop finds it woke up more than gap_after late (the host slept, the
// process was stopped). Deletion reconciliation runs at start and every reconcile_interval for
// the types that ask for it. Runs come from one loop, so they never overlap.
// start() and stop() from any thread; stop() records a clean stop (waiting for that write)
// and is idempotent.
#pragma once

#include "catchup/engine.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace cwhook::catchup {

class service {
public:
    service(boost::asio::any_io_executor ex, store::event_store& store, engine& e, settings s, std::string instance);
    ~service();

    void start();
    void stop();

private:
    struct state;
    std::shared_ptr<state> s_;
};

// This host's name and the process id: "host:1234" would change at every start, so the name
// alone ("host"), which survives restarts.
std::string default_instance_name();

} // namespace cwhook::catchup
