#!/usr/bin/python3
"""Browser tests of the console's login and of what a foreign page cannot do: the admin token
logs in, a wrong one is refused in words; a cookie request without the CSRF token, or from
another Origin, changes nothing.  Usage: login_test.py <cwhook binary>"""
import json
import sys
import urllib.request

from console_env import TOKEN, run, wait_for, wait_until


def test_login_with_the_token_and_a_wrong_token_refused(env):
    from selenium.webdriver.common.by import By

    d = env.browser()
    d.get(f"{env.admin}/ui/events")
    field = wait_for(d, By.ID, "token")
    # The field is labelled (screen readers, keyboard users).
    assert d.find_element(By.CSS_SELECTOR, "label[for=token]").text.startswith("Admin token")
    field.send_keys("not-the-token")
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    msg = d.find_element(By.ID, "login-message")
    wait_until("the refusal", lambda: "not the admin token" in msg.text)
    assert not d.find_elements(By.CSS_SELECTOR, "#nav:not([hidden])")
    assert d.get_cookie("cwhook_session") is None
    env.screenshot(d, "login-refused")

    field.clear()
    field.send_keys(TOKEN)
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_until("the events view after login", lambda: d.find_elements(By.ID, "events"))
    # The login kept the page asked for.
    assert d.current_url.endswith("/ui/events"), d.current_url
    cookie = d.get_cookie("cwhook_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/", cookie
    # Scripts cannot read the session cookie.
    assert "cwhook_session" not in d.execute_script("return document.cookie")
    # Logging out ends the session.
    d.find_element(By.ID, "logout").click()
    wait_for(d, By.ID, "token")
    status, _, _ = env.api("GET", "/api/events", token=None,
                           headers={"Cookie": f"cwhook_session={cookie['value']}"})
    assert status == 401, status
    assert env.csp_violations(d) == []


def test_foreign_origin_or_missing_csrf_token_is_refused(env):
    # A session as the browser would hold it.
    status, headers, body = env.api("POST", "/ui/api/login", {"token": TOKEN}, token=None)
    assert status == 200, (status, body)
    cookie = headers["Set-Cookie"].split(";")[0]
    csrf = json.loads(body)["csrf_token"]
    retry = {"all": True, "dry_run": True}

    status, _, body = env.api("POST", "/api/deliveries/retry", retry, token=None, headers={"Cookie": cookie})
    assert status == 403 and json.loads(body)["error"] == "csrf_token_invalid", (status, body)
    status, _, body = env.api("POST", "/api/deliveries/retry", retry, token=None,
                              headers={"Cookie": cookie, "X-CSRF-Token": "0" * 64})
    assert status == 403, (status, body)
    status, _, body = env.api("POST", "/api/deliveries/retry", retry, token=None,
                              headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert status == 403 and json.loads(body)["error"] == "origin_not_allowed", (status, body)
    # A form post (what a page could send without a preflight) is refused for its type.
    req = urllib.request.Request(f"{env.admin}/api/deliveries/retry", data=b"all=true", method="POST",
                                 headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("form post accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 415, e.code
    # With the token and the console's own origin it goes through.
    status, _, body = env.api("POST", "/api/deliveries/retry", retry, token=None,
                              headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": env.admin})
    assert status == 200, (status, body)
    # Every /ui/ answer carries the policy.
    status, headers, _ = env.api("GET", "/ui/", token=None)
    assert "script-src 'self'" in headers["Content-Security-Policy"], headers
    assert headers["X-Content-Type-Options"] == "nosniff"


if __name__ == "__main__":
    run([test_login_with_the_token_and_a_wrong_token_refused, test_foreign_origin_or_missing_csrf_token_is_refused],
        sys.argv[1])
