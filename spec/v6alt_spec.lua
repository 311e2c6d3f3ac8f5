-- Unit tests for the .v6.alt codec (SPEC.md section 2), run with busted on
-- Lua 5.1-5.4 and LuaJIT:  lua5.4 /usr/bin/busted spec/
--
-- The expected values come from SPEC.md and from spec/vectors.tsv, written by
-- scripts/gen-vectors.py (an independent Python encoder).  The helpers below
-- (base32 decoding, address expansion) are written here on purpose so the
-- expectations do not depend on the module under test.

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "spec"
local root = spec_dir:match("^(.*)[/\\][^/\\]*$") or "."
-- V6ALT_DIST points the spec at another build of the codec (default: dist/).
local dist = os.getenv("V6ALT_DIST") or (root .. "/dist")
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local loaded, v6alt = pcall(require, "mod_s2s_v6mesh.v6alt")

-------------------------------------------------------------------- helpers --

-- Wrong hyphen placements tried per vector: all of them unless V6ALT_SPEC_CAP
-- is set (an evenly spread sample of that many, incl. first and last).
local CAP = tonumber(os.getenv("V6ALT_SPEC_CAP") or "") or math.huge

local ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
local B32 = {}
for i = 1, 32 do B32[ALPHABET:sub(i, i)] = i - 1 end

-- 26 lowercase base32 characters -> 16 bytes (low 2 bits of the last
-- character are dropped).  Arithmetic only, so it runs on every Lua.
local function b32decode(s)
  assert(#s == 26, "b32decode wants 26 chars")
  local acc, nbits, out = 0, 0, {}
  for i = 1, 26 do
    acc = acc * 32 + B32[s:sub(i, i)]
    nbits = nbits + 5
    if nbits >= 8 then
      local div = 2 ^ (nbits - 8)
      local byte = math.floor(acc / div)
      out[#out + 1] = string.char(byte)
      acc = acc - byte * div
      nbits = nbits - 8
    end
  end
  return table.concat(out)
end

local function hex(bytes)
  if type(bytes) ~= "string" then return tostring(bytes) end
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- Printable quoted form; bytes outside printable ASCII as \xNN.
local function show(v)
  if type(v) ~= "string" then return tostring(v) end
  return '"' .. v:gsub('[%c"\\\128-\255]', function(ch)
    return string.format("\\x%02x", ch:byte())
  end) .. '"'
end

-- 16 bytes -> "0000:0000:...:0001" (every group, 4 digits, no compression)
local function full_form(bytes)
  local g = {}
  for i = 1, 16, 2 do g[#g + 1] = string.format("%02x%02x", bytes:byte(i, i + 1)) end
  return table.concat(g, ":")
end

-- label with at most one hyphen -> 26-char string (hyphen = as many 'a')
local function expand(label)
  if not label:find("-", 1, true) then return label end
  return (label:gsub("%-", string.rep("a", 27 - #label)))
end

local function label_of(name) return name:sub(1, -8) end

local function read_vectors()
  local path = spec_dir .. "/vectors.tsv"
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  local header = f:read("*l")
  assert(header == "address\tname\treference_name", "bad header in " .. path)
  local list = {}
  for line in f:lines() do
    if line ~= "" then
      local addr, name, ref = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
      assert(addr, "bad line in vectors.tsv: " .. line)
      local s = expand(label_of(name))
      list[#list + 1] = {
        addr = addr, name = name, ref = ref,
        s = s,                    -- the 26-char base32 form
        bytes = b32decode(s),     -- expected 16 bytes, computed here
      }
    end
  end
  f:close()
  return list
end

-- Failure collector: one `it` checks many cases and reports them all.
local function collector()
  local fails, n = {}, 0
  local c = {}
  function c.check(ok, what)
    if not ok then
      n = n + 1
      if #fails < 25 then fails[#fails + 1] = what end
    end
  end
  function c.done()
    if n > 0 then
      error(string.format("%d failing case(s), first %d:\n  %s", n, #fails,
        table.concat(fails, "\n  ")), 0)
    end
  end
  return c
end

-- Call description, built only when a check fails.
local function call_text(fname, ...)
  local parts = {}
  for i = 1, select("#", ...) do
    local a = select(i, ...)
    parts[i] = show(a)
  end
  return fname .. "(" .. table.concat(parts, ", ") .. ")"
end

-- Checks a strict or lax rejection: nil, non-empty message, expected code.
local function check_reject(c, fn, fname, expect_code, ...)
  local ok, r1, r2, r3 = pcall(fn, ...)
  if not ok then
    c.check(false, string.format("%s: raised a Lua error: %s", call_text(fname, ...), tostring(r1)))
  elseif not (r1 == nil and type(r2) == "string" and r2 ~= "" and r3 == expect_code) then
    c.check(false, string.format("%s: want nil, <message>, %q; got %s, %s, %s",
      call_text(fname, ...), expect_code, show(r1), show(r2), show(r3)))
  end
end

local function check_value(c, fn, fname, expect, ...)
  local ok, r1, r2, r3 = pcall(fn, ...)
  if not ok then
    c.check(false, string.format("%s: raised a Lua error: %s", call_text(fname, ...), tostring(r1)))
  elseif r1 ~= expect then
    c.check(false, string.format("%s: want %s; got %s, %s, %s",
      call_text(fname, ...), show(expect), show(r1), show(r2), show(r3)))
  end
end

local function check_bytes(c, fn, fname, expect, ...)
  local ok, r1, r2, r3 = pcall(fn, ...)
  if not ok then
    c.check(false, string.format("%s: raised a Lua error: %s", call_text(fname, ...), tostring(r1)))
  elseif r1 ~= expect then
    c.check(false, string.format("%s: want bytes %s; got %s, %s, %s",
      call_text(fname, ...), hex(expect), hex(r1), show(r2), show(r3)))
  end
end


---------------------------------------------------------------------- tests --

describe("mod_s2s_v6mesh.v6alt", function()
  it("loads from dist/ with require \"mod_s2s_v6mesh.v6alt\"", function()
    assert(loaded, "require failed: " .. tostring(v6alt))
    assert.are.equal("table", type(v6alt))
  end)
  if not loaded then return end

  it("has the API", function()
    assert.are.equal(".v6.alt", v6alt.suffix)
    for _, f in ipairs({ "is_v6alt", "encode", "encode_reference", "decode",
        "parse_ip", "format_ip", "ip_to_name", "name_to_ip", "normalize", "mesh_name", "read_failure" }) do
      assert.are.equal("function", type(v6alt[f]), f)
    end
  end)

  it("read_failure names the spelling only when it differs from the reading", function()
    assert.are.equal("bad", v6alt.read_failure("a-e.v6.alt", "a-e.v6.alt", "bad"))
    assert.are.equal("A-E.V6.ALT. is read as a-e.v6.alt: bad", v6alt.read_failure("A-E.V6.ALT.", "a-e.v6.alt", "bad"))
  end)

  ------------------------------------------------------- SPEC.md vectors --
  describe("SPEC.md section 2 vectors", function()
    local table_ = {
      { "2001:db8::1", "eaaq3o-e.v6.alt" },
      { "0200::1", "ai-e.v6.alt", "200::1" },
      { "200:cab8:deb4:ce60:4362:4492:e539:4b5", "aiamvog6wthgaq3cisjokoiewu.v6.alt" },
      { "::1", "a-e.v6.alt" },
      { "::", "a-a.v6.alt" },
      { "fe80::1", "72-e.v6.alt" },
      { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "77777777777777777777777774.v6.alt" },
      { "1111:0000:0000:1111::1111", "ceiqaaaaaairc-rce.v6.alt", "1111:0:0:1111::1111" },
      { "1111:0000:0000:0000:1111::1111", "ceiq-eiraaaaaaarce.v6.alt", "1111::1111:0:0:1111" },
      { "2a00:1098:3a0::1", "fiabbgadu-e.v6.alt" },
    }
    for _, v in ipairs(table_) do
      local addr, name, canon_text = v[1], v[2], v[3] or v[1]
      it(addr .. " <-> " .. name, function()
        local bytes = b32decode(expand(label_of(name)))
        assert.are.equal(hex(bytes), hex(v6alt.parse_ip(addr)))
        assert.are.equal(name, v6alt.encode(bytes))
        assert.are.equal(name, v6alt.encode_reference(bytes))
        assert.are.equal(name, v6alt.ip_to_name(addr))
        assert.are.equal(hex(bytes), hex(v6alt.decode(name)))
        assert.are.equal(hex(bytes), hex(v6alt.decode(name, true)))
        assert.are.equal(canon_text, v6alt.format_ip(bytes))
        assert.are.equal(canon_text, v6alt.name_to_ip(name))
      end)
    end

    it("tie: 2001:db8::1:0:0:1 is eaaq3o-baaaaaaaaae (canonical) and eaaq3oaaaaaaaaab-e (reference)", function()
      local bytes = v6alt.parse_ip("2001:db8::1:0:0:1")
      assert.are.equal("20010db8000000000001000000000001", hex(bytes))
      assert.are.equal("eaaq3o-baaaaaaaaae.v6.alt", v6alt.encode(bytes))
      assert.are.equal("eaaq3oaaaaaaaaab-e.v6.alt", v6alt.encode_reference(bytes))
      assert.are.equal("eaaq3o-baaaaaaaaae.v6.alt", v6alt.ip_to_name("2001:db8::1:0:0:1"))
      assert.are.equal(hex(bytes), hex(v6alt.decode("eaaq3o-baaaaaaaaae.v6.alt")))
      assert.are.equal(hex(bytes), hex(v6alt.decode("eaaq3oaaaaaaaaab-e.v6.alt")))
      assert.are.equal("2001:db8::1:0:0:1", v6alt.name_to_ip("eaaq3oaaaaaaaaab-e.v6.alt"))
      assert.are.equal("2001:db8::1:0:0:1", v6alt.name_to_ip("eaaq3o-baaaaaaaaae.v6.alt"))
    end)

    it("subdomains decode like their .v6.alt label", function()
      local want = hex(v6alt.parse_ip("2a00:1098:3a0::1"))
      for _, n in ipairs({ "muc.fiabbgadu-e.v6.alt", "upload.fiabbgadu-e.v6.alt",
          "a.b.c.fiabbgadu-e.v6.alt", "conference.fiabbgadu-e.v6.alt" }) do
        assert.are.equal(want, hex(v6alt.decode(n)), n)
        assert.are.equal("2a00:1098:3a0::1", v6alt.name_to_ip(n), n)
      end
      assert.are.equal(hex(v6alt.parse_ip("2001:db8::1:0:0:1")),
        hex(v6alt.decode("muc.eaaq3oaaaaaaaaab-e.v6.alt")))
    end)
  end)

  ------------------------------------------------------------- is_v6alt --
  it("is_v6alt is a suffix test", function()
    for _, n in ipairs({ "a-e.v6.alt", "muc.a-e.v6.alt", "fiabbgadu-e.v6.alt",
        "not-valid-at-all.v6.alt" }) do
      assert.is_true(v6alt.is_v6alt(n), n)
    end
    for _, n in ipairs({ "example.com", "a-e.V6.ALT", "a-e.v6.alt.", "v6.alt",
        "a-e.v6alt", "a-e.alt", "a-e.v6.alt.example.com", "" }) do
      assert.is_false(v6alt.is_v6alt(n), n)
    end
  end)

  ---------------------------------------------------------- encode args --
  it("encode rejects anything but a 16-byte string with nil, message", function()
    local bad = { "", string.rep("\0", 15), string.rep("\0", 17), "2001:db8::1",
      123, {}, true }
    for i, arg in ipairs(bad) do
      local ok, r, msg = pcall(v6alt.encode, arg)
      assert(ok, "encode raised an error for case " .. i .. ": " .. tostring(r))
      assert.is_nil(r, "case " .. i)
      assert.are.equal("string", type(msg), "case " .. i)
      assert.is_true(#msg > 0, "case " .. i)
    end
    local ok, r, msg = pcall(v6alt.encode, nil)
    assert(ok, "encode(nil) raised an error: " .. tostring(r))
    assert.is_nil(r)
    assert.are.equal("string", type(msg))
  end)

  ------------------------------------------------------------- parse_ip --
  describe("parse_ip", function()
    it("accepts valid IPv6 text", function()
      local ok = {
        { "::", "00000000000000000000000000000000" },
        { "::1", "00000000000000000000000000000001" },
        { "1::", "00010000000000000000000000000000" },
        { "2001:db8::1", "20010db8000000000000000000000001" },
        { "2001:DB8::1", "20010db8000000000000000000000001" },
        { "2001:0db8:0000:0000:0000:0000:0000:0001", "20010db8000000000000000000000001" },
        { "0200::1", "02000000000000000000000000000001" },
        { "1:2:3:4:5:6:7::", "00010002000300040005000600070000" },
        { "::2:3:4:5:6:7:8", "00000002000300040005000600070008" },
        { "1:2:3:4:5:6:7:8", "00010002000300040005000600070008" },
        { "fe80::1", "fe800000000000000000000000000001" },
        { "::ffff:1.2.3.4", "00000000000000000000ffff01020304" },
        { "::ffff:127.0.0.1", "00000000000000000000ffff7f000001" },
        { "::ffff:255.255.255.255", "00000000000000000000ffffffffffff" },
        { "::1.2.3.4", "00000000000000000000000001020304" },
        { "64:ff9b::192.0.2.33", "0064ff9b0000000000000000c0000221" },
        { "1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304" },
      }
      local c = collector()
      for _, v in ipairs(ok) do
        local r1, r2 = v6alt.parse_ip(v[1])
        c.check(hex(r1) == v[2], string.format("parse_ip(%q): want %s; got %s, %s",
          v[1], v[2], hex(r1), show(r2)))
      end
      c.done()
    end)

    it("rejects invalid text with nil, message", function()
      local bad = { ":::", "1:2:3:4:5:6:7:8:9", "12345::", "::g", "fe80::1%eth0",
        "[::1]", "1.2.3.4", "", "1::2::3", "::ffff:1.2.3.256",
        "1:2:3:4:5:6:7", "::1::", ":1::", "::1:", "1:::2", "1::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8::", "::ffff:1.2.3", "::ffff:1.2.3.4.5", "0x1::",
        "::+1", "02001::", "[::1]:5269", "example.com", "a-e.v6.alt",
        "::ffff:1.2.3.04", "::ffff:010.0.0.1" }
      local c = collector()
      for _, t in ipairs(bad) do
        local ok, r1, r2 = pcall(v6alt.parse_ip, t)
        c.check(ok and r1 == nil and type(r2) == "string" and r2 ~= "",
          string.format("parse_ip(%q): want nil, <message>; got %s, %s, %s",
            t, tostring(ok), hex(r1), show(r2)))
        local ok2, n1, n2 = pcall(v6alt.ip_to_name, t)
        c.check(ok2 and n1 == nil and type(n2) == "string" and n2 ~= "",
          string.format("ip_to_name(%q): want nil, <message>; got %s, %s, %s",
            t, tostring(ok2), show(n1), show(n2)))
      end
      c.done()
    end)
  end)

  ------------------------------------------------------------ format_ip --
  it("format_ip prints RFC 5952 text", function()
    local cases = {
      { "00000000000000000000000000000000", "::" },
      { "00000000000000000000000000000001", "::1" },
      { "00010000000000000000000000000000", "1::" },
      { "00010000000200030004000500060007", "1:0:2:3:4:5:6:7" },
      { "00010002000300040005000600070000", "1:2:3:4:5:6:7:0" },
      { "00000001000200030004000500060007", "0:1:2:3:4:5:6:7" },
      { "00010000000000020000000000030004", "1::2:0:0:3:4" },
      { "00010000000000020000000000000003", "1:0:0:2::3" },
      { "20010db8000000000001000000000001", "2001:db8::1:0:0:1" },
      { "20010db8000000000000000000000001", "2001:db8::1" },
      { "ABCDEF0000000000000000000000000a", "abcd:ef00::a" },
      { "00000000000000000000ffff01020304", "::ffff:1.2.3.4" },
      { "00000000000000000000ffff00000000", "::ffff:0.0.0.0" },
      { "00000000000000000000000001020304", "::102:304" },
      { "0064ff9b0000000000000000c0000221", "64:ff9b::c000:221" },
      { "000000000000000000000000ffff0102", "::ffff:102" },
      { "0000000000000000ffff000001020304", "::ffff:0:102:304" },
      { "ffffffffffffffffffffffffffffffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
    }
    local c = collector()
    for _, v in ipairs(cases) do
      local bytes = v[1]:lower():gsub("..", function(h) return string.char(tonumber(h, 16)) end)
      check_value(c, v6alt.format_ip, "format_ip", v[2], bytes)
    end
    c.done()
  end)

  ---------------------------------------------------- handcrafted decode --
  describe("decode rejects non-canonical names", function()
    -- { name, strict code, lax: code string or expected address text }
    local cases = {
      -- not-v6alt
      { "example.com", "not-v6alt", "not-v6alt" },
      { "eaaq3o-e.v6.alt.", "not-v6alt", "not-v6alt" },
      { "eaaq3o-e.V6.ALT", "not-v6alt", "not-v6alt" },
      { "EAAQ3O-E.V6.ALT", "not-v6alt", "not-v6alt" },
      { "eaaq3o-e.v6.Alt", "not-v6alt", "not-v6alt" },
      { "v6.alt", "not-v6alt", "not-v6alt" },
      { "eaaq3o-e.v6alt", "not-v6alt", "not-v6alt" },
      { "eaaq3o-e.alt", "not-v6alt", "not-v6alt" },
      { "eaaq3o-e.v6.alt.example.com", "not-v6alt", "not-v6alt" },
      { "", "not-v6alt", "not-v6alt" },
      { "..A-0--.V6.ALT", "not-v6alt", "not-v6alt" },
      -- empty-label
      { ".v6.alt", "empty-label", "empty-label" },
      { "..v6.alt", "empty-label", "empty-label" },
      { "x..abc-e.v6.alt", "empty-label", "empty-label" },
      { "x..eaaq3o-e.v6.alt", "empty-label", "empty-label" },
      { ".a-e.v6.alt", "empty-label", "empty-label" },
      { "muc..a-e.v6.alt", "empty-label", "empty-label" },
      { "X..A-0.v6.alt", "empty-label", "empty-label" },
      -- uppercase
      { "EAAQ3O-E.v6.alt", "uppercase", "2001:db8::1" },
      { "Eaaq3o-e.v6.alt", "uppercase", "2001:db8::1" },
      { "eaaq3o-E.v6.alt", "uppercase", "2001:db8::1" },
      { "muc.FIABBGADU-E.v6.alt", "uppercase", "2a00:1098:3a0::1" },
      { "A-A.v6.alt", "uppercase", "::" },
      { "EAAQ3O-0.v6.alt", "uppercase", "bad-character" },
      { "EAAQ3O--E.v6.alt", "uppercase", "several-hyphens" },
      { "EAAQ3O-F.v6.alt", "uppercase", "2001:db8::1" },
      { "EAAQ3OAAAAAAAAAAAAAAAAAAAE.v6.alt", "uppercase", "2001:db8::1" },
      -- bad-character
      { "eaaq3o-0.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o-1.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o-8.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o-9.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o_e.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o-e=.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o+e.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o e.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o-\195\169.v6.alt", "bad-character", "bad-character" },
      { "eaaq3o-e\0.v6.alt", "bad-character", "bad-character" },
      { "e0aq-o-e.v6.alt", "bad-character", "bad-character" },
      { "a--0.v6.alt", "bad-character", "bad-character" },
      -- several-hyphens
      { "eaaq3o--e.v6.alt", "several-hyphens", "several-hyphens" },
      { "a-a-a.v6.alt", "several-hyphens", "several-hyphens" },
      { "-eaaq3o-e.v6.alt", "several-hyphens", "several-hyphens" },
      { "--.v6.alt", "several-hyphens", "several-hyphens" },
      { "a-a-.v6.alt", "several-hyphens", "several-hyphens" },
      { "eaaq3o-baaaaaaaab-e.v6.alt", "several-hyphens", "several-hyphens" },
      -- bad-length
      { "a.v6.alt", "bad-length", "bad-length" },
      { "b.v6.alt", "bad-length", "bad-length" },
      { "eaaq3o.v6.alt", "bad-length", "bad-length" },
      { string.rep("a", 25) .. ".v6.alt", "bad-length", "bad-length" },
      { string.rep("a", 27) .. ".v6.alt", "bad-length", "bad-length" },
      { string.rep("a", 64) .. ".v6.alt", "bad-length", "bad-length" },
      { "-" .. string.rep("a", 26) .. ".v6.alt", "bad-length", "bad-length" },
      { string.rep("a", 26) .. "-.v6.alt", "bad-length", "bad-length" },
      { "eaaq3o-aaaaaaaaaaaaaaaaaaae.v6.alt", "bad-length", "bad-length" },
      { "eaaq3o-aaaaaaaaaaaaaaaaaaaae.v6.alt", "bad-length", "bad-length" },
      -- short-run: a hyphen standing for exactly one 'a' (26-char label)
      { "eaaq3o-aaaaaaaaaaaaaaaaaae.v6.alt", "short-run", "short-run" },
      { "-aaaaaaaaaaaaaaaaaaaaaaaaa.v6.alt", "short-run", "short-run" },
      { "aaaaaaaaaaaaaaaaaaaaaaaaa-.v6.alt", "short-run", "short-run" },
      { "e-aq3oaaaaaaaaaaaaaaaaaaae.v6.alt", "short-run", "short-run" },
      { "eaaq3o-aaaaaaaaaaaaaaaaaab.v6.alt", "short-run", "short-run" },
      -- padding-bits
      { "eaaq3o-f.v6.alt", "padding-bits", "2001:db8::1" },
      { "eaaq3o-g.v6.alt", "padding-bits", "2001:db8::1" },
      { "eaaq3o-h.v6.alt", "padding-bits", "2001:db8::1" },
      { "a-b.v6.alt", "padding-bits", "::" },
      { "a-c.v6.alt", "padding-bits", "::" },
      { "a-d.v6.alt", "padding-bits", "::" },
      { "77777777777777777777777775.v6.alt", "padding-bits", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
      { "77777777777777777777777776.v6.alt", "padding-bits", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
      { "77777777777777777777777777.v6.alt", "padding-bits", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
      { "eaaq3oaaaaaaaaaaaaaaaaaaaf.v6.alt", "padding-bits", "2001:db8::1" },
      { "-f.v6.alt", "padding-bits", "::1" },
      { "muc.fiabbgadu-f.v6.alt", "padding-bits", "2a00:1098:3a0::1" },
      -- uncompressed
      { "eaaq3oaaaaaaaaaaaaaaaaaaae.v6.alt", "uncompressed", "2001:db8::1" },
      { string.rep("a", 26) .. ".v6.alt", "uncompressed", "::" },
      { "fiabbgaduaaaaaaaaaaaaaaaae.v6.alt", "uncompressed", "2a00:1098:3a0::1" },
      { "eaaq3oaaaaaaaaabaaaaaaaaae.v6.alt", "uncompressed", "2001:db8::1:0:0:1" },
      -- misplaced-hyphen
      { "-e.v6.alt", "misplaced-hyphen", "::1" },
      { "-.v6.alt", "misplaced-hyphen", "::" },
      { "-a.v6.alt", "misplaced-hyphen", "::" },
      { "a-.v6.alt", "misplaced-hyphen", "::" },
      { "aa-a.v6.alt", "misplaced-hyphen", "::" },
      { "a-aa.v6.alt", "misplaced-hyphen", "::" },
      { "eaaq3oa-e.v6.alt", "misplaced-hyphen", "2001:db8::1" },
      { "eaaq3o-ae.v6.alt", "misplaced-hyphen", "2001:db8::1" },
      { "e-q3oaaaaaaaaaaaaaaaaaaae.v6.alt", "misplaced-hyphen", "2001:db8::1" },
      { "muc.eaaq3oa-e.v6.alt", "misplaced-hyphen", "2001:db8::1" },
      -- 2001:db8::1:0:0:1: only the first (canonical) or last (reference) run
      { "eaaq3o-aaaaabaaaaaaaaae.v6.alt", "misplaced-hyphen", "2001:db8::1:0:0:1" },
      { "eaaq3oaaaaaaaaab-aaaae.v6.alt", "misplaced-hyphen", "2001:db8::1:0:0:1" },
      -- ::4000:4:0:f:c:0 has three equal runs: the middle one is not allowed
      { "a-caaaaaiaaaaahqadaaaa.v6.alt", nil, "::4000:4:0:f:c:0" },
      { "aaaaaacaaaaai-hqadaaaa.v6.alt", nil, "::4000:4:0:f:c:0" },
      { "aaaaaac-iaaaaahqadaaaa.v6.alt", "misplaced-hyphen", "::4000:4:0:f:c:0" },
      { "-caaaaaiaaaaahqadaaaa.v6.alt", "misplaced-hyphen", "::4000:4:0:f:c:0" },
      { "a-acaaaaaiaaaaahqadaaaa.v6.alt", "misplaced-hyphen", "::4000:4:0:f:c:0" },
      { "aaaaaacaaaaaiaaaaahqad-.v6.alt", "misplaced-hyphen", "::4000:4:0:f:c:0" },
      { "aaaaaacaaaaaiaaaaahqad-a.v6.alt", "misplaced-hyphen", "::4000:4:0:f:c:0" },
    }
    local IPWANT = {}
    for _, v in ipairs(cases) do
      local name, strict, lax = v[1], v[2], v[3]
      it(string.format("%s: %s / lax %s", show(name), strict or "accepted", lax), function()
        local c = collector()
        if strict then
          check_reject(c, v6alt.decode, "decode", strict, name)
          check_reject(c, v6alt.name_to_ip, "name_to_ip", strict, name)
        else
          check_value(c, v6alt.name_to_ip, "name_to_ip", lax, name)
        end
        if lax:find(":", 1, true) then
          IPWANT[lax] = IPWANT[lax] or v6alt.parse_ip(lax)
          check_bytes(c, v6alt.decode, "decode", IPWANT[lax], name, true)
          check_value(c, v6alt.name_to_ip, "name_to_ip", lax, name, true)
        else
          check_reject(c, v6alt.decode, "decode", lax, name, true)
          check_reject(c, v6alt.name_to_ip, "name_to_ip", lax, name, true)
        end
        c.done()
      end)
    end
  end)

  ------------------------------------------- every byte at every position --
  describe("one byte changed anywhere in a label", function()
    -- The label with the byte at `pos` replaced by `b`, as a full name.
    local function with_byte(label, pos, b)
      return label:sub(1, pos - 1) .. string.char(b) .. label:sub(pos + 1) .. ".v6.alt"
    end

    -- Is `name` (or, for a byte that made a subdomain, its last label before
    -- .v6.alt) exactly what one of the two encoders writes for `packed`?
    local function written_by_encoder(name, packed)
      for _, encoder in ipairs({ v6alt.encode, v6alt.encode_reference }) do
        local enc = encoder(packed)
        if enc and (name == enc or name:sub(-#enc - 1) == "." .. enc) then return true end
      end
      return false
    end

    -- Strict decode: nil, <message>, <code>, or an address the encoders
    -- write as `name`.  Lax decode: 16 bytes or nil, <message>.  Neither
    -- raises a Lua error.
    local function check_any_name(c, name)
      local ok, r1, r2, r3 = pcall(v6alt.decode, name)
      if not ok then
        c.check(false, call_text("decode", name) .. ": raised a Lua error: " .. tostring(r1))
      elseif r1 == nil then
        c.check(type(r2) == "string" and r2 ~= "" and type(r3) == "string",
          string.format("%s: want nil, <message>, <code>; got nil, %s, %s",
            call_text("decode", name), show(r2), show(r3)))
      else
        c.check(type(r1) == "string" and #r1 == 16 and written_by_encoder(name, r1),
          string.format("%s: accepted as %s, which the encoders write as %s / %s",
            call_text("decode", name), hex(r1), show(v6alt.encode(r1)),
            show(v6alt.encode_reference(r1))))
      end
      local lok, l1, l2 = pcall(v6alt.decode, name, true)
      if not lok then
        c.check(false, call_text("decode", name, true) .. ": raised a Lua error: " .. tostring(l1))
      else
        c.check((l1 == nil and type(l2) == "string" and l2 ~= "") or (type(l1) == "string" and #l1 == 16),
          string.format("%s: want 16 bytes or nil, <message>; got %s, %s",
            call_text("decode", name, true), hex(l1), show(l2)))
      end
    end

    local labels = { "aiamvog6wthgaq3cisjokoiewu", "eaaq3o-e", "fiabbgadu-e", "a-e",
      "ceiqaaaaaairc-rce" }
    for _, label in ipairs(labels) do
      it(label .. ": strict decode refuses all 256 byte values at each of the "
          .. #label .. " positions unless an encoder writes the result; lax decode raises no error", function()
        local c = collector()
        local want = b32decode(expand(label))
        check_bytes(c, v6alt.decode, "decode", want, label .. ".v6.alt")
        for pos = 1, #label do
          for b = 0, 255 do
            -- the name itself, and as a subdomain (a separate fast path)
            local name = with_byte(label, pos, b)
            check_any_name(c, name)
            check_any_name(c, "muc." .. name)
          end
        end
        c.done()
      end)
    end

    -- Regression: with the pair table indexed c1*128+c2, "a" followed by byte
    -- 178 landed in the slot of "b2" (97*128+178 = 98*128+50) and strict
    -- decode returned the address of b2amvog6wthgaq3cisjokoiewu.v6.alt.
    it("a byte over 127 second in a character pair is a bad character, not an alias (byte 178 at position 2)", function()
      local c = collector()
      local label = "aiamvog6wthgaq3cisjokoiewu"
      local name = with_byte(label, 2, 178)
      check_reject(c, v6alt.decode, "decode", "bad-character", name)
      check_reject(c, v6alt.decode, "decode", "bad-character", name, true)
      check_reject(c, v6alt.name_to_ip, "name_to_ip", "bad-character", name)
      check_reject(c, v6alt.decode, "decode", "bad-character", "muc." .. name)
      -- every high byte second in every pair of the label
      for pos = 2, 26, 2 do
        for b = 128, 255 do
          check_reject(c, v6alt.decode, "decode", "bad-character", with_byte(label, pos, b))
        end
      end
      -- the name it used to alias is a different, valid address
      local alias = "b2amvog6wthgaq3cisjokoiewu.v6.alt"
      check_bytes(c, v6alt.decode, "decode", b32decode(label_of(alias)), alias)
      c.done()
    end)
  end)

  ---------------------------------------------------- generated vectors --
  describe("generated vectors (spec/vectors.tsv)", function()
    local vectors = read_vectors()
    local BATCH = 500

    it("has at least 2500 vectors", function()
      assert.is_true(#vectors >= 2500, "only " .. #vectors)
    end)

    for first = 1, #vectors, BATCH do
      local last = math.min(first + BATCH - 1, #vectors)
      local batch = {}
      for i = first, last do batch[#batch + 1] = vectors[i] end
      local tag = string.format("[%d-%d]", first, last)

      it(tag .. " parse_ip and encode / encode_reference", function()
        local c = collector()
        for _, v in ipairs(batch) do
          check_bytes(c, v6alt.parse_ip, "parse_ip", v.bytes, v.addr)
          check_bytes(c, v6alt.parse_ip, "parse_ip", v.bytes, full_form(v.bytes))
          check_value(c, v6alt.encode, "encode", v.name, v.bytes)
          check_value(c, v6alt.encode_reference, "encode_reference", v.ref, v.bytes)
          check_value(c, v6alt.ip_to_name, "ip_to_name", v.name, v.addr)
          check_value(c, v6alt.ip_to_name, "ip_to_name", v.name, full_form(v.bytes))
          check_value(c, v6alt.is_v6alt, "is_v6alt", true, v.name)
        end
        c.done()
      end)

      it(tag .. " decode canonical and reference names, subdomains", function()
        local c = collector()
        for _, v in ipairs(batch) do
          check_bytes(c, v6alt.decode, "decode", v.bytes, v.name)
          check_bytes(c, v6alt.decode, "decode", v.bytes, v.ref)
          check_bytes(c, v6alt.decode, "decode", v.bytes, v.name, true)
          check_bytes(c, v6alt.decode, "decode", v.bytes, v.ref, true)
          check_bytes(c, v6alt.decode, "decode", v.bytes, "muc." .. v.name)
          check_bytes(c, v6alt.decode, "decode", v.bytes, "a.b-c." .. v.ref)
        end
        c.done()
      end)

      it(tag .. " format_ip and name_to_ip", function()
        local c = collector()
        for _, v in ipairs(batch) do
          check_value(c, v6alt.format_ip, "format_ip", v.addr, v.bytes)
          check_value(c, v6alt.name_to_ip, "name_to_ip", v.addr, v.name)
          check_value(c, v6alt.name_to_ip, "name_to_ip", v.addr, v.ref)
          check_value(c, v6alt.name_to_ip, "name_to_ip", v.addr, "upload." .. v.name)
          local t = v6alt.format_ip(v6alt.decode(v.name) or "")
          if t ~= v.addr then c.check(false, "format_ip(decode(" .. v.name .. ")) = " .. show(t)) end
        end
        c.done()
      end)

      -- Aliases that strict mode must reject and lax mode must accept.
      it(tag .. " aliases: uppercase, uncompressed, padding bits (strict rejects, lax accepts)", function()
        local c = collector()
        for _, v in ipairs(batch) do
          local label = label_of(v.name)
          local function alias(lbl, code)
            local n = lbl .. ".v6.alt"
            check_reject(c, v6alt.decode, "decode", code, n)
            check_bytes(c, v6alt.decode, "decode", v.bytes, n, true)
          end
          -- uppercase (whole label, and a single letter)
          if label:upper() ~= label then
            alias(label:upper(), "uppercase")
            local i = label:find("%l")
            alias(label:sub(1, i - 1) .. label:sub(i, i):upper() .. label:sub(i + 1), "uppercase")
            check_reject(c, v6alt.decode, "decode", "uppercase", "muc." .. label:upper() .. ".v6.alt")
          end
          -- the uncompressed 26-char alias when there is a hyphen
          if label ~= v.s then
            alias(v.s, "uncompressed")
            if v.s:upper() ~= v.s then alias(v.s:upper(), "uppercase") end
          end
          -- the 3 non-zero padding values of the last character
          local lastv = B32[v.s:sub(26, 26)]
          assert(lastv % 4 == 0, "vector with padding bits: " .. v.name)
          for d = 1, 3 do
            local ch = ALPHABET:sub(lastv + d + 1, lastv + d + 1)
            alias(label:sub(1, -2) .. ch, "padding-bits")
            if label ~= v.ref then alias(label_of(v.ref):sub(1, -2) .. ch, "padding-bits") end
            if label ~= v.s then alias(v.s:sub(1, 25) .. ch, "padding-bits") end
          end
        end
        c.done()
      end)

      it(tag .. " aliases: every other hyphen placement (misplaced-hyphen, short-run)", function()
        local c = collector()
        for _, v in ipairs(batch) do
          local s = v.s
          local lname, lref = label_of(v.name), label_of(v.ref)
          -- every run of >= 2 'a' (maximal or not, touching the ends or not)
          local placements, n = {}, 0
          for i = 1, 26 do
            if s:sub(i, i) == "a" then
              for j = i + 1, 26 do
                if s:sub(j, j) ~= "a" then break end
                local lbl = s:sub(1, i - 1) .. "-" .. s:sub(j + 1)
                if lbl ~= lname and lbl ~= lref then
                  n = n + 1
                  placements[n] = lbl
                end
              end
            end
          end
          -- Cap the work per vector: all placements for small sets, an
          -- evenly spread sample (always incl. first and last) otherwise.
          local step = n > CAP and n / CAP or 1
          local k, prev = 1, nil
          while k <= n + 0.5 do
            local idx = math.floor(k + 0.5)
            if idx > n then idx = n end
            if idx ~= prev then
              prev = idx
              local nm = placements[idx] .. ".v6.alt"
              check_reject(c, v6alt.decode, "decode", "misplaced-hyphen", nm)
              check_bytes(c, v6alt.decode, "decode", v.bytes, nm, true)
            end
            if idx == n then break end
            k = k + step
            if k > n then k = n end
          end
          -- a hyphen standing for a single 'a' anywhere
          for i = 1, 26 do
            if s:sub(i, i) == "a" and (i == 1 or i == 26 or i % 5 == 0) then
              local nm = s:sub(1, i - 1) .. "-" .. s:sub(i + 1) .. ".v6.alt"
              check_reject(c, v6alt.decode, "decode", "short-run", nm)
              check_reject(c, v6alt.decode, "decode", "short-run", nm, true)
            end
          end
        end
        c.done()
      end)

      it(tag .. " malformed: several hyphens, bad characters, bad length", function()
        local c = collector()
        local bad_chars = { "0", "1", "8", "9", "_" }
        for idx, v in ipairs(batch) do
          local label, s = label_of(v.name), v.s
          local function both(lbl, code)
            local n = lbl .. ".v6.alt"
            check_reject(c, v6alt.decode, "decode", code, n)
            check_reject(c, v6alt.decode, "decode", code, n, true)
          end
          -- several hyphens
          if label:find("-", 1, true) then
            both(label:sub(1, 1) .. "-" .. label:sub(2), "several-hyphens")
            both(label .. "-", "several-hyphens")
          else
            both(s:sub(1, 3) .. "-" .. s:sub(6, 10) .. "-" .. s:sub(13), "several-hyphens")
          end
          -- a bad character somewhere
          local pos = (idx * 7) % #label + 1
          if label:sub(pos, pos) == "-" then pos = pos % #label + 1 end
          local bc = bad_chars[idx % #bad_chars + 1]
          both(label:sub(1, pos - 1) .. bc .. label:sub(pos + 1), "bad-character")
          -- bad length: 25 / 27 chars without hyphen, 27 with a hyphen
          both(s:sub(1, 25), "bad-length")
          both(s .. "a", "bad-length")
          local at = idx % 27
          both(s:sub(1, at) .. "-" .. s:sub(at + 1), "bad-length")
          -- a label with only some of the characters, and a hyphen
          if label:find("-", 1, true) then
            local extra = s .. label -- far too long, one hyphen
            both(extra, "bad-length")
          end
        end
        c.done()
      end)
    end
  end)
end)
