-- Bad input at volume for the codec (dist/mod_s2s_v6mesh/v6alt.lua): random
-- and mutated names through v6alt.decode, strict and lax, with the properties
-- that must hold for every one of them.
--
--   lua5.1 bench/names-fuzz.lua [DIST_DIR] [NAMES] [SEED]
--   lua5.4 bench/names-fuzz.lua dist 1000000
--   luajit bench/names-fuzz.lua dist 50000          (the short form npm test runs)
--
-- Also a library (spec/names_fuzz_spec.lua):
--   local fuzz = dofile("bench/names-fuzz.lua")
--   local r = fuzz.run{ dist = "dist", names = 50000 }   -- r.violations, r.lua_errors, ...
--
-- The names come from our own Park-Miller generator (math.random differs between
-- Luas), so every Lua gets the same sequence; a digest of it is printed to prove so.
-- The mix (per name, by weight):
--   canonical names (encode) and reference tie forms (encode_reference), as is or
--     under a subdomain; random bytes of any length, with and without ".v6.alt";
--     random labels over the base32 alphabet and '-' (valid ones do occur);
--   mutations of canonical/reference names, 1-3 of: byte flip (one bit), byte
--     replacement, insertion, deletion, case change (a char, the label, the
--     suffix), hyphen moved / added / removed / expanded back to its run of 'a',
--     padding bits set in the last character, subdomains (ordinary, '*', high
--     bytes, 63-char and 300-char chains), length extremes (truncation, doubled
--     label, 25/27-char labels, "", ".v6.alt", 1,000+ bytes), high bytes (0x80-0xff),
--     NUL and control bytes, empty labels (leading dot, "..", trailing dot).
-- Addresses behind the names: random, Yggdrasil-like, sparse (::1-style), runs of
-- zero groups with ties (so encode and encode_reference differ), special-purpose
-- (::, ::1, ff02::1, fe80::1, ::ffff:a.b.c.d), all-zero and all-ones.
--
-- For every name (pcall around every call):
--   P0  no Lua error from decode(name) or decode(name, true)
--   P1  a result is a 16-byte string, or nil with a one-line string reason
--   P2  strict accepts only what an encoder writes: the label before ".v6.alt"
--       equals encode(addr) or encode_reference(addr) (minus the suffix), the
--       name is that label or ends in "." .. it, and the subdomain part has no
--       empty label
--   P3  strict accepted => lax accepts and gives the same address
--   P4  lax is strict with the case folded: where strict accepts the name with
--       its label lowercased, lax of the name itself gives that same address
--   P5  lax accepted but strict refused => strict's reason is one lax forgives
--       (uppercase, padding-bits, uncompressed, misplaced-hyphen); and the
--       canonical name of lax's address strict-decodes to it
-- Prints counts (per kind of name: strict/lax accepted) and decode rates; the last
-- stdout line is one JSON object. Exit 0 when no property failed, 1 otherwise.

local M = {}

local SUFFIX = ".v6.alt"
local FORGIVEN = { uppercase = true, ["padding-bits"] = true, uncompressed = true, ["misplaced-hyphen"] = true }

function M.run(opts)
  opts = opts or {}
  local dist = opts.dist or "dist"
  local total = opts.names or 1000000
  local seed = opts.seed or 20261130
  local quiet = opts.quiet
  local batch_size = opts.batch or 10000
  package.path = dist .. "/?.lua;" .. package.path
  local v6alt = require "mod_s2s_v6mesh.v6alt"
  local decode, encode, encode_reference = v6alt.decode, v6alt.encode, v6alt.encode_reference
  local byte, char, sub, find, lower, upper, rep = string.byte, string.char, string.sub, string.find,
    string.lower, string.upper, string.rep
  local floor = math.floor

  -- Park-Miller "minimal standard": exact in doubles (5.1, LuaJIT) and integers (5.3+).
  local state = seed % 2147483646 + 1
  local function rnd()
    state = (state * 16807) % 2147483647
    return state
  end
  local function below(n) return floor(rnd() / 2147483647 * n) end -- 0 .. n-1
  local function rbyte() return floor(rnd() / 8388608) % 256 end
  local function chance(p) return rnd() / 2147483647 < p end

  -- ---------------------------------------------------------------- addresses
  local function zeros() return { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } end
  local function packed_of(t)
    return char(t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15], t[16])
  end
  local specials = {
    zeros(),                                                   -- ::
    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },         -- ::1
    { 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },      -- ff02::1
    { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },   -- fe80::1
    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 }, -- ::ffff:192.0.2.1
    { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
  }
  local function address()
    local k = below(100)
    local t = zeros()
    if k < 30 then -- random
      for i = 1, 16 do t[i] = rbyte() end
    elseif k < 50 then -- Yggdrasil node
      t[1] = 2; t[2] = below(12)
      for i = 3, 16 do t[i] = rbyte() end
    elseif k < 65 then -- sparse: prefix + ::1-style host
      t[1] = 0x20 + below(16); t[2] = rbyte(); t[3] = rbyte(); t[4] = rbyte()
      if chance(0.5) then t[16] = 1 + below(255) else t[15] = below(3); t[16] = rbyte() end
    elseif k < 90 then -- zero groups at random (ties, runs at either end)
      for g = 1, 8 do
        if below(2) == 0 then t[2 * g - 1] = rbyte(); t[2 * g] = rbyte() end
      end
    else -- special-purpose and extremes (with a random host part sometimes)
      local s = specials[1 + below(#specials)]
      for i = 1, 16 do t[i] = s[i] end
      if chance(0.3) then t[16] = rbyte() end
    end
    return packed_of(t)
  end

  -- ---------------------------------------------------------------- names
  local LABELCHARS = "abcdefghijklmnopqrstuvwxyz234567-"
  local INSERTS = "aaaa-.-AZ0189_*. \0\n\t\127\128\195\255xyzq7"
  local function rchar_from(s) local i = 1 + below(#s); return sub(s, i, i) end
  local function label_of(name) -- last label before the suffix, and the rest (prefix with its dot)
    local body = sub(name, 1, #name - #SUFFIX)
    local dot
    local i = 0
    while true do
      local j = find(body, ".", i + 1, true)
      if not j then break end
      dot, i = j, j
    end
    if dot then return sub(body, dot + 1), sub(body, 1, dot) end
    return body, ""
  end
  local function base_name()
    local p = address()
    if chance(0.3) then return (encode_reference(p)) end
    return (encode(p))
  end
  local subs = { "muc", "groups", "upload", "pubsub.x", "*", "a", "xn--bcher-kva", "conference.chat", "\200\201" }
  local mutators = {}
  mutators[#mutators + 1] = function(n) -- flip one bit of one byte
    if #n == 0 then return n end
    local i = 1 + below(#n)
    local b, bit = byte(n, i), 2 ^ below(8)
    if floor(b / bit) % 2 == 1 then b = b - bit else b = b + bit end
    return sub(n, 1, i - 1) .. char(b) .. sub(n, i + 1)
  end
  mutators[#mutators + 1] = function(n) -- replace a label byte by another label char
    local l = #n - #SUFFIX
    if l < 1 then return n end
    local i = 1 + below(l)
    return sub(n, 1, i - 1) .. rchar_from(LABELCHARS) .. sub(n, i + 1)
  end
  mutators[#mutators + 1] = function(n) -- insert
    local i = below(#n + 1)
    return sub(n, 1, i) .. rchar_from(INSERTS) .. sub(n, i + 1)
  end
  mutators[#mutators + 1] = function(n) -- delete
    if #n == 0 then return n end
    local i = 1 + below(#n)
    return sub(n, 1, i - 1) .. sub(n, i + 1)
  end
  mutators[#mutators + 1] = function(n) -- case changes
    local k = below(4)
    if k == 0 then
      local i = 1 + below(math.max(#n, 1))
      return sub(n, 1, i - 1) .. upper(sub(n, i, i)) .. sub(n, i + 1)
    elseif k == 1 and sub(n, -#SUFFIX) == SUFFIX then
      local label, prefix = label_of(n)
      return prefix .. upper(label) .. SUFFIX
    elseif k == 2 then
      return sub(n, 1, #n - 7) .. (chance(0.5) and ".V6.ALT" or ".v6.Alt")
    end
    return upper(n)
  end
  mutators[#mutators + 1] = function(n) -- hyphen moves, adds, removals, expansion
    if sub(n, -#SUFFIX) ~= SUFFIX then return n end
    local label, prefix = label_of(n)
    local h = find(label, "-", 1, true)
    local k = below(4)
    if h and k == 0 then -- move it
      local rest = sub(label, 1, h - 1) .. sub(label, h + 1)
      local i = below(#rest + 1)
      label = sub(rest, 1, i) .. "-" .. sub(rest, i + 1)
    elseif h and k == 1 then -- back to its run of 'a' (uncompressed)
      label = sub(label, 1, h - 1) .. rep("a", 27 - #label) .. sub(label, h + 1)
    elseif h and k == 2 then -- shift one 'a' across
      if chance(0.5) then label = sub(label, 1, h - 1) .. "a-" .. sub(label, h + 1)
      else label = sub(label, 1, h - 1) .. "-a" .. sub(label, h + 1) end
    else -- compress some other run of 'a' (or any two chars) into a '-'
      local i = 1 + below(math.max(#label - 1, 1))
      local j = i + below(4)
      label = sub(label, 1, i - 1) .. "-" .. sub(label, j + 1)
    end
    return prefix .. label .. SUFFIX
  end
  mutators[#mutators + 1] = function(n) -- padding bits in the last character
    if sub(n, -#SUFFIX) ~= SUFFIX then return n end
    local label, prefix = label_of(n)
    if #label == 0 then return n end
    return prefix .. sub(label, 1, -2) .. rchar_from("bcdfghjklnoptvx3567") .. SUFFIX
  end
  mutators[#mutators + 1] = function(n) -- subdomains
    local k = below(5)
    if k == 0 then return subs[1 + below(#subs)] .. "." .. n end
    if k == 1 then return rep("a", 63) .. "." .. n end
    if k == 2 then return rep("x.", 150) .. n end
    if k == 3 then return base_name() .. "." .. n end -- a v6.alt name as a subdomain of another
    return rep(char(128 + below(128)), 1 + below(5)) .. "." .. n
  end
  mutators[#mutators + 1] = function(n) -- length extremes
    local k = below(8)
    if k == 0 then return "" end
    if k == 1 then return SUFFIX end
    if k == 2 then return sub(n, 1, below(#n + 1)) end
    if k == 3 then return sub(n, below(#n + 1) + 1) end
    if k == 4 and sub(n, -#SUFFIX) == SUFFIX then
      local label, prefix = label_of(n)
      return prefix .. label .. label .. SUFFIX
    end
    if k == 5 then return rep("b", 1000 + below(2000)) .. SUFFIX end
    if k == 6 then return rep("-", below(30)) .. SUFFIX end
    return sub(n, 1, #n - 7) .. rchar_from(LABELCHARS) .. SUFFIX
  end
  mutators[#mutators + 1] = function(n) -- high bytes / control bytes in the label
    local l = #n - #SUFFIX
    if l < 1 then return char(128 + below(128)) .. n end
    local i = 1 + below(l)
    local c = chance(0.7) and char(128 + below(128)) or char(below(32))
    return sub(n, 1, i - 1) .. c .. sub(n, i + 1)
  end
  mutators[#mutators + 1] = function(n) -- empty labels
    local k = below(4)
    if k == 0 then return "." .. n end
    if k == 1 then return "x.." .. n end
    if k == 2 then return n .. "." end
    local i = below(#n + 1)
    return sub(n, 1, i) .. "." .. sub(n, i + 1)
  end

  local kinds = { "canonical", "reference", "subdomain", "random_bytes", "random_bytes_suffix",
    "random_label", "mutated" }
  local function make_name()
    local k = below(100)
    if k < 6 then return 1, (encode(address())) end
    if k < 9 then return 2, (encode_reference(address())) end
    if k < 12 then return 3, subs[1 + below(#subs)] .. "." .. base_name() end
    if k < 20 then
      local t = {}
      for i = 1, below(80) do t[i] = char(rbyte()) end
      return 4, table.concat(t)
    end
    if k < 28 then
      local t = {}
      for i = 1, below(40) do t[i] = char(rbyte()) end
      return 5, table.concat(t) .. SUFFIX
    end
    if k < 38 then
      local t = {}
      local len = 18 + below(12)
      for i = 1, len do t[i] = rchar_from(LABELCHARS) end
      return 6, table.concat(t) .. SUFFIX
    end
    local n = base_name()
    for _ = 1, 1 + below(3) do n = mutators[1 + below(#mutators)](n) end
    return 7, n
  end

  -- ---------------------------------------------------------------- checks
  local counts = { names = 0, strict_accepted = 0, lax_accepted = 0, lax_only = 0, lua_errors = 0, violations = 0,
    odd_subdomain = 0 }
  local per_kind = {}
  for i = 1, #kinds do per_kind[i] = { n = 0, strict = 0, lax = 0 } end
  local reasons = {}
  local examples = {}
  local function show(s) return (string.gsub(s, "[^%w%.%-%*]", function(c) return string.format("\\%03d", byte(c)) end)) end
  local function fail(what, name, detail)
    counts.violations = counts.violations + 1
    if #examples < 20 then examples[#examples + 1] = what .. ": '" .. show(name) .. "' " .. (detail or "") end
  end
  local function lua_error(name, err)
    counts.lua_errors = counts.lua_errors + 1
    if #examples < 20 then examples[#examples + 1] = "P0 Lua error: '" .. show(name) .. "' " .. tostring(err) end
  end
  local function shape_ok(p, e)
    if p ~= nil then return type(p) == "string" and #p == 16 end
    return type(e) == "string" and find(e, "%c") == nil
  end

  local digest = 0
  local t_strict, t_lax = 0, 0
  local clock = os.clock
  local t_start = clock()
  local names, kind_of = {}, {}
  local sp, se, sc, lp, le = {}, {}, {}, {}, {}
  local done = 0
  while done < total do
    local m = math.min(batch_size, total - done)
    for i = 1, m do
      local k, n = make_name()
      kind_of[i], names[i] = k, n
      local h = #n
      for j = 1, (#n < 64 and #n or 64) do h = (h * 31 + byte(n, j)) % 2147483647 end
      digest = (digest * 131 + h) % 2147483647
    end
    -- timed passes: strict, then lax (pcall around each call)
    local t0 = clock()
    for i = 1, m do
      local ok, p, e, c = pcall(decode, names[i])
      if ok then sp[i], se[i], sc[i] = p, e, c else sp[i], se[i], sc[i] = false, p, nil end
    end
    local t1 = clock()
    for i = 1, m do
      local ok, p, e = pcall(decode, names[i], true)
      if ok then lp[i], le[i] = p, e else lp[i], le[i] = false, p end
    end
    local t2 = clock()
    t_strict, t_lax = t_strict + (t1 - t0), t_lax + (t2 - t1)
    for i = 1, m do
      local n, p, q = names[i], sp[i], lp[i]
      local pk = per_kind[kind_of[i]]
      pk.n = pk.n + 1
      if p == false then lua_error(n, se[i]); p = nil
      elseif not shape_ok(p, se[i]) then fail("P1 strict result shape", n, tostring(se[i])) end
      if q == false then lua_error(n, le[i]); q = nil
      elseif not shape_ok(q, le[i]) then fail("P1 lax result shape", n, tostring(le[i])) end
      if p == nil and sc[i] ~= nil then reasons[sc[i]] = (reasons[sc[i]] or 0) + 1 end
      if p ~= nil then
        counts.strict_accepted = counts.strict_accepted + 1
        pk.strict = pk.strict + 1
        local enc, ref = encode(p), encode_reference(p)
        local label_ok = false
        for _, w in ipairs({ enc, ref }) do
          if n == w or (#n > #w and sub(n, -#w - 1) == "." .. w) then
            local prefix = sub(n, 1, #n - #w)
            if prefix == "" or (byte(prefix, 1) ~= 46 and not find(prefix, "..", 1, true)) then label_ok = true end
          end
        end
        if not label_ok then fail("P2 strict accepted a name no encoder writes", n, "(canonical " .. show(enc) .. ")") end
        -- Not a property (decode reads only the last label; Prosody's nameprep
        -- guards the rest): accepted names whose subdomain part is not LDH.
        if find(sub(n, 1, #n - #enc), "[^%w%.%-]") then counts.odd_subdomain = counts.odd_subdomain + 1 end
        if q ~= p then fail("P3 strict accepted, lax differs", n, q and "(other address)" or tostring(le[i])) end
      end
      if q ~= nil then
        counts.lax_accepted = counts.lax_accepted + 1
        pk.lax = pk.lax + 1
        if p == nil then
          counts.lax_only = counts.lax_only + 1
          if not FORGIVEN[sc[i] or ""] then
            fail("P5 lax accepted what strict refuses for a reason lax must share", n, tostring(sc[i]) .. ": " .. tostring(se[i]))
          end
          local okc, canon = pcall(encode, q)
          local okd, back = pcall(decode, okc and canon or "")
          if not (okc and okd and back == q) then fail("P5 canonical name of lax's address does not round-trip", n) end
        end
      end
      -- P4: lax == strict of the name with its label lowercased (when strict takes that)
      if sub(n, -#SUFFIX) == SUFFIX then
        local label, prefix = label_of(n)
        local lowered = prefix .. lower(label) .. SUFFIX
        local okl, pl = pcall(decode, lowered)
        if not okl then lua_error(lowered, pl)
        elseif pl ~= nil and q ~= pl then
          fail("P4 lax differs from strict of the lowercased label", n, q and "(other address)" or tostring(le[i]))
        end
      end
    end
    done = done + m
    counts.names = done
  end
  local elapsed = clock() - t_start

  local r = {
    lua = jit and jit.version or _VERSION, seed = seed, names = counts.names, digest = digest,
    strict_accepted = counts.strict_accepted, lax_accepted = counts.lax_accepted, lax_only = counts.lax_only,
    lua_errors = counts.lua_errors, violations = counts.violations, odd_subdomain = counts.odd_subdomain,
    strict_per_s = counts.names / t_strict, lax_per_s = counts.names / t_lax,
    checked_per_s = counts.names / elapsed, cpu_s = elapsed,
    kinds = {}, reasons = reasons, examples = examples,
  }
  for i, name in ipairs(kinds) do r.kinds[name] = per_kind[i] end
  if not quiet then
    print(string.format("%s: %d names (seed %d, digest %d), strict accepted %d, lax accepted %d (%d lax only)",
      r.lua, r.names, seed, digest, r.strict_accepted, r.lax_accepted, r.lax_only))
    for i, name in ipairs(kinds) do
      local pk = per_kind[i]
      print(string.format("  %-20s %8d names  strict %8d  lax %8d", name, pk.n, pk.strict, pk.lax))
    end
    local codes = {}
    for code in pairs(reasons) do codes[#codes + 1] = code end
    table.sort(codes)
    local parts = {}
    for _, code in ipairs(codes) do parts[#parts + 1] = code .. " " .. reasons[code] end
    print("  strict refusals by reason: " .. table.concat(parts, ", "))
    print(string.format("  decode rate (pcall each): strict %.0f/s, lax %.0f/s; all checks %.0f names/s (%.1f s CPU)",
      r.strict_per_s, r.lax_per_s, r.checked_per_s, elapsed))
    print(string.format("  accepted with bytes other than letters, digits, '-', '.' before the label: strict %d (not checked: decode reads only the last label)", r.odd_subdomain))
    print(string.format("  Lua errors %d, property violations %d", r.lua_errors, r.violations))
    for _, e in ipairs(examples) do print("  " .. e) end
    local kj = {}
    for _, name in ipairs(kinds) do
      local pk = r.kinds[name]
      kj[#kj + 1] = string.format('"%s":{"n":%d,"strict":%d,"lax":%d}', name, pk.n, pk.strict, pk.lax)
    end
    local rj = {}
    for _, code in ipairs(codes) do rj[#rj + 1] = string.format('"%s":%d', code, reasons[code]) end
    print(string.format('{"kind":"names_fuzz","lua":"%s","names":%d,"seed":%d,"digest":%d,"strict_accepted":%d,' ..
      '"lax_accepted":%d,"lax_only":%d,"odd_subdomain_strict_accepted":%d,"lua_errors":%d,"violations":%d,"strict_per_s":%.0f,"lax_per_s":%.0f,' ..
      '"checked_per_s":%.0f,"cpu_s":%.2f,"kinds":{%s},"strict_reasons":{%s}}',
      r.lua, r.names, seed, digest, r.strict_accepted, r.lax_accepted, r.lax_only, r.odd_subdomain, r.lua_errors, r.violations,
      r.strict_per_s, r.lax_per_s, r.checked_per_s, elapsed, table.concat(kj, ","), table.concat(rj, ",")))
  end
  return r
end

-- Run as a script (not when loaded by dofile from a spec).
if arg and arg[0] and string.find(arg[0], "names%-fuzz%.lua$") then
  local r = M.run { dist = arg[1], names = tonumber(arg[2] or "1000000"), seed = tonumber(arg[3] or "20261130") }
  os.exit((r.lua_errors == 0 and r.violations == 0) and 0 or 1)
end
return M
