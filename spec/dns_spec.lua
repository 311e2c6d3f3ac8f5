-- Unit tests for the .v6.alt resolver's packet work (SPEC.md section 6):
-- dns.respond(msg, ttl) and dns.refuse(msg), run with busted on Lua 5.1-5.4
-- and LuaJIT:  lua5.4 /usr/bin/busted spec/dns_spec.lua
--
-- Queries are built and replies decoded by the small DNS codec below, written
-- here on purpose so the expectations do not depend on the module under test.
-- Its name reader follows compression pointers only backwards (each jump
-- lands before the previous one), so a bad reply cannot loop it.  Names and
-- addresses come from spec/vectors.tsv (an independent Python encoder) and
-- from the base32 encoder below, checked against those vectors first.

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "spec"
local root = spec_dir:match("^(.*)[/\\][^/\\]*$") or "."
-- V6ALT_DIST points the spec at another build (default: dist/).
local dist = os.getenv("V6ALT_DIST") or (root .. "/dist")
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local dns = require("mod_s2s_v6mesh.dns")
-- Locals: busted runs the file in its own environment, where every global
-- lookup goes through __index (the fuzz below would take twice as long).
local assert, error, ipairs, pairs, pcall, tostring, tonumber, type =
  assert, error, ipairs, pairs, pcall, tostring, tonumber, type
local math, string, table = math, string, table
local unpack = unpack or table.unpack

------------------------------------------------------------------ constants --

local T = { A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16,
  AAAA = 28, SRV = 33, OPT = 41, HTTPS = 65, ANY = 255 }
local CLASS = { IN = 1, CH = 3, HS = 4, NONE = 254, ANY = 255 }
local NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 3, 4, 5, 16
local RCODE_NAME = { [0] = "NOERROR", [1] = "FORMERR", [2] = "SERVFAIL", [3] = "NXDOMAIN",
  [4] = "NOTIMP", [5] = "REFUSED", [16] = "BADVERS" }

local TTL = 70000 -- above 65535, so both halves of the 32-bit field count

-------------------------------------------------------------- byte helpers --

local function u16(n) return string.char(math.floor(n / 256) % 256, n % 256) end
local function u32(n) return u16(math.floor(n / 65536) % 65536) .. u16(n % 65536) end
local function get16(s, i) local a, b = s:byte(i, i + 1); return a * 256 + b end
local function get32(s, i) return get16(s, i) * 65536 + get16(s, i + 2) end

local function hex(s)
  if type(s) ~= "string" then return tostring(s) end
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function rcode_name(n) return RCODE_NAME[n] or ("rcode " .. tostring(n)) end

-- Deterministic on every Lua (math.random is not): Park-Miller, exact in
-- doubles and in 5.3+ integers.  rand(n) -> 0..n-1.
local function new_rand(seed)
  local state = seed
  return function(n)
    state = (state * 16807) % 2147483647
    return state % n
  end
end

------------------------------------------------------- names and addresses --

local ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
local B32 = {}
for i = 1, 32 do B32[ALPHABET:sub(i, i)] = i - 1 end

-- 16 bytes -> 26 lowercase base32 characters.
local function b32encode(bytes)
  local acc, nbits, out = 0, 0, {}
  for i = 1, 16 do
    acc = acc * 256 + bytes:byte(i)
    nbits = nbits + 8
    while nbits >= 5 do
      local div = 2 ^ (nbits - 5)
      local v = math.floor(acc / div)
      out[#out + 1] = ALPHABET:sub(v + 1, v + 1)
      acc = acc - v * div
      nbits = nbits - 5
    end
  end
  local v = math.floor(acc * 2 ^ (5 - nbits))
  out[#out + 1] = ALPHABET:sub(v + 1, v + 1)
  return table.concat(out)
end

-- 26 characters -> 16 bytes (the low 2 bits of the last character dropped).
local function b32decode(s)
  local acc, nbits, out = 0, 0, {}
  for i = 1, 26 do
    acc = acc * 32 + B32[s:sub(i, i)]
    nbits = nbits + 5
    if nbits >= 8 then
      local div = 2 ^ (nbits - 8)
      local b = math.floor(acc / div)
      out[#out + 1] = string.char(b)
      acc = acc - b * div
      nbits = nbits - 8
    end
  end
  return table.concat(out)
end

-- The runs of 'a' SPEC section 2 may replace: inside characters 2..25, at
-- least 2 long.  Returns start, length of the longest (first or last on ties).
local function pick_run(s, last_on_tie)
  local best, best_len, i = nil, 1, 2
  while i <= 25 do
    if s:sub(i, i) == "a" then
      local j = i
      while j < 25 and s:sub(j + 1, j + 1) == "a" do j = j + 1 end
      local len = j - i + 1
      if len > best_len or (last_on_tie and best and len == best_len) then best, best_len = i, len end
      i = j + 1
    else
      i = i + 1
    end
  end
  return best, best_len
end

local function label_with_run(s, start, len)
  if not start then return s end
  return s:sub(1, start - 1) .. "-" .. s:sub(start + len)
end

local function canonical_name(bytes)
  local s = b32encode(bytes)
  return label_with_run(s, pick_run(s, false)) .. ".v6.alt"
end

local function reference_name(bytes)
  local s = b32encode(bytes)
  return label_with_run(s, pick_run(s, true)) .. ".v6.alt"
end

-- 16 bytes -> "1.0.0.0...ip6.arpa" (32 nibbles, lowest first).
local function arpa_name(bytes)
  local parts = {}
  for i = 16, 1, -1 do
    local b = bytes:byte(i)
    parts[#parts + 1] = string.format("%x.%x", b % 16, math.floor(b / 16))
  end
  return table.concat(parts, ".") .. ".ip6.arpa"
end

-- Adds +1 or -1 to a 16-byte address (wrapping).
local function step(bytes, delta)
  local out, carry = {}, delta
  for i = 16, 1, -1 do
    local v = bytes:byte(i) + carry
    carry = 0
    if v > 255 then v, carry = 0, 1 elseif v < 0 then v, carry = 255, -1 end
    out[i] = string.char(v)
  end
  return table.concat(out)
end

-- SPEC section 6: the special-purpose blocks (address as 32 hex digits, bits).
local SPECIAL = {
  { "::/128", "00000000000000000000000000000000", 128 },
  { "::1/128", "00000000000000000000000000000001", 128 },
  { "::/96", "00000000000000000000000000000000", 96 },
  { "::ffff:0:0/96", "00000000000000000000ffff00000000", 96 },
  { "::ffff:0:0:0/96", "0000000000000000ffff000000000000", 96 },
  { "64:ff9b::/96", "0064ff9b000000000000000000000000", 96 },
  { "64:ff9b:1::/48", "0064ff9b000100000000000000000000", 48 },
  { "2002::/16", "20020000000000000000000000000000", 16 },
  { "2001::/32", "20010000000000000000000000000000", 32 },
  { "ff00::/8", "ff000000000000000000000000000000", 8 },
  { "fe80::/10", "fe800000000000000000000000000000", 10 },
}

-- First `bits` bits of `prefix`, the rest from `fill` (16 bytes).
local function splice(prefix, bits, fill)
  local out = {}
  for i = 1, 16 do
    local keep = math.max(0, math.min(8, bits - (i - 1) * 8)) -- bits of byte i from prefix
    local unit = 2 ^ (8 - keep)
    local p, f = prefix:byte(i), fill:byte(i)
    out[i] = string.char(math.floor(p / unit) * unit + f % unit)
  end
  return table.concat(out)
end

-- The address starts with the block's prefix: whole bytes, then the high
-- bits of one more.
for _, block in ipairs(SPECIAL) do
  local prefix, bits = unhex(block[2]), block[3]
  block.head, block.unit = prefix:sub(1, math.floor(bits / 8)), 2 ^ (8 - bits % 8)
  block.last = math.floor((prefix:byte(#block.head + 1) or 0) / block.unit)
end

local function is_special(bytes)
  for _, block in ipairs(SPECIAL) do
    local n = #block.head
    if bytes:sub(1, n) == block.head
        and (block.unit == 256 or math.floor(bytes:byte(n + 1) / block.unit) == block.last) then
      return block[1]
    end
  end
  return nil
end

local function read_vectors()
  local path = spec_dir .. "/vectors.tsv"
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  assert(f:read("*l") == "address\tname\treference_name", "bad header in " .. path)
  local list = {}
  for line in f:lines() do
    local addr, name, ref = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
    if addr then
      local label = name:sub(1, -8)
      local s = label:find("-", 1, true) and label:gsub("%-", string.rep("a", 27 - #label)) or label
      list[#list + 1] = { addr = addr, name = name, ref = ref, bytes = b32decode(s) }
    end
  end
  f:close()
  return list
end

------------------------------------------------------------- query builder --

-- "muc.x.v6.alt" or a list of labels (which may hold dots) -> wire form.
local function wire_name(name)
  local labels = name
  if type(name) == "string" then
    labels = {}
    for label in name:gmatch("[^.]+") do labels[#labels + 1] = label end
  end
  local out = {}
  for i, label in ipairs(labels) do out[i] = string.char(#label) .. label end
  return table.concat(out) .. "\0"
end

-- The OPT pseudo-record: e.version, e.payload, e.options (raw), e.owner (raw name).
local function opt_record(e)
  local options = e.options or ""
  return (e.owner or "\0") .. u16(T.OPT) .. u16(e.payload or 1232)
    .. string.char(e.ext or 0, e.version or 0, e.flags or 0, 0) .. u16(#options) .. options
end

-- A query.  q.name (string or labels) or q.question (raw wire question);
-- q.qtype (AAAA), q.qclass (IN); q.id; q.flags1/q.flags2 (header bytes 3 and
-- 4, default RD only); q.opcode; q.edns (table, appended to the additional
-- section); q.records (raw bytes after the question); q.qd/q.an/q.ns/q.ar
-- override the counts.
local function build(q)
  local question = q.question
  if not question and q.name then
    question = wire_name(q.name) .. u16(q.qtype or T.AAAA) .. u16(q.qclass or CLASS.IN)
  end
  question = question or ""
  local additional, ar = "", 0
  if q.edns then additional, ar = opt_record(q.edns), 1 end
  local flags1 = q.flags1 or 1
  if q.opcode then flags1 = flags1 % 8 + (math.floor(flags1 / 128) * 128) + q.opcode * 8 end
  return u16(q.id or 0xbeef) .. string.char(flags1, q.flags2 or 0)
    .. u16(q.qd or (question ~= "" and 1 or 0)) .. u16(q.an or 0) .. u16(q.ns or 0)
    .. u16(q.ar or ar) .. question .. (q.records or "") .. additional
end

------------------------------------------------------------- reply parser --

-- Reads a name at pos (1-based).  Every compression pointer must land before
-- the start of the labels it interrupts (so reading always ends) and at a
-- label; the name is at most 255 bytes.  Returns the labels, the position
-- after the name where it was written; or nil, reason.
local function read_name(msg, pos)
  local labels, total, after, floor = {}, 1, nil, pos
  while true do
    local len = msg:byte(pos)
    if not len then return nil, "name runs past the end (offset " .. (pos - 1) .. ")" end
    if len == 0 then
      return labels, after or pos + 1
    elseif len >= 192 then
      if pos + 1 > #msg then return nil, "truncated pointer at offset " .. (pos - 1) end
      local target = (len - 192) * 256 + msg:byte(pos + 1) + 1
      if target >= floor then
        return nil, string.format("pointer at offset %d to %d does not point backwards", pos - 1, target - 1)
      end
      if target < 13 then return nil, "pointer into the header (offset " .. (target - 1) .. ")" end
      after = after or pos + 2
      pos, floor = target, target
    elseif len > 63 then
      return nil, string.format("label type %d at offset %d", len, pos - 1)
    else
      if pos + len > #msg then return nil, "label runs past the end (offset " .. (pos - 1) .. ")" end
      labels[#labels + 1] = msg:sub(pos + 1, pos + len)
      total = total + len + 1
      if total > 255 then return nil, "name longer than 255 bytes" end
      pos = pos + 1 + len
    end
  end
end

local function dotted(labels) return table.concat(labels, ".") end

-- rdata decoders: fill fields of rr from rdata at [pos, stop), names may point
-- anywhere earlier in msg.  Return nil, reason on a bad rdata.
local RDATA = {}
RDATA[T.AAAA] = function(msg, pos, stop, rr)
  if stop - pos ~= 16 then return nil, "AAAA rdata of " .. (stop - pos) .. " bytes" end
  rr.address = msg:sub(pos, stop - 1)
  return true
end
RDATA[T.PTR] = function(msg, pos, stop, rr)
  local labels, after = read_name(msg, pos)
  if not labels then return nil, "PTR target: " .. after end
  if after ~= stop then return nil, "PTR target does not fill the rdata" end
  rr.target = dotted(labels)
  return true
end
RDATA[T.SRV] = function(msg, pos, stop, rr)
  if stop - pos < 7 then return nil, "short SRV rdata" end
  rr.priority, rr.weight, rr.port = get16(msg, pos), get16(msg, pos + 2), get16(msg, pos + 4)
  local labels, after = read_name(msg, pos + 6)
  if not labels then return nil, "SRV target: " .. after end
  if after ~= stop then return nil, "SRV target does not fill the rdata" end
  rr.target = dotted(labels)
  return true
end
RDATA[T.SOA] = function(msg, pos, stop, rr)
  local m, after = read_name(msg, pos)
  if not m then return nil, "SOA mname: " .. after end
  local r, after2 = read_name(msg, after)
  if not r then return nil, "SOA rname: " .. after2 end
  if stop - after2 ~= 20 then return nil, "SOA numbers take " .. (stop - after2) .. " bytes, not 20" end
  rr.mname, rr.rname = dotted(m), dotted(r)
  rr.serial, rr.refresh, rr.retry, rr.expire, rr.minimum = get32(msg, after2), get32(msg, after2 + 4),
    get32(msg, after2 + 8), get32(msg, after2 + 12), get32(msg, after2 + 16)
  return true
end

-- A whole DNS message -> table, or nil, reason.  Every byte must belong to
-- the header, a question or a record.
local function parse_message(msg)
  if type(msg) ~= "string" then return nil, "not a string: " .. tostring(msg) end
  if #msg < 12 then return nil, "shorter than 12 bytes" end
  local b3, b4 = msg:byte(3, 4)
  local m = {
    id = get16(msg, 1),
    qr = b3 >= 128, opcode = math.floor(b3 / 8) % 16,
    aa = math.floor(b3 / 4) % 2 == 1, tc = math.floor(b3 / 2) % 2 == 1, rd = b3 % 2 == 1,
    ra = b4 >= 128, z = math.floor(b4 / 16) % 8, rcode = b4 % 16,
    qd = {}, an = {}, ns = {}, ar = {},
  }
  local counts = { get16(msg, 5), get16(msg, 7), get16(msg, 9), get16(msg, 11) }
  local pos = 13
  for _ = 1, counts[1] do
    local labels, after = read_name(msg, pos)
    if not labels then return nil, "question: " .. after end
    if after + 3 > #msg then return nil, "question runs past the end" end
    m.qd[#m.qd + 1] = { labels = labels, name = dotted(labels), type = get16(msg, after),
      class = get16(msg, after + 2), raw = msg:sub(pos, after + 3) }
    pos = after + 4
  end
  for section, key in ipairs({ "an", "ns", "ar" }) do
    for _ = 1, counts[section + 1] do
      local labels, after = read_name(msg, pos)
      if not labels then return nil, key .. " record: " .. after end
      if after + 9 > #msg then return nil, key .. " record header runs past the end" end
      local rr = { labels = labels, name = dotted(labels), type = get16(msg, after),
        class = get16(msg, after + 2), ttl = get32(msg, after + 4) }
      local stop = after + 10 + get16(msg, after + 8)
      if stop > #msg + 1 then return nil, key .. " rdata runs past the end" end
      rr.rdata = msg:sub(after + 10, stop - 1)
      if rr.type == T.OPT then
        rr.payload, rr.ext_rcode, rr.version = rr.class, msg:byte(after + 4), msg:byte(after + 5)
        m.opt = rr
      elseif RDATA[rr.type] then
        local ok, why = RDATA[rr.type](msg, after + 10, stop, rr)
        if not ok then return nil, key .. " record: " .. why end
      end
      local list = m[key]
      list[#list + 1] = rr
      pos = stop
    end
  end
  if pos ~= #msg + 1 then return nil, (#msg + 1 - pos) .. " bytes after the last record" end
  m.full_rcode = m.rcode + (m.opt and m.opt.ext_rcode * 16 or 0)
  return m
end

--------------------------------------------------------- reply checking --

-- The largest record respond() may add to a query: the SOA of v6.alt after
-- an ip6.arpa question, its owner written out ("\2v6\3alt\0", 8 bytes), type,
-- class, TTL and rdlength (10), mname "\2ns" + pointer (5), rname
-- "\10hostmaster" + pointer (13) and five 32-bit numbers (20).  The others
-- are smaller: PTR 2 + 10 + 35 (the longest canonical name), AAAA 2 + 10 + 16,
-- SRV 2 + 10 + 6 + 2.
local MAX_RECORD = 8 + 10 + (3 + 2) + (11 + 2) + 20
assert(MAX_RECORD >= 2 + 10 + (1 + 26 + 1 + 2 + 1 + 3 + 1))

-- The facts every reply must show.  Returns the parsed reply; raises with the
-- query in hex otherwise.
local function check_reply(query, reply, fname)
  local function fail(why)
    error(string.format("%s(%s): %s\n    reply %s", fname or "respond", hex(query), why, hex(reply)), 0)
  end
  if type(reply) ~= "string" then fail("no reply (" .. tostring(reply) .. ")") end
  if #reply > #query + MAX_RECORD then
    fail(string.format("reply of %d bytes exceeds query (%d) + one record (%d)", #reply, #query, MAX_RECORD))
  end
  local m, why = parse_message(reply)
  if not m then fail("reply does not parse: " .. why) end
  local b3 = query:byte(3)
  if m.id ~= get16(query, 1) then fail("id " .. m.id .. " is not the query's") end
  if not m.qr then fail("QR clear") end
  if m.opcode ~= math.floor(b3 / 8) % 16 then fail("opcode " .. m.opcode .. " is not the query's") end
  if m.rd ~= (b3 % 2 == 1) then fail("RD not copied") end
  if m.tc then fail("TC set") end
  if m.ra then fail("RA set") end
  if m.z >= 4 then fail("Z bit set") end
  if (m.full_rcode == NOERROR or m.full_rcode == NXDOMAIN) and not m.aa then
    fail("AA clear on " .. rcode_name(m.full_rcode))
  end
  if #m.qd > 1 then fail(#m.qd .. " questions") end
  if m.qd[1] and reply:sub(13, 12 + #m.qd[1].raw) ~= query:sub(13, 12 + #m.qd[1].raw) then
    fail("question not echoed byte for byte")
  end
  if #m.an + #m.ns > 1 then fail(#m.an + #m.ns .. " records in answer and authority") end
  if #m.ar > 1 or (m.ar[1] and m.ar[1].type ~= T.OPT) then fail("additional section holds more than an OPT") end
  if m.opt then
    if m.opt.name ~= "" then fail("OPT owner is not the root") end
    if m.opt.rdata ~= "" then fail("OPT carries options") end
    if m.opt.version ~= 0 then fail("OPT version " .. m.opt.version) end
    if not query:find("\0\0\41", 13, true) then fail("OPT in the reply to a query without one") end
  end
  return m
end

-- Sends `query` (a table for build(), or raw bytes) to respond() and checks
-- the reply against `want`:
--   rcode       NOERROR, NXDOMAIN, ... (BADVERS = 16: header plus OPT)
--   answer      nil (no answer) or fields the single answer must have:
--               type, address, target, port, priority, weight
--   soa         true: the SOA of v6.alt in authority, minimum = ttl
--   question    false: the reply need not echo the question
--   opt         true/false: an OPT record must / must not be present
--   ttl         the ttl argument (default TTL)
-- Returns the parsed reply.
local function expect(query, want)
  local msg = type(query) == "table" and build(query) or query
  local ttl = want.ttl or TTL
  local ok, reply = pcall(dns.respond, msg, ttl)
  local function fail(why)
    error(string.format("respond(%s, %d): %s\n    reply %s", hex(msg), ttl, why, hex(reply)), 0)
  end
  if not ok then fail("raised a Lua error: " .. tostring(reply)) end
  local m = check_reply(msg, reply)
  if m.full_rcode ~= want.rcode then
    fail("want " .. rcode_name(want.rcode) .. ", got " .. rcode_name(m.full_rcode))
  end
  if want.question ~= false and #m.qd ~= 1 then fail("the question is not echoed") end
  if want.opt ~= nil and (m.opt ~= nil) ~= want.opt then
    fail(want.opt and "no OPT record" or "an OPT record the query did not ask for")
  end
  local a = m.an[1]
  if want.answer then
    if not a then fail("no answer") end
    local q = parse_message(msg).qd[1]
    if a.name:lower() ~= q.name:lower() then fail("answer owner " .. a.name .. " is not " .. q.name) end
    if a.class ~= CLASS.IN then fail("answer class " .. a.class) end
    if a.ttl ~= ttl then fail("answer TTL " .. a.ttl .. ", want " .. ttl) end
    for k, v in pairs(want.answer) do
      if a[k] ~= v then
        fail(string.format("answer %s is %s, want %s", k,
          k == "address" and hex(a[k]) or tostring(a[k]), k == "address" and hex(v) or tostring(v)))
      end
    end
  elseif a then
    fail("an answer of type " .. a.type .. " where none is due")
  end
  local soa = m.ns[1]
  if want.soa then
    if not soa or soa.type ~= T.SOA then fail("no SOA in the authority section") end
    if soa.name:lower() ~= "v6.alt" then fail("SOA owner " .. soa.name .. ", want v6.alt") end
    if soa.class ~= CLASS.IN then fail("SOA class " .. soa.class) end
    if soa.minimum ~= ttl then fail("SOA minimum " .. soa.minimum .. ", want " .. ttl) end
    if soa.ttl > ttl then fail("SOA TTL " .. soa.ttl .. " above " .. ttl) end
  elseif soa then
    fail("an authority record where none is due")
  end
  return m
end

-- Runs every case (a function) and reports all failures at once.
local function all(cases)
  local fails, n = {}, 0
  for _, run in ipairs(cases) do
    local ok, err = pcall(run)
    if not ok then
      n = n + 1
      if #fails < 12 then fails[#fails + 1] = tostring(err) end
    end
  end
  if n > 0 then
    error(string.format("%d of %d case(s) failed, first %d:\n  %s", n, #cases, #fails,
      table.concat(fails, "\n  ")), 0)
  end
end

-- expect() as a case for all().
local function case(query, want)
  return function() expect(query, want) end
end

-- Canonical name and packed address of some well-known vectors.
local ADDR_1 = unhex("20010db8000000000000000000000001") -- 2001:db8::1, not special
local NAME_1 = "eaaq3o-e.v6.alt"
local ADDR_TIE = unhex("20010db8000000000001000000000001") -- 2001:db8::1:0:0:1
local NAME_TIE, NAME_TIE_REF = "eaaq3o-baaaaaaaaae.v6.alt", "eaaq3oaaaaaaaaab-e.v6.alt"
local ADDR_MESH = unhex("0200cab8deb4ce6043624492e53904b5")
local NAME_MESH = "aiamvog6wthgaq3cisjokoiewu.v6.alt"

local function answer_aaaa(addr) return { rcode = NOERROR, answer = { type = T.AAAA, address = addr } } end
local NODATA = { rcode = NOERROR, soa = true }
local NAME_ERROR = { rcode = NXDOMAIN, soa = true }
local REFUSAL = { rcode = REFUSED }

local VECTORS = read_vectors()

---------------------------------------------------------------------- tests --

describe("mod_s2s_v6mesh.dns", function()
  it("the spec's own encoder and special-block table agree with spec/vectors.tsv and SPEC.md", function()
    assert.is_true(#VECTORS >= 2500)
    for _, v in ipairs(VECTORS) do
      assert.are.equal(v.name, canonical_name(v.bytes), v.addr)
      assert.are.equal(v.ref, reference_name(v.bytes), v.addr)
    end
    assert.are.equal(NAME_TIE, canonical_name(ADDR_TIE))
    assert.are.equal(NAME_TIE_REF, reference_name(ADDR_TIE))
    assert.are.equal(NAME_MESH, canonical_name(ADDR_MESH))
    assert.is_nil(is_special(ADDR_1))
    assert.are.equal("2001::/32", is_special(unhex("20010000123400000000000000000001")))
    assert.are.equal("::/96", is_special(unhex("00000000000000000000000001020304")))
    assert.is_nil(is_special(unhex("00000000000000000001000000000000")))
  end)

  describe("AAAA", function()
    it("answers every vector's canonical name with its address (NXDOMAIN when special-purpose)", function()
      local cases = {}
      for _, v in ipairs(VECTORS) do
        cases[#cases + 1] = case({ name = v.name }, is_special(v.bytes) and NAME_ERROR or answer_aaaa(v.bytes))
      end
      all(cases)
    end)

    it("answers the reference tie form (eaaq3oaaaaaaaaab-e.v6.alt is 2001:db8::1:0:0:1) and every vector's", function()
      local cases = { case({ name = NAME_TIE_REF }, answer_aaaa(ADDR_TIE)),
        case({ name = NAME_TIE }, answer_aaaa(ADDR_TIE)) }
      for _, v in ipairs(VECTORS) do
        if v.ref ~= v.name then
          cases[#cases + 1] = case({ name = v.ref }, is_special(v.bytes) and NAME_ERROR or answer_aaaa(v.bytes))
        end
      end
      assert.is_true(#cases > 50)
      all(cases)
    end)

    it("answers subdomains (muc., upload.x.y., _xmpp-client._tcp.) of canonical and tie names", function()
      local cases = {}
      for _, base in ipairs({ { NAME_1, ADDR_1 }, { NAME_TIE, ADDR_TIE }, { NAME_TIE_REF, ADDR_TIE },
          { NAME_MESH, ADDR_MESH } }) do
        for _, sub in ipairs({ "muc.", "groups.", "upload.x.y.", "_xmpp-client._tcp.", "_xmpp-server._tcp.muc.",
            "a.", "-.", "x_y.", "0.", "*." }) do
          cases[#cases + 1] = case({ name = sub .. base[1] }, answer_aaaa(base[2]))
        end
      end
      all(cases)
    end)

    it("compares names case-insensitively (0x20) and echoes the question byte for byte", function()
      local rand = new_rand(20260)
      local function scramble(name)
        return (name:gsub("%a", function(ch) return rand(2) == 0 and ch:upper() or ch:lower() end))
      end
      local cases = {
        case({ name = "EAAQ3O-E.V6.ALT" }, answer_aaaa(ADDR_1)),
        case({ name = "MUC.EaAq3O-e.v6.ALT" }, answer_aaaa(ADDR_1)),
        case({ name = "eaaq3oAAAAAAAAAB-E.v6.Alt" }, answer_aaaa(ADDR_TIE)),
      }
      for i = 1, #VECTORS, 7 do
        local v = VECTORS[i]
        cases[#cases + 1] = case({ name = scramble("Muc." .. v.name) },
          is_special(v.bytes) and NAME_ERROR or answer_aaaa(v.bytes))
      end
      all(cases)
    end)
  end)

  describe("SRV", function()
    it("answers _xmpp-client._tcp.X with 0 0 5222 X and _xmpp-server._tcp.X with 0 0 5269 X, nothing additional", function()
      local cases = {}
      for _, x in ipairs({ NAME_1, NAME_TIE, NAME_TIE_REF, NAME_MESH, "muc." .. NAME_1, "A.B." .. NAME_TIE,
          "AiamVOG6wthgaq3cisjokoiewu.V6.alt" }) do
        for service, port in pairs({ ["_xmpp-client"] = 5222, ["_xmpp-server"] = 5269,
            ["_XMPP-Client"] = 5222, ["_xmpp-SERVER"] = 5269 }) do
          for _, edns in ipairs({ false, true }) do
            local query = { name = service .. "._TCP." .. x, qtype = T.SRV, edns = edns and {} or nil }
            cases[#cases + 1] = function()
              local m = expect(query, { rcode = NOERROR, opt = edns,
                answer = { type = T.SRV, priority = 0, weight = 0, port = port } })
              assert(m.an[1].target:lower() == x:lower(), hex(build(query)) .. ": SRV target " .. m.an[1].target)
              -- the additional section: the OPT when asked for, nothing else
              assert(#m.ns == 0 and #m.ar == (edns and 1 or 0), hex(build(query)) .. ": extra records")
            end
          end
        end
      end
      all(cases)
    end)

    it("answers other services, protocols and bare names with NOERROR and no answer", function()
      local cases = {}
      for _, prefix in ipairs({ "_xmpps-client._tcp.", "_xmpps-server._tcp.", "_xmpp-client._udp.",
          "_jabber._tcp.", "_xmpp-client.", "_tcp.", "", "muc.", "_xmpp-client.x._tcp." }) do
        cases[#cases + 1] = case({ name = prefix .. NAME_1, qtype = T.SRV }, NODATA)
      end
      all(cases)
    end)

    it("answers NXDOMAIN for SRV under a bad or special name", function()
      all({
        case({ name = "_xmpp-client._tcp." .. b32encode(ADDR_1) .. ".v6.alt", qtype = T.SRV }, NAME_ERROR),
        case({ name = "_xmpp-server._tcp.a-e.v6.alt", qtype = T.SRV }, NAME_ERROR),
        case({ name = "_xmpp-server._tcp.v6.alt", qtype = T.SRV }, NAME_ERROR),
        case({ name = "_xmpp-client._tcp.eaaq3o-f.v6.alt", qtype = T.SRV }, NAME_ERROR),
      })
    end)
  end)

  describe("PTR", function()
    it("answers a full ip6.arpa name with the canonical name, lowercase or uppercase nibbles", function()
      local cases = {}
      for i, v in ipairs(VECTORS) do
        local name = arpa_name(v.bytes)
        if i % 3 == 0 then name = name:upper() elseif i % 3 == 1 then name = name:gsub("arpa", "ARPA") end
        cases[#cases + 1] = case({ name = name, qtype = T.PTR },
          is_special(v.bytes) and NAME_ERROR or { rcode = NOERROR, answer = { type = T.PTR, target = v.name } })
      end
      cases[#cases + 1] = case({ name = arpa_name(ADDR_TIE), qtype = T.PTR },
        { rcode = NOERROR, answer = { type = T.PTR, target = NAME_TIE } })
      all(cases)
    end)

    it("answers NXDOMAIN for malformed ip6.arpa names (non-hex label, two-digit label, 33 nibbles)", function()
      local full = arpa_name(ADDR_1)
      local cases = {
        case({ name = "g" .. full:sub(2), qtype = T.PTR }, NAME_ERROR),
        case({ name = full:sub(1, 30) .. "x" .. full:sub(32), qtype = T.PTR }, NAME_ERROR),
        case({ name = "10." .. full:sub(5), qtype = T.PTR }, NAME_ERROR),
        case({ name = "0." .. full, qtype = T.PTR }, NAME_ERROR),
        case({ name = "0.0.0." .. full, qtype = T.AAAA }, NAME_ERROR),
        case({ name = "-." .. full:sub(3), qtype = T.PTR }, NAME_ERROR),
        case({ name = " ." .. full:sub(3), qtype = T.PTR }, NAME_ERROR),
        case({ name = "\0." .. full:sub(3), qtype = T.PTR }, NAME_ERROR),
        case({ name = "0x1." .. full:sub(3), qtype = T.PTR }, NAME_ERROR),
      }
      -- a nibble label holding a dot: "1.0" as one label
      local labels = {}
      for label in full:gmatch("[^.]+") do labels[#labels + 1] = label end
      local joined = { labels[1] .. "." .. labels[2] }
      for i = 3, #labels do joined[#joined + 1] = labels[i] end
      cases[#cases + 1] = case({ name = joined, qtype = T.PTR }, NAME_ERROR)
      all(cases)
    end)

    it("answers NOERROR with no answer for partial ip6.arpa names (0 to 31 nibbles)", function()
      local full = arpa_name(ADDR_1)
      local cases = {}
      for drop = 1, 32 do
        local name = full:sub(drop * 2 + 1)
        for _, qtype in ipairs({ T.PTR, T.AAAA, T.SOA, T.NS }) do
          cases[#cases + 1] = case({ name = name, qtype = qtype }, NODATA)
        end
      end
      all(cases)
    end)
  end)

  describe("other types", function()
    local OTHER = { T.A, T.NS, T.CNAME, T.SOA, T.PTR, T.MX, T.TXT, T.HTTPS, T.ANY, 99, 65535, 0 }

    it("under a good name: NOERROR, no answer, SOA of v6.alt with minimum = ttl", function()
      local cases = {}
      for _, name in ipairs({ NAME_1, NAME_TIE_REF, "muc." .. NAME_MESH, "_xmpp-client._tcp." .. NAME_1 }) do
        for _, qtype in ipairs(OTHER) do cases[#cases + 1] = case({ name = name, qtype = qtype }, NODATA) end
      end
      all(cases)
    end)

    it("under a full ip6.arpa name: NOERROR, no answer, SOA of v6.alt", function()
      local cases = {}
      for _, qtype in ipairs(OTHER) do
        if qtype ~= T.PTR then
          cases[#cases + 1] = case({ name = arpa_name(ADDR_1), qtype = qtype }, NODATA)
          cases[#cases + 1] = case({ name = arpa_name(ADDR_MESH):upper(), qtype = qtype }, NODATA)
        end
      end
      cases[#cases + 1] = case({ name = arpa_name(ADDR_1), qtype = T.AAAA }, NODATA)
      cases[#cases + 1] = case({ name = arpa_name(ADDR_1), qtype = T.SRV }, NODATA)
      all(cases)
    end)
  end)

  describe("NXDOMAIN", function()
    it("for malformed and non-canonical names (uncompressed, misplaced hyphen, padding bits, ...)", function()
      local cases = {}
      local function nx(name) cases[#cases + 1] = case({ name = name }, NAME_ERROR) end
      local u = b32encode(ADDR_1) -- "eaaq3o", 19 'a', "e"
      for _, label in ipairs({
        u,                                          -- uncompressed
        "eaaq3oa-e", "eaaq3-aaae",                  -- misplaced hyphen
        "eaaq3o-f", "eaaq3o-g", "eaaq3o-h",         -- padding bits
        "eaaq3oa-baaaaaaaaae",                      -- the tie's run shortened
        "eaaq3o-baaaaaaaa-e", "eaaq3o--e",          -- two hyphens
        u .. "a", u .. "-", "-" .. u,               -- 27 characters
        u:sub(2),                                   -- 25 characters, no hyphen
        u:sub(1, 24) .. "-e",                       -- '-' for a single 'a'
        "eaaq3o-1", "eaaq3o-8", "eaaq3o-0", "eaaq3o_e", "eaaq3o-\0", "eaaq3o-e\0", "eaaq3o-e ",
        "\195\169aaq3o-e",                          -- not base32
        "-", "a", "x", "-e", "e-",
        "muc.eaaq3o-f", "eaaq3o-e.muc",
      }) do nx(label .. ".v6.alt") end
      -- every vector: uncompressed, padding bits, hyphen one place off
      for i = 1, #VECTORS, 5 do
        local v = VECTORS[i]
        local s = b32encode(v.bytes)
        if s ~= v.name:sub(1, -8) then nx(s .. ".v6.alt") end
        local last = B32[s:sub(26, 26)]
        nx(s:sub(1, 25) .. ALPHABET:sub(last + 2, last + 2) .. ".v6.alt")
        local start, len = pick_run(s, false)
        if start and len >= 3 then nx(label_with_run(s, start + 1, len - 1) .. ".v6.alt") end
      end
      -- the X label holding a dot ("muc.eaaq3o-e" as one label)
      cases[#cases + 1] = case({ name = { "muc." .. NAME_1:sub(1, -8), "v6", "alt" } }, NAME_ERROR)
      all(cases)
    end)

    it("for every special-purpose block of SPEC section 6 (first, last, inside), answering the neighbours outside", function()
      local rand = new_rand(6)
      local cases = {}
      local zero, ones = string.rep("\0", 16), string.rep("\255", 16)
      local tried = {}
      local function try(bytes)
        local special = is_special(bytes)
        local want_aaaa = special and NAME_ERROR or answer_aaaa(bytes)
        local want_ptr = special and NAME_ERROR
          or { rcode = NOERROR, answer = { type = T.PTR, target = canonical_name(bytes) } }
        cases[#cases + 1] = case({ name = canonical_name(bytes) }, want_aaaa)
        cases[#cases + 1] = case({ name = reference_name(bytes) }, want_aaaa)
        cases[#cases + 1] = case({ name = "muc." .. canonical_name(bytes) }, want_aaaa)
        cases[#cases + 1] = case({ name = canonical_name(bytes), qtype = T.TXT }, special and NAME_ERROR or NODATA)
        cases[#cases + 1] = case({ name = "_xmpp-server._tcp." .. canonical_name(bytes), qtype = T.SRV },
          special and NAME_ERROR or { rcode = NOERROR, answer = { type = T.SRV, port = 5269 } })
        cases[#cases + 1] = case({ name = arpa_name(bytes), qtype = T.PTR }, want_ptr)
        cases[#cases + 1] = case({ name = arpa_name(bytes), qtype = T.AAAA }, special and NAME_ERROR or NODATA)
        tried[#tried + 1] = special or "outside"
      end
      for _, block in ipairs(SPECIAL) do
        local prefix, bits = unhex(block[2]), block[3]
        local first, last = splice(prefix, bits, zero), splice(prefix, bits, ones)
        local fill = {}
        for i = 1, 16 do fill[i] = string.char(rand(256)) end
        for _, bytes in ipairs({ first, last, splice(prefix, bits, table.concat(fill)) }) do
          assert(is_special(bytes), block[1] .. ": " .. hex(bytes))
          try(bytes)
        end
        if first ~= zero then try(step(first, -1)) end
        if last ~= ones then try(step(last, 1)) end
      end
      -- named in the brief: 2001:db8::/32 answers, 2001::/32 does not
      try(unhex("20010db8000000000000000000000001"))
      try(unhex("20010000000000000000000000000001"))
      try(unhex("2001ffff000000000000000000000001"))
      try(unhex("20020000000000000000000000000001"))
      try(unhex("20030000000000000000000000000001"))
      try(unhex("00000000000000000000000100000000")) -- ::1:0:0 just past ::/96
      try(unhex("fec00000000000000000000000000001")) -- fec0:: just past fe80::/10
      try(unhex("fe7fffffffffffffffffffffffffffff"))
      try(unhex("feffffffffffffffffffffffffffffff"))
      all(cases)
      local outside = 0
      for _, what in ipairs(tried) do if what == "outside" then outside = outside + 1 end end
      assert.is_true(outside >= 12, "only " .. outside .. " addresses outside the blocks tried")
    end)

    it("for v6.alt itself, whatever the type and letter case", function()
      local cases = {}
      for _, name in ipairs({ "v6.alt", "V6.ALT", "v6.Alt" }) do
        for _, qtype in ipairs({ T.AAAA, T.SOA, T.NS, T.A, T.ANY, T.SRV, T.PTR }) do
          cases[#cases + 1] = case({ name = name, qtype = qtype }, NAME_ERROR)
        end
      end
      all(cases)
    end)
  end)

  describe("REFUSED, FORMERR, NOTIMP, no reply", function()
    it("refuses names outside .v6.alt and ip6.arpa, with RA clear", function()
      local cases = {}
      for _, name in ipairs({ "example.com", "", "alt", "arpa", "v6alt", "x.alt", "v6.alt.example",
          NAME_1 .. ".example", "1.0.0.127.in-addr.arpa", "in-addr.arpa",
          "ip6.arpa.com", "ip6.arpa.example", "x.ip6", "v7.alt", "6.alt", "localhost", "onion" }) do
        for _, qtype in ipairs({ T.AAAA, T.A, T.PTR, T.SRV, T.NS }) do
          cases[#cases + 1] = function()
            local m = expect({ name = name, qtype = qtype, flags1 = 1 }, REFUSAL)
            assert(not m.ra, "RA set")
          end
        end
      end
      -- "v6" "alt" not as the last two labels; a label "v6.alt"
      cases[#cases + 1] = case({ name = { "eaaq3o-e", "v6.alt" } }, REFUSAL)
      cases[#cases + 1] = case({ name = { "x", "ip6.arpa" }, qtype = T.PTR }, REFUSAL)
      all(cases)
    end)

    it("refuses classes other than IN (CH, HS, NONE, ANY, 0, 65535)", function()
      local cases = {}
      for _, qclass in ipairs({ CLASS.CH, CLASS.HS, CLASS.NONE, CLASS.ANY, 0, 2, 65535 }) do
        for _, q in ipairs({ { name = NAME_1 }, { name = "_xmpp-client._tcp." .. NAME_1, qtype = T.SRV },
            { name = arpa_name(ADDR_1), qtype = T.PTR }, { name = "v6.alt", qtype = T.SOA },
            { name = "version.bind", qtype = T.TXT } }) do
          cases[#cases + 1] = case({ name = q.name, qtype = q.qtype, qclass = qclass }, REFUSAL)
        end
      end
      all(cases)
    end)

    it("answers NOTIMP for every opcode other than QUERY", function()
      local cases = {}
      for opcode = 1, 15 do
        cases[#cases + 1] = case({ name = NAME_1, opcode = opcode }, { rcode = NOTIMP, question = false })
        cases[#cases + 1] = case({ name = NAME_1, opcode = opcode, flags1 = 0 }, { rcode = NOTIMP, question = false })
        cases[#cases + 1] = case({ name = "example.com", opcode = opcode, qd = 0, question = "" },
          { rcode = NOTIMP, question = false })
      end
      all(cases)
    end)

    it("answers FORMERR for qdcount 0 or 2 and for questions that do not parse", function()
      local q1 = wire_name(NAME_1) .. u16(T.AAAA) .. u16(CLASS.IN)
      local formerr = { rcode = FORMERR, question = false }
      local x63 = string.rep("x", 63)
      local name_256 = wire_name({ x63, x63, x63, string.rep("y", 62) }) -- 3 * 64 + 63 + 1 bytes
      assert(#name_256 == 256)
      all({
        case({ question = "", qd = 0 }, formerr),
        case({ question = q1, qd = 0 }, formerr),
        case({ question = q1, qd = 2 }, formerr),
        case({ question = q1 .. q1, qd = 2 }, formerr),
        case({ question = q1, qd = 65535 }, formerr),
        case({ question = q1:sub(1, -2) }, formerr),            -- class cut short
        case({ question = q1:sub(1, -5) }, formerr),            -- no type, no class
        case({ question = q1:sub(1, 5) }, formerr),             -- inside a label
        case({ question = q1:sub(1, #q1 - 5) }, formerr),       -- no terminating zero
        case({ question = "\192\12" .. u16(T.AAAA) .. u16(1) }, formerr), -- pointer to itself
        case({ question = "\3muc\192\12" .. u16(T.AAAA) .. u16(1) }, formerr), -- pointer in the question
        case({ question = "\3muc\192\30" .. u16(T.AAAA) .. u16(1) .. wire_name(NAME_1) }, formerr),
        case({ question = "\64" .. string.rep("a", 64) .. "\2v6\3alt\0" .. u16(T.AAAA) .. u16(1) }, formerr),
        case({ question = "\128\0" .. u16(T.AAAA) .. u16(1) }, formerr),  -- reserved label type
        case({ question = "\65" .. string.rep("a", 65) .. "\0" .. u16(T.AAAA) .. u16(1) }, formerr),
        case({ question = name_256 .. u16(T.AAAA) .. u16(1) }, formerr),
        -- the additional section does not parse: OPT cut short, two OPTs, OPT not owned by the root
        case({ name = NAME_1, records = opt_record({}):sub(1, 8), ar = 1 }, formerr),
        case({ name = NAME_1, records = opt_record({}) .. opt_record({}), ar = 2 }, formerr),
        case({ name = NAME_1, edns = { owner = "\1x\0" } }, formerr),
        case({ name = NAME_1, records = "\0" .. u16(T.A) .. u16(1) .. u32(0) .. u16(4) .. "\1\2\3", ar = 1 }, formerr),
        case({ name = NAME_1, an = 1 }, formerr),
        case({ name = NAME_1, ar = 65535 }, formerr),
      })
    end)

    it("accepts a 255-byte name and 63-byte labels", function()
      local labels = { string.rep("m", 63), string.rep("n", 63), string.rep("o", 63) }
      -- 3 * 64 + (1 + 8) + (1 + 2) + (1 + 3) + 1 = 209 bytes; one more label pads to 255
      local used = 3 * 64 + 1 + #NAME_1:sub(1, -8) + 3 + 4 + 1
      labels[#labels + 1] = string.rep("p", 255 - used - 1)
      labels[#labels + 1] = NAME_1:sub(1, -8)
      labels[#labels + 1] = "v6"
      labels[#labels + 1] = "alt"
      assert.are.equal(255, #wire_name(labels))
      all({ case({ name = labels }, answer_aaaa(ADDR_1)) })
    end)

    it("does not answer responses (QR set) or messages shorter than 12 bytes", function()
      local good = build({ name = NAME_1 })
      for n = 0, 11 do
        assert.is_nil(dns.respond(good:sub(1, n), TTL), "respond of " .. n .. " bytes")
        assert.is_nil(dns.refuse(good:sub(1, n)), "refuse of " .. n .. " bytes")
      end
      for _, flags1 in ipairs({ 128, 129, 128 + 4, 255, 128 + 8 * 5 }) do
        local msg = build({ name = NAME_1, flags1 = flags1 })
        assert.is_nil(dns.respond(msg, TTL), "respond " .. hex(msg))
        assert.is_nil(dns.refuse(msg), "refuse " .. hex(msg))
      end
      assert.is_nil(dns.respond(good:sub(1, 2) .. "\128" .. string.rep("\0", 9), TTL))
    end)
  end)

  describe("header flags", function()
    it("sets AA on every NOERROR and NXDOMAIN, copies RD, never sets RA or TC, whatever the query's flags", function()
      local cases = {}
      for _, flags in ipairs({ { 0, 0 }, { 1, 0 }, { 1 + 2 + 4, 0 }, { 2, 0xff }, { 4, 0x80 }, { 0, 0x30 } }) do
        for _, q in ipairs({ { { name = NAME_1 }, answer_aaaa(ADDR_1) }, { { name = NAME_1, qtype = T.MX }, NODATA },
            { { name = "eaaq3o-f.v6.alt" }, NAME_ERROR }, { { name = arpa_name(ADDR_1), qtype = T.PTR },
            { rcode = NOERROR, answer = { type = T.PTR, target = NAME_1 } } },
            { { name = "example.org" }, REFUSAL }, { { question = "", qd = 0 }, { rcode = FORMERR, question = false } } }) do
          local query = {}
          for k, v in pairs(q[1]) do query[k] = v end
          query.flags1, query.flags2 = flags[1], flags[2]
          cases[#cases + 1] = case(query, q[2]) -- check_reply holds AA, RD, RA, TC
        end
      end
      for _, id in ipairs({ 0, 1, 255, 256, 65535 }) do
        cases[#cases + 1] = case({ name = NAME_1, id = id }, answer_aaaa(ADDR_1))
      end
      all(cases)
    end)
  end)

  describe("EDNS", function()
    it("answers a query with an OPT record with an OPT record without options", function()
      local cookie = u16(10) .. u16(8) .. "\1\2\3\4\5\6\7\8"
      all({
        case({ name = NAME_1, edns = {} }, { rcode = NOERROR, opt = true, answer = { type = T.AAAA, address = ADDR_1 } }),
        case({ name = NAME_1, edns = { options = cookie, payload = 4096, flags = 0x80 } },
          { rcode = NOERROR, opt = true, answer = { type = T.AAAA, address = ADDR_1 } }),
        case({ name = NAME_1, edns = { payload = 512 } }, { rcode = NOERROR, opt = true, answer = { type = T.AAAA, address = ADDR_1 } }),
        case({ name = NAME_1, qtype = T.TXT, edns = {} }, { rcode = NOERROR, opt = true, soa = true }),
        case({ name = "eaaq3o-f.v6.alt", edns = { options = cookie } }, { rcode = NXDOMAIN, opt = true, soa = true }),
        case({ name = arpa_name(ADDR_1), qtype = T.PTR, edns = {} },
          { rcode = NOERROR, opt = true, answer = { type = T.PTR, target = NAME_1 } }),
        case({ name = arpa_name(ADDR_1):sub(3), qtype = T.PTR, edns = {} }, { rcode = NOERROR, opt = true, soa = true }),
        case({ name = "example.com", edns = {} }, { rcode = REFUSED, opt = true }),
        case({ name = NAME_1, qclass = CLASS.CH, edns = {} }, { rcode = REFUSED, opt = true }),
        case({ name = NAME_1 }, { rcode = NOERROR, opt = false, answer = { type = T.AAAA, address = ADDR_1 } }),
        case({ name = NAME_1, qtype = T.TXT }, { rcode = NOERROR, opt = false, soa = true }),
        -- Queries that are not answered still get their OPT back (RFC 6891 6.1.1).
        case({ edns = {} }, { rcode = FORMERR, opt = true, question = false }),
        case({ name = NAME_1, opcode = 5, edns = {} }, { rcode = NOTIMP, opt = true, question = false }),
        case({ question = wire_name(NAME_1) .. u16(T.AAAA) .. u16(CLASS.IN), qd = 2,
          records = wire_name(NAME_1) .. u16(T.AAAA) .. u16(CLASS.IN), edns = {} }, { rcode = FORMERR, opt = true, question = false }),
      })
    end)

    it("answers EDNS version 1 (and 255) with BADVERS: header rcode 0, OPT extended rcode 1", function()
      local cases = {}
      for _, version in ipairs({ 1, 2, 255 }) do
        for _, name in ipairs({ NAME_1, "eaaq3o-f.v6.alt", arpa_name(ADDR_1) }) do
          local query = { name = name, edns = { version = version } }
          cases[#cases + 1] = function()
            local m = expect(query, { rcode = BADVERS, opt = true, question = false })
            assert(m.rcode == 0 and m.opt.ext_rcode == 1,
              hex(build(query)) .. ": header rcode " .. m.rcode .. ", OPT extended rcode " .. m.opt.ext_rcode)
            assert(#m.an == 0, hex(build(query)) .. ": an answer with BADVERS")
          end
        end
      end
      all(cases)
    end)
  end)

  describe("TTL and compression", function()
    it("uses the ttl argument for every answer and the SOA minimum", function()
      local cases = {}
      for _, ttl in ipairs({ 0, 1, 300, 3600, 65535, 65536, 86400, 2147483647 }) do
        cases[#cases + 1] = case({ name = NAME_1 }, { rcode = NOERROR, ttl = ttl, answer = { type = T.AAAA } })
        cases[#cases + 1] = case({ name = "_xmpp-client._tcp." .. NAME_1, qtype = T.SRV },
          { rcode = NOERROR, ttl = ttl, answer = { type = T.SRV, port = 5222 } })
        cases[#cases + 1] = case({ name = arpa_name(ADDR_1), qtype = T.PTR },
          { rcode = NOERROR, ttl = ttl, answer = { type = T.PTR, target = NAME_1 } })
        cases[#cases + 1] = case({ name = NAME_1, qtype = T.A }, { rcode = NOERROR, ttl = ttl, soa = true })
        cases[#cases + 1] = case({ name = "eaaq3o-f.v6.alt" }, { rcode = NXDOMAIN, ttl = ttl, soa = true })
        cases[#cases + 1] = case({ name = arpa_name(ADDR_1), qtype = T.A }, { rcode = NOERROR, ttl = ttl, soa = true })
        cases[#cases + 1] = case({ name = "ip6.arpa", qtype = T.SOA }, { rcode = NOERROR, ttl = ttl, soa = true })
      end
      all(cases)
    end)

    it("points every compression pointer inside the reply, backwards, at the right name", function()
      -- parse_message follows every pointer (backwards only, never into the
      -- header) and expect() compares the names it finds; here the SOA's
      -- names too, after questions of every zone and depth.
      local cases = {}
      for _, q in ipairs({ { name = "v6.alt", qtype = T.SOA }, { name = "EAAQ3O-F.V6.ALT" },
          { name = "a.b.c.d." .. NAME_1, qtype = T.TXT }, { name = arpa_name(ADDR_1), qtype = T.MX },
          { name = "0.IP6.ARPA", qtype = T.PTR }, { name = "ip6.arpa" }, { name = NAME_MESH, qtype = T.NS } }) do
        cases[#cases + 1] = function()
          local m = expect(q, q.name:lower():find("eaaq3o%-f") and NAME_ERROR
            or q.name == "v6.alt" and NAME_ERROR or NODATA)
          local soa = m.ns[1]
          assert(soa.mname:lower():sub(-7) == ".v6.alt" and soa.rname:lower():sub(-7) == ".v6.alt",
            "SOA names " .. soa.mname .. " " .. soa.rname)
        end
      end
      for _, q in ipairs({ { name = "x.y." .. NAME_TIE_REF, qtype = T.AAAA }, { name = "_xmpp-client._tcp.X.Y." .. NAME_1, qtype = T.SRV },
          { name = arpa_name(ADDR_MESH):upper(), qtype = T.PTR } }) do
        cases[#cases + 1] = function()
          local m = expect(q, { rcode = NOERROR, answer = {} })
          assert(m.an[1].name == m.qd[1].name, "answer owner " .. m.an[1].name)
          if m.an[1].type == T.SRV then assert(m.an[1].target == "X.Y." .. NAME_1, m.an[1].target) end
          if m.an[1].type == T.PTR then assert(m.an[1].target == NAME_MESH, m.an[1].target) end
        end
      end
      all(cases)
    end)
  end)

  describe("dns.refuse", function()
    -- refuse(msg) must answer REFUSED with no records, echoing the question
    -- when `echo` is set (check_reply holds the rest: id, flags, bound).
    local function refused(msg, echo)
      return function()
        local ok, reply = pcall(dns.refuse, msg)
        assert(ok, "refuse(" .. hex(msg) .. ") raised: " .. tostring(reply))
        local m = check_reply(msg, reply, "refuse")
        assert(m.full_rcode == REFUSED, hex(msg) .. ": " .. rcode_name(m.full_rcode))
        assert(#m.an == 0 and #m.ns == 0, hex(msg) .. ": records in a refusal")
        if echo then assert(#m.qd == 1, hex(msg) .. ": the question is not echoed") end
      end
    end

    it("answers REFUSED with the question echoed when it parses, RA clear, RD copied", function()
      local cases = {}
      for _, q in ipairs({ { name = NAME_1 }, { name = "example.com", qtype = T.A }, { name = arpa_name(ADDR_1), qtype = T.PTR },
          { name = NAME_1, edns = {} }, { name = NAME_1, flags1 = 0 }, { name = NAME_1, qclass = CLASS.CH } }) do
        cases[#cases + 1] = refused(build(q), true)
      end
      -- a question that does not parse (or is not looked at) is not echoed
      for _, q in ipairs({ { question = "", qd = 0 }, { question = "\192\12\0\28\0\1" },
          { name = NAME_1, opcode = 2 }, { name = NAME_1, qd = 2 } }) do
        cases[#cases + 1] = refused(build(q), false)
      end
      all(cases)
    end)
  end)

  describe("fuzz", function()
    -- Generators shared by both tests; each test seeds `rand` itself.
    local rand
    local function rbytes(n)
      local t = {}
      for i = 1, n do t[i] = string.char(rand(256)) end
      return table.concat(t)
    end
    local NAME_CHARS = "abcdefghijklmnopqrstuvwxyz234567-ABCDEFGHIJKLMNOPQRSTUVWXYZ0189._\0\255"
    local function random_label()
      local t = {}
      for i = 1, 1 + rand(30) do local k = rand(#NAME_CHARS) + 1; t[i] = NAME_CHARS:sub(k, k) end
      return table.concat(t)
    end
    -- An address, sometimes inside a special-purpose block.
    local function random_address()
      local bytes = rbytes(16)
      if rand(4) == 0 then
        local block = SPECIAL[rand(#SPECIAL) + 1]
        bytes = splice(unhex(block[2]), block[3], bytes)
      end
      return bytes
    end
    -- The label before v6.alt: as an encoder writes it, the same with one
    -- character changed or in another case, or anything.
    local function random_x_label()
      local r = rand(3)
      local bytes = random_address()
      local label = (rand(2) == 0 and canonical_name(bytes) or reference_name(bytes)):sub(1, -8)
      if r == 1 then
        local i, k = rand(#label) + 1, rand(#NAME_CHARS) + 1
        label = label:sub(1, i - 1) .. NAME_CHARS:sub(k, k) .. label:sub(i + 1)
      elseif r == 2 then
        label = rand(2) == 0 and label:upper() or random_label()
      end
      return label
    end
    local function random_v6alt()
      local labels = {}
      for i = 1, rand(3) do labels[i] = random_label() end
      labels[#labels + 1] = random_x_label()
      labels[#labels + 1], labels[#labels + 2] = rand(8) == 0 and "V6" or "v6", rand(8) == 0 and "ALT" or "alt"
      return labels
    end
    local TYPES = { T.AAAA, T.AAAA, T.AAAA, T.SRV, T.SRV, T.PTR, T.PTR, T.A, T.TXT, T.ANY, T.OPT, T.SOA, 0, 65535 }
    local CLASSES = { 1, 1, 1, 1, 1, 1, 1, 1, 3, 4, 254, 255, 0 }
    local HEX = "0123456789abcdefABCDEFgx"
    -- A query table for build(): a name under .v6.alt (or an SRV name
    -- there), under ip6.arpa, or elsewhere; QR clear.
    local function random_query()
      local kind = rand(4)
      local name
      if kind == 0 then name = random_v6alt()
      elseif kind == 1 then
        name = { rand(8) == 0 and "_XMPP-Client" or "_xmpp-" .. (rand(2) == 0 and "client" or "server"),
          rand(8) == 0 and "_udp" or "_tcp" }
        for _, l in ipairs(random_v6alt()) do name[#name + 1] = l end
      elseif kind == 2 then
        name = {}
        for i = 1, rand(2) == 0 and 32 or rand(36) do
          local k = rand(100) == 0 and rand(#HEX) + 1 or rand(16) + 1
          name[i] = HEX:sub(k, k)
        end
        name[#name + 1], name[#name + 2] = "ip6", rand(4) == 0 and "ARPA" or "arpa"
      else
        name = { random_label(), "example" }
      end
      -- AA, TC, RD at random; an opcode other than QUERY now and then
      local q = { name = name, qtype = TYPES[rand(#TYPES) + 1],
        qclass = rand(20) == 0 and rand(65536) or CLASSES[rand(#CLASSES) + 1],
        id = rand(65536), flags1 = rand(8) + (rand(16) == 0 and rand(16) * 8 or 0), flags2 = rand(256) }
      if rand(3) == 0 then q.edns = { version = rand(4) == 0 and rand(256) or 0, options = rbytes(rand(3) * 4) } end
      return q
    end

    -- The address a lowercased label before .v6.alt names, decoded here
    -- independently: at most one hyphen for two or more 'a', 26 base32
    -- characters, and exactly what an encoder (canonical or tie) writes.
    local function strict_address(label)
      if label:find("[^a-z2-7%-]") then return nil end
      local _, hyphens = label:gsub("%-", "")
      local s = label
      if hyphens > 1 then return nil end
      if hyphens == 1 then
        if 27 - #label < 2 then return nil end
        s = label:gsub("%-", string.rep("a", 27 - #label))
      end
      if #s ~= 26 then return nil end
      local bytes = b32decode(s)
      local name = label .. ".v6.alt"
      if canonical_name(bytes) ~= name and reference_name(bytes) ~= name then return nil end
      return bytes
    end

    -- What SPEC section 6 says respond() answers to query table q: the
    -- rcode and the answer's type and data (address or target); nil when
    -- the table holds no opinion (a label with a dot in it: SPEC is silent).
    local function oracle(q)
      if math.floor(q.flags1 / 8) % 16 ~= 0 then return NOTIMP end
      if q.edns and q.edns.version > 0 then return BADVERS end
      local labels, n = q.name, #q.name
      for i = 1, n do if labels[i]:find(".", 1, true) then return nil end end
      local zone = n >= 2 and labels[n - 1]:lower() .. "." .. labels[n]:lower()
      if (zone ~= "v6.alt" and zone ~= "ip6.arpa") or q.qclass ~= CLASS.IN then return REFUSED end
      if zone == "v6.alt" then
        local bytes = n > 2 and strict_address(labels[n - 2]:lower())
        if not bytes or is_special(bytes) then return NXDOMAIN end
        if q.qtype == T.AAAA then return NOERROR, T.AAAA, bytes end
        local service, proto = (labels[1] or ""):lower(), (labels[2] or ""):lower()
        if q.qtype == T.SRV and n > 4 and proto == "_tcp" then
          local target = table.concat(labels, ".", 3):lower()
          if service == "_xmpp-client" then return NOERROR, T.SRV, target, 5222 end
          if service == "_xmpp-server" then return NOERROR, T.SRV, target, 5269 end
        end
        return NOERROR
      end
      if n - 2 > 32 then return NXDOMAIN end
      for i = 1, n - 2 do if not labels[i]:find("^%x$") then return NXDOMAIN end end
      if n - 2 < 32 then return NOERROR end
      local nibbles = {}
      for i = 32, 1, -1 do nibbles[#nibbles + 1] = labels[i] end
      local bytes = unhex(table.concat(nibbles))
      if is_special(bytes) then return NXDOMAIN end
      if q.qtype == T.PTR then return NOERROR, T.PTR, canonical_name(bytes) end
      return NOERROR
    end

    it("10000 random names under .v6.alt and ip6.arpa get the answer an independent decoder expects", function()
      rand = new_rand(97531)
      local fails, nfail, answers, checked = {}, 0, 0, 0
      for _ = 1, 10000 do
        local q = random_query()
        local rcode, rtype, data, port = oracle(q)
        if rcode then
          checked = checked + 1
          local want = { rcode = rcode, question = rcode ~= NOTIMP and rcode ~= BADVERS,
            soa = rcode == NXDOMAIN or (rcode == NOERROR and not rtype) }
          if rtype == T.AAAA then want.answer = { type = T.AAAA, address = data }
          elseif rtype == T.SRV then want.answer = { type = T.SRV, port = port }
          elseif rtype == T.PTR then want.answer = { type = T.PTR, target = data } end
          local ok, err = pcall(function()
            local m = expect(q, want)
            if rtype == T.SRV and m.an[1].target:lower() ~= data then
              error(hex(build(q)) .. ": SRV target " .. m.an[1].target .. ", want " .. data, 0)
            end
          end)
          if rtype then answers = answers + 1 end
          if not ok then
            nfail = nfail + 1
            if #fails < 10 then fails[#fails + 1] = tostring(err) end
          end
        end
      end
      if nfail > 0 then
        error(string.format("%d of %d failed, first %d:\n  %s", nfail, checked, #fails, table.concat(fails, "\n  ")), 0)
      end
      assert.is_true(checked > 8000 and answers > 300, checked .. " checked, " .. answers .. " answers")
    end)

    it("20000 random and mutated packets: never raises, replies within the bound, same id", function()
      rand = new_rand(424242)
      -- compression loops and wild pointers in the answer / additional sections
      local function with_loops(msg)
        local here = #msg -- 0-based offset of the next byte
        local kinds = {
          u16(49152 + here) .. u16(T.A) .. u16(1) .. u32(0) .. u16(0),                  -- points at itself
          "\1x" .. u16(49152 + here) .. u16(T.A) .. u16(1) .. u32(0) .. u16(0),          -- back to its own label
          u16(49152 + here + 2) .. u16(49152 + here) .. u16(T.A) .. u16(1) .. u32(0) .. u16(0), -- two-pointer loop
          u16(49152 + 16383) .. u16(T.A) .. u16(1) .. u32(0) .. u16(0),                  -- far past the end
          "\0" .. u16(T.OPT) .. u16(512) .. u32(0) .. u16(6) .. u16(49152 + here) .. "\0\0\0\0",
        }
        local rr = kinds[rand(#kinds) + 1]
        local b = { msg:byte(1, 12) }
        local section = rand(3) -- answer, authority or additional count
        local count = 1 + rand(3)
        b[7 + section * 2], b[8 + section * 2] = 0, count
        return string.char(unpack(b)) .. msg:sub(13) .. string.rep(rr, count)
      end
      local function mutate(msg)
        for _ = 1, 1 + rand(4) do
          local op = rand(7)
          local n = #msg
          if op == 0 and n > 0 then msg = msg:sub(1, rand(n))                                        -- truncate
          elseif op == 1 and n > 0 then                                                           -- flip a bit
            local i = rand(n) + 1
            local b, bit = msg:byte(i), 2 ^ rand(8)
            b = (math.floor(b / bit) % 2 == 1) and b - bit or b + bit
            msg = msg:sub(1, i - 1) .. string.char(b) .. msg:sub(i + 1)
          elseif op == 2 and n > 0 then                                                           -- set a byte
            local i = rand(n) + 1
            msg = msg:sub(1, i - 1) .. string.char(rand(256)) .. msg:sub(i + 1)
          elseif op == 3 and n >= 12 then                                                         -- huge count
            local i = 5 + 2 * rand(4)
            msg = msg:sub(1, i - 1) .. (rand(2) == 0 and "\255\255" or u16(rand(65536))) .. msg:sub(i + 2)
          elseif op == 4 then                                                                     -- insert bytes
            local i = rand(n + 1)
            msg = msg:sub(1, i) .. rbytes(1 + rand(6)) .. msg:sub(i + 1)
          elseif op == 5 and n >= 12 then msg = with_loops(msg)
          elseif op == 6 and n >= 4 then                                                          -- opcode
            msg = msg:sub(1, 2) .. string.char(rand(16) * 8 + rand(8)) .. msg:sub(4)
          end
        end
        return msg
      end

      local fails, nfail = {}, 0
      local replied, silent, seen = 0, 0, {}
      local function note(why) nfail = nfail + 1; if #fails < 10 then fails[#fails + 1] = why end end
      for i = 1, 20000 do
        local r = rand(10)
        local msg
        if r == 0 then msg = rbytes(rand(100))
        elseif r <= 3 then msg = build(random_query())
        elseif r <= 5 then msg = with_loops(build(random_query()))
        else msg = mutate(build(random_query())) end
        local due = #msg >= 12 and msg:byte(3) < 128
        for _, fname in ipairs({ "respond", "refuse" }) do
          local ok, reply
          if fname == "respond" then ok, reply = pcall(dns.respond, msg, TTL)
          else ok, reply = pcall(dns.refuse, msg) end
          if not ok then
            note(string.format("#%d %s(%s) raised: %s", i, fname, hex(msg), tostring(reply)))
          elseif reply == nil then
            if due then note(string.format("#%d %s(%s): no reply", i, fname, hex(msg))) end
            if fname == "respond" then silent = silent + 1 end
          elseif not due then
            note(string.format("#%d %s(%s): a reply to a response or a short message", i, fname, hex(msg)))
          else
            local cok, m = pcall(check_reply, msg, reply, fname)
            if not cok then note("#" .. i .. " " .. tostring(m)) end
            if fname == "respond" then
              replied = replied + 1
              if cok then
                local kind = rcode_name(m.full_rcode) .. (m.an[1] and " answer" or "")
                seen[kind] = (seen[kind] or 0) + 1
              end
            end
          end
        end
      end
      if nfail > 0 then
        error(string.format("%d failure(s), first %d:\n  %s", nfail, #fails, table.concat(fails, "\n  ")), 0)
      end
      assert.is_true(replied > 10000, "only " .. replied .. " replies")
      assert.is_true(silent > 100, "only " .. silent .. " messages got no reply")
      -- the packets reach every kind of reply
      for _, kind in ipairs({ "NOERROR answer", "NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "NOTIMP", "BADVERS" }) do
        assert.is_true((seen[kind] or 0) >= 20, kind .. " replies: " .. tostring(seen[kind]))
      end
    end)
  end)
end)
