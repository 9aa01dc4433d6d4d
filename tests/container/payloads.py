#!/usr/bin/env python3
"""Signed Manage-shaped callback bodies for tests/container/run.sh, and the checks of what
cwhook stored. Independent of cwhook's code: the signature is computed here the way Manage
does (x-content-signature = base64(HMAC-SHA256(key = SHA256(signing key), raw body))).

  payloads.py make TEMPLATE_JSONL SIGNING_KEY OUT_DIR FIRST_ID COUNT
      TEMPLATE_JSONL: `cwhook events export` output; its first event's body is the template.
      Writes OUT_DIR/<id>.json (the exact bytes to send) and OUT_DIR/<id>.sig.
  payloads.py check [--pending-ok] EXPORT_JSONL BODY_DIR ID_FILE...
      Every body of BODY_DIR named in the ID files (one id per line) is stored byte-exact and
      verified (or, with --pending-ok, still pending: acknowledged with 202 while the key
      server could not be reached);
      prints `<id> <client_addr>` for each.
"""
import base64
import hashlib
import hmac
import json
import pathlib
import sys


def load_export(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def make(template_jsonl, signing_key, out_dir, first_id, count):
    events = load_export(template_jsonl)
    if not events:
        sys.exit("payloads.py: no stored event to use as a template")
    template = json.loads(base64.b64decode(events[0]["body_base64"]))
    key = hashlib.sha256(signing_key.encode()).digest()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for record_id in range(int(first_id), int(first_id) + int(count)):
        p = dict(template)
        p["ID"] = record_id
        p["MessageId"] = f"container-test-{record_id}"
        # An Entity with bytes a careless proxy would change: non-ASCII, escapes, spacing.
        p["Entity"] = json.dumps({"id": record_id, "summary": f"Drücker  kaputt \u2013 \"#{record_id}\"\t/ok",
                                  "price": 10.50})
        # Manage's bodies are compact; this one is not, and keeps a trailing newline: the
        # stored bytes must be these bytes, not a re-serialization.
        body = (json.dumps(p, ensure_ascii=False, indent=1) + "\n").encode()
        (out / f"{record_id}.json").write_bytes(body)
        sig = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        (out / f"{record_id}.sig").write_text(sig)


def check(export_jsonl, body_dir, *id_files, statuses=("verified",)):
    by_sha = {e["body_sha256"]: e for e in load_export(export_jsonl)}
    failures = 0
    for id_file in id_files:
        for record_id in pathlib.Path(id_file).read_text().split():
            body = (pathlib.Path(body_dir) / f"{record_id}.json").read_bytes()
            e = by_sha.get(hashlib.sha256(body).hexdigest())
            if e is None:
                print(f"{record_id} MISSING")
                failures += 1
                continue
            if base64.b64decode(e["body_base64"]) != body or e["status"] not in statuses:
                print(f"{record_id} DIFFERS status={e['status']}")
                failures += 1
                continue
            print(f"{record_id} {e['client_addr']}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "make":
        make(*sys.argv[2:])
    elif len(sys.argv) >= 6 and sys.argv[1:3] == ["check", "--pending-ok"]:
        check(*sys.argv[3:], statuses=("verified", "pending"))
    elif len(sys.argv) >= 5 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        sys.exit(__doc__)
