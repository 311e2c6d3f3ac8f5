-- Unit tests for the trust and range policy (SPEC.md section 3), run with
-- busted on Lua 5.1-5.4 and LuaJIT:  lua5.4 /usr/bin/busted spec/policy_spec.lua
--
-- Addresses are turned into packed 16-byte strings by the small parser below
-- (written here on purpose, so expectations never come from the code under
-- test), and every expected text / byte string is written out by hand.

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "spec"
local root = spec_dir:match("^(.*)[/\\][^/\\]*$") or "."
-- V6ALT_DIST points the spec at another build (default: dist/).
local dist = os.getenv("V6ALT_DIST") or (root .. "/dist")
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local policy = require("mod_s2s_v6mesh.policy")

-------------------------------------------------------------------- helpers --

-- IPv6 text -> 16 packed bytes.  Accepts "::", upper/lower hex, leading
-- zeros and a trailing dotted IPv4 part.  Only for well-formed test input.
local function P(text)
  local function groups_of(s)
    local g = {}
    if s == "" then return g end
    for piece in (s .. ":"):gmatch("([^:]*):") do
      local a, b, c, d = piece:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
      if a then
        g[#g + 1] = tonumber(a) * 256 + tonumber(b)
        g[#g + 1] = tonumber(c) * 256 + tonumber(d)
      else
        g[#g + 1] = assert(tonumber(piece, 16), "bad group in " .. text)
      end
    end
    return g
  end
  local head, tail = text:match("^(.-)::(.*)$")
  local groups
  if head then
    local h, t = groups_of(head), groups_of(tail)
    groups = h
    for _ = 1, 8 - #h - #t do groups[#groups + 1] = 0 end
    for i = 1, #t do groups[#groups + 1] = t[i] end
  else
    groups = groups_of(text)
  end
  assert(#groups == 8, "helper P: need 8 groups in " .. text)
  local out = {}
  for i = 1, 8 do
    out[#out + 1] = string.char(math.floor(groups[i] / 256), groups[i] % 256)
  end
  return table.concat(out)
end

local function hex(bytes)
  if type(bytes) ~= "string" then return tostring(bytes) end
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function has(haystack, needle)
  return type(haystack) == "string" and haystack:find(needle, 1, true) ~= nil
end

-- parse_cidr that must succeed
local function C(text)
  local cidr, err = policy.parse_cidr(text)
  assert(cidr, "parse_cidr(" .. tostring(text) .. ") failed: " .. tostring(err))
  return cidr
end

-- new_policy that must succeed
local function new(trust, ranges)
  local p, err = policy.new_policy(trust, ranges)
  assert(p, "new_policy failed: " .. tostring(err))
  return p
end

-- new_policy that must fail; returns the message
local function rejected(trust, ranges)
  local p, err = policy.new_policy(trust, ranges)
  assert.is_nil(p)
  assert.is_string(err)
  assert.is_true(#err > 0)
  return err
end

local function decide(p, text) return policy.decide(p, P(text)) end

------------------------------------------------------------------ the tests --

describe("policy helper P (self-check)", function()
  it("packs addresses as expected", function()
    assert.are.equal("20010db8000000000000000000000001", hex(P("2001:db8::1")))
    assert.are.equal("00000000000000000000ffff7f000001", hex(P("::ffff:127.0.0.1")))
    assert.are.equal("00000000000000000000000000000000", hex(P("::")))
    assert.are.equal("ff0e0000000000000000000000000001", hex(P("FF0E:0:0:0:0:0:0:1")))
    assert.are.equal("febfffff000000000000000000000000", hex(P("febf:ffff::")))
  end)
end)

describe("parse_cidr", function()
  it("normalises the text", function()
    local cases = {
      { "200::/7", "200::/7", "02000000000000000000000000000000", 7 },
      { "0200:0000::/7", "200::/7", "02000000000000000000000000000000", 7 },
      { "0200:0000:0000:0000:0000:0000:0000:0000/7", "200::/7", "02000000000000000000000000000000", 7 },
      { "2001:DB8::/32", "2001:db8::/32", "20010db8000000000000000000000000", 32 },
      { "fe80::/010", "fe80::/10", "fe800000000000000000000000000000", 10 },
      { "::ffff:127.0.0.0/104", "::ffff:127.0.0.0/104", "00000000000000000000ffff7f000000", 104 },
      { "::ffff:0:0/96", "::ffff:0.0.0.0/96", "00000000000000000000ffff00000000", 96 },
      { "::ffff:7f00:0/104", "::ffff:127.0.0.0/104", "00000000000000000000ffff7f000000", 104 },
    }
    for _, c in ipairs(cases) do
      local cidr, err = policy.parse_cidr(c[1])
      assert.is_nil(err)
      assert.are.equal(c[2], cidr.text, c[1])
      assert.are.equal(c[3], hex(cidr.network), c[1])
      assert.are.equal(c[4], cidr.bits, c[1])
    end
  end)

  it("clears host bits", function()
    local cases = {
      { "2001:db8::1/32", "2001:db8::/32", "20010db8000000000000000000000000" },
      { "2001:db8:ffff:ffff::/32", "2001:db8::/32", "20010db8000000000000000000000000" },
      { "201::/7", "200::/7", "02000000000000000000000000000000" },
      { "3ff:ffff::1/7", "200::/7", "02000000000000000000000000000000" },
      { "febf:ffff::1/10", "fe80::/10", "fe800000000000000000000000000000" },
      { "2001:db8:1:2:3:4:5:7/127", "2001:db8:1:2:3:4:5:6/127", "20010db8000100020003000400050006" },
      -- ...:0000:ffff; /120 keeps the 0000ff, clears the last ff
      { "2001:db8::ffff/120", "2001:db8::ff00/120", "20010db800000000000000000000ff00" },
    }
    for _, c in ipairs(cases) do
      local cidr = C(c[1])
      assert.are.equal(c[2], cidr.text, c[1])
      assert.are.equal(c[3], hex(cidr.network), c[1])
    end
  end)

  it("reads a bare address as a /128", function()
    local cidr = C("2001:db8::1")
    assert.are.equal("2001:db8::1/128", cidr.text)
    assert.are.equal(128, cidr.bits)
    assert.are.equal(P("2001:db8::1"), cidr.network)
    assert.are.equal("::1/128", C("0:0:0:0:0:0:0:1").text)
    assert.are.equal("::/128", C("::").text)
  end)

  it("accepts /0 and clears every bit", function()
    for _, text in ipairs({ "::/0", "2001:db8::1/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/0" }) do
      local cidr = C(text)
      assert.are.equal("::/0", cidr.text, text)
      assert.are.equal(0, cidr.bits, text)
      assert.are.equal(string.rep("\0", 16), cidr.network, text)
    end
  end)

  it("rejects bad input with nil and a message", function()
    local bad = { "200::/129", "200::/1000", "200::/", "/7", "200::/x", "200::/-1", "200::/7 ",
      "1.2.3.0/24", "1.2.3.4", "", "/", "200::/7/8", "200:::/7", "[200::]/7", "fe80::1%eth0/64",
      "2001:db8::g/32", "nothing" }
    for _, text in ipairs(bad) do
      local cidr, err = policy.parse_cidr(text)
      assert.is_nil(cidr, text)
      assert.is_string(err, text)
      assert.is_true(#err > 0, text)
    end
    for _, value in ipairs({ 5, true, {} }) do
      local cidr, err = policy.parse_cidr(value)
      assert.is_nil(cidr)
      assert.is_true(type(err) == "string" and #err > 0)
    end
    local cidr, err = policy.parse_cidr(nil)
    assert.is_nil(cidr)
    assert.is_true(type(err) == "string" and #err > 0)
  end)
end)

describe("contains", function()
  it("checks the edges of ranges", function()
    local cases = {
      -- range, address, inside?
      { "200::/7", "200::", true },
      { "200::/7", "3ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
      { "200::/7", "1ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false },
      { "200::/7", "400::", false },
      { "fe80::/10", "fe80::", true },
      { "fe80::/10", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
      { "fe80::/10", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false },
      { "fe80::/10", "fec0::", false },
      { "2001:db8:1:2::/64", "2001:db8:1:2::", true },
      { "2001:db8:1:2::/64", "2001:db8:1:2:ffff:ffff:ffff:ffff", true },
      { "2001:db8:1:2::/64", "2001:db8:1:1:ffff:ffff:ffff:ffff", false },
      { "2001:db8:1:2::/64", "2001:db8:1:3::", false },
      { "2001:db8::6/127", "2001:db8::6", true },
      { "2001:db8::6/127", "2001:db8::7", true },
      { "2001:db8::6/127", "2001:db8::5", false },
      { "2001:db8::6/127", "2001:db8::8", false },
      { "2001:db8::6/128", "2001:db8::6", true },
      { "2001:db8::6/128", "2001:db8::7", false },
      { "2001:db8::6/128", "2001:db8::5", false },
      { "2001:db8::6/128", "2001:db8:0:0:0:0:1:6", false },
      { "::/0", "::", true },
      { "::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
      { "::/0", "2001:db8::1", true },
      { "::ffff:127.0.0.0/104", "::ffff:127.255.255.255", true },
      { "::ffff:127.0.0.0/104", "::ffff:128.0.0.0", false },
      { "::ffff:127.0.0.0/104", "::ffff:126.255.255.255", false },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[3], policy.contains(C(c[1]), P(c[2])), c[1] .. " contains " .. c[2])
    end
  end)
end)

describe("special_block", function()
  it("finds every block of SPEC section 3", function()
    local cases = {
      -- address, block network (hex), bits, words the description must contain
      { "::", "00000000000000000000000000000000", 128, { "unspecified", "::/128" } },
      { "::1", "00000000000000000000000000000001", 128, { "loopback", "::1/128" } },
      { "::ffff:127.0.0.1", "00000000000000000000ffff00000000", 96, { "IPv4-mapped", "::ffff:0:0/96" } },
      { "::ffff:0.0.0.0", "00000000000000000000ffff00000000", 96, { "IPv4-mapped" } },
      { "::ffff:255.255.255.255", "00000000000000000000ffff00000000", 96, { "IPv4-mapped" } },
      { "::7f00:1", "00000000000000000000000000000000", 96, { "IPv4-compatible", "::/96" } },
      { "::2", "00000000000000000000000000000000", 96, { "IPv4-compatible" } },
      { "::ffff:ffff", "00000000000000000000000000000000", 96, { "IPv4-compatible" } },
      { "64:ff9b::7f00:1", "0064ff9b000000000000000000000000", 96, { "NAT64", "64:ff9b::/96" } },
      { "64:ff9b::", "0064ff9b000000000000000000000000", 96, { "NAT64" } },
      { "64:ff9b::ffff:ffff", "0064ff9b000000000000000000000000", 96, { "NAT64" } },
      { "64:ff9b:1::1", "0064ff9b000100000000000000000000", 48, { "NAT64", "64:ff9b:1::/48" } },
      { "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "0064ff9b000100000000000000000000", 48, { "NAT64" } },
      { "ff02::1", "ff000000000000000000000000000000", 8, { "multicast", "ff00::/8" } },
      { "ff0e::1", "ff000000000000000000000000000000", 8, { "multicast" } },
      { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff000000000000000000000000000000", 8, { "multicast" } },
      { "fe80::1", "fe800000000000000000000000000000", 10, { "link-local", "fe80::/10" } },
      { "febf:ffff::1", "fe800000000000000000000000000000", 10, { "link-local" } },
      -- SPEC 3.1: IPv4-translated (RFC 2765), 6to4 (RFC 3056), Teredo (RFC 4380)
      { "::ffff:0:1.2.3.4", "0000000000000000ffff000000000000", 96, { "IPv4-translated", "::ffff:0:0:0/96" } },
      { "::ffff:0:0:0", "0000000000000000ffff000000000000", 96, { "IPv4-translated" } },
      { "::ffff:0:ffff:ffff", "0000000000000000ffff000000000000", 96, { "IPv4-translated" } },
      { "2002:7f00:1::", "20020000000000000000000000000000", 16, { "6to4", "2002::/16" } },
      { "2002::", "20020000000000000000000000000000", 16, { "6to4" } },
      { "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "20020000000000000000000000000000", 16, { "6to4" } },
      { "2001:0:4136:e378:8000:63bf:3fff:fdd2", "20010000000000000000000000000000", 32, { "Teredo", "2001::/32" } },
      { "2001::", "20010000000000000000000000000000", 32, { "Teredo" } },
      { "2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "20010000000000000000000000000000", 32, { "Teredo" } },
    }
    for _, c in ipairs(cases) do
      local cidr, what = policy.special_block(P(c[1]))
      assert.is_table(cidr, c[1])
      assert.are.equal(c[2], hex(cidr.network), c[1])
      assert.are.equal(c[3], cidr.bits, c[1])
      for _, word in ipairs(c[4]) do
        assert.is_true(has(what, word), c[1] .. ": description " .. tostring(what) .. " lacks " .. word)
      end
    end
  end)

  it("leaves ordinary addresses alone", function()
    local ordinary = {
      "200::1", "2001:db8::1", -- documentation is deliberately not in the list
      "fc00::1", "fd00::1", "fec0::1", "2a00:1098:3a0::1", "::1:0:0:0",
      "::1:0:0", "::fffe:ffff:ffff", "::1:ffff:0:0", "64:ff9b::1:0:0", "64:ff9b:0:1::",
      "64:ff9b:2::", "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
      "feff::1", "100::1", "1::",
      -- just outside ::ffff:0:0:0/96 (IPv4-translated)
      "::fffe:ffff:ffff:ffff", "::ffff:1:0:0", "::fffe:0:0:0",
      -- just outside 2002::/16 (6to4)
      "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::",
      -- just outside 2001::/32 (Teredo); 2001:db8::/32 (documentation) is not in it
      "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:1::", "2001:db8::",
    }
    for _, text in ipairs(ordinary) do
      local cidr, what = policy.special_block(P(text))
      assert.is_nil(cidr, text .. " should not be special (" .. tostring(what) .. ")")
      assert.is_nil(what, text)
    end
  end)
end)

describe("new_policy", function()
  it("wants trust_all_certs to be a boolean", function()
    for _, value in ipairs({ "yes", 1, "true", {} }) do
      local err = rejected(value, {})
      assert.is_true(has(err, "s2s_v6mesh_trust_all_certs"), err)
    end
    local err = rejected(nil, {})
    assert.is_true(has(err, "s2s_v6mesh_trust_all_certs"), err)
    assert.is_table(new(true, {}))
    assert.is_table(new(false, {}))
  end)

  it("takes nil ranges as none", function()
    local p = new(true, nil)
    local d = decide(p, "200::1")
    assert.is_nil(d.range)
    assert.is_true(d.use_tls)
    assert.is_true(d.trust_all_certs)
    assert.is_nil(d.refused)
    assert.is_false(decide(new(false, nil), "200::1").trust_all_certs)
  end)

  it("rejects ranges that are not a table", function()
    for _, value in ipairs({ "200::/7", 5, true, false }) do
      local err = rejected(true, value)
      assert.is_true(has(err, "s2s_v6mesh_ranges"), err)
    end
  end)

  it("rejects a bad entry, naming the option and the key or field", function()
    local cases = {
      -- ranges, words the message must contain
      { { [1] = { use_tls = true } }, { "s2s_v6mesh_ranges", "1" } },
      { { { use_tls = true } }, { "s2s_v6mesh_ranges", "1" } },
      { { [true] = { use_tls = true } }, { "s2s_v6mesh_ranges", "true" } },
      { { ["200::/129"] = { use_tls = true } }, { "s2s_v6mesh_ranges", "200::/129" } },
      { { ["1.2.3.0/24"] = { use_tls = true } }, { "s2s_v6mesh_ranges", "1.2.3.0/24" } },
      { { ["bogus"] = {} }, { "s2s_v6mesh_ranges", "bogus" } },
      { { ["200::/7"] = true }, { "s2s_v6mesh_ranges", "200::/7" } },
      { { ["200::/7"] = "use_tls" }, { "s2s_v6mesh_ranges", "200::/7" } },
      { { ["200::/7"] = { use_TLS = false } }, { "s2s_v6mesh_ranges", "200::/7", "use_TLS" } },
      { { ["200::/7"] = { trust = true } }, { "s2s_v6mesh_ranges", "200::/7", "trust" } },
      { { ["200::/7"] = { use_tls = true, trust = true } }, { "s2s_v6mesh_ranges", "trust" } },
      { { ["200::/7"] = { true } }, { "s2s_v6mesh_ranges", "200::/7" } },
      { { ["200::/7"] = { use_tls = "false" } }, { "s2s_v6mesh_ranges", "200::/7", "use_tls" } },
      { { ["200::/7"] = { use_tls = 0 } }, { "s2s_v6mesh_ranges", "200::/7", "use_tls" } },
      { { ["200::/7"] = { trust_all_certs = "false" } }, { "s2s_v6mesh_ranges", "200::/7", "trust_all_certs" } },
      { { ["200::/7"] = { trust_all_certs = 0 } }, { "s2s_v6mesh_ranges", "200::/7", "trust_all_certs" } },
      { { ["200::/7"] = { allow = "false" } }, { "s2s_v6mesh_ranges", "200::/7", "allow" } },
      { { ["200::/7"] = { allow = 0 } }, { "s2s_v6mesh_ranges", "200::/7", "allow" } },
      { { ["200::/7"] = { allow = "no" } }, { "s2s_v6mesh_ranges", "200::/7", "allow" } },
      { { ["200::/7"] = { allow = {} } }, { "s2s_v6mesh_ranges", "200::/7", "allow" } },
      { { ["200::/7"] = { Allow = false } }, { "s2s_v6mesh_ranges", "200::/7", "Allow" } },
      { { ["200::/7"] = { block = true } }, { "s2s_v6mesh_ranges", "200::/7", "block" } },
      -- a good entry next to a bad one still fails
      { { ["200::/7"] = { use_tls = false }, ["fc00::/7"] = { use_tls = "no" } },
        { "s2s_v6mesh_ranges", "fc00::/7", "use_tls" } },
    }
    for i, c in ipairs(cases) do
      local err = rejected(true, c[1])
      for _, word in ipairs(c[2]) do
        assert.is_true(has(err, word), "case " .. i .. ": " .. err .. " lacks " .. word)
      end
    end
  end)

  it("names the known fields when a field is unknown", function()
    for _, field in ipairs({ "use_TLS", "trust", "allowed", "Allow" }) do
      local err = rejected(true, { ["200::/7"] = { [field] = true } })
      assert.is_true(has(err, "(known: allow, use_tls, trust_all_certs)"), err)
    end
  end)

  it("rejects the same range written twice", function()
    local pairs_of = {
      { "200::/7", "0200::/7" },
      { "200::/7", "201::/7" },
      { "2001:db8::/32", "2001:DB8:0::/32" },
      { "::1", "::1/128" },
    }
    for _, two in ipairs(pairs_of) do
      local err = rejected(true, { [two[1]] = { use_tls = true }, [two[2]] = { use_tls = false } })
      assert.is_true(has(err, "s2s_v6mesh_ranges"), err)
      assert.is_true(has(err, two[1]) and has(err, two[2]), err .. " does not name both keys")
    end
  end)

  it("accepts empty settings and all three fields", function()
    local p = new(true, { ["200::/7"] = {}, ["fc00::/7"] = { use_tls = false, trust_all_certs = false },
      ["2a00::/16"] = { allow = true, use_tls = false }, ["2a01::/16"] = { allow = false } })
    assert.is_true(decide(p, "200::1").use_tls)
    assert.is_false(decide(p, "fd00::1").use_tls)
    assert.is_false(decide(p, "fd00::1").trust_all_certs)
    assert.is_nil(decide(p, "2a00::1").refused)
    assert.is_false(decide(p, "2a00::1").use_tls)
    assert.is_string(decide(p, "2a01::1").refused)
  end)

  it("refuses link-local and multicast ranges at load, naming the entry", function()
    local cases = {
      -- key as written, the words that say why
      { "fe80::/10", "is link-local" },
      { "fe80::/64", "is link-local" },
      { "fe80::1/128", "is link-local" },
      { "fe80::1", "is link-local" },
      { "FE80::0001/128", "is link-local" },
      { "febf:ffff::/32", "is link-local" },
      { "ff00::/8", "is multicast" },
      { "ff02::1", "is multicast" },
      { "ff0e::/16", "is multicast" },
      { "ff00::/9", "is multicast" },
      { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "is multicast" },
    }
    for _, c in ipairs(cases) do
      for _, settings in ipairs({ {}, { use_tls = false }, { allow = false } }) do
        local err = rejected(true, { [c[1]] = settings, ["200::/7"] = {} })
        assert.is_true(has(err, 's2s_v6mesh_ranges["' .. c[1] .. '"]'), err)
        assert.is_true(has(err, c[2]), err)
        assert.are.equal("remove this entry", err:sub(-#"remove this entry"), err)
      end
    end
  end)

  it("accepts wider ranges that only contain link-local or multicast addresses", function()
    for _, key in ipairs({ "::/0", "8000::/1", "fc00::/6", "fe00::/7", "fe80::/9", "fe00::/8" }) do
      local p = new(true, { [key] = { use_tls = false } })
      local d = decide(p, "fe80::1")
      assert.are.equal(key, d.range and d.range.cidr.text, key)
      -- the special blocks inside stay refused
      assert.is_true(has(d.refused, "fe80::/10"), key)
      assert.is_true(has(decide(p, "ff02::1").refused, "ff00::/8"), key)
    end
  end)
end)

describe("decide", function()
  local ranges = {
    ["::/0"] = { use_tls = true, trust_all_certs = false },
    ["200::/7"] = { use_tls = false },
    ["200:1::/32"] = { use_tls = true, trust_all_certs = true },
    ["200:1:2::/48"] = { use_tls = false, trust_all_certs = false },
    ["200:1:2:3::1"] = { trust_all_certs = true },
  }

  it("picks the most specific range", function()
    local p = new(true, ranges)
    local cases = {
      { "200:1:2:3::1", "200:1:2:3::1/128", true, true },
      { "200:1:2:3::2", "200:1:2::/48", false, false },
      { "200:1:2:ffff:ffff:ffff:ffff:ffff", "200:1:2::/48", false, false },
      { "200:1:3::", "200:1::/32", true, true },
      { "200:1:ffff::1", "200:1::/32", true, true },
      { "200:2::1", "200::/7", false, true },
      { "3ff::1", "200::/7", false, true },
      { "400::", "::/0", true, false },
      { "2001:db8::1", "::/0", true, false },
    }
    for _, c in ipairs(cases) do
      local d = decide(p, c[1])
      assert.are.equal(c[2], d.range and d.range.cidr.text, c[1])
      assert.are.equal(c[3], d.use_tls, c[1] .. " use_tls")
      assert.are.equal(c[4], d.trust_all_certs, c[1] .. " trust_all_certs")
      assert.is_nil(d.refused, c[1])
    end
  end)

  it("does not depend on the order the ranges were written in", function()
    -- Same ranges, inserted in every rotation and in reverse, so that the
    -- table's internal order varies.
    local keys = { "::/0", "200::/7", "200:1::/32", "200:1:2::/48", "200:1:2:3::1" }
    for shift = 0, #keys - 1 do
      for _, reverse in ipairs({ false, true }) do
        local t = {}
        for i = 1, #keys do
          local j = (i + shift - 1) % #keys + 1
          if reverse then j = #keys - j + 1 end
          t[keys[j]] = ranges[keys[j]]
        end
        local p = new(true, t)
        assert.are.equal("200:1:2::/48", decide(p, "200:1:2::5").range.cidr.text)
        assert.are.equal("200:1::/32", decide(p, "200:1:1::5").range.cidr.text)
        assert.are.equal("200::/7", decide(p, "300::5").range.cidr.text)
        assert.are.equal("::/0", decide(p, "2a00::5").range.cidr.text)
        assert.are.equal("200:1:2:3::1/128", decide(p, "200:1:2:3::1").range.cidr.text)
      end
    end
  end)

  it("defaults use_tls to true and inherits trust_all_certs", function()
    for _, global in ipairs({ true, false }) do
      local p = new(global, {
        ["200::/7"] = {},
        ["fc00::/7"] = { use_tls = false },
        ["2a00::/16"] = { trust_all_certs = not global },
        ["2a01::/16"] = { trust_all_certs = global },
      })
      local d = decide(p, "200::1")
      assert.is_true(d.use_tls)
      assert.are.equal(global, d.trust_all_certs)
      d = decide(p, "fc00::1")
      assert.is_false(d.use_tls)
      assert.are.equal(global, d.trust_all_certs)
      d = decide(p, "2a00::1")
      assert.is_true(d.use_tls)
      assert.are.equal(not global, d.trust_all_certs)
      d = decide(p, "2a01::1")
      assert.are.equal(global, d.trust_all_certs)
      -- outside all ranges: the global value
      d = decide(p, "2a02::1")
      assert.is_nil(d.range)
      assert.is_true(d.use_tls)
      assert.are.equal(global, d.trust_all_certs)
      assert.is_nil(d.refused)
    end
  end)

  it("overrides the global trust in both directions", function()
    local d = decide(new(true, { ["200::/7"] = { trust_all_certs = false } }), "200::1")
    assert.is_false(d.trust_all_certs)
    d = decide(new(false, { ["200::/7"] = { trust_all_certs = true } }), "200::1")
    assert.is_true(d.trust_all_certs)
  end)

  it("reports the address as RFC 5952 text", function()
    local p = new(true, {})
    local cases = {
      { "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1" },
      { "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },
      { "2001:0:0:1:0:0:0:1", "2001:0:0:1::1" },
      { "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1" },
      { "0200:0000:0000:0000:0000:0000:0000:00AB", "200::ab" },
      { "2a00:1098:03a0:0:0:0:0:1", "2a00:1098:3a0::1" },
      { "0:0:0:0:0:0:0:1", "::1" },
      { "0:0:0:0:0:ffff:7f00:1", "::ffff:127.0.0.1" },
      { "fe80:0:0:0:0:0:0:0", "fe80::" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], decide(p, c[1]).address, c[1])
    end
  end)
end)

describe("decide and special-purpose addresses", function()
  it("refuses them by default, naming the block", function()
    local cases = {
      { "::", "::/128" }, { "::1", "::1/128" }, { "::ffff:127.0.0.1", "::ffff:0:0/96" },
      { "::7f00:1", "::/96" }, { "64:ff9b::7f00:1", "64:ff9b::/96" },
      { "64:ff9b:1::1", "64:ff9b:1::/48" }, { "ff02::1", "ff00::/8" }, { "ff0e::1", "ff00::/8" },
      { "fe80::1", "fe80::/10" }, { "febf:ffff::1", "fe80::/10" },
      { "::ffff:0:127.0.0.1", "::ffff:0:0:0/96" }, { "2002:7f00:1::1", "2002::/16" },
      { "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32" },
    }
    for _, global in ipairs({ true, false }) do
      local p = new(global, {})
      for _, c in ipairs(cases) do
        local d = decide(p, c[1])
        assert.is_true(has(d.refused, c[2]), c[1] .. ": refused = " .. tostring(d.refused))
        assert.is_nil(d.range)
      end
    end
  end)

  it("allows them when a configured range lies inside the block", function()
    local cases = {
      -- range, address allowed, address in the same block still refused
      { "64:ff9b::/96", "64:ff9b::1", nil },
      { "64:ff9b::/96", "64:ff9b::ffff:ffff", nil },
      { "2002:db8::/32", "2002:db8::1", "2002:db9::1" },
      { "2002::/16", "2002:ffff::1", nil },
      { "2002:7f00:1::1/128", "2002:7f00:1::1", "2002:7f00:1::2" },
      { "2001::/32", "2001:0:ffff::1", nil },
      { "2001:0:4136::/48", "2001:0:4136:e378::1", "2001:0:4137::1" },
      { "::ffff:0:0:0/96", "::ffff:0:10.0.0.1", "::ffff:10.0.0.1" },
      { "::ffff:0:7f00:0/104", "::ffff:0:127.0.0.1", "::ffff:0:10.0.0.1" },
      { "::1/128", "::1", "::2" },
      { "::/128", "::", "::1" },
      { "::ffff:127.0.0.0/104", "::ffff:127.0.0.1", "::ffff:10.0.0.1" },
      -- RFC 5952 writes an IPv4-mapped network in mixed notation
      { "::ffff:0:0/96", "::ffff:10.0.0.1", "::7f00:1", "::ffff:0.0.0.0/96" },
      { "::/96", "::7f00:1", "::1" },
      { "64:ff9b::/96", "64:ff9b::7f00:1", "64:ff9b:1::1" },
      { "64:ff9b:1::/48", "64:ff9b:1::1", "64:ff9b::1" },
    }
    for _, c in ipairs(cases) do
      local p = new(true, { [c[1]] = { use_tls = false, trust_all_certs = false } })
      local d = decide(p, c[2])
      assert.is_nil(d.refused, c[1] .. " / " .. c[2] .. ": " .. tostring(d.refused))
      assert.are.equal(c[4] or c[1]:find("/", 1, true) and c[1] or c[1] .. "/128", d.range.cidr.text)
      assert.is_false(d.use_tls)
      assert.is_false(d.trust_all_certs)
      if c[3] then
        local other = decide(p, c[3])
        assert.is_string(other.refused, c[1] .. " / " .. c[3] .. " should stay refused")
      end
    end
  end)

  it("still refuses them when only a wider range covers them", function()
    local cases = {
      { "::/0", "::1", "::1/128" },
      { "::/8", "::1", "::1/128" },
      { "::/96", "::1", "::1/128" },
      { "::/0", "::ffff:127.0.0.1", "::ffff:0:0/96" },
      { "::/64", "::ffff:127.0.0.1", "::ffff:0:0/96" },
      { "fe00::/7", "fe80::1", "fe80::/10" },
      { "fe80::/9", "fe80::1", "fe80::/10" },
      { "fe80::/9", "feff::1", nil },
      { "::/0", "ff02::1", "ff00::/8" },
      { "fe00::/7", "ff02::1", "ff00::/8" },
      { "64::/16", "64:ff9b::1", "64:ff9b::/96" },
      { "::/0", "::", "::/128" },
      { "::/64", "::ffff:0:127.0.0.1", "::ffff:0:0:0/96" },
      { "2000::/3", "2002:7f00:1::1", "2002::/16" },
      { "2002::/15", "2002::1", "2002::/16" },
      { "2000::/3", "2001:0:4136::1", "2001::/32" },
      { "2001::/16", "2001::1", "2001::/32" },
      { "2001::/16", "2001:db8::1", nil },
    }
    for _, c in ipairs(cases) do
      local p = new(true, { [c[1]] = { use_tls = false, trust_all_certs = false } })
      local d = decide(p, c[2])
      if c[3] then
        assert.is_true(has(d.refused, c[3]), c[1] .. " / " .. c[2] .. ": refused = " .. tostring(d.refused))
      else -- ordinary address in the same wide range: allowed
        assert.is_nil(d.refused, c[1] .. " / " .. c[2])
      end
      -- the range's settings are still reported
      assert.are.equal(c[1], d.range and d.range.cidr.text)
      assert.is_false(d.use_tls)
      assert.is_false(d.trust_all_certs)
    end
  end)
end)

describe("own addresses", function()
  local own = P("200:1234::5")

  it("are refused, naming the host, and neighbours are not", function()
    for _, ranges in ipairs({ {}, { ["::/0"] = {} }, { ["200::/7"] = { use_tls = false } },
                              { ["200:1234::4/127"] = {} } }) do
      local p = new(true, ranges)
      policy.set_own_address(p, own, "x.v6.alt")
      local d = policy.decide(p, own)
      assert.is_true(has(d.refused, "x.v6.alt"), tostring(d.refused))
      assert.is_nil(decide(p, "200:1234::4").refused)
      assert.is_nil(decide(p, "200:1234::6").refused)
    end
  end)

  it("are allowed by a /128 range for exactly that address", function()
    for _, key in ipairs({ "200:1234::5", "200:1234::5/128", "0200:1234:0::05/128" }) do
      local p = new(true, { [key] = { use_tls = false }, ["200::/7"] = {} })
      policy.set_own_address(p, own, "x.v6.alt")
      local d = policy.decide(p, own)
      assert.is_nil(d.refused, key)
      assert.is_false(d.use_tls)
      assert.are.equal("200:1234::5/128", d.range.cidr.text)
    end
  end)

  it("are refused even where the address is also special, with a wide range", function()
    local p = new(true, { ["2002::/16"] = {} })
    policy.set_own_address(p, P("2002:db8::1"), "the address of this server's own host x.v6.alt")
    assert.are.equal("the address of this server's own host x.v6.alt", decide(p, "2002:db8::1").refused)
    assert.is_nil(decide(p, "2002:db8::2").refused)
  end)

  it("are refused with the text given to set_own_address, verbatim", function()
    local p = new(true, {})
    for _, c in ipairs({
      { "200:1234::5", "the address of this server's own host x.v6.alt" },
      { "200:1234::6", "an address of this machine" },
      { "::1", "an address of this machine" },
    }) do
      policy.set_own_address(p, P(c[1]), c[2])
      local d = decide(p, c[1])
      assert.are.equal(c[2], d.refused, c[1])
      assert.is_false(d.blocked, c[1])
    end
  end)
end)

describe("ranges with allow = false", function()
  local BLOCKED = "blocked by s2s_v6mesh_ranges entry "

  it("block every address in the range, and only those", function()
    local p = new(true, { ["200:1::/32"] = { allow = false } })
    for _, text in ipairs({ "200:1::", "200:1::1", "200:1:ffff:ffff:ffff:ffff:ffff:ffff" }) do
      local d = decide(p, text)
      assert.are.equal(BLOCKED .. "200:1::/32 (allow = false)", d.refused, text)
      assert.is_true(d.blocked, text)
      assert.are.equal("200:1::/32", d.range.cidr.text, text)
    end
    for _, text in ipairs({ "200:0:ffff:ffff:ffff:ffff:ffff:ffff", "200:2::", "2a00::1" }) do
      local d = decide(p, text)
      assert.is_nil(d.refused, text)
      assert.is_false(d.blocked, text)
    end
  end)

  it("an IPv4-mapped range blocks the IPv4 peers in it (the glue reads a.b.c.d as ::ffff:a.b.c.d)", function()
    local p = new(true, { ["::ffff:203.0.113.0/120"] = { allow = false } })
    for _, text in ipairs({ "::ffff:203.0.113.0", "::ffff:203.0.113.5", "::ffff:203.0.113.255" }) do
      local d = decide(p, text)
      assert.are.equal(BLOCKED .. "::ffff:203.0.113.0/120 (allow = false)", d.refused, text)
      assert.is_true(d.blocked, text)
    end
    for _, text in ipairs({ "::ffff:203.0.114.5", "::ffff:203.0.112.255", "203:0:113::5" }) do
      assert.is_false(decide(p, text).blocked, text)
    end
  end)

  it("allow = true is the default and blocks nothing", function()
    for _, settings in ipairs({ {}, { allow = true }, { allow = true, use_tls = false } }) do
      local d = decide(new(true, { ["200::/7"] = settings }), "200::1")
      assert.is_nil(d.refused)
      assert.is_false(d.blocked)
    end
  end)

  it("take precedence over own addresses and special-purpose blocks", function()
    local cases = {
      -- ranges, address, the entry named in the refusal
      { { ["200:1234::5"] = { allow = false } }, "200:1234::5", "200:1234::5/128" },
      { { ["200::/7"] = { allow = false } }, "200:1234::5", "200::/7" },
      { { ["::1/128"] = { allow = false } }, "::1", "::1/128" },
      { { ["::/0"] = { allow = false } }, "::1", "::/0" },
      { { ["::/0"] = { allow = false } }, "::ffff:127.0.0.1", "::/0" },
      { { ["2002::/16"] = { allow = false } }, "2002:7f00:1::1", "2002::/16" },
      { { ["2000::/3"] = { allow = false } }, "2001:0:4136::1", "2000::/3" },
      { { ["64:ff9b::/96"] = { allow = false } }, "64:ff9b::7f00:1", "64:ff9b::/96" },
    }
    for _, c in ipairs(cases) do
      local p = new(true, c[1])
      policy.set_own_address(p, P("200:1234::5"), "an address of this machine")
      policy.set_own_address(p, P("::1"), "an address of this machine")
      local d = decide(p, c[2])
      assert.are.equal(BLOCKED .. c[3] .. " (allow = false)", d.refused, c[2])
      assert.is_true(d.blocked, c[2])
    end
  end)

  it("give way to a more specific range, in both directions", function()
    local p = new(true, {
      ["200::/7"] = { allow = false },
      ["200:1::/32"] = { use_tls = false },         -- allowed inside the blocked /7
      ["200:1:2::/48"] = { allow = false },         -- blocked again inside that
      ["200:1:2:3::1"] = { allow = true },          -- and one address let through
    })
    local cases = {
      -- address, refused by (nil: allowed), matching range
      { "300::1", "200::/7", "200::/7" },
      { "200:1::1", nil, "200:1::/32" },
      { "200:1:ffff::1", nil, "200:1::/32" },
      { "200:1:2::1", "200:1:2::/48", "200:1:2::/48" },
      { "200:1:2:3::1", nil, "200:1:2:3::1/128" },
      { "200:1:2:3::2", "200:1:2::/48", "200:1:2::/48" },
    }
    for _, c in ipairs(cases) do
      local d = decide(p, c[1])
      assert.are.equal(c[3], d.range.cidr.text, c[1])
      if c[2] then
        assert.are.equal(BLOCKED .. c[2] .. " (allow = false)", d.refused, c[1])
        assert.is_true(d.blocked, c[1])
      else
        assert.is_nil(d.refused, c[1])
        assert.is_false(d.blocked, c[1])
      end
    end
    assert.is_false(decide(p, "200:1::1").use_tls)
  end)

  it("an allowed range inside a blocked one still refuses own and special addresses", function()
    local p = new(true, { ["::/0"] = { allow = false }, ["200::/7"] = {}, ["2002::/16"] = {},
      ["::/96"] = {} })
    policy.set_own_address(p, P("200::5"), "an address of this machine")
    local d = decide(p, "200::5")
    assert.are.equal("an address of this machine", d.refused)
    assert.is_false(d.blocked)
    d = decide(p, "::1") -- inside ::/96, which is wider than the loopback block
    assert.is_true(has(d.refused, "::1/128"), tostring(d.refused))
    assert.is_false(d.blocked)
    assert.is_nil(decide(p, "2002::1").refused) -- 2002::/16 is the whole 6to4 block
    assert.is_nil(decide(p, "::2").refused)     -- ::/96 is the whole IPv4-compatible block
  end)

  it("describe says allow = false instead of the settings", function()
    local p = new(true, { ["200:1::/32"] = { allow = false, use_tls = false, trust_all_certs = true } })
    local line = policy.describe(decide(p, "200:1::1"))
    assert.are.equal("range 200:1::/32: allow = false", line:sub(1, #"range 200:1::/32: allow = false"), line)
    assert.is_true(has(line, BLOCKED .. "200:1::/32 (allow = false)"), line)
    assert.is_false(has(line, "use_tls"), line)
    assert.is_false(has(line, "trust_all_certs ="), line)
    -- an address outside the blocked range is described as usual
    line = policy.describe(decide(p, "200:2::1"))
    assert.are.equal("no configured range (defaults): use_tls = true, trust_all_certs = true", line)
  end)
end)

describe("describe", function()
  local p = new(true, {
    ["200::/7"] = { use_tls = false },
    ["fc00::/7"] = { trust_all_certs = false },
  })
  policy.set_own_address(p, P("200::5"), "me.v6.alt")

  it("names the range and the settings", function()
    local line = policy.describe(decide(p, "200::1"))
    assert.is_true(has(line, "200::/7"), line)
    assert.is_true(has(line, "use_tls = false"), line)
    assert.is_true(has(line, "trust_all_certs = true"), line)
    assert.is_false(has(line, "refused"), line)

    line = policy.describe(decide(p, "fd00::1"))
    assert.is_true(has(line, "fc00::/7"), line)
    assert.is_true(has(line, "use_tls = true"), line)
    assert.is_true(has(line, "trust_all_certs = false"), line)
    assert.is_false(has(line, "refused"), line)
  end)

  it("says when no range applies", function()
    local line = policy.describe(decide(p, "2a00:1098:3a0::1"))
    assert.is_true(has(line, "no configured range"), line)
    assert.is_true(has(line, "use_tls = true"), line)
    assert.is_true(has(line, "trust_all_certs = true"), line)
    assert.is_false(has(line, "refused"), line)
  end)

  it("says refused, and why, only when refused", function()
    local line = policy.describe(decide(p, "::1"))
    assert.is_true(has(line, "no configured range"), line)
    assert.is_true(has(line, "refused"), line)
    assert.is_true(has(line, "::1/128"), line)

    line = policy.describe(decide(p, "200::5"))
    assert.is_true(has(line, "200::/7"), line)
    assert.is_true(has(line, "use_tls = false"), line)
    assert.is_true(has(line, "refused"), line)
    assert.is_true(has(line, "me.v6.alt"), line)
  end)
end)
