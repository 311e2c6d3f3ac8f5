-- Every file of dist/mod_s2s_v6mesh/ loads through the require Prosody 0.12
-- installs (util/startup.lua, startup.sandbox_require), run with busted on
-- Lua 5.1-5.4 and LuaJIT:  lua5.1 /usr/bin/busted spec/sandbox_spec.lua
--
-- That require starts with getfenv(2), the environment of its caller.  On PUC
-- Lua 5.1 a caller that reached it by a tail call (`return require(x)`) has
-- no frame left, and getfenv raises "no function environment for tail call
-- at level 2": the module then fails to load on Prosody 0.12 with Lua 5.1.
--   * Lua 5.1: the copy below raises exactly that error, natively.
--   * Lua 5.2-5.4: getfenv does not exist and Prosody's stand-in never fails,
--     so the copy raises the same error itself when debug.getinfo says it
--     was tail-called (what 5.1 would have done).
--   * LuaJIT: keeps no record of tail calls; only the static check at the
--     end (no `return require(` in dist/) guards it there.
-- Globals are locked as Prosody locks them (startup.init_global_protection)
-- while a file loads, and reads of unknown globals are recorded.

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "spec"
local root = spec_dir:match("^(.*)[/\\][^/\\]*$") or "."
-- V6ALT_DIST points the spec at another build (default: dist/).
local dist = os.getenv("V6ALT_DIST") or (root .. "/dist")
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local lfs = require("lfs")

local NATIVE_TAIL_CALL_ERROR = _VERSION == "Lua 5.1" and not rawget(_G, "jit")
local SEES_TAIL_CALLS = not NATIVE_TAIL_CALL_ERROR and pcall(debug.getinfo, 1, "t")
  and debug.getinfo(1, "t").istailcall ~= nil
local CATCHES_TAIL_CALLS = NATIVE_TAIL_CALL_ERROR or SEES_TAIL_CALLS
local TAIL_CALL_ERROR = "no function environment for tail call at level 2"

-------------------------------------------------------------------- helpers --

-- startup.sandbox_require() of Prosody 0.12.3, returning the function it
-- would install as the global `require` instead of installing it.  Only the
-- marked lines are added.
local function prosody_sandbox_require(realG, real_require)
  local _realG, _real_require = realG, real_require
  local getfenv = getfenv or function (f)
    -- FIXME: This is a hack to replace getfenv() in Lua 5.2
    local name, env = debug.getupvalue(debug.getinfo(f or 1).func, 1);
    if name == "_ENV" then
      return env;
    end
  end
  return function (...)
    if SEES_TAIL_CALLS and debug.getinfo(1, "t").istailcall then -- added: 5.1's error on 5.2+
      error(TAIL_CALL_ERROR .. " (what Lua 5.1 raises here)", 2)  -- added
    end                                                           -- added
    local curr_env = getfenv(2);
    local curr_env_mt = getmetatable(curr_env);
    local _realG_mt = getmetatable(_realG);
    if curr_env_mt and curr_env_mt.__index and not curr_env_mt.__newindex and _realG_mt then
      local old_newindex, old_index;
      old_newindex, _realG_mt.__newindex = _realG_mt.__newindex, curr_env;
      old_index, _realG_mt.__index = _realG_mt.__index, function (_G, k) -- luacheck: ignore 212/_G
        return rawget(curr_env, k);
      end;
      local ret = _real_require(...);
      _realG_mt.__newindex = old_newindex;
      _realG_mt.__index = old_index;
      return ret;
    end
    return _real_require(...);
  end
end

-- Compile a file or a string of code with `env` as its environment.  (The
-- 5.1 functions are looked up now: globals are locked when this runs.)
local setfenv, loadstring = rawget(_G, "setfenv"), rawget(_G, "loadstring")
local function load_with_env(env, path, code)
  local chunk, err
  if setfenv then -- Lua 5.1, LuaJIT
    if code then chunk, err = loadstring(code, "=" .. path) else chunk, err = loadfile(path) end
    if chunk then setfenv(chunk, env) end
  else
    if code then chunk, err = load(code, "=" .. path, "t", env) else chunk, err = loadfile(path, "t", env) end
  end
  assert(chunk, err)
  return chunk
end

local function is_ours(name)
  return name == "mod_s2s_v6mesh" or name:sub(1, 15) == "mod_s2s_v6mesh."
end

-- Runs fn() the way Prosody 0.12 runs module code: the global `require` is
-- the sandboxed one, globals are locked, and `stand_ins` (name -> table)
-- stand for Prosody's libraries.  Every library loads afresh and is forgotten
-- afterwards; _G is restored whatever happens.  Returns pcall's results
-- and the list of unknown globals read.
local function like_prosody(stand_ins, fn)
  local loaded, preload = package.loaded, package.preload
  local real_require = rawget(_G, "require")
  local saved_mt = getmetatable(_G)
  local saved_preload, unknown = {}, {}
  for name in pairs(stand_ins) do saved_preload[name] = preload[name] end
  local function forget()
    for name in pairs(loaded) do
      if is_ours(name) or stand_ins[name] then loaded[name] = nil end
    end
  end
  forget()
  for name, lib in pairs(stand_ins) do preload[name] = function() return lib end end
  rawset(_G, "require", prosody_sandbox_require(_G, real_require))
  setmetatable(_G, {
    __index = function(_, k) unknown[#unknown + 1] = tostring(k) end,
    __newindex = function(_, k, v) error("Attempt to set a global: " .. tostring(k) .. " = " .. tostring(v), 2) end,
  })
  local results = { pcall(fn) }
  setmetatable(_G, saved_mt)
  rawset(_G, "require", real_require)
  for name in pairs(stand_ins) do preload[name] = saved_preload[name] end
  forget()
  return results, unknown
end

-- The environment modulemanager gives a module: its own table over _G.
local function plugin_env(fields)
  return setmetatable(fields, { __index = _G })
end

-- Every .lua file under a directory, sorted.
local function lua_files(dir, out)
  out = out or {}
  for entry in lfs.dir(dir) do
    if entry ~= "." and entry ~= ".." then
      local path = dir .. "/" .. entry
      if lfs.attributes(path, "mode") == "directory" then
        lua_files(path, out)
      elseif entry:match("%.lua$") then
        out[#out + 1] = path
      end
    end
  end
  table.sort(out)
  return out
end

local MODULE_DIR = dist .. "/mod_s2s_v6mesh"
local MAIN = MODULE_DIR .. "/mod_s2s_v6mesh.lua"

-- The smallest stand-ins for what mod_s2s_v6mesh.lua touches while loading.
local function fake_module(options)
  local m = { name = "s2s_v6mesh", host = "*", reloading = false,
    shared_tables = {}, hooks = {}, object_hooks = {}, items = {}, timers = {}, logs = {} }
  local function option(host, name)
    local v = (options[host] or {})[name]
    if v == nil then v = (options["*"] or {})[name] end
    return v
  end
  function m:set_global() m.global = true end
  function m:shared(path)
    m.shared_tables[path] = m.shared_tables[path] or {}
    return m.shared_tables[path]
  end
  function m:hook(name) m.hooks[#m.hooks + 1] = name end
  function m:hook_object_event(_, name) m.object_hooks[#m.object_hooks + 1] = name end
  function m:add_timer(delay) m.timers[#m.timers + 1] = delay end
  function m:add_item(kind, item) m.items[#m.items + 1] = { kind = kind, item = item } end
  m.metrics = {}
  function m:metric(kind, name)
    m.metrics[name] = kind
    return { with_labels = function() return { add = function() end } end }
  end
  function m:log(level, fmt, ...)
    local ok, line = pcall(string.format, fmt, ...)
    m.logs[#m.logs + 1] = level .. ": " .. (ok and line or fmt)
  end
  function m:get_option(name, default)
    local v = option(self.host, name)
    if v == nil then return default end
    return v
  end
  function m:get_option_boolean(name, default)
    local v = option(self.host, name)
    if v == nil then return default end
    if type(v) == "boolean" then return v end
    return nil
  end
  function m:context(host)
    return setmetatable({ host = host }, { __index = m })
  end
  return m
end

local function fake_prosody(hosts)
  local p = { hosts = {} }
  for _, host in ipairs(hosts) do p.hosts[host] = { host = host, events = {} } end
  return p
end

-- Prosody's libraries, as little of them as the module touches at load time.
local function stand_ins(prefix)
  local libs = {
    ["util.stanza"] = { error_reply = function() return {} end },
    ["util.jid"] = { host = function(j) return (j:match("^[^@/]*@?([^/]*)")) end },
    ["util.net"] = { local_addresses = function() return {} end },
    ["net.resolvers.service"] = { new = function() return {} end },
    ["net.resolvers.basic"] = { new = function() return {} end },
    ["net.adns"] = { resolver = function() return {} end },
    ["util.encodings"] = { idna = { to_ascii = function(name) return name end } },
    ["util.promise"] = { reject = function() return {} end },
    ["net.server"] = { listen = function() return nil, "not in this spec" end, watchfd = function() return {} end },
  }
  local out = {}
  for name, lib in pairs(libs) do out[prefix .. name] = lib end
  return out
end

-- Files whose source contains a tail call into require.
local TAIL_REQUIRE = {
  "return%s+require%s*[%(\"'%[]",
  "return%s+module%s*:%s*require%s*[%(\"'%[]",
}
local function tail_requires(source)
  local found = {}
  local n = 0
  for line in (source .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local code = line:gsub("%-%-.*$", "")
    for _, pattern in ipairs(TAIL_REQUIRE) do
      if code:find(pattern) then found[#found + 1] = n .. ": " .. line end
    end
  end
  return found
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

------------------------------------------------------------------ the tests --

describe("Prosody 0.12's sandboxed require (copy under test)", function()
  local control = { ["x"] = { control = true } }

  it("loads a library called without a tail call", function()
    local results = like_prosody(control, function()
      return load_with_env(plugin_env({}), "control", 'local x = require("x") return x')()
    end)
    assert(results[1], tostring(results[2]))
    assert.is_true(results[2].control)
  end)

  local catch_name = CATCHES_TAIL_CALLS
    and "fails on a tail call into require, as Prosody 0.12 on Lua 5.1 does (negative control)"
    or "cannot see tail calls on LuaJIT; the static check flags the negative control instead"
  it(catch_name, function()
    local sources = {
      'return require("x")',
      'local function lib(n) return require(n) end local t = lib("x") return t',
      'return require "x"',
    }
    for _, source in ipairs(sources) do
      local results = like_prosody(control, function()
        return load_with_env(plugin_env({}), "control", source)()
      end)
      if CATCHES_TAIL_CALLS then
        assert.is_false(results[1], source .. " loaded")
        assert.is_truthy(tostring(results[2]):find(TAIL_CALL_ERROR, 1, true), source .. ": " .. tostring(results[2]))
      end
      assert.are.equal(1, #tail_requires(source), "the static check misses " .. source)
    end
    assert.are.equal(0, #tail_requires('local x = require("x") return x'))
    assert.are.equal(0, #tail_requires('return (require("x"))'))
  end)
end)

describe("dist/mod_s2s_v6mesh under Prosody 0.12's require", function()
  local files = lua_files(MODULE_DIR)

  it("has the module file and its libraries", function()
    local names = {}
    for _, path in ipairs(files) do names[path:match("([^/]+)%.lua$")] = true end
    for _, name in ipairs({ "mod_s2s_v6mesh", "v6alt", "policy", "shell", "dns", "dns_listener", "compat" }) do
      assert.is_true(names[name] == true, name .. ".lua is missing from " .. MODULE_DIR)
    end
  end)

  for _, path in ipairs(files) do
    local name = path:match("([^/]+)%.lua$")
    if name ~= "mod_s2s_v6mesh" then
      for _, prefix in ipairs({ "", "prosody." }) do
        local flavour = prefix == "" and "0.12 library names" or "13 library names"
        it(name .. ".lua loads by require(\"mod_s2s_v6mesh." .. name .. "\") (" .. flavour .. ")", function()
          local results, unknown = like_prosody(stand_ins(prefix), function()
            return load_with_env(plugin_env({}), "loader",
              'local lib = require("mod_s2s_v6mesh.' .. name .. '") return lib')()
          end)
          assert(results[1], tostring(results[2]))
          assert.is_table(results[2])
          assert.are.same({}, unknown, "unknown globals read")
        end)
      end
    end
  end

  for _, prefix in ipairs({ "", "prosody." }) do
    local flavour = prefix == "" and "0.12 library names" or "13 library names"
    it("mod_s2s_v6mesh.lua loads as a module, hosts and all (" .. flavour .. ")", function()
      local module = fake_module({ ["*"] = { s2s_v6mesh_ranges = { ["200::/7"] = { use_tls = false } } } })
      local prosody = fake_prosody({ "a.example", "fiabbgadu-e.v6.alt" })
      local env = plugin_env({ module = module, prosody = prosody })
      local results, unknown = like_prosody(stand_ins(prefix), function()
        return load_with_env(env, MAIN)()
      end)
      assert(results[1], tostring(results[2]))
      assert.are.same({}, unknown, "unknown globals read")
      assert.is_true(module.global)
      assert.are.equal("function", type(module.unload))
      assert.are.equal("function", type(module.add_host))
      -- the host events were hooked, and the shell commands are there
      assert.is_true(#module.object_hooks > 0)
      local commands = {}
      if prefix == "" then
        for cname, handler in pairs(module.shared_tables["/*/admin_shell/env"].v6alt) do
          commands[cname] = handler
        end
      else
        for _, entry in ipairs(module.items) do
          if entry.kind == "shell-command" then commands[entry.item.name] = entry.item.handler end
        end
      end
      local ok, text = commands.get_domain(nil, "2a00:1098:3a0::1")
      assert.are.same({ true, "Encoded hostname: fiabbgadu-e.v6.alt" }, { ok, text })
      ok, text = commands.range(nil, "200::1", "a.example")
      assert.are.same({ true, "[200::1] range 200::/7: use_tls = false, trust_all_certs = true" }, { ok, text })
      -- v6alt:range("::1", true) used to raise a Lua error
      local pok, r1, r2 = pcall(commands.range, nil, "::1", true)
      assert(pok, tostring(r1))
      assert.is_nil(r1)
      assert.is_truthy(type(r2) == "string" and not r2:find("\n"), tostring(r2))
      ok, text = commands.range(nil, "::1", "nowhere.example")
      assert.are.same({ nil, "'nowhere.example' is not a host of this server" }, { ok, text })
    end)
  end

  it("has no tail call into require (return require(...) / return module:require(...)) anywhere in dist/", function()
    local found = {}
    for _, path in ipairs(lua_files(dist)) do
      for _, hit in ipairs(tail_requires(read(path))) do
        found[#found + 1] = path .. ":" .. hit
      end
    end
    assert(#found == 0, "tail calls into require fail on Prosody 0.12 with Lua 5.1:\n  "
      .. table.concat(found, "\n  "))
  end)
end)
