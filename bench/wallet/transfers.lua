-- wrk script for bench/wallet.sh: POST /v1/wallet/transfers with PIN and a unique idempotency key per request, then a drain.
-- usage: wrk -tT -cC -d(SECONDS+GRACE)s -s transfers.lua URL -- USERS_FILE SECONDS TAG PIN T
--   USERS_FILE: one "user_id token" line per user (bench/wallet/setup.sh writes it)
--   SECONDS:    how long transfers are sent; after that each connection sends GET /healthz, so that every transfer
--               in flight is answered before wrk stops, and the 201s counted here are all the transfers made
--   TAG:        makes this round's idempotency keys differ from every other round's
--   T:          wrk's thread count again (a thread's init runs before the next thread exists)
-- done() prints one line: "wallet_round ok=N other=N window=S rate=R codes=STATUS:N,..."

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } wb_timespec;
  int clock_gettime(int clock, wb_timespec *ts);
]]
local ts = ffi.new("wb_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: the same clock in every thread
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- ---- main state: hands each thread its number, sums their counts ----

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function done(summary, latency, requests)
  local ok, other, first, last = 0, 0, math.huge, 0
  local codes = {}
  for _, t in ipairs(threads) do
    ok = ok + t:get("ok")
    other = other + t:get("other")
    local f, l = t:get("first"), t:get("last")
    if f > 0 and f < first then first = f end
    if l > last then last = l end
    local c = t:get("codes")
    if c ~= "" then table.insert(codes, c) end
  end
  local window = last > first and last - first or 0
  local rate = window > 0 and ok / window or 0
  io.write(string.format("wallet_round ok=%d other=%d window=%.3f rate=%.0f codes=%s\n", ok, other, window, rate,
    #codes > 0 and table.concat(codes, ",") or "none"))
end

-- ---- each thread ----

ok, other, first, last, codes = 0, 0, 0, 0, ""
local users, n_users = {}, 0
local seconds, tag, pin, nthreads
local count, started = 0, nil
local other_codes = {}
local healthz

function init(args)
  local path = args[1]
  seconds = tonumber(args[2])
  tag = args[3]
  pin = args[4]
  nthreads = tonumber(args[5])
  assert(path and seconds and tag and pin and nthreads, "usage: -- USERS_FILE SECONDS TAG PIN THREADS")
  for line in io.lines(path) do
    local id, token = line:match("^(%d+) (%S+)$")
    if id then
      n_users = n_users + 1
      users[n_users] = {id = id, headers = {["Authorization"] = "Bearer " .. token,
                                            ["Content-Type"] = "application/json"}}
    end
  end
  assert(n_users >= 2, "need at least two users in " .. path)
  healthz = wrk.format("GET", "/healthz")
end

function request()
  local t = now()
  if started == nil then
    started = t
    first = t
  end
  if t - started >= seconds then return healthz end
  -- Request k of thread tid is number g overall; g walks the ordered pairs of users so that every user sends and
  -- receives about as much, and no balance runs dry.
  local g = count * nthreads + (tid - 1)
  count = count + 1
  local s = g % n_users
  local r = (s + 1 + math.floor(g / n_users) % (n_users - 1)) % n_users
  local sender, receiver = users[s + 1], users[r + 1]
  local body = string.format(
    '{"to_user_id":"%s","amount":%d,"currency":"USD","pin":"%s","idempotency_key":"%s-%d-%d"}',
    receiver.id, 1 + g % 97, pin, tag, tid, count)
  return wrk.format("POST", "/v1/wallet/transfers", sender.headers, body)
end

function response(status, headers, body)
  if status == 201 then
    ok = ok + 1
    last = now()
  elseif status ~= 200 then -- 200 is the drain's /healthz
    other = other + 1
    other_codes[status] = (other_codes[status] or 0) + 1
    local parts = {}
    for code, n in pairs(other_codes) do table.insert(parts, code .. ":" .. n) end
    codes = table.concat(parts, ",")
  end
end
