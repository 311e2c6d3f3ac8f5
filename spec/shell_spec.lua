-- Unit tests for the `prosodyctl shell v6alt ...` commands (SPEC.md section 3,
-- "Shell"), run with busted on Lua 5.1-5.4 and LuaJIT:
--   lua5.4 /usr/bin/busted spec/shell_spec.lua
--
-- shell.lua is pure logic: the module hands it a context that says, per host,
-- whether names are read laxly and which policy applies.  Here that context is
-- a small table of policies built with policy.new_policy, and every expected
-- output line is written out by hand.

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "spec"
local root = spec_dir:match("^(.*)[/\\][^/\\]*$") or "."
-- V6ALT_DIST points the spec at another build (default: dist/).
local dist = os.getenv("V6ALT_DIST") or (root .. "/dist")
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local shell = require("mod_s2s_v6mesh.shell")
local policy = require("mod_s2s_v6mesh.policy")
local v6alt = require("mod_s2s_v6mesh.v6alt")

-------------------------------------------------------------------- helpers --

-- Printable quoted form of an argument, for failure messages.
local function show(v)
  if type(v) ~= "string" then return tostring(v) end
  return '"' .. v:gsub('[%c"\\\128-\255]', function(ch)
    return string.format("\\x%02x", ch:byte())
  end) .. '"'
end

local function has(haystack, needle)
  return type(haystack) == "string" and haystack:find(needle, 1, true) ~= nil
end

-- "get_domain(1, nil)": what was called, for failure messages.
local function call_text(fname, n, ...)
  local parts = {}
  for i = 1, n do parts[i] = show((select(i, ...))) end
  return fname .. "(" .. table.concat(parts, ", ") .. ")"
end

-- Calls a command (n arguments, so that trailing nils count) and checks the
-- shape of its answer: true plus one line of text, or nil plus a one-line
-- error, and never a Lua error.  Returns ok (true/nil) and the text.
local function run(fname, fn, n, ...)
  local what = call_text(fname, n, ...)
  local pok, ok, text = pcall(fn, ...)
  assert(pok, what .. " raised a Lua error: " .. tostring(ok))
  assert(ok == true or ok == nil, what .. ": first result " .. show(ok) .. " is neither true nor nil")
  assert(type(text) == "string" and text ~= "", what .. ": no text, got " .. show(text))
  assert(not text:find("\n", 1, true), what .. ": text is not one line: " .. show(text))
  return ok, text, what
end

-- The command must answer true and exactly `want`.
local function answers(want, fname, fn, n, ...)
  local ok, text, what = run(fname, fn, n, ...)
  assert(ok == true, what .. ": want true, " .. show(want) .. "; got nil, " .. show(text))
  assert.are.equal(want, text, what)
end

-- The command must fail with a one-line error containing every word given.
local function fails(words, fname, fn, n, ...)
  local ok, text, what = run(fname, fn, n, ...)
  assert(ok == nil, what .. ": want nil, <error>; got true, " .. show(text))
  for _, word in ipairs(words) do
    assert(has(text, word), what .. ": error " .. show(text) .. " lacks " .. show(word))
  end
  return text
end

-- Arguments that are not a usable string, and how the error describes them.
local NOT_A_STRING = {
  { nil, "nothing" }, { 1, "1 (a number)" }, { true, "true (a boolean)" },
  { false, "false (a boolean)" }, { {}, "(a table)" }, { "", "an empty string" },
}

-- A server with a global policy, two hosts and one host that reads names laxly.
local function server()
  local global = assert(policy.new_policy(true, {
    ["200::/7"] = { use_tls = false },
    ["2a00::/16"] = { allow = false },
  }))
  local hosts = {
    ["a.example"] = assert(policy.new_policy(false, {})),
    ["lax.example"] = assert(policy.new_policy(true, { ["200::/7"] = { trust_all_certs = false } })),
  }
  -- 200::5, packed
  policy.set_own_address(global, "\2" .. string.rep("\0", 14) .. "\5",
    "the address of this server's own host me.v6.alt")
  return {
    lax = function(host) return host == "lax.example" end,
    policy = function(host)
      if host == nil then return global end
      return hosts[host]
    end,
  }
end

------------------------------------------------------------------ the tests --

describe("shell get_domain", function()
  it("prints 'Encoded hostname: NAME' for the SPEC section 2 vectors", function()
    local cases = {
      { "2a00:1098:3a0::1", "fiabbgadu-e.v6.alt" },
      { "2A00:1098:03A0:0:0:0:0:1", "fiabbgadu-e.v6.alt" },
      { "2001:db8::1", "eaaq3o-e.v6.alt" },
      { "0200::1", "ai-e.v6.alt" },
      { "::1", "a-e.v6.alt" },
      { "::", "a-a.v6.alt" },
      { "fe80::1", "72-e.v6.alt" },
      { "1111:0000:0000:1111::1111", "ceiqaaaaaairc-rce.v6.alt" },
      { "2001:db8::1:0:0:1", "eaaq3o-baaaaaaaaae.v6.alt" },
    }
    for _, c in ipairs(cases) do
      answers("Encoded hostname: " .. c[2], "get_domain", shell.get_domain, 1, c[1])
    end
  end)

  it("refuses a missing or non-string address with one line naming the command", function()
    for _, c in ipairs(NOT_A_STRING) do
      fails({ "get_domain", "an IPv6 address", c[2] }, "get_domain", shell.get_domain, 1, c[1])
    end
  end)

  it("refuses text that is not an IPv6 address with one line naming it", function()
    for _, text in ipairs({ "2001:db8::g", "1.2.3.4", "example.com", "fe80::1%eth0", "[::1]",
        "fiabbgadu-e.v6.alt", "1::2::3", " ::1" }) do
      fails({ text, "not a valid IPv6 address" }, "get_domain", shell.get_domain, 1, text)
    end
  end)
end)

describe("shell get_ip", function()
  it("prints 'IP address: ADDRESS' in RFC 5952 form", function()
    local cases = {
      { "fiabbgadu-e.v6.alt", "2a00:1098:3a0::1" },
      { "muc.fiabbgadu-e.v6.alt", "2a00:1098:3a0::1" },
      { "eaaq3o-e.v6.alt", "2001:db8::1" },
      { "ai-e.v6.alt", "200::1" },
      { "a-e.v6.alt", "::1" },
      { "eaaq3oaaaaaaaaab-e.v6.alt", "2001:db8::1:0:0:1" }, -- the reference tie form
      { "ceiqaaaaaairc-rce.v6.alt", "1111:0:0:1111::1111" },
    }
    for _, c in ipairs(cases) do
      answers("IP address: " .. c[2], "get_ip", shell.get_ip, 2, c[1], false)
      answers("IP address: " .. c[2], "get_ip", shell.get_ip, 1, c[1])
    end
  end)

  it("takes non-canonical names only when lax", function()
    for _, name in ipairs({ "fiabbgaduaaaaaaaaaaaaaaaae.v6.alt", "fiabbgadu-f.v6.alt", "fiabbgadua-e.v6.alt" }) do
      answers("IP address: 2a00:1098:3a0::1", "get_ip", shell.get_ip, 2, name, true)
      fails({ name, "not a valid .v6.alt name" }, "get_ip", shell.get_ip, 2, name, false)
    end
  end)

  it("refuses a missing or non-string name with one line naming the command", function()
    for _, c in ipairs(NOT_A_STRING) do
      fails({ "get_ip", "a .v6.alt name", c[2] }, "get_ip", shell.get_ip, 2, c[1], false)
      fails({ "get_ip", "a .v6.alt name", c[2] }, "get_ip", shell.get_ip, 2, c[1], true)
    end
  end)

  it("refuses bad names with one line naming them", function()
    for _, name in ipairs({ "example.com", "eaaq3o--e.v6.alt", "a.v6.alt", "eaaq3o-0.v6.alt",
        ".v6.alt", "2a00:1098:3a0::1", "fiabbgadu-e.v6.alt..x" }) do
      fails({ name }, "get_ip", shell.get_ip, 2, name, false)
      fails({ name }, "get_ip", shell.get_ip, 2, name, true)
    end
  end)

  it("reads a name as DNS would: IDNA dots, trailing dots and letter case", function()
    for _, name in ipairs({ "FIABBGADU-E.v6.alt", "fiabbgadu-e.v6.alt.", "fiabbgadu-e\227\128\130V6.alt..",
        "muc.fiabbgadu-e\239\188\142v6\239\189\161alt" }) do
      answers("IP address: 2a00:1098:3a0::1 (" .. name .. " is read as " .. v6alt.normalize(name) .. ")", "get_ip",
        shell.get_ip, 2, name, false)
    end
  end)
end)

describe("shell range", function()
  it("prints '[ADDRESS] ' and the policy's description, for addresses and names", function()
    local ctx = server()
    local cases = {
      -- target, host, the exact line
      { "200::1", nil, "[200::1] range 200::/7: use_tls = false, trust_all_certs = true" },
      { "0200:0:0:0:0:0:0:1", nil, "[200::1] range 200::/7: use_tls = false, trust_all_certs = true" },
      { "ai-e.v6.alt", nil, "[200::1] range 200::/7: use_tls = false, trust_all_certs = true" },
      { "muc.ai-e.v6.alt", nil, "[200::1] range 200::/7: use_tls = false, trust_all_certs = true" },
      { "2001:db8::1", nil, "[2001:db8::1] no configured range (defaults): use_tls = true, trust_all_certs = true" },
      { "::1", nil, "[::1] no configured range (defaults): use_tls = true, trust_all_certs = true;"
        .. " refused: the loopback address (::1/128)" },
      { "2002:7f00:1::1", nil, "[2002:7f00:1::1] no configured range (defaults): use_tls = true,"
        .. " trust_all_certs = true; refused: a 6to4 address (2002::/16)" },
      { "fiabbgadu-e.v6.alt", nil, "[2a00:1098:3a0::1] range 2a00::/16: allow = false;"
        .. " refused: blocked by s2s_v6mesh_ranges entry 2a00::/16 (allow = false)" },
      { "200::5", nil, "[200::5] range 200::/7: use_tls = false, trust_all_certs = true;"
        .. " refused: the address of this server's own host me.v6.alt" },
      -- per host
      { "200::1", "a.example", "[200::1] no configured range (defaults): use_tls = true, trust_all_certs = false" },
      { "fiabbgadu-e.v6.alt", "a.example",
        "[2a00:1098:3a0::1] no configured range (defaults): use_tls = true, trust_all_certs = false" },
      { "ai-e.v6.alt", "lax.example", "[200::1] range 200::/7: use_tls = true, trust_all_certs = false" },
    }
    for _, c in ipairs(cases) do
      answers(c[3], "range", shell.range, 3, ctx, c[1], c[2])
    end
  end)

  it("reads names laxly only for a host that says so", function()
    local ctx = server()
    answers("[200::1] range 200::/7: use_tls = true, trust_all_certs = false",
      "range", shell.range, 3, ctx, "AI-E.v6.alt", "lax.example")
    answers("[200::1] range 200::/7: use_tls = true, trust_all_certs = false",
      "range", shell.range, 3, ctx, "aiaaaaaaaaaaaaaaaaaaaaaaae.v6.alt", "lax.example")
    fails({ "aiaaaaaaaaaaaaaaaaaaaaaaae.v6.alt", "uncompressed" }, "range", shell.range, 3, ctx,
      "aiaaaaaaaaaaaaaaaaaaaaaaae.v6.alt", nil)
    fails({ "AIAAAAAAAAAAAAAAAAAAAAAAAE.v6.alt is read as aiaaaaaaaaaaaaaaaaaaaaaaae.v6.alt", "uncompressed" },
      "range", shell.range, 3, ctx, "AIAAAAAAAAAAAAAAAAAAAAAAAE.v6.alt", "a.example")
  end)

  it("reads a name as DNS would: IDNA dots, trailing dots and letter case", function()
    local ctx = server()
    for _, spelling in ipairs({ "AI-E.v6.alt", "ai-e\227\128\130v6\239\189\161alt", "ai-e.V6.ALT..",
        "muc.ai-e\239\188\142v6.alt." }) do
      answers("[200::1] range 200::/7: use_tls = false, trust_all_certs = true", "range", shell.range, 3, ctx,
        spelling, nil)
    end
    fails({ "AI-0.v6.alt. is read as ai-0.v6.alt", "not a base32 character" }, "range", shell.range, 3, ctx,
      "AI-0.v6.alt.", nil)
  end)

  it("refuses a missing or non-string target with one line naming the command", function()
    local ctx = server()
    for _, c in ipairs(NOT_A_STRING) do
      fails({ "range", "an IPv6 address or a .v6.alt name", c[2] }, "range", shell.range, 3, ctx, c[1], nil)
      fails({ "range", "an IPv6 address or a .v6.alt name", c[2] }, "range", shell.range, 3, ctx, c[1], "a.example")
    end
  end)

  it("refuses a non-string host with one line naming the command (v6alt:range(\"::1\", true))", function()
    local ctx = server()
    for _, c in ipairs(NOT_A_STRING) do
      if c[1] ~= nil then -- no host is the global view
        fails({ "range", "a host of this server", c[2] }, "range", shell.range, 3, ctx, "::1", c[1])
        fails({ "range", "a host of this server", c[2] }, "range", shell.range, 3, ctx, "ai-e.v6.alt", c[1])
      end
    end
  end)

  it("refuses a host the server does not have", function()
    local ctx = server()
    for _, host in ipairs({ "nowhere.example", "A.EXAMPLE", "ai-e.v6.alt" }) do
      local err = fails({}, "range", shell.range, 3, ctx, "200::1", host)
      assert.are.equal("'" .. host .. "' is not a host of this server", err)
    end
  end)

  it("refuses bad addresses and bad names with one line naming them", function()
    local ctx = server()
    for _, target in ipairs({ "2001:db8::g", "1::2::3", "::1%eth0", "[::1]", "example.com",
        "eaaq3o--e.v6.alt", "a.v6.alt", "eaaq3oaaaaaaaaaaaaaaaaaaae.v6.alt", "1.2.3.4" }) do
      fails({ target }, "range", shell.range, 3, ctx, target, nil)
      fails({ target }, "range", shell.range, 3, ctx, target, "a.example")
    end
  end)
end)

describe("shell errors for arguments with a line break", function()
  -- The codec's messages quote the argument; control characters come out as \ddd.
  it("get_domain, get_ip and range answer one line for \"::1\\n\" and \"x\\ny-e.v6.alt\"", function()
    local ctx = server()
    fails({}, "get_domain", shell.get_domain, 1, "::1\n")
    fails({}, "get_ip", shell.get_ip, 2, "x\ny-e.v6.alt", false)
    fails({}, "get_ip", shell.get_ip, 2, "x\ny-e.v6.alt", true)
    fails({}, "range", shell.range, 3, ctx, "::1\n", nil)
    fails({}, "range", shell.range, 3, ctx, "x\ny-e.v6.alt", nil)
  end)
end)

describe("shell commands", function()
  -- Each handler as the shell calls it (a print function first), keyed by name.
  local function by_name(list)
    local t = {}
    for _, command in ipairs(list) do
      t[command.name] = { handler = function(...) return command.handler(function() end, ...) end }
    end
    return t
  end

  it("lists get_domain, get_ip, range and status with a description and argument names", function()
    local list = shell.commands(server())
    assert.are.equal(4, #list)
    local names = {}
    for i, command in ipairs(list) do
      names[i] = command.name
      assert.is_string(command.desc, command.name)
      assert.is_false(has(command.desc, "\n"), command.name)
      assert.is_table(command.args, command.name)
      assert.is_true(#command.args >= (command.name == "status" and 0 or 1), command.name)
      for _, arg in ipairs(command.args) do assert.is_string(arg, command.name) end
      assert.are.equal("function", type(command.handler), command.name)
    end
    assert.are.same({ "get_domain", "get_ip", "range", "status" }, names)
  end)

  it("status prints one line per item and answers how many", function()
    local report = {
      addresses = {
        { address = "::1", name = "a-e.v6.alt", hosts = {} },
        { address = "200:5::1", name = "aiaaakq-e.v6.alt", hosts = { "aiaaakq-e.v6.alt", "groups.aiaaakq-e.v6.alt" } },
      },
      others = { { host = "example.org" }, { host = "aiaaaki-e.v6.alt", address = "200:5::2" } },
      closed_hosts = { { host = "bad.v6.alt", why = "Invalid configuration for bad.v6.alt: x" } },
      dns_listen = { "[::1]:5390" },
      refusals = { blocked = 2, malformed = 1 },
    }
    local printed = {}
    local ok, text = shell.status(report, function(line) printed[#printed + 1] = line end)
    assert.is_true(ok)
    assert.are.same({
      ".v6.alt federation: open",
      "host bad.v6.alt: .v6.alt federation closed: Invalid configuration for bad.v6.alt: x",
      "address [::1] = a-e.v6.alt: no host",
      "address [200:5::1] = aiaaakq-e.v6.alt: hosts aiaaakq-e.v6.alt, groups.aiaaakq-e.v6.alt, sending from this address",
      "host example.org: not a .v6.alt name; it sends from the address the kernel picks",
      "host aiaaaki-e.v6.alt: its address [200:5::2] is not on this machine; it cannot federate",
      "DNS listener: [::1]:5390",
      "refused (blocked): 2",
      "refused (malformed): 1",
    }, printed)
    assert.are.equal(#printed .. " lines", text)
    report.closed, report.closed_hosts, report.dns_listen, report.refusals = "reloading", {}, {}, {}
    printed = {}
    shell.status(report, function(line) printed[#printed + 1] = line end)
    assert.are.equal(".v6.alt federation: closed: reloading", printed[1])
    assert.are.equal("DNS listener: off", printed[#printed - 1])
    assert.are.equal("refused: nothing since the module loaded", printed[#printed])
  end)

  it("handlers answer like the functions, and get_ip reads names as the global setting says", function()
    local strict = by_name(shell.commands(server()))
    answers("Encoded hostname: fiabbgadu-e.v6.alt", "get_domain handler", strict.get_domain.handler, 1,
      "2a00:1098:3a0::1")
    answers("IP address: 2a00:1098:3a0::1", "get_ip handler", strict.get_ip.handler, 1, "fiabbgadu-e.v6.alt")
    answers("IP address: 2a00:1098:3a0::1 (FIABBGADU-E.v6.alt is read as fiabbgadu-e.v6.alt)", "get_ip handler",
      strict.get_ip.handler, 1, "FIABBGADU-E.v6.alt")
    fails({ "uncompressed" }, "get_ip handler", strict.get_ip.handler, 1, "fiabbgaduaaaaaaaaaaaaaaaae.v6.alt")
    answers("[200::1] range 200::/7: use_tls = false, trust_all_certs = true", "range handler",
      strict.range.handler, 1, "200::1")
    answers("[200::1] no configured range (defaults): use_tls = true, trust_all_certs = false", "range handler",
      strict.range.handler, 2, "200::1", "a.example")

    local ctx = server()
    ctx.lax = function() return true end
    local lax = by_name(shell.commands(ctx))
    answers("IP address: 2a00:1098:3a0::1", "get_ip handler", lax.get_ip.handler, 1, "fiabbgaduaaaaaaaaaaaaaaaae.v6.alt")
  end)

  it("handlers answer bad arguments with one line, never a Lua error", function()
    local list = by_name(shell.commands(server()))
    for _, c in ipairs(NOT_A_STRING) do
      fails({ "get_domain" }, "get_domain handler", list.get_domain.handler, 1, c[1])
      fails({ "get_ip" }, "get_ip handler", list.get_ip.handler, 1, c[1])
      fails({ "range" }, "range handler", list.range.handler, 1, c[1])
      if c[1] ~= nil then
        fails({ "range" }, "range handler", list.range.handler, 2, "::1", c[1])
      end
    end
    fails({ "is not a host of this server" }, "range handler", list.range.handler, 2, "::1", "nowhere.example")
  end)
end)
