-- wrk script for the cwhook ingest benchmark (see bench/README.md).
--
--   wrk ... -s bench/ingest.lua http://127.0.0.1:PORT/callbacks -- KEY_URL SIGNING_KEY TAG
--
-- Every request is a distinct compact Manage callback of about 1.5 KB (an update of a ticket
-- picked at random among 50,000, a unique MessageId "<random>-<thread>-4000-8000-<TAG><counter>")
-- signed as Manage signs:
-- x-content-signature = base64(HMAC-SHA256(key = SHA256(signing key), msg = body)), computed
-- per request with OpenSSL's libcrypto through the LuaJIT FFI.
--
-- done() prints one line "BENCH key=value ..." that bench/ingest.sh parses: latency
-- percentiles from wrk's histogram (wrk 4 adds its coordinated-omission correction), answers by class (2xx "stored", 2xx "duplicate", other
-- 2xx, non-2xx with their statuses) and wrk's socket errors.

local ffi = require("ffi")

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
]]

local function load_crypto()
  for _, name in ipairs({ "crypto", "libcrypto.so.3" }) do
    local ok, lib = pcall(ffi.load, name)
    if ok then
      return lib
    end
  end
  error("ingest.lua: cannot load OpenSSL libcrypto (tried crypto, libcrypto.so.3)")
end

local C = load_crypto()
local md_buf = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")
local b64_buf = ffi.new("unsigned char[48]")

local function key_digest(signing_key)
  local d = ffi.new("unsigned char[32]")
  C.SHA256(signing_key, #signing_key, d)
  return d
end

-- base64(HMAC-SHA256(keyhash, body)): 44 characters.
local function sign(keyhash, body)
  C.HMAC(C.EVP_sha256(), keyhash, 32, body, #body, md_buf, md_len)
  local n = C.EVP_EncodeBlock(b64_buf, md_buf, md_len[0])
  return ffi.string(b64_buf, n)
end

-- ---------------------------------------------------------------- setup (main state)

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- ---------------------------------------------------------------- running (per thread)

-- The ticket record, as Manage serialises it (numbers keep their text: 2.00).
-- @ID@, @HOURS@ and @TS@ change per request.
local ENTITY = [[{"id":@ID@,"summary":"Printer on 3rd floor offline (ticket @ID@)","recordType":"ServiceTicket",]] ..
  [["board":{"id":1,"name":"Service Desk"},"status":{"id":16,"name":"New","Sort":0},]] ..
  [["company":{"id":19297,"identifier":"Cobalt","name":"Cobalt Industries"},]] ..
  [["siteName":"Main","addressLine1":"400 Market St","city":"Tampa","stateIdentifier":"FL","zip":"33602",]] ..
  [["contact":{"id":57960,"name":"Lillie Keebler"},"contactPhoneNumber":"8135550142",]] ..
  [["contactEmailAddress":"lillie.keebler@example.com","type":{"id":64,"name":"Hardware"},]] ..
  [["priority":{"id":8,"name":"Priority 3 - Normal Response","sort":6},]] ..
  [["source":{"id":2,"name":"Phone"},"severity":"Medium","impact":"Medium","allowAllClientsPortalView":false,]] ..
  [["automaticEmailContactFlag":true,"closedFlag":false,]] ..
  [["budgetHours":2.00,"actualHours":@HOURS@,"dateEntered":"@TS@","enteredBy":"jsmith",]] ..
  [["_info":{"lastUpdated":"@TS@","updatedBy":"jsmith","notes_href":"https://na.myconnectwise.net/v2025_1//apis/3.0/service/tickets/@ID@/notes"}}]]

-- The callback itself, compact, fields in Manage's order. Entity is a JSON-encoded string.
local PAYLOAD = [[{"MessageId":"@MID@","FromUrl":"@FROM@","CompanyId":"Cobalt","MemberId":"jsmith",]] ..
  [["Action":"updated","Type":"ticket","ID":@ID@,"ProductInstanceId":"639c96cab2eb560001dd1324",]] ..
  [["PartnerId":"61ddc2817bcddc0001c74208","Entity":"@ENTITY@","Metadata":{"key_url":"@KEYURL@"},]] ..
  [["CallbackObjectRecId":26604}]]

-- Splits a template into literal pieces and marker names: {lit, name, lit, name, ..., lit}.
local function compile(template)
  local parts = {}
  local pos = 1
  while true do
    local s, e, name = template:find("@(%u+)@", pos)
    if not s then
      parts[#parts + 1] = template:sub(pos)
      return parts
    end
    parts[#parts + 1] = template:sub(pos, s - 1)
    parts[#parts + 1] = name
    pos = e + 1
  end
end

local function json_string_escape(s)
  return (s:gsub('[\\"]', { ["\\"] = "\\\\", ['"'] = '\\"' }))
end

local parts, fixed, buf
local keyhash, host, path_prefix, tag
local counter = 0

-- Manage's MessageIds are random GUIDs and its updates hit tickets all over the table, so the
-- dedupe key and the entity id land at random places in their indexes, as they do in
-- production. (Increasing values would only ever append to the right edge, which is cheaper.)
-- The counter keeps every MessageId distinct, the TAG keeps runs apart, and "-4000-8000-"
-- marks the benchmark's rows.
local function message_id()
  return string.format("%08x-%04x-4000-8000-%s%08x", math.random(0, 0xffffffff), tid or 0, tag, counter)
end

-- Results, read by done() through thread:get (numbers and strings only).
sent, responses, stored, dup, other2xx, non2xx, statuses, first_bad = 0, 0, 0, 0, 0, 0, "", ""
local status_count = {}

function init(args)
  local key_url, signing_key = args[1], args[2]
  tag = (args[3] or "0000"):sub(1, 4)
  math.randomseed(os.time() + (tid or 0))
  if not key_url or not signing_key then
    error("usage: wrk ... -s ingest.lua URL -- KEY_URL SIGNING_KEY [TAG]")
  end
  -- Self-check against docs/PROTOCOL.md's test vector before measuring anything.
  local v = sign(key_digest("test-signing-key"), '{"Action":"deleted","Type":"ticket","ID":1}')
  if v ~= "AG/S/z4z3Mc5RvJvUnoMjalnj2/lECvtYY6cP/URqn4=" then
    error("ingest.lua: signature self-check failed: " .. v)
  end
  keyhash = key_digest(signing_key)

  -- The entity template is embedded as a JSON string: escape it once, markers survive.
  local payload = PAYLOAD:gsub("@ENTITY@", function() return json_string_escape(ENTITY) end)
  fixed = {
    FROM = key_url:match("^https://([^/:]+)") or "localhost",
    KEYURL = key_url,
  }
  parts = compile(payload)
  buf = {}
  host = wrk.headers["Host"] or (wrk.host .. ":" .. tostring(wrk.port))
  path_prefix = (wrk.path ~= "" and wrk.path or "/") .. "?recordId="
  ts = os.date("!%Y-%m-%dT%H:%M:%SZ")
end

function request()
  counter = counter + 1
  sent = sent + 1
  if counter % 1024 == 0 then
    ts = os.date("!%Y-%m-%dT%H:%M:%SZ")
  end
  local id = tostring(60000 + math.random(0, 49999))
  local vals = {
    MID = message_id(),
    ID = id,
    HOURS = string.format("%.2f", (counter % 32) * 0.25),
    TS = ts,
  }
  for i = 1, #parts do
    local p = parts[i]
    if i % 2 == 1 then
      buf[i] = p
    else
      buf[i] = vals[p] or fixed[p]
    end
  end
  local body = table.concat(buf, "", 1, #parts)
  return "POST " .. path_prefix .. id .. " HTTP/1.1\r\n" ..
      "Host: " .. host .. "\r\n" ..
      "Content-Type: application/json\r\n" ..
      "x-content-signature: " .. sign(keyhash, body) .. "\r\n" ..
      "Content-Length: " .. #body .. "\r\n\r\n" .. body
end

function response(status, headers, body)
  responses = responses + 1
  if status >= 200 and status < 300 then
    if body:find('"duplicate"', 1, true) then
      dup = dup + 1
    elseif body:find('"status":"stored"', 1, true) and not body:find('"verification"', 1, true) then
      stored = stored + 1
    else
      other2xx = other2xx + 1
      if first_bad == "" then first_bad = status .. " " .. body:sub(1, 160) end
    end
  else
    non2xx = non2xx + 1
    status_count[status] = (status_count[status] or 0) + 1
    local s = {}
    for k, n in pairs(status_count) do s[#s + 1] = k .. ":" .. n end
    statuses = table.concat(s, ",")
    if first_bad == "" then first_bad = status .. " " .. body:sub(1, 160) end
  end
end

-- ---------------------------------------------------------------- done (main state)

function done(summary, latency, requests)
  local t = { sent = 0, responses = 0, stored = 0, dup = 0, other2xx = 0, non2xx = 0 }
  local st, bad = {}, ""
  for _, thread in ipairs(threads) do
    for k in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
    local s = thread:get("statuses") or ""
    for code, n in s:gmatch("(%d+):(%d+)") do
      st[code] = (st[code] or 0) + tonumber(n)
    end
    if bad == "" then bad = thread:get("first_bad") or "" end
  end
  -- wrk calls request() once on the first thread to check the script; that one is never sent.
  t.sent = t.sent - 1
  local sl = {}
  for code, n in pairs(st) do sl[#sl + 1] = code .. ":" .. n end
  local e = summary.errors
  local secs = summary.duration / 1e6
  local function ms(p) return string.format("%.3f", latency:percentile(p) / 1000) end
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%s p99_ms=%s p999_ms=%s max_ms=%.3f " ..
    "sent=%d responses=%d s2xx=%d stored=%d dup=%d other2xx=%d non2xx=%d statuses=%s " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs, ms(50), ms(99), ms(99.9), latency.max / 1000,
    t.sent, t.responses, t.stored + t.dup + t.other2xx, t.stored, t.dup, t.other2xx, t.non2xx,
    #sl > 0 and table.concat(sl, ",") or "-",
    e.connect, e.read, e.write, e.timeout))
  if bad ~= "" then
    io.write("BENCH_FIRST_BAD " .. bad:gsub("[\r\n]", " ") .. "\n")
  end
end
