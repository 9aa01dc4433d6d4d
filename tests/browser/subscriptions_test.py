#!/usr/bin/python3
"""Browser test of the subscriptions view against the real Manage emulator: what the
configuration declares next to what Manage holds (missing, inactive, extra), the plan in the
URL, applying it only after the confirmation dialog, and a plan that changed meanwhile
refused. Usage: subscriptions_test.py <cwhook binary>"""
import json
import sys

from console_env import run, wait_for, wait_until


def manage_entries(env):
    return json.loads(env.cli("subscriptions", "list", "--json"))


def gauges(env):
    status, _, body = env.api("GET", "/metrics")
    assert status == 200, (status, body)
    out = {}
    for line in body.decode().splitlines():
        name, _, val = line.partition(" ")
        if name in ("cwhook_subscriptions_missing", "cwhook_subscriptions_inactive"):
            out[name.rsplit("_", 1)[1]] = int(float(val))
    return out


def state_cells(d):
    # Read in one script, so a table the view redraws meanwhile is read whole or not at all.
    rows = d.execute_script(
        "return [...document.querySelectorAll('#subs-body tr')].map((tr) => [...tr.cells].map((td) => td.innerText.trim()))")
    return {cells[3]: (cells[0], cells[1]) for cells in rows}  # type -> (state, plan)


def test_plan_shows_missing_inactive_extra_and_applies_after_confirmation(env):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # Manage drifts from the configuration: the ticket entry deleted, the company one
    # disabled, and one of ours (this receiver's url) that nobody declared.
    entries = manage_entries(env)
    by_type = {e["type"].lower(): e for e in entries}
    env.cli("subscriptions", "delete", str(by_type["ticket"]["id"]))
    env.cli("subscriptions", "disable", str(by_type["company"]["id"]))
    env.cli("subscriptions", "create", "--type", "contact", "--level", "owner", "--url",
            f"http://127.0.0.1:{env.callback_port}/callbacks?recordId=")
    # Another integration's entry: never shown, never touched.
    env.cli("subscriptions", "create", "--type", "contact", "--level", "owner", "--url",
            "https://elsewhere.example/hook?recordId=")

    d = env.browser()
    env.login(d, "/ui/subscriptions")
    wait_until("the plan", lambda: len(state_cells(d)) == 3)
    assert state_cells(d) == {
        "ticket": ("missing", "create"),
        "company": ("inactive", "re-enable"),
        "contact": ("extra", "delete-if-prune"),
    }, state_cells(d)
    summary = d.find_element(By.ID, "subs-summary").text
    assert "2 declared" in summary and "1 missing" in summary and "1 inactive" in summary and "1 extra" in summary, summary
    assert "1 entry of other integrations" in summary, summary
    assert "cwhook subscriptions sync --dry-run" in d.find_element(By.TAG_NAME, "main").text
    env.screenshot(d, "subscriptions")

    # Ticking the box puts prune in the URL; the extra entry becomes a delete.
    d.find_element(By.ID, "s-prune").send_keys(Keys.SPACE)
    wait_until("the pruning plan", lambda: state_cells(d).get("contact") == ("extra", "delete"))
    assert d.current_url.endswith("/ui/subscriptions?prune=true"), d.current_url
    d.get(f"{env.admin}/ui/subscriptions?prune=true")
    wait_until("the shared view", lambda: state_cells(d).get("contact") == ("extra", "delete"))
    assert d.find_element(By.ID, "s-prune").is_selected()

    # Apply asks first; Cancel changes nothing.
    apply = wait_for(d, By.CSS_SELECTOR, "#subs-apply:not([disabled])")
    apply.click()
    dialog = wait_for(d, By.CSS_SELECTOR, "dialog#subs-confirm[open]")
    listed = dialog.find_element(By.ID, "subs-changes").text
    assert "Create ticket" in listed and "Re-enable" in listed and "Delete" in listed, listed
    env.screenshot(d, "subscriptions-confirm")
    d.find_element(By.ID, "subs-cancel").click()
    wait_until("the dialog closed", lambda: not d.find_elements(By.CSS_SELECTOR, "dialog#subs-confirm[open]"))
    assert len(manage_entries(env)) == 3, "Cancel changed Manage"

    # Confirm applies it: Manage holds what is declared, the other integration's entry stays.
    d.find_element(By.ID, "subs-apply").click()
    wait_for(d, By.CSS_SELECTOR, "dialog#subs-confirm[open]")
    d.find_element(By.ID, "subs-confirm-apply").click()
    wait_until("the result", lambda: "Applied: 3 change(s)" in d.find_element(By.ID, "subs-result").text)
    wait_until("the plan in sync", lambda: state_cells(d) == {"ticket": ("in sync", "unchanged"),
                                                             "company": ("in sync", "unchanged")})
    now = {(e["type"].lower(), e["url"], not e["inactiveFlag"]) for e in manage_entries(env)}
    ours = f"http://127.0.0.1:{env.callback_port}/callbacks?recordId="
    assert now == {("ticket", ours, True), ("company", ours, True),
                   ("contact", "https://elsewhere.example/hook?recordId=", True)}, now
    assert d.find_element(By.ID, "subs-apply").get_attribute("disabled") is not None
    assert env.csp_violations(d) == []


def test_a_plan_changed_meanwhile_is_refused_and_bad_requests_are_named(env):
    from selenium.webdriver.common.by import By

    entries = manage_entries(env)
    by_type = {e["type"].lower(): e for e in entries}
    env.cli("subscriptions", "disable", str(by_type["ticket"]["id"]))
    d = env.browser()
    env.login(d, "/ui/subscriptions")
    wait_until("the plan", lambda: state_cells(d).get("ticket") == ("inactive", "re-enable"))
    # Someone else changes Manage between the look and the confirmation.
    env.cli("subscriptions", "delete", str(by_type["company"]["id"]))
    d.find_element(By.ID, "subs-apply").click()
    wait_for(d, By.CSS_SELECTOR, "dialog#subs-confirm[open]")
    d.find_element(By.ID, "subs-confirm-apply").click()
    wait_until("the refusal", lambda: "Nothing was changed" in d.find_element(By.ID, "subs-result").text)
    wait_until("the new plan", lambda: state_cells(d).get("company") == ("missing", "create"))
    active = {e["type"].lower(): not e["inactiveFlag"] for e in manage_entries(env)}
    assert active == {"ticket": False}, active

    # The API names what is wrong.
    status, _, body = env.api("POST", "/api/subscriptions/sync", {"prune": True})
    assert status == 400 and b"plan_id" in body, (status, body)
    status, _, body = env.api("POST", "/api/subscriptions/sync", {"plan_id": "0000000000000000"})
    assert status == 409 and json.loads(body)["error"] == "plan_changed", (status, body)
    status, _, body = env.api("GET", "/api/subscriptions?prune=maybe")
    assert status == 400 and b"maybe" in body, (status, body)
    # A script reads and applies the same plan with the token. Looks in quick succession reuse
    # one listing of Manage's callbacks (the refused apply's fresh one here): polling the view
    # does not spend Manage's API budget.
    lists = env.manage_requests("callbacks_list")
    for _ in range(3):
        status, _, body = env.api("GET", "/api/subscriptions")
        assert status == 200, (status, body)
    assert env.manage_requests("callbacks_list") - lists <= 1, env.manage_requests("callbacks_list") - lists
    plan = json.loads(body)
    assert plan["summary"]["missing"] == 1 and plan["summary"]["inactive"] == 1, plan
    # The gauges follow every look at Manage, not only the periodic check (off here).
    assert gauges(env) == {"missing": 1, "inactive": 1}, gauges(env)
    status, _, body = env.api("POST", "/api/subscriptions/sync", {"plan_id": plan["plan_id"]})
    assert status == 200 and json.loads(body)["ok"] is True, (status, body)
    assert gauges(env) == {"missing": 0, "inactive": 0}, gauges(env)
    active = {e["type"].lower(): not e["inactiveFlag"] for e in manage_entries(env)}
    assert active == {"ticket": True, "company": True}, active


if __name__ == "__main__":
    run([test_plan_shows_missing_inactive_extra_and_applies_after_confirmation,
         test_a_plan_changed_meanwhile_is_refused_and_bad_requests_are_named], sys.argv[1])
