-- Unit tests for the TCP bookkeeping that v6alt-dnsd and the in-Prosody
-- listener share (SPEC.md section 6, "Over TCP"): dns.tcp_pool/tcp_admit/
-- tcp_release (connection limits) and dns.tcp_state/tcp_received/tcp_next/
-- tcp_wrote/tcp_sent/tcp_paused/tcp_expired (framing, the unread cap, the
-- deadlines).  Run with busted on Lua 5.1-5.4 and LuaJIT:
--   lua5.4 /usr/bin/busted spec/dns_tcp_spec.lua

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "spec"
local root = spec_dir:match("^(.*)[/\\][^/\\]*$") or "."
local dist = os.getenv("V6ALT_DIST") or (root .. "/dist")
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local dns = require("mod_s2s_v6mesh.dns")

local function u16(n) return string.char(math.floor(n / 256) % 256, n % 256) end
local function framed(msg) return u16(#msg) .. msg end
-- A message of n bytes whose first two bytes carry i (so order shows).
local function msg(i, n)
  n = n or 30
  return u16(i) .. string.rep("x", n - 2)
end

describe("mod_s2s_v6mesh.dns TCP limits", function()
  it("states the numbers", function()
    assert.are.equal(100, dns.TCP_MAX_CONNECTIONS)
    assert.are.equal(100, dns.TCP_MAX_REFUSED)
    assert.are.equal(10, dns.TCP_MAX_PER_SOURCE)
    assert.are.equal(10, dns.TCP_IDLE_TIMEOUT)
    assert.are.equal(5, dns.TCP_QUERY_DEADLINE)
    assert.are.equal(16384, dns.TCP_MAX_UNREAD)
    assert.are.equal(4096, dns.TCP_READ_SIZE)
    assert.are.equal(2 + 65535 + 4096, dns.TCP_MAX_INPUT)
  end)

  it("admits TCP_MAX_CONNECTIONS allowed connections, TCP_MAX_PER_SOURCE from each source", function()
    local pool = dns.tcp_pool()
    for i = 1, 10 do
      assert.is_nil(dns.tcp_admit(pool, "fd00::1", true), "connection " .. i)
    end
    assert.are.equal("source", dns.tcp_admit(pool, "fd00::1", true))
    assert.are.equal("source", dns.tcp_admit(pool, "fd00::1", false))
    -- 9 more sources fill the cap; a new source is then refused by it
    for s = 2, 10 do
      for _ = 1, 10 do assert.is_nil(dns.tcp_admit(pool, "fd00::" .. s, true)) end
    end
    assert.are.equal(100, pool.allowed)
    assert.are.equal("connections", dns.tcp_admit(pool, "fd00::99", true))
    -- a release frees a slot, for that source and for the pool
    dns.tcp_release(pool, "fd00::1", true)
    assert.is_nil(dns.tcp_admit(pool, "fd00::1", true))
    assert.are.equal("source", dns.tcp_admit(pool, "fd00::1", true))
    dns.tcp_release(pool, "fd00::3", true)
    assert.is_nil(dns.tcp_admit(pool, "fd00::99", true))
  end)

  it("counts refused sources apart: they never take an allowed client's slot", function()
    local pool = dns.tcp_pool()
    for s = 1, 10 do
      for _ = 1, 10 do assert.is_nil(dns.tcp_admit(pool, "2001:db8::" .. s, false)) end
    end
    assert.are.equal(100, pool.refused)
    assert.are.equal(0, pool.allowed)
    assert.are.equal("refused", dns.tcp_admit(pool, "2001:db8::99", false))
    for s = 1, 10 do
      for _ = 1, 10 do assert.is_nil(dns.tcp_admit(pool, "fd00::" .. s, true)) end
    end
    assert.are.equal(100, pool.allowed)
  end)

  it("forgets a source once its last connection is released", function()
    local pool = dns.tcp_pool()
    assert.is_nil(dns.tcp_admit(pool, "::1", true))
    assert.is_nil(dns.tcp_admit(pool, "::1", true))
    dns.tcp_release(pool, "::1", true)
    assert.are.equal(1, pool.bySource["::1"])
    dns.tcp_release(pool, "::1", true)
    assert.is_nil(pool.bySource["::1"])
    assert.are.equal(0, pool.allowed)
    assert.is_nil(next(pool.bySource))
  end)
end)

describe("mod_s2s_v6mesh.dns TCP framing", function()
  it("takes whole messages in order, across any split", function()
    local stream = framed(msg(1)) .. framed(msg(2, 12)) .. framed(msg(3, 500)) .. framed("")
    for _, step in ipairs({ 1, 2, 3, 7, 64, #stream }) do
      local s = dns.tcp_state(true, 0)
      local got = {}
      for pos = 1, #stream, step do
        assert.is_true(dns.tcp_received(s, stream:sub(pos, pos + step - 1), 0))
        while true do
          local m = dns.tcp_next(s, 0)
          if m == nil then break end
          got[#got + 1] = m
        end
      end
      assert.are.same({ msg(1), msg(2, 12), msg(3, 500), "" }, got, "split every " .. step)
      assert.are.equal("", s.input)
      assert.is_nil(s.partialSince)
    end
  end)

  it("stops answering at TCP_MAX_UNREAD bytes of unread replies and goes on after they are sent", function()
    local s = dns.tcp_state(true, 0)
    local n = 2000
    local all = {}
    for i = 1, n do all[i] = framed(msg(i)) end
    assert.is_true(dns.tcp_received(s, table.concat(all, "", 1, 1000), 0))
    local got, written = {}, 0
    local function take()
      while true do
        local m = dns.tcp_next(s, 1)
        if m == nil then return end
        got[#got + 1] = m
        dns.tcp_wrote(s, 50)
        written = written + 50
      end
    end
    take()
    assert.is_true(dns.tcp_paused(s))
    assert.are.equal(math.ceil(dns.TCP_MAX_UNREAD / 50), #got)
    assert.is_true(s.unread >= dns.TCP_MAX_UNREAD)
    -- nothing more while paused, however long it waits (the idle timer applies)
    assert.is_nil(dns.tcp_next(s, 2))
    assert.is_nil(dns.tcp_expired(s, 1 + dns.TCP_IDLE_TIMEOUT - 0.5))
    assert.are.equal("idle", dns.tcp_expired(s, 1 + dns.TCP_IDLE_TIMEOUT))
    -- a drain: everything went out; the rest is answered, in order
    while #got < 1000 do
      dns.tcp_sent(s, s.unread, 3)
      assert.is_false(dns.tcp_paused(s))
      take()
    end
    assert.is_true(dns.tcp_received(s, table.concat(all, "", 1001, n), 4))
    while #got < n do
      dns.tcp_sent(s, 1000, 5) -- part of it went out (v6alt-dnsd)
      take()
    end
    for i = 1, n do assert.are.equal(msg(i), got[i]) end
    assert.are.equal(n * 50, written)
  end)

  it("refuses to hold more than TCP_MAX_INPUT bytes of input", function()
    local s = dns.tcp_state(true, 0)
    assert.is_true(dns.tcp_received(s, string.rep("\255", dns.TCP_MAX_INPUT), 0))
    assert.is_false(dns.tcp_received(s, "x", 0))
    assert.are.equal(dns.TCP_MAX_INPUT, #s.input)
  end)

  it("gives a refused source its first message only, then reads nothing", function()
    local s = dns.tcp_state(false, 0)
    assert.is_false(dns.tcp_paused(s))
    assert.is_true(dns.tcp_received(s, framed(msg(1)) .. framed(msg(2)), 0))
    assert.are.equal(msg(1), dns.tcp_next(s, 0))
    assert.is_true(s.done)
    assert.is_true(dns.tcp_paused(s))
    assert.is_nil(dns.tcp_next(s, 0))
    assert.are.equal("", s.input)
    assert.is_true(dns.tcp_received(s, framed(msg(3)), 0))
    assert.are.equal("", s.input)
  end)
end)

describe("mod_s2s_v6mesh.dns TCP deadlines", function()
  local D, IDLE = 5, 10

  it("closes a silent allowed connection after the idle timeout", function()
    local s = dns.tcp_state(true, 100)
    assert.is_nil(dns.tcp_expired(s, 100 + IDLE - 0.01))
    assert.are.equal("idle", dns.tcp_expired(s, 100 + IDLE))
  end)

  it("closes a query that is not whole within the deadline of its first byte, however it trickles", function()
    local s = dns.tcp_state(true, 100)
    local m = framed(msg(1))
    for t = 0, 4 do
      assert.is_true(dns.tcp_received(s, m:sub(t + 1, t + 1), 101 + t))
      assert.is_nil(dns.tcp_next(s, 101 + t))
      assert.is_nil(dns.tcp_expired(s, 101 + t))
    end
    assert.are.equal(101, s.partialSince)
    assert.is_nil(dns.tcp_expired(s, 101 + D - 0.01))
    assert.are.equal("deadline", dns.tcp_expired(s, 101 + D))
  end)

  it("starts the deadline afresh for each message, and a whole query keeps the connection", function()
    local s = dns.tcp_state(true, 0)
    local a, b = framed(msg(1)), framed(msg(2))
    assert.is_true(dns.tcp_received(s, a:sub(1, 5), 1))
    assert.are.equal(1, s.partialSince)
    assert.is_true(dns.tcp_received(s, a:sub(6) .. b:sub(1, 3), 4))
    assert.are.equal(msg(1), dns.tcp_next(s, 4))
    -- the second message's first bytes came with the first one's last
    assert.are.equal(4, s.partialSince)
    assert.is_nil(dns.tcp_expired(s, 8.9))
    assert.are.equal("deadline", dns.tcp_expired(s, 9))
    assert.is_true(dns.tcp_received(s, b:sub(4), 8.5))
    assert.is_nil(s.partialSince)
    assert.are.equal(msg(2), dns.tcp_next(s, 8.5))
    assert.is_nil(dns.tcp_expired(s, 8.5 + IDLE - 0.01))
    assert.are.equal("idle", dns.tcp_expired(s, 8.5 + IDLE))
  end)

  it("does not run the deadline while reading is paused, and restarts it after", function()
    local s = dns.tcp_state(true, 0)
    local whole = {}
    -- 100-byte replies: 164 fill the cap (16,400 bytes), so 328 fill it twice
    for i = 1, 328 do whole[i] = framed(msg(i)) end
    local partial = framed(msg(329)):sub(1, 4)
    assert.is_true(dns.tcp_received(s, table.concat(whole) .. partial, 0))
    local n = 0
    while dns.tcp_next(s, 0) do
      n = n + 1
      dns.tcp_wrote(s, 100)
    end
    assert.is_true(dns.tcp_paused(s))
    -- paused with whole messages waiting: no deadline, only the idle timer
    assert.is_nil(dns.tcp_expired(s, 9))
    assert.are.equal(164, n)
    -- drained at 9: the rest is answered, which fills the cap again
    while n < 328 do
      dns.tcp_sent(s, s.unread, 9)
      while dns.tcp_next(s, 9) do
        n = n + 1
        dns.tcp_wrote(s, 100)
      end
    end
    assert.are.equal(328, n)
    assert.is_true(dns.tcp_paused(s))
    assert.is_not_nil(s.partialSince)
    -- paused with a partial message at the head: its rest waits unread in the kernel, no deadline
    assert.is_nil(dns.tcp_expired(s, 13))
    dns.tcp_sent(s, s.unread, 13)
    assert.is_false(dns.tcp_paused(s))
    assert.are.equal(13, s.partialSince)
    assert.is_nil(dns.tcp_expired(s, 13 + D - 0.01))
    assert.are.equal("deadline", dns.tcp_expired(s, 13 + D))
  end)

  it("gives a refused source the deadline from its start, whatever it does", function()
    local s = dns.tcp_state(false, 50)
    assert.is_nil(dns.tcp_expired(s, 50 + D - 0.01))
    assert.are.equal("refused", dns.tcp_expired(s, 50 + D))
    local t = dns.tcp_state(false, 50)
    assert.is_true(dns.tcp_received(t, framed(msg(1)), 51))
    assert.are.equal(msg(1), dns.tcp_next(t, 51))
    dns.tcp_wrote(t, 40)
    dns.tcp_sent(t, 10, 52)
    assert.are.equal("refused", dns.tcp_expired(t, 50 + D))
  end)

  it("counts write progress as activity", function()
    local s = dns.tcp_state(true, 0)
    assert.is_true(dns.tcp_received(s, framed(msg(1)), 0))
    assert.is_not_nil(dns.tcp_next(s, 0))
    dns.tcp_wrote(s, 30)
    dns.tcp_sent(s, 0, 5) -- nothing went out: no progress
    assert.are.equal("idle", dns.tcp_expired(s, IDLE))
    dns.tcp_sent(s, 10, 8)
    assert.is_nil(dns.tcp_expired(s, IDLE))
    assert.are.equal(20, s.unread)
    assert.are.equal("idle", dns.tcp_expired(s, 8 + IDLE))
  end)
end)
