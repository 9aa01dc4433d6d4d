"""What every browser test of the web console needs: the real `cwhook emulate` (HTTPS, its
own signing key), the real `cwhook serve` trusting it (a temp config with the admin token),
a subscription synced into the emulator, signed callbacks fired through the emulator, a tiny
receiver for replays, and headless Chromium driven by Selenium. Standard library + selenium
only (no pytest): each test group is a script run by ctest.

    with ConsoleEnv(binary) as env:
        env.trigger("ticket", "updated", 5000)
        browser = env.browser()
"""
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77  # ctest's SKIP_RETURN_CODE: no Chromium / chromedriver / selenium here
TOKEN = "browser-test-admin-token-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout=10.0, interval=0.05):
    """Calls fn until it returns something true. An element the page replaced between being
    found and being read (a view redrawn after an answer) counts as not yet: read again."""
    try:
        from selenium.common.exceptions import StaleElementReferenceException as redrawn
    except ImportError:  # the API-only helpers run without selenium too
        redrawn = ()
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except redrawn:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class Receiver:
    """A replay target: stores every POST it gets, answers 200."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                outer.requests.append((self.path, dict(self.headers), self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ConsoleEnv:
    def __init__(self, binary, screenshots=None):
        self.binary = binary
        self.screenshots = screenshots or os.environ.get("CWHOOK_SCREENSHOTS")
        self.dir = tempfile.mkdtemp(prefix="cwhook-browser-")
        self.procs = []
        self.drivers = []
        self.receiver = None
        self.started = time.monotonic()

    # ---- processes --------------------------------------------------------------------
    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _spawn(self, name, args):
        log = open(os.path.join(self.dir, f"{name}.log"), "wb")
        p = subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        self.procs.append((name, p, log))
        return p

    def log_of(self, name):
        with open(os.path.join(self.dir, f"{name}.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _start(self):
        emu_dir = os.path.join(self.dir, "emulator")
        emu_port = free_port()
        self._spawn("emulator", ["emulate", "--state-dir", emu_dir, "--listen", f"127.0.0.1:{emu_port}"])
        url_file = os.path.join(emu_dir, "url")
        wait_until("the emulator", lambda: os.path.exists(url_file) and open(url_file).read().strip())
        self.emulator_url = open(url_file).read().strip()
        self.ca_file = os.path.join(emu_dir, "cert.pem")
        self.tls = ssl.create_default_context(cafile=self.ca_file)

        self.receiver = Receiver()
        self.callback_port = free_port()
        self.admin_port = free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.config = os.path.join(self.dir, "cwhook.toml")
        with open(self.config, "w") as f:
            f.write(f"""
[server]
listen = ["127.0.0.1:{self.callback_port}"]

[storage]
path = "{self.dir}/cwhook.db"

[admin]
listen = "127.0.0.1:{self.admin_port}"
token = "{TOKEN}"
replay_targets = ["127.0.0.1:{self.receiver.port}"]

[verify]
companies = ["cwhook_emulator"]
allowed_key_hosts = ["127.0.0.1:{emu_port}"]
ca_file = "{self.ca_file}"

[manage]
site = "{self.emulator_url}"
company_id = "cwhook_emulator"
public_key = "emulatorpublic"
private_key = "emulatorprivate"
client_id = "9b0e8d9e-7b0a-4f5e-9a63-3d1c7f7c2a11"
ca_file = "{self.ca_file}"

[[subscriptions]]
type = "ticket"
level = "owner"
url = "http://127.0.0.1:{self.callback_port}/callbacks?recordId="

[[subscriptions]]
type = "company"
level = "owner"
url = "http://127.0.0.1:{self.callback_port}/callbacks?recordId="
description = "companies to cwhook"
""")
        self._spawn("serve", ["serve", "--config", self.config])

        def admin_up():
            try:
                with urllib.request.urlopen(f"{self.admin}/ui/", timeout=1) as r:
                    return r.status == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False

        try:
            wait_until("cwhook serve", admin_up, timeout=20)
        except AssertionError:
            sys.stderr.write(self.log_of("serve"))
            raise
        self.cli("subscriptions", "sync")

    def __exit__(self, *exc):
        for d in self.drivers:
            try:
                d.quit()
            except Exception:
                pass
        for name, p, log in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
            log.close()
        if self.receiver:
            self.receiver.close()
        failed = exc and exc[0] is not None
        if failed:
            for name, _, _ in self.procs:
                sys.stderr.write(f"---- {name} log\n{self.log_of(name)[-4000:]}\n")
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    # ---- Manage's side ----------------------------------------------------------------
    def trigger(self, type_, action, record_id, entity=None):
        """Fires a callback from the emulator; returns its answer (deliveries made)."""
        body = {"type": type_, "action": action, "id": record_id}
        if entity is not None:
            body["entity"] = entity
        req = urllib.request.Request(f"{self.emulator_url}/_emulator/trigger", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, context=self.tls, timeout=60) as r:
            answer = json.loads(r.read())
        statuses = [d.get("status") for d in answer.get("deliveries", [])]
        assert statuses == [200], f"delivery not stored: {answer}"
        return answer

    def manage_requests(self, route):
        """How many requests of one route (callbacks_list, ...) the emulator has answered."""
        with urllib.request.urlopen(f"{self.emulator_url}/_emulator/state", context=self.tls, timeout=60) as r:
            return json.loads(r.read())["requests"].get(route, 0)

    def cli(self, *args):
        """Runs `cwhook <args> --config <the test's config>`; returns its stdout (fails on exit != 0)."""
        r = subprocess.run([self.binary, *args, "--config", self.config], capture_output=True, text=True,
                           cwd=self.dir, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"cwhook {' '.join(args)}: exit {r.returncode}: {r.stdout}{r.stderr}")
        return r.stdout

    # ---- the admin API without a browser -----------------------------------------------
    def api(self, method, path, body=None, headers=None, token=TOKEN):
        h = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.admin}{path}", data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    # ---- the browser ------------------------------------------------------------------
    def browser(self, width=1280, height=800, dark=False):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  f"--window-size={width},{height}", "--lang=en-US", "--disable-extensions"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                                  options=opts)
        driver.set_page_load_timeout(20)
        if dark:
            # prefers-color-scheme: dark, as a system in dark mode reports it.
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                   {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        self.drivers.append(driver)
        return driver

    def login(self, driver, path="/ui/"):
        from selenium.webdriver.common.by import By

        driver.get(f"{self.admin}{path}")
        field = wait_for(driver, By.ID, "token")
        field.send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_until("the console after login", lambda: driver.find_elements(By.CSS_SELECTOR, "#nav:not([hidden])"))

    def screenshot(self, driver, name):
        if not self.screenshots:
            return
        os.makedirs(self.screenshots, exist_ok=True)
        driver.save_screenshot(os.path.join(self.screenshots, f"{name}.png"))

    @staticmethod
    def csp_violations(driver):
        """Console messages about the Content-Security-Policy (none expected: the console
        needs no inline script or style)."""
        return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def wait_for(driver, by, what, timeout=10.0, visible=True):
    def find():
        for e in driver.find_elements(by, what):
            if not visible or e.is_displayed():
                return e
        return None

    return wait_until(f"{what}", find, timeout=timeout)


def have_browser():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def run(tests, binary):
    """Runs test functions in order, each with a fresh environment; prints a line per test;
    exits non-zero when one failed, 77 when the browser is missing."""
    if not have_browser():
        print("SKIP: chromium, chromedriver or python3-selenium missing (tools/install-deps.sh test)")
        sys.exit(SKIP)
    failures = 0
    for t in tests:
        start = time.monotonic()
        try:
            with ConsoleEnv(binary) as env:
                t(env)
            print(f"ok   {t.__name__} ({time.monotonic() - start:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next test runs
            failures += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL {t.__name__}: {e}", flush=True)
    sys.exit(1 if failures else 0)
