-- Names as the layers below Prosody read them (SPEC 3.2): v6alt.normalize,
-- v6alt.mesh_name and v6alt.reaches_v6alt, on Lua 5.1-5.4 and LuaJIT.
--
-- The reference reading below is written here on purpose, independently of
-- the code under test: IDNA maps U+3002, U+FF0E and U+FF61 to ".",
-- resolvers drop trailing dots, DNS ignores ASCII letter case.

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "spec"
local root = spec_dir:match("^(.*)[/\\][^/\\]*$") or "."
local dist = os.getenv("V6ALT_DIST") or (root .. "/dist")
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local v6alt = require("mod_s2s_v6mesh.v6alt")

local DOTS = { ".", "\227\128\130", "\239\188\142", "\239\189\161" } -- U+002E U+3002 U+FF0E U+FF61

-- The reference reading: one character at a time.
local function reference_read(name)
  local out, i = {}, 1
  while i <= #name do
    local three = name:sub(i, i + 2)
    if three == DOTS[2] or three == DOTS[3] or three == DOTS[4] then
      out[#out + 1] = "."
      i = i + 3
    else
      local c = name:sub(i, i)
      if c:match("^[A-Z]$") then c = string.char(c:byte() + 32) end
      out[#out + 1] = c
      i = i + 1
    end
  end
  local read = table.concat(out)
  while read:sub(-1) == "." do read = read:sub(1, -2) end
  return read
end

local function is_mesh(read)
  return read == "v6.alt" or read:sub(-7) == ".v6.alt"
end

local function show(s)
  return (string.format("%q", s):gsub("[\128-\255]", function(c) return "\\" .. c:byte() end))
end

-- Every spelling of LABEL.v6.alt from the dot variants, 0-2 trailing dots
-- (themselves any variant) and a mixed-case copy: 4 * 4 * (1 + 4 + 16) * 2.
local function spellings(label)
  local list = {}
  local trailers = { "" }
  for _, d in ipairs(DOTS) do trailers[#trailers + 1] = d end
  for _, d1 in ipairs(DOTS) do
    for _, d2 in ipairs(DOTS) do trailers[#trailers + 1] = d1 .. d2 end
  end
  for _, d1 in ipairs(DOTS) do
    for _, d2 in ipairs(DOTS) do
      for _, tail in ipairs(trailers) do
        local name = label .. d1 .. "v6" .. d2 .. "alt" .. tail
        list[#list + 1] = name
        local flip = 0
        list[#list + 1] = (name:gsub("%a", function(c)
          flip = flip + 1
          return flip % 2 == 1 and c:upper() or c
        end))
      end
    end
  end
  return list
end

describe("names as the layers below read them", function()
  it("normalize maps IDNA dots, drops trailing dots and lowercases ASCII", function()
    local cases = {
      { "a-e.v6.alt", "a-e.v6.alt" },
      { "a-e.v6.alt.", "a-e.v6.alt" },
      { "a-e.v6.alt..", "a-e.v6.alt" },
      { "A-E.V6.ALT", "a-e.v6.alt" },
      { "aiaaaai-bm\227\128\130v6\227\128\130alt", "aiaaaai-bm.v6.alt" },
      { "aiaaaai-bm\239\188\142v6\239\189\161alt\227\128\130", "aiaaaai-bm.v6.alt" },
      { "example.com", "example.com" },
      { "...", "" },
      { "", "" },
      -- other non-ASCII bytes are left as they are (IDNA proper is Prosody's)
      { "caf\195\169.example", "caf\195\169.example" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], v6alt.normalize(c[1]), show(c[1]))
    end
  end)

  it("mesh_name says which names are .v6.alt names, normalized", function()
    local cases = {
      { "fiabbgadu-e.v6.alt", "fiabbgadu-e.v6.alt" },
      { "muc.fiabbgadu-e.v6.alt", "muc.fiabbgadu-e.v6.alt" },
      { "fiabbgadu-e.v6.alt.", "fiabbgadu-e.v6.alt" },
      { "FIABBGADU-E.v6.alt", "fiabbgadu-e.v6.alt" },
      { "a-e\227\128\130v6\239\188\142alt", "a-e.v6.alt" },
      { "v6.alt", "v6.alt" },
      { "V6.ALT.", "v6.alt" },
      { ".v6.alt", ".v6.alt" },
      { "not a name .v6.alt", "not a name .v6.alt" },
      { "example.com", nil },
      { "example.net", nil },
      { "example.net.", nil },
      { "xv6.alt", nil },
      { "v6.alt.example", nil },
      { "alt", nil },
      { "", nil },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], v6alt.mesh_name(c[1]), show(c[1]))
    end
  end)

  it("mesh_name follows the IDNA conversion it is given for non-ASCII names", function()
    -- A stand-in for Prosody's idna.to_ascii that knows one more separator
    -- (U+FE52 SMALL FULL STOP) and fullwidth "t" (U+FF54).
    local function to_ascii(name)
      return (name:gsub("\239\185\146", "."):gsub("\239\189\148", "t"))
    end
    assert.are.equal("a-e.v6.alt", v6alt.mesh_name("a-e\239\185\146v6\239\185\146alt", to_ascii))
    assert.are.equal("a-e.v6.alt", v6alt.mesh_name("a-e.v6.al\239\189\148", to_ascii))
    assert.is_nil(v6alt.mesh_name("a-e\239\185\146v6\239\185\146alt"))
    -- A failing or erroring conversion leaves the plain reading.
    assert.are.equal("a-e.v6.alt", v6alt.mesh_name("a-e\227\128\130v6.alt", function() error("no") end))
    assert.are.equal("a-e.v6.alt", v6alt.mesh_name("a-e\227\128\130v6.alt", function() return nil end))
    assert.is_nil(v6alt.mesh_name("caf\195\169.example", to_ascii))
    -- ASCII names never reach the conversion.
    local called = false
    v6alt.mesh_name("A-E.v6.alt.", function(n) called = true; return n end)
    assert.is_false(called)
  end)

  it("every spelling of a canonical name reads as that name and decodes to its address", function()
    for _, ip in ipairs({ "2a00:1098:3a0::1", "::1", "200::1", "2001:db8::1" }) do
      local canonical = assert(v6alt.ip_to_name(ip))
      local packed = assert(v6alt.parse_ip(ip))
      local list = spellings(canonical:sub(1, -8))
      assert.are.equal(4 * 4 * 21 * 2, #list)
      for _, name in ipairs(list) do
        local read = v6alt.mesh_name(name)
        assert.are.equal(canonical, read, show(name))
        assert.are.equal(packed, (v6alt.decode(read)), show(name))
        assert.is_true(v6alt.reaches_v6alt(name), show(name))
      end
    end
  end)

  it("every spelling of a malformed name reads as a .v6.alt name that decode refuses", function()
    for _, label in ipairs({ "a-0", "aaaa--e", "", "x" }) do
      for _, name in ipairs(spellings(label)) do
        local read = v6alt.mesh_name(name)
        assert.is_not_nil(read, show(name))
        assert.is_nil((v6alt.decode(read)), show(name))
      end
    end
  end)

  it("reaches_v6alt is true for anything DNS would ask under v6.alt", function()
    for _, name in ipairs({ "_xmpp-server._tcp.a-e.v6.alt", "_xmpps-server._tcp.A-E.V6.ALT.", "_5269._tcp.x.v6.alt",
        "xn--caf-dma.v6.alt", "v6.alt", "xv6.alt", "a-e\227\128\130v6\227\128\130alt" }) do
      assert.is_true(v6alt.reaches_v6alt(name), show(name))
    end
    for _, name in ipairs({ "example.com", "v6.alt.example", "alt", "v6alt", "" }) do
      assert.is_false(v6alt.reaches_v6alt(name), show(name))
    end
  end)

  it("property: over the alphabet of dots, cases and labels, mesh_name agrees with the reference reading", function()
    local n = tonumber(os.getenv("V6M_NAMES_PROPERTY") or "") or 20000
    local pieces = { "a", "A", "e", "-", "v", "6", "V", "alt", "ALT", "v6", "t", "T", "x", "2", "a-e", "ai" }
    for _, d in ipairs(DOTS) do
      pieces[#pieces + 1] = d
      pieces[#pieces + 1] = d
    end
    math.randomseed(20261207)
    local hits = 0
    for _ = 1, n do
      local parts = {}
      for i = 1, math.random(0, 12) do parts[i] = pieces[math.random(#pieces)] end
      -- Half of them end like a .v6.alt name, so both sides are well covered.
      if math.random(2) == 1 then
        parts[#parts + 1] = DOTS[math.random(4)] .. "v6" .. DOTS[math.random(4)] .. "alt"
        for _ = 1, math.random(0, 2) do parts[#parts + 1] = DOTS[math.random(4)] end
      end
      local name = table.concat(parts)
      local read = reference_read(name)
      local got = v6alt.mesh_name(name)
      if is_mesh(read) then
        hits = hits + 1
        assert.are.equal(read, got, show(name))
        assert.are.equal(got, v6alt.mesh_name(got), "idempotent: " .. show(name))
        assert.is_true(v6alt.reaches_v6alt(name), show(name))
      else
        assert.is_nil(got, show(name))
      end
      assert.are.equal(read, v6alt.normalize(name), show(name))
      -- decode never raises, whatever mesh_name hands it.
      if got then assert(pcall(v6alt.decode, got)) end
    end
    assert.is_true(hits > n / 3, "the generator made .v6.alt names: " .. hits .. " of " .. n)
  end)
end)
