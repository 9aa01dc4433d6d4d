#!/usr/bin/env python3
"""Fills a cwhook database (schema already created by cwhook) with N realistic events.

    events_fill.py DB N [DAYS]

Varied types and actions (weighted like a busy Manage: tickets and time entries dominate),
~50k entities per type, 40 companies, 30 callback registrations, mostly verified with some
failed/unverified and a few pending, received uniformly over DAYS (90) up to now. Bodies are
compact Manage payloads (~1 KB) with a JSON-encoded Entity, numbers like 2.00 included.
"""
import hashlib
import random
import sqlite3
import sys
import time
import uuid

db, n = sys.argv[1], int(sys.argv[2])
days = int(sys.argv[3]) if len(sys.argv) > 3 else 90
rng = random.Random(4)
types = [("ticket", 40), ("time", 15), ("contact", 10), ("company", 8), ("opportunity", 6), ("activity", 6),
         ("project", 4), ("configuration", 4), ("schedule", 3), ("invoice", 2), ("agreement", 1), ("member", 1)]
type_names = [t for t, _ in types]
type_weights = [w for _, w in types]
actions = ["updated", "added", "deleted"]
action_weights = [75, 20, 5]
statuses = ["verified", "failed", "unverified", "pending"]
status_weights = [960, 25, 14, 1]
companies = [f"company{i:02d}" for i in range(40)]
now_us = int(time.time() * 1_000_000)
span_us = days * 86_400 * 1_000_000
key_url = ("https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?companyName={}"
           "&id=e17e6674-42f6-4105-9cff-4cd6cb4e62e8")

con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode = WAL")
con.execute("PRAGMA synchronous = OFF")
sql = """INSERT INTO events (received_at_us, last_delivery_at_us, status, verify_reason, dedupe_key, body_sha256,
  body, method, path, query, client_addr, headers, content_type, signature, message_id, type, action, entity_id,
  company_id, member_id, from_url, product_instance_id, partner_id, callback_id, key_url, next_verify_at_us)
  VALUES (?, ?, ?, ?, ?, ?, ?, 'POST', '/callbacks', ?, '203.0.113.7', ?, 'application/json', ?, ?, ?, ?, ?, ?,
  'Aurasell', 'na.myconnectwise.net', '639c96cab2eb560001dd1324', '61ddc2817bcddc0001c74208', ?, ?, ?)"""
batch = []
for i in range(n):
    t = rng.choices(type_names, type_weights)[0]
    action = rng.choices(actions, action_weights)[0]
    status = rng.choices(statuses, status_weights)[0]
    entity = rng.randint(1, 50_000)
    company = rng.choice(companies)
    callback = rng.randint(1, 30)
    received = now_us - rng.randint(0, span_us)
    mid = str(uuid.UUID(int=rng.getrandbits(128)))
    entity_json = (f'{{\\"id\\":{entity},\\"summary\\":\\"Issue {i} reported by {company}\\",'
                   f'\\"budgetHours\\":{rng.randint(0, 40)}.00,\\"actualHours\\":{rng.randint(0, 400) / 10:.2f},'
                   f'\\"board\\":{{\\"id\\":{rng.randint(1, 20)},\\"name\\":\\"Service Desk\\"}},'
                   f'\\"status\\":{{\\"id\\":{rng.randint(1, 12)},\\"name\\":\\"In Progress\\"}},'
                   f'\\"company\\":{{\\"id\\":{rng.randint(1, 5000)},\\"identifier\\":\\"{company}\\"}},'
                   f'\\"_info\\":{{\\"lastUpdated\\":\\"2026-06-09T21:59:47Z\\",\\"updatedBy\\":\\"Aurasell\\",'
                   f'\\"notes_href\\":\\"https://na.myconnectwise.net/v2025_1//apis/3.0/service/tickets/{entity}/notes\\"}}}}')
    if action == "deleted":
        entity_field = "null"
    else:
        entity_field = f'"{entity_json}"'
    body = (f'{{"MessageId":"{mid}","FromUrl":"na.myconnectwise.net","CompanyId":"{company}","MemberId":"Aurasell",'
            f'"Action":"{action}","Type":"{t}","ID":{entity},"ProductInstanceId":"639c96cab2eb560001dd1324",'
            f'"PartnerId":"61ddc2817bcddc0001c74208","Entity":{entity_field},'
            f'"Metadata":{{"key_url":"{key_url.format(company)}"}},"CallbackObjectRecId":{callback}}}').encode()
    batch.append((received, received, status, "" if status == "verified" else "bad_signature", "m:" + mid,
                  hashlib.sha256(body).hexdigest(), body, f"recordId={entity}",
                  "Host: hooks.example.com\nContent-Type: application/json\n", "c2lnbmF0dXJl", mid, t, action,
                  entity, company, callback, key_url.format(company),
                  received + 1_000_000 if status == "pending" else 0))
    if len(batch) == 10_000:
        con.executemany(sql, batch)
        con.commit()
        batch.clear()
con.executemany(sql, batch)
con.commit()
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.close()
