// cwhook: receive, verify and durably store ConnectWise Manage callbacks.
#include "commands.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

// An exception nothing expected is a "can't happen": let it terminate (abort, with its type
// and what()) rather than unwind past a serving process's threads.
// NOLINTNEXTLINE(bugprone-exception-escape): see above
int main(int argc, char** argv)
{
    using namespace cwhook::daemon;
    CLI::App app{"cwhook: receive, verify and durably store ConnectWise Manage callbacks", "cwhook"};
    app.set_version_flag("--version", "cwhook " CWHOOK_VERSION);
    app.require_subcommand(1);
    common_options common;
    const std::vector<command> commands = {
        add_serve(app, common),
        add_check_config(app, common),
        add_healthcheck(app, common),
        add_events(app, common),
        add_rejections(app, common),
        add_deliveries(app, common),
        add_destinations(app, common),
        add_emulate(app, common),
        add_subscriptions(app, common),
        add_admin(app, common),
        add_catch_up(app, common),
    };
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }
    for (const auto& c : commands) {
        if (c.cli->parsed()) {
            return c.run();
        }
    }
    return 2;
}
