-- Codec micro-benchmark for the shipped Lua (dist/mod_s2s_v6mesh/v6alt.lua).
--
--   lua5.4 bench/codec.lua [DIST_DIR] [RUNS] [OPS_PER_RUN]
--   luajit bench/codec.lua [DIST_DIR] [RUNS] [OPS_PER_RUN]
--
-- Builds a fixed list of 10,000 addresses from a deterministic PRNG (the same
-- list on every Lua and every run), checks that every name decodes back to its
-- address, then times with os.clock (CPU time of this process):
--   encode        v6alt.encode(packed)            packed 16-byte string -> name
--   decode        v6alt.decode(name)              name -> packed (strict mode)
--   decode_hyphenated / decode_unhyphenated   decode over each half of the mix
--   decode_sub    v6alt.decode("muc." .. name)    subdomain names (slower path)
--   route_check   v6alt.decode(name) + policy.decide(policy, packed): the work the
--                 module's route/remote hook does per stanza to a .v6.alt peer
-- Each op is timed over RUNS repetitions of OPS_PER_RUN calls (cycling through
-- the list) after one untimed warm-up; prints one JSON object on stdout.
--   policy_decide policy.decide(policy, packed) alone (the second half of route_check)
-- Nothing is cached: every call gets a list entry, and the tables the
-- library's functions can reach (upvalues, two levels deep) are counted before
-- and after the timed loops: a memo table would grow ("no_cache_check").
local dist = arg[1] or "dist"
local RUNS = tonumber(arg[2] or "7")
local OPS = tonumber(arg[3] or "400000")
package.path = dist .. "/?.lua;" .. package.path
local v6alt = require "mod_s2s_v6mesh.v6alt"
local policies = require "mod_s2s_v6mesh.policy"

local N = 10000
local SEED = 20240601

-- Park-Miller "minimal standard" PRNG: exact in doubles and in 5.3+ integers.
local state = SEED
local function rnd() -- 0 .. 2^31-2
  state = (state * 16807) % 2147483647
  return state
end
local function byte() return math.floor(rnd() / 8388608) % 256 end -- high bits
local function below(n) return math.floor(rnd() / 2147483647 * n) end

local function bytes(t) -- table of 16 numbers -> packed string
  return string.char(t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10],
    t[11], t[12], t[13], t[14], t[15], t[16])
end
local function random_bytes(t, from, to)
  for i = from, to do t[i] = byte() end
  return t
end
local function zeros() return { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } end
local function small_host(t) -- ::1, ::2, ::a, ::100, ::1:1 ... (a sparse interface id)
  local k = below(4)
  if k == 0 then t[16] = 1
  elseif k == 1 then t[16] = 1 + below(255)
  elseif k == 2 then t[15] = below(3); t[16] = below(256)
  else t[12] = 1 + below(255); t[16] = 1 + below(255) end
  return t
end

-- The mix (fractions of N):
--   55% Yggdrasil node addresses 0200::/8: 02, a small leading-ones count, 14 random bytes
--   15% Yggdrasil subnet hosts 0300::/8: /64 prefix random, host ::1 / small / random (SLAAC)
--   10% ULA fd00::/8: fdXX:XXXX:XXXX:SSSS:: + sparse host
--   10% global unicast, sparse: 2001/2a00/2a01/2604-ish /32, a /48, ::1 style hosts
--    5% CJDNS fc00::/8, random
--    5% zero-heavy: random groups zeroed (ties between equal zero runs, runs at either end)
local kinds = {
  { "ygg_node", 0.55 }, { "ygg_subnet", 0.15 }, { "ula", 0.10 },
  { "global_sparse", 0.10 }, { "cjdns", 0.05 }, { "zero_heavy", 0.05 },
}
local make = {}
function make.ygg_node()
  local t = random_bytes(zeros(), 3, 16)
  t[1] = 2; t[2] = below(12)
  return t
end
function make.ygg_subnet()
  local t = zeros()
  t[1] = 3; random_bytes(t, 2, 8)
  if below(10) < 3 then random_bytes(t, 9, 16) else small_host(t) end
  return t
end
function make.ula()
  local t = zeros()
  t[1] = 0xfd; random_bytes(t, 2, 6)
  t[7] = 0; t[8] = below(16)
  return small_host(t)
end
local global_prefixes = { { 0x20, 0x01 }, { 0x2a, 0x00 }, { 0x2a, 0x01 }, { 0x26, 0x04 }, { 0x24, 0x0e } }
function make.global_sparse()
  local t = zeros()
  local p = global_prefixes[1 + below(#global_prefixes)]
  t[1], t[2] = p[1], p[2]
  random_bytes(t, 3, 6)
  if below(2) == 0 then t[7] = 0; t[8] = below(256) end
  return small_host(t)
end
function make.cjdns()
  local t = random_bytes(zeros(), 2, 16)
  t[1] = 0xfc
  return t
end
function make.zero_heavy()
  local t = random_bytes(zeros(), 1, 16)
  t[1] = 0x20; t[2] = 0x01
  for g = 2, 8 do
    if below(2) == 0 then t[2 * g - 1] = 0; t[2 * g] = 0 end
  end
  return t
end

local packed, names, subnames = {}, {}, {}
local counts = {}
do
  local i = 0
  for k, entry in ipairs(kinds) do
    local n = (k == #kinds) and (N - i) or math.floor(entry[2] * N + 0.5)
    counts[entry[1]] = n
    for _ = 1, n do
      i = i + 1
      packed[i] = bytes(make[entry[1]]())
    end
  end
  -- Interleave the kinds (deterministic Fisher-Yates), so branches are mixed.
  for j = N, 2, -1 do
    local r = 1 + below(j)
    packed[j], packed[r] = packed[r], packed[j]
  end
end

-- Names, and a round trip check of every one of them.
local hyphenated, bytes_total = 0, 0
for i = 1, N do
  local name, err = v6alt.encode(packed[i])
  assert(name, err)
  names[i] = name
  subnames[i] = "muc." .. name
  bytes_total = bytes_total + #name
  if string.find(name, "-", 1, true) then hyphenated = hyphenated + 1 end
  local back, derr = v6alt.decode(name)
  assert(back == packed[i], "round trip failed for " .. name .. ": " .. tostring(derr))
  assert(v6alt.decode(subnames[i]) == packed[i], "subdomain round trip failed for " .. name)
end
-- A digest of the list, so two runs (or two Luas) can be seen to use the same one.
local digest = 0
for i = 1, N do
  for j = 1, #names[i] do digest = (digest * 31 + string.byte(names[i], j)) % 2147483647 end
end

local policy = assert(policies.new_policy(true, {}))

local ops = {}
ops.encode = function(n)
  local acc, i, encode = 0, 0, v6alt.encode
  for _ = 1, n do
    i = i + 1; if i > N then i = 1 end
    acc = acc + #encode(packed[i])
  end
  return acc
end
ops.decode = function(n)
  local acc, i, decode = 0, 0, v6alt.decode
  for _ = 1, n do
    i = i + 1; if i > N then i = 1 end
    acc = acc + #decode(names[i])
  end
  return acc
end
ops.decode_sub = function(n)
  local acc, i, decode = 0, 0, v6alt.decode
  for _ = 1, n do
    i = i + 1; if i > N then i = 1 end
    acc = acc + #decode(subnames[i])
  end
  return acc
end
-- The two halves of the mix, for where decode's time goes: names with a
-- '-' (the label is re-expanded to 26 characters) and names without.
local hyphen_names, plain_names = {}, {}
for i = 1, N do
  local list = string.find(names[i], "-", 1, true) and hyphen_names or plain_names
  list[#list + 1] = names[i]
end
local function decode_list(list)
  local m = #list
  return function(n)
    local acc, i, decode = 0, 0, v6alt.decode
    for _ = 1, n do
      i = i + 1; if i > m then i = 1 end
      acc = acc + #decode(list[i])
    end
    return acc
  end
end
ops.decode_hyphenated = decode_list(hyphen_names)
ops.decode_unhyphenated = decode_list(plain_names)
ops.route_check = function(n)
  local acc, i, decode, decide = 0, 0, v6alt.decode, policies.decide
  for _ = 1, n do
    i = i + 1; if i > N then i = 1 end
    local p = decode(names[i])
    local d = decide(policy, p)
    if d.refused == nil then acc = acc + 1 end
  end
  return acc
end
ops.policy_decide = function(n)
  local acc, i, decide = 0, 0, policies.decide
  for _ = 1, n do
    i = i + 1; if i > N then i = 1 end
    if decide(policy, packed[i]).refused == nil then acc = acc + 1 end
  end
  return acc
end
-- Empty loop over the same list: the harness's own cost per op (not subtracted).
ops.loop_only = function(n)
  local acc, i = 0, 0
  for _ = 1, n do
    i = i + 1; if i > N then i = 1 end
    acc = acc + #names[i]
  end
  return acc
end

local function median(t)
  local s = {}
  for k, v in ipairs(t) do s[k] = v end
  table.sort(s)
  local m = #s
  if m % 2 == 1 then return s[(m + 1) / 2] end
  return (s[m / 2] + s[m / 2 + 1]) / 2
end

-- Entries in every table reachable from the libraries' functions' upvalues.
local function reachable_entries()
  local seen, total = {}, 0
  local function visit(v, depth)
    if depth > 3 or seen[v] then return end
    if type(v) == "table" then
      seen[v] = true
      for k, x in pairs(v) do
        total = total + 1
        if type(x) == "table" or type(x) == "function" then visit(x, depth + 1) end
        if type(k) == "table" then visit(k, depth + 1) end
      end
    elseif type(v) == "function" then
      seen[v] = true
      for u = 1, 255 do
        local name, x = debug.getupvalue(v, u)
        if name == nil then break end
        if type(x) == "table" or type(x) == "function" then visit(x, depth + 1) end
      end
    end
  end
  visit(v6alt, 0)
  visit(policies, 0)
  return total
end
local entries_before = reachable_entries()

local order = { "encode", "decode", "decode_hyphenated", "decode_unhyphenated", "decode_sub", "route_check",
  "policy_decide", "loop_only" }
local results = {}
local sink = 0
for _, name in ipairs(order) do
  local f = ops[name]
  local n = (name == "route_check" or name == "policy_decide") and math.floor(OPS / 4) or OPS
  sink = sink + f(math.floor(n / 4)) -- warm-up (JIT traces, caches)
  local rates = {}
  for r = 1, RUNS do
    collectgarbage("collect")
    local t0 = os.clock()
    sink = sink + f(n)
    local dt = os.clock() - t0
    rates[r] = n / dt
  end
  local lo, hi = math.huge, 0
  for _, v in ipairs(rates) do
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  results[#results + 1] = string.format(
    '"%s":{"ops_per_run":%d,"runs":%d,"median_ops_per_s":%.0f,"min_ops_per_s":%.0f,"max_ops_per_s":%.0f,"ns_per_op":%.1f}',
    name, n, RUNS, median(rates), lo, hi, 1e9 / median(rates))
end

-- No TypeScriptToLua runtime helpers in the shipped codec.
local fh = assert(io.open(dist .. "/mod_s2s_v6mesh/v6alt.lua", "rb"))
local src = fh:read("*a")
fh:close()
local ts_helpers = 0
for _ in string.gmatch(src, "__TS__") do ts_helpers = ts_helpers + 1 end
local lualib = (string.find(src, "lualib_bundle", 1, true) ~= nil)

local entries_after = reachable_entries()
local kinds_json = {}
for _, entry in ipairs(kinds) do
  kinds_json[#kinds_json + 1] = string.format('"%s":%d', entry[1], counts[entry[1]])
end
local version = jit and jit.version or _VERSION
io.write(string.format(
  '{"lua":"%s","addresses":%d,"seed":%d,"mix":{%s},"hyphenated_names":%d,"mean_name_length":%.2f,' ..
  '"list_digest":%d,"ts_helpers_in_v6alt_lua":%d,"lualib_bundle_required":%s,' ..
  '"no_cache_check":{"table_entries_before":%d,"table_entries_after":%d},"sink":%d,"results":{%s}}\n',
  version, N, SEED, table.concat(kinds_json, ","), hyphenated, bytes_total / N,
  digest, ts_helpers, tostring(lualib), entries_before, entries_after, sink % 1000, table.concat(results, ",")))
