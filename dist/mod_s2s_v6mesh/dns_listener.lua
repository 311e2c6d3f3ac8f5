local ____exports = {}
local ____dns = require("mod_s2s_v6mesh.dns")
local TCP_MAX_CONNECTIONS = ____dns.TCP_MAX_CONNECTIONS
local TCP_MAX_PER_SOURCE = ____dns.TCP_MAX_PER_SOURCE
local TCP_MAX_REFUSED = ____dns.TCP_MAX_REFUSED
local TCP_READ_SIZE = ____dns.TCP_READ_SIZE
local tcp_admit = ____dns.tcp_admit
local tcp_expired = ____dns.tcp_expired
local tcp_frame = ____dns.tcp_frame
local tcp_next = ____dns.tcp_next
local tcp_paused = ____dns.tcp_paused
local tcp_pool = ____dns.tcp_pool
local tcp_received = ____dns.tcp_received
local tcp_release = ____dns.tcp_release
local tcp_sent = ____dns.tcp_sent
local tcp_state = ____dns.tcp_state
local tcp_wrote = ____dns.tcp_wrote
--- Seconds between checks of the TCP deadlines.
local TICK = 1
--- Datagrams read from a UDP socket per wake-up, so one busy client cannot hog the loop.
local UDP_BURST = 64
--- Serve DNS on each [address, port], UDP and TCP; returns a function that
-- closes it all. Errors opening an address are logged, the others still open.
function ____exports.listen(ctx, addresses)
    local closers = {}
    local clients = {}
    local pool = tcp_pool()
    local warned = {}
    local gettime = ctx.socket.gettime
    local ticking = false
    local closed = false
    --- The connection ended or is being ended: it no longer counts.
    local function forget(client)
        if clients[client.conn] ~= client then
            return
        end
        clients[client.conn] = nil
        tcp_release(pool, client.ip, client.state.allowed)
    end
    --- Close now, dropping unsent replies (close() would wait for a client that does not read).
    local function drop(client)
        forget(client)
        local conn = client.conn
        if conn.destroy ~= nil then
            conn:destroy()
        elseif conn.force_close ~= nil then
            conn:force_close()
        else
            conn:close()
        end
    end
    local function tick()
        if closed then
            ticking = false
            return nil
        end
        local now = gettime()
        local expired = {}
        local open = 0
        for ____, client in pairs(clients) do
            if tcp_expired(client.state, now) ~= nil then
                expired[#expired + 1] = client
            else
                open = open + 1
            end
        end
        for ____, client in ipairs(expired) do
            drop(client)
        end
        if open == 0 then
            ticking = false
            return nil
        end
        return TICK
    end
    --- Answer what has arrived whole, in order, up to the unread cap; then pause or resume reading.
    local function pump(client)
        if client.busy or client.closing then
            return
        end
        client.busy = true
        local state = client.state
        local conn = client.conn
        local now = gettime()
        do
            while true do
                local message = tcp_next(state, now)
                if message == nil then
                    break
                end
                local reply = ctx.answer(message, client.ip)
                if reply ~= nil and #reply <= 65535 then
                    local frame = tcp_frame(reply)
                    tcp_wrote(state, #frame)
                    conn:write(frame)
                    if clients[conn] ~= client then
                        return
                    end
                end
            end
        end
        client.busy = false
        if state.done then
            client.closing = true
            if not client.paused then
                conn:pause()
            end
            client.paused = true
            conn:close()
            return
        end
        local pause = tcp_paused(state)
        if pause and not client.paused then
            conn:pause()
        elseif not pause and client.paused then
            conn:resume()
        end
        client.paused = pause
    end
    local function limitReached(limit, ip)
        local now = gettime()
        local last = warned[limit]
        local level = (last == nil or now - last >= 60) and "warn" or "debug"
        if level == "warn" then
            warned[limit] = now
        end
        if limit == "source" then
            ctx.log(level, "%d DNS connections from [%s] are open: closing its new ones (logged once a minute)", TCP_MAX_PER_SOURCE, ip)
        elseif limit == "refused" then
            ctx.log(level, "%d DNS connections from sources outside s2s_v6mesh_dns_allow are open: closing new ones (logged once a minute)", TCP_MAX_REFUSED)
        else
            ctx.log(level, "%d DNS connections are open: closing new ones (logged once a minute)", TCP_MAX_CONNECTIONS)
        end
    end
    local listeners = {
        onconnect = function(conn)
            if closed then
                conn:close()
                return
            end
            local ip = conn:ip() or "?"
            local permitted = ctx.allowed(ip)
            local limit = tcp_admit(pool, ip, permitted)
            if limit ~= nil then
                limitReached(limit, ip)
                conn:close()
                return
            end
            clients[conn] = {
                conn = conn,
                ip = ip,
                state = tcp_state(
                    permitted,
                    gettime()
                ),
                paused = false,
                busy = false,
                closing = false
            }
            if not ticking then
                ticking = true
                ctx.timer(TICK, tick)
            end
        end,
        onincoming = function(conn, data)
            local client = clients[conn]
            if client == nil or client.closing then
                return
            end
            if not tcp_received(
                client.state,
                data,
                gettime()
            ) then
                drop(client)
                return
            end
            pump(client)
        end,
        ondrain = function(conn)
            local client = clients[conn]
            if client == nil then
                return
            end
            tcp_sent(
                client.state,
                client.state.unread,
                gettime()
            )
            pump(client)
        end,
        ondisconnect = function(conn)
            local client = clients[conn]
            if client ~= nil then
                forget(client)
            end
        end
    }
    for ____, ____value in ipairs(addresses) do
        local address = ____value[1]
        local port = ____value[2]
        local before = #closers
        local newUdp = (string.find(address, ":", 1, true)) ~= nil and ctx.socket.udp6 or ctx.socket.udp4
        local udp, bindErr = newUdp()
        local bound
        if udp ~= nil then
            bound, bindErr = udp:setsockname(address, port)
        end
        if udp == nil or bound == nil then
            ctx.log(
                "error",
                "Cannot serve .v6.alt DNS on UDP [%s]:%d: %s",
                address,
                port,
                tostring(bindErr)
            )
            if udp ~= nil then
                udp:close()
            end
        else
            local sock = udp
            sock:settimeout(0)
            local watcher = ctx.server.watchfd(
                sock,
                function()
                    do
                        local i = 0
                        while i < UDP_BURST do
                            local message, ip, fromPort = sock:receivefrom()
                            if message == nil then
                                break
                            end
                            local reply = ctx.answer(message, ip)
                            if reply ~= nil then
                                sock:sendto(reply, ip, fromPort)
                            end
                            i = i + 1
                        end
                    end
                end
            )
            closers[#closers + 1] = function()
                watcher:close()
                sock:close()
            end
        end
        local tcp, listenErr = ctx.server.listen(address, port, listeners, {read_size = TCP_READ_SIZE})
        if tcp == nil then
            ctx.log(
                "error",
                "Cannot serve .v6.alt DNS on TCP [%s]:%d: %s",
                address,
                port,
                tostring(listenErr)
            )
        else
            closers[#closers + 1] = function() return tcp:close() end
        end
        if #closers > before then
            ctx.log("info", "Serving .v6.alt names over DNS on [%s]:%d", address, port)
        end
    end
    return function()
        closed = true
        for ____, close in ipairs(closers) do
            close()
        end
        local open = {}
        for ____, client in pairs(clients) do
            open[#open + 1] = client
        end
        for ____, client in ipairs(open) do
            drop(client)
        end
    end
end
return ____exports
