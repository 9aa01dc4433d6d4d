#!/usr/bin/python3
"""Browser tests of the events list and the event page, with callbacks fired by the real
Manage emulator: the live tail, filters in the URL (and back/forward), the decoded Entity
shown as text even when it holds markup, and a replay from the page that reaches a receiver.
Usage: events_test.py <cwhook binary>"""
import json
import sys
import time

from console_env import run, wait_for, wait_until


def rows(d):
    from selenium.webdriver.common.by import By

    return d.find_elements(By.CSS_SELECTOR, "#events-body tr")


def test_event_appears_in_the_live_tail(env):
    from selenium.webdriver.common.by import By

    env.trigger("ticket", "added", 4000)
    d = env.browser()
    env.login(d, "/ui/events")
    wait_until("the first event", lambda: len(rows(d)) == 1)
    d.find_element(By.ID, "tail").click()
    env.trigger("ticket", "updated", 4001)
    start = time.monotonic()
    wait_until("the tailed event", lambda: len(rows(d)) == 2, timeout=6)
    assert time.monotonic() - start < 5, "not within the tail interval"
    newest = rows(d)[0]
    assert "ticket / updated" in newest.text and "4001" in newest.text, newest.text
    # Time in the browser's zone, UTC in the title.
    title = newest.find_element(By.CSS_SELECTOR, "td[title]").get_attribute("title")
    assert title.endswith("Z"), title
    env.screenshot(d, "events-tail")


def test_filters_narrow_the_list_and_the_url_reproduces_it(env):
    from selenium.webdriver.common.by import By

    env.trigger("ticket", "added", 5000)
    env.trigger("ticket", "updated", 5001)
    env.trigger("ticket", "updated", 5002)
    d = env.browser()
    env.login(d, "/ui/events")
    wait_until("three events", lambda: len(rows(d)) == 3)
    # Every control has a label.
    unlabelled = d.execute_script(
        "return [...document.querySelectorAll('main input, main select')]"
        ".filter((e) => e.labels.length === 0).map((e) => e.id || e.name)")
    assert unlabelled == [], unlabelled
    # Keyboard only: type into the fields, Enter submits.
    from selenium.webdriver.common.keys import Keys
    d.find_element(By.ID, "f-action").send_keys("updated")
    d.find_element(By.ID, "f-entity_id").send_keys("5002", Keys.ENTER)
    wait_until("the filtered list", lambda: len(rows(d)) == 1 and "5002" in rows(d)[0].text)
    assert d.current_url.endswith("/ui/events?action=updated&entity_id=5002"), d.current_url
    env.screenshot(d, "events-filtered")
    # Back restores the whole list, forward the filtered one.
    d.back()
    wait_until("the list after back", lambda: len(rows(d)) == 3)
    d.forward()
    wait_until("the list after forward", lambda: len(rows(d)) == 1)
    # The link alone reproduces the view (a fresh page load).
    d.get(f"{env.admin}/ui/events?action=added")
    wait_until("the shared view", lambda: len(rows(d)) == 1 and "5000" in rows(d)[0].text)
    assert d.find_element(By.ID, "f-action").get_attribute("value") == "added"
    d.get(f"{env.admin}/ui/events?type=contact")
    wait_until("the empty state", lambda: "No events match" in d.find_element(By.ID, "events-state").text)
    # Tab reaches the rows' links; Enter opens the event.
    d.get(f"{env.admin}/ui/events?action=added")
    wait_until("the list", lambda: len(rows(d)) == 1)
    link = rows(d)[0].find_element(By.CSS_SELECTOR, "a")
    for _ in range(40):
        d.switch_to.active_element.send_keys(Keys.TAB)
        if d.switch_to.active_element == link:
            break
    assert d.switch_to.active_element == link, "the row's link is not reachable with Tab"
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait_until("the event page", lambda: d.find_elements(By.ID, "payload"))


def test_event_page_shows_the_entity_as_text_never_markup(env):
    from selenium.webdriver.common.by import By

    hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    env.trigger("ticket", "updated", 6000, entity={"id": 6000, "summary": hostile, "board": {"id": 1, "name": "Ops"}})
    d = env.browser()
    env.login(d, "/ui/events")
    wait_until("the event", lambda: len(rows(d)) == 1)
    rows(d)[0].find_element(By.CSS_SELECTOR, "a").click()
    pre = wait_for(d, By.ID, "payload")
    assert "/ui/events/" in d.current_url
    text = pre.text
    # Entity arrives as a JSON-encoded string; the page shows it decoded, as an object.
    payload = json.loads(text)
    assert payload["Entity"]["board"]["name"] == "Ops", payload
    assert payload["Entity"]["summary"] == hostile
    assert "<script>window.__pwned = 1</script><img src=x onerror=" in text, text
    # Nothing of it ran and nothing became an element.
    time.sleep(0.3)
    assert d.execute_script("return window.__pwned") is None
    assert not d.find_elements(By.CSS_SELECTOR, "main script, main img")
    meta = d.find_element(By.ID, "event-meta").text
    assert "verified" in meta and "6000" in meta, meta
    link = d.find_element(By.ID, "raw-link")
    assert link.get_attribute("download"), "the raw body is a download"
    assert env.csp_violations(d) == []
    env.screenshot(d, "event-page")


def test_replay_from_the_page_reaches_the_receiver(env):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    env.trigger("ticket", "updated", 7000)
    status, _, body = env.api("GET", "/api/events")
    event_id = json.loads(body)["events"][0]["id"]
    d = env.browser()
    env.login(d, f"/ui/events/{event_id}")
    wait_for(d, By.ID, "replay-button")
    Select(d.find_element(By.ID, "replay-target")).select_by_value(f"127.0.0.1:{env.receiver.port}")
    url = d.find_element(By.ID, "replay-url")
    url.clear()
    url.send_keys(f"http://127.0.0.1:{env.receiver.port}/hook")
    cli = d.find_element(By.CSS_SELECTOR, "#replay-url").find_element(By.XPATH, "ancestor::form//code").text
    assert cli == f"$ cwhook events replay {event_id} --to http://127.0.0.1:{env.receiver.port}/hook", cli
    d.find_element(By.ID, "replay-button").click()
    result = d.find_element(By.ID, "replay-result")
    wait_until("the replay's result", lambda: "1 of 1 answered 2xx" in result.text, timeout=15)
    assert len(env.receiver.requests) == 1
    path, headers, sent = env.receiver.requests[0]
    assert path == "/hook" and b"7000" in sent, (path, sent[:200])
    history = wait_for(d, By.ID, "replays")
    assert f"127.0.0.1:{env.receiver.port}/hook" in history.text and "200" in history.text, history.text
    # A target not listed in admin.replay_targets is refused, in words.
    url.clear()
    url.send_keys("http://127.0.0.1:1/elsewhere")
    d.find_element(By.ID, "replay-button").click()
    wait_until("the refusal", lambda: "replay_target_not_allowed" in result.text)
    assert len(env.receiver.requests) == 1
    env.screenshot(d, "event-replayed")


def test_bulk_replay_counts_first_then_sends_the_selection(env):
    from selenium.webdriver.common.by import By

    env.trigger("ticket", "added", 9000)
    env.trigger("ticket", "updated", 9001)
    env.trigger("ticket", "updated", 9002)
    d = env.browser()
    env.login(d, "/ui/events?action=updated")
    wait_until("the filtered list", lambda: len(rows(d)) == 2)
    d.find_element(By.CSS_SELECTOR, "#bulk summary").click()
    url = wait_for(d, By.ID, "bulk-url")
    url.clear()
    url.send_keys(f"http://127.0.0.1:{env.receiver.port}/bulk")
    cli = d.find_element(By.CSS_SELECTOR, "#bulk code.cli").text
    assert cli == f"$ cwhook events replay --action updated --to http://127.0.0.1:{env.receiver.port}/bulk", cli
    # Nothing is sent before the count is confirmed.
    d.find_element(By.ID, "bulk-count").click()
    confirm = wait_for(d, By.ID, "bulk-confirm")
    assert "2 event(s) match" in d.find_element(By.ID, "bulk-result").text
    assert confirm.text.startswith("Replay 2 event(s)"), confirm.text
    assert env.receiver.requests == []
    confirm.click()
    result = d.find_element(By.ID, "bulk-result")
    wait_until("the job's end", lambda: "done: 2 of 2 answered 2xx" in result.text, timeout=15)
    assert [p for p, _, _ in env.receiver.requests] == ["/bulk", "/bulk"], env.receiver.requests
    bodies = [body for _, _, body in env.receiver.requests]
    # Oldest first: 9001, then 9002; the added event is not part of the selection.
    assert b"9001" in bodies[0] and b"9002" in bodies[1], bodies
    env.screenshot(d, "events-bulk-replay")


if __name__ == "__main__":
    run([test_event_appears_in_the_live_tail, test_filters_narrow_the_list_and_the_url_reproduces_it,
         test_event_page_shows_the_entity_as_text_never_markup, test_replay_from_the_page_reaches_the_receiver,
         test_bulk_replay_counts_first_then_sends_the_selection],
        sys.argv[1])
