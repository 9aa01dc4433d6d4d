#!/usr/bin/python3
"""Browser test of the console's overview: with events and a rejection stored, the uPlot
charts are drawn (canvas of non-zero size, legend with each series and its count) and the
cards show counts from the API and from /metrics. Also takes the narrow and dark screenshots.
Usage: overview_test.py <cwhook binary>"""
import re
import sys
import urllib.request

from console_env import run, wait_until


def test_overview_charts_render_with_data(env):
    from selenium.webdriver.common.by import By

    for n in range(3):
        env.trigger("ticket", "updated", 8000 + n)
    # A delivery nobody signed: refused and recorded as a rejection.
    req = urllib.request.Request(f"http://127.0.0.1:{env.callback_port}/callbacks", data=b'{"not":"a callback"}',
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
    except urllib.error.HTTPError:
        pass

    d = env.browser()
    env.login(d, "/ui/")

    def chart(box):
        canvases = d.find_elements(By.CSS_SELECTOR, f"#{box} canvas")
        return canvases[0] if canvases else None

    for box in ("chart-type", "chart-status", "chart-reason"):
        c = wait_until(f"the {box} canvas", lambda: chart(box))
        size = c.size
        assert size["width"] > 200 and size["height"] > 100, (box, size)
        # The canvas holds pixels of the plot, not only a blank bitmap.
        drawn = d.execute_script(
            "const c = arguments[0]; const x = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < x.length; i += 4) if (x[i] !== 0) n++; return n;", c)
        assert drawn > 100, (box, drawn)
    legend = lambda box: [e.text for e in d.find_elements(By.CSS_SELECTOR, f"#{box} .u-legend .u-series .u-label")]
    assert "ticket (3)" in legend("chart-type"), legend("chart-type")
    assert "verified (3)" in legend("chart-status"), legend("chart-status")
    assert any(l.endswith("(1)") for l in legend("chart-reason")), legend("chart-reason")
    cards = d.find_element(By.ID, "cards").text
    assert "Events (1h)\n3" in cards and "Rejections (1h)\n1" in cards, cards
    assert re.search(r"Key fetches \(errors\)\n[1-9][0-9]* \(0\)", cards), cards
    ack = d.find_element(By.ID, "card-ack").text
    assert re.search(r"\(ms\)\n[0-9.]+ / [0-9.]+ / [0-9.]+$", ack), ack
    assert env.csp_violations(d) == []
    env.screenshot(d, "overview")

    # The rejection in its own view, its body's first bytes as text.
    d.find_element(By.LINK_TEXT, "Rejections").click()
    wait_until("the rejection", lambda: d.find_elements(By.CSS_SELECTOR, "#rejections-body tr"))
    row = d.find_element(By.CSS_SELECTOR, "#rejections-body tr").text
    assert "malformed_payload" in row and '{"not":"a callback"}' in row, row
    wait_until("the rejections chart", lambda: d.find_elements(By.CSS_SELECTOR, "#rejections-chart canvas"))
    assert "malformed_payload (1)" in legend("rejections-chart"), legend("rejections-chart")
    env.screenshot(d, "rejections")

    narrow = env.browser(width=420, height=900)
    env.login(narrow, "/ui/")
    wait_until("the narrow chart", lambda: narrow.find_elements(By.CSS_SELECTOR, "#chart-type canvas"))
    c = narrow.find_element(By.CSS_SELECTOR, "#chart-type canvas")
    inner = narrow.execute_script("return window.innerWidth")
    assert c.size["width"] < inner, (c.size, inner)
    # Nothing wider than the window: no sideways scrolling of the page.
    scroll = narrow.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= inner, (scroll, inner)
    env.screenshot(narrow, "overview-narrow")

    dark = env.browser(dark=True)
    env.login(dark, "/ui/events")
    wait_until("the list", lambda: dark.find_elements(By.CSS_SELECTOR, "#events-body tr"))
    bg = dark.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(20, 23, 27)", bg
    env.screenshot(dark, "events-dark")


if __name__ == "__main__":
    run([test_overview_charts_render_with_data], sys.argv[1])
