local ____exports = {}
local ____dns = require("mod_s2s_v6mesh.dns")
local TCP_MAX_CONNECTIONS = ____dns.TCP_MAX_CONNECTIONS
local TCP_MAX_PER_SOURCE = ____dns.TCP_MAX_PER_SOURCE
local TCP_MAX_REFUSED = ____dns.TCP_MAX_REFUSED
local TCP_READ_SIZE = ____dns.TCP_READ_SIZE
local allowed = ____dns.allowed
local new_allow_list = ____dns.new_allow_list
local parse_listen = ____dns.parse_listen
local refuse = ____dns.refuse
local respond = ____dns.respond
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
local DEFAULT_LISTEN = {"[::1]:5390", "127.0.0.1:5390"}
local DEFAULT_TTL = 3600
local MAX_TTL = 2147483647
--- Datagrams read from one UDP socket per turn of the loop (others get their turn too).
local UDP_BURST = 64
--- Remembered allow decisions for UDP sources (the table is emptied when full).
local ALLOW_CACHE_SIZE = 4096
--- Error lines per minute at most; the rest are counted.
local ERRORS_PER_MINUTE = 10
local USAGE = "Usage: v6alt-dnsd [--listen ADDR:PORT]... [--allow CIDR]... [--ttl SECONDS]\n\nAnswers DNS queries for .v6.alt names, and for the ip6.arpa names of their\naddresses, from the names alone: a .v6.alt name encodes its IPv6 address.\nNo zone, no recursion, no state. Send it only the v6.alt domain (dnsmasq:\nserver=/v6.alt/::1#5390; unbound: stub-zone; systemd-resolved: ~v6.alt).\n\n  --listen ADDR:PORT  serve UDP and TCP there: [::1]:5390 or 127.0.0.1:5390;\n                      repeatable (default: [::1]:5390 and 127.0.0.1:5390).\n                      [::]:5390 and 0.0.0.0:5390 work too, but on a machine\n                      with several addresses list each one instead: a UDP\n                      reply then always comes from the address asked\n  --allow CIDR        also answer sources in this range (200::/7, or IPv4\n                      such as 192.168.1.0/24); repeatable. Loopback is always\n                      allowed; other sources get REFUSED.\n  --ttl SECONDS       TTL of answers and of negative answers, 0..2147483647\n                      (default 3600)\n  --help              print this text\n\nNeeds LuaSocket (Debian: lua-socket). Logs one line to stderr when it starts;\nSIGTERM or SIGINT ends it.\n"
--- Control characters (newlines included) as \ddd: every log line stays one line.
local function oneLine(text)
    local escaped = string.gsub(
        text,
        "%c",
        function(c) return "\\" .. tostring(string.byte(c)) end
    )
    return escaped
end
local function log(message)
    io.stderr:write(("v6alt-dnsd: " .. message) .. "\n")
end
local windowStart = 0
local windowLogged = 0
local windowSuppressed = 0
--- An error or warning, at most ERRORS_PER_MINUTE lines a minute (a flood of bad packets must not flood the log).
local function logLimited(message)
    local now = os.time()
    if now - windowStart >= 60 then
        if windowSuppressed > 0 then
            log(tostring(windowSuppressed) .. " more errors or warnings in the last minute were not logged")
        end
        windowStart = now
        windowLogged = 0
        windowSuppressed = 0
    end
    if windowLogged < ERRORS_PER_MINUTE then
        windowLogged = windowLogged + 1
        log(oneLine(message))
    else
        windowSuppressed = windowSuppressed + 1
    end
end
--- The standalone interpreters (lua, luajit) turn SIGINT into an error
-- "interrupted!" raised in whatever Lua code runs next; every pcall here
-- passes it to this, so Ctrl-C ends the daemon instead of being logged.
local function endOnInterrupt(err)
    if (string.find(
        tostring(err),
        "interrupted!$"
    )) ~= nil then
        os.exit(130)
    end
end
local function optionError(message)
    return nil, oneLine(message)
end
local function parseOptions(args)
    local options = {
        help = false,
        listen = {},
        allowText = {},
        allow = {ranges = {}},
        ttl = DEFAULT_TTL
    }
    local i = 0
    while i < #args do
        do
            local __continue14
            repeat
                local word = tostring(args[i + 1])
                i = i + 1
                local name, value = string.match(word, "^(%-%-[%w%-]+)=(.*)$")
                if name == nil then
                    name = word
                end
                if name == "--help" or name == "-h" then
                    if value ~= nil then
                        return optionError(name .. " takes no value")
                    end
                    options.help = true
                    __continue14 = true
                    break
                end
                if name ~= "--listen" and name ~= "--allow" and name ~= "--ttl" then
                    local what = string.sub(word, 1, 1) == "-" and "option" or "argument"
                    return optionError(((("unknown " .. what) .. " '") .. word) .. "' (see v6alt-dnsd --help)")
                end
                if value == nil then
                    if i >= #args then
                        local example = name == "--listen" and "[::1]:5390" or (name == "--allow" and "200::/7" or "3600")
                        return optionError((((name .. " needs a value, e.g. ") .. name) .. " ") .. example)
                    end
                    value = tostring(args[i + 1])
                    i = i + 1
                end
                if name == "--listen" then
                    local address, port = parse_listen(value)
                    if address == nil then
                        return optionError("--listen: " .. port)
                    end
                    local text = (string.find(address, ":", 1, true)) ~= nil and (("[" .. address) .. "]:") .. tostring(port) or (address .. ":") .. tostring(port)
                    local ____options_listen_0 = options.listen
                    ____options_listen_0[#____options_listen_0 + 1] = {address = address, port = port, text = text}
                elseif name == "--allow" then
                    local ____options_allowText_1 = options.allowText
                    ____options_allowText_1[#____options_allowText_1 + 1] = value
                else
                    local ____temp_2
                    if (string.match(value, "^%d+$")) ~= nil then
                        ____temp_2 = tonumber(value)
                    else
                        ____temp_2 = nil
                    end
                    local ttl = ____temp_2
                    if ttl == nil or ttl > MAX_TTL then
                        return optionError((("--ttl '" .. value) .. "' must be a whole number of seconds from 0 to ") .. tostring(MAX_TTL))
                    end
                    options.ttl = ttl
                end
                __continue14 = true
            until true
            if not __continue14 then
                break
            end
        end
    end
    local allow, err = new_allow_list(options.allowText)
    if allow == nil then
        return optionError("--allow: " .. err)
    end
    options.allow = allow
    if #options.listen == 0 then
        for ____, text in ipairs(DEFAULT_LISTEN) do
            local address, port = parse_listen(text)
            local ____options_listen_3 = options.listen
            ____options_listen_3[#____options_listen_3 + 1] = {address = address, port = port, text = text}
        end
    end
    return options, nil
end
local function isAllowed(d, ip)
    local cached = d.allowCache[ip]
    if cached ~= nil then
        return cached
    end
    local verdict = allowed(d.allow, ip)
    if d.allowCached >= ALLOW_CACHE_SIZE then
        d.allowCache = {}
        d.allowCached = 0
    end
    d.allowCache[ip] = verdict
    d.allowCached = d.allowCached + 1
    return verdict
end
local function reply(d, msg, permitted)
    local ____permitted_4
    if permitted then
        ____permitted_4 = respond(msg, d.ttl)
    else
        ____permitted_4 = refuse(msg)
    end
    return ____permitted_4
end
--- The reply to one message, or undefined; an error in the packet code is logged, never raised.
local function answer(d, msg, permitted, peer, transport)
    local ok, result = pcall(reply, d, msg, permitted)
    if not ok then
        endOnInterrupt(result)
        logLimited((((((("error answering a " .. tostring(#msg)) .. "-byte ") .. transport) .. " message from ") .. peer) .. ": ") .. tostring(result))
        return nil
    end
    return result
end
local function serveUdp(d, udp)
    do
        local i = 0
        while i < UDP_BURST do
            local msg, ip, port = udp:receivefrom(65535)
            if msg == nil then
                return
            end
            local ok, permitted = pcall(isAllowed, d, ip)
            if not ok then
                endOnInterrupt(permitted)
            end
            local out = answer(
                d,
                msg,
                ok and permitted == true,
                ip,
                "UDP"
            )
            if out ~= nil then
                udp:sendto(out, ip, port)
            end
            i = i + 1
        end
    end
end
local function closeConnection(d, conn)
    if d.connections[conn.sock] == nil then
        return
    end
    d.connections[conn.sock] = nil
    tcp_release(d.pool, conn.peer, conn.state.allowed)
    conn.sock:close()
end
--- Answers the whole messages received, in order, while the client keeps up with reading; how many.
local function answerComplete(d, conn, now)
    local state = conn.state
    local answered = 0
    do
        while true do
            local msg = tcp_next(state, now)
            if msg == nil then
                break
            end
            answered = answered + 1
            local out = answer(
                d,
                msg,
                state.allowed,
                conn.peer,
                "TCP"
            )
            if out ~= nil and #out <= 65535 then
                local frame = tcp_frame(out)
                conn.output = conn.output .. frame
                tcp_wrote(state, #frame)
            end
        end
    end
    return answered
end
--- Sends what it can of conn.output without blocking; how many bytes.
local function flush(conn, now)
    if conn.output == "" then
        return 0
    end
    local last, err, partial = conn.sock:send(conn.output)
    local sent = last ~= nil and last or (partial ~= nil and partial or 0)
    if sent > 0 then
        conn.output = string.sub(conn.output, sent + 1)
        tcp_sent(conn.state, sent, now)
    end
    if last == nil and err ~= "timeout" then
        conn.output = ""
        conn.eof = true
    end
    return sent
end
--- Answer and send until neither makes progress; close once the client is
-- gone, or a refused source has its answer, and all is sent.
local function pump(d, conn, now)
    do
        while true do
            local answered = answerComplete(d, conn, now)
            local sent = flush(conn, now)
            if answered == 0 and sent == 0 then
                break
            end
        end
    end
    if (conn.eof or conn.state.done) and conn.output == "" then
        closeConnection(d, conn)
    end
end
local function readConnection(d, conn, now)
    local data, err, partial = conn.sock:receive(TCP_READ_SIZE)
    local got = data ~= nil and data or partial
    if got ~= nil and not tcp_received(conn.state, got, now) then
        closeConnection(d, conn)
        return
    end
    if data == nil and err ~= "timeout" then
        conn.eof = true
    end
    pump(d, conn, now)
end
local function writeConnection(d, conn, now)
    flush(conn, now)
    pump(d, conn, now)
end
--- The line logged (once a minute) when a limit closes new connections.
local function limitText(limit, peer)
    if limit == "source" then
        return ((tostring(TCP_MAX_PER_SOURCE) .. " TCP connections from ") .. peer) .. " are open: closing its new ones until some end (logged once a minute)"
    end
    if limit == "refused" then
        return tostring(TCP_MAX_REFUSED) .. " TCP connections from sources outside the allow list are open: closing new ones until some end (logged once a minute)"
    end
    return tostring(TCP_MAX_CONNECTIONS) .. " TCP connections are open: closing new ones until some end (logged once a minute)"
end
local function acceptConnections(d, server, now)
    do
        local i = 0
        while i < 16 do
            do
                local __continue67
                repeat
                    local sock = server:accept()
                    if sock == nil then
                        return
                    end
                    sock:settimeout(0)
                    local ip = sock:getpeername()
                    local peer = ip ~= nil and ip or "?"
                    local checked, verdict = pcall(isAllowed, d, peer)
                    if not checked then
                        endOnInterrupt(verdict)
                    end
                    local permitted = checked and verdict == true
                    local limit = tcp_admit(d.pool, peer, permitted)
                    if limit ~= nil then
                        sock:close()
                        if now - (d.capWarned[limit] or -60) >= 60 then
                            d.capWarned[limit] = now
                            logLimited(limitText(limit, peer))
                        end
                        __continue67 = true
                        break
                    end
                    d.connections[sock] = {
                        sock = sock,
                        peer = peer,
                        state = tcp_state(permitted, now),
                        output = "",
                        eof = false
                    }
                    __continue67 = true
                until true
                if not __continue67 then
                    break
                end
            end
            i = i + 1
        end
    end
end
--- Runs one connection step; an error closes that connection only.
local function guarded(d, conn, step, now)
    local ok, err = pcall(step, d, conn, now)
    if not ok then
        endOnInterrupt(err)
        logLimited((("error on the TCP connection from " .. conn.peer) .. ": ") .. tostring(err))
        closeConnection(d, conn)
    end
end
local function expire(d, now)
    for ____, conn in pairs(d.connections) do
        if tcp_expired(conn.state, now) ~= nil then
            closeConnection(d, conn)
        end
    end
end
local function openListeners(d, options)
    for ____, ____value in ipairs(options.listen) do
        local address = ____value.address
        local port = ____value.port
        local label = ____value.text
        local v6 = (string.find(address, ":", 1, true)) ~= nil
        local openUdp = v6 and d.lib.udp6 or d.lib.udp4
        local udp, udpErr = openUdp()
        if udp == nil then
            return (("cannot open a UDP socket for " .. label) .. ": ") .. udpErr
        end
        local bound, bindErr = udp:setsockname(address, port)
        if bound == nil then
            return (("cannot listen on UDP " .. label) .. ": ") .. bindErr
        end
        udp:settimeout(0)
        local ____d_udp_5 = d.udp
        ____d_udp_5[#____d_udp_5 + 1] = udp
        d.kind[udp] = "udp"
        local openTcp = v6 and d.lib.tcp6 or d.lib.tcp4
        local server, tcpErr = openTcp()
        if server == nil then
            return (("cannot open a TCP socket for " .. label) .. ": ") .. tcpErr
        end
        server:setoption("reuseaddr", true)
        local tcpBound, tcpBindErr = server:bind(address, port)
        if tcpBound == nil then
            return (("cannot listen on TCP " .. label) .. ": ") .. tcpBindErr
        end
        local listening, listenErr = server:listen(64)
        if listening == nil then
            return (("cannot listen on TCP " .. label) .. ": ") .. listenErr
        end
        server:settimeout(0)
        local ____d_servers_6 = d.servers
        ____d_servers_6[#____d_servers_6 + 1] = server
        d.kind[server] = "server"
    end
    return nil
end
local function listenTexts(options)
    local texts = {}
    for ____, listen in ipairs(options.listen) do
        texts[#texts + 1] = listen.text
    end
    return table.concat(texts, ", ")
end
local function turn(d)
    local recvt = {}
    local sendt = {}
    for ____, udp in ipairs(d.udp) do
        recvt[#recvt + 1] = udp
    end
    for ____, server in ipairs(d.servers) do
        recvt[#recvt + 1] = server
    end
    for sock, conn in pairs(d.connections) do
        if not conn.eof and not tcp_paused(conn.state) then
            recvt[#recvt + 1] = sock
        end
        if conn.output ~= "" then
            sendt[#sendt + 1] = sock
        end
    end
    local readable, writable, err = d.lib.select(recvt, sendt, 1)
    local now = d.lib.gettime()
    if readable == nil or writable == nil then
        return err ~= nil and err or "select failed"
    end
    for ____, sock in ipairs(writable) do
        local conn = d.connections[sock]
        if conn ~= nil then
            guarded(d, conn, writeConnection, now)
        end
    end
    for ____, sock in ipairs(readable) do
        local kind = d.kind[sock]
        if kind == "udp" then
            local ok, problem = pcall(serveUdp, d, sock)
            if not ok then
                endOnInterrupt(problem)
            end
            if not ok then
                logLimited("error on a UDP socket: " .. tostring(problem))
            end
        elseif kind == "server" then
            local ok, problem = pcall(acceptConnections, d, sock, now)
            if not ok then
                endOnInterrupt(problem)
            end
            if not ok then
                logLimited("error accepting a TCP connection: " .. tostring(problem))
            end
        else
            local conn = d.connections[sock]
            if conn ~= nil then
                guarded(d, conn, readConnection, now)
            end
        end
    end
    expire(d, now)
    return nil
end
--- Runs v6alt-dnsd with the command-line arguments `args` (Lua's `arg`).
-- Returns the exit code: 0 after --help, 2 for bad options, 1 when it
-- cannot listen; otherwise it serves until a signal ends the process.
function ____exports.main(args)
    local options, problem = parseOptions(args ~= nil and args or ({}))
    if options == nil then
        log(problem)
        return 2
    end
    if options.help then
        io.stdout:write(USAGE)
        return 0
    end
    local found, lib = pcall(require, "socket")
    if not found then
        log("LuaSocket is missing (Debian: apt install lua-socket): " .. oneLine(tostring(lib)))
        return 1
    end
    local d = {
        lib = lib,
        ttl = options.ttl,
        allow = options.allow,
        udp = {},
        servers = {},
        kind = {},
        connections = {},
        pool = tcp_pool(),
        allowCache = {},
        allowCached = 0,
        capWarned = {}
    }
    local failed = openListeners(d, options)
    if failed ~= nil then
        log(oneLine(failed))
        return 1
    end
    local allowText = {"loopback"}
    for ____, text in ipairs(options.allowText) do
        allowText[#allowText + 1] = text
    end
    log(oneLine((("answering .v6.alt and ip6.arpa on UDP and TCP " .. listenTexts(options)) .. "; ") .. (((((("allowed sources: " .. table.concat(allowText, ", ")) .. "; ttl ") .. tostring(options.ttl)) .. "; ") .. _VERSION) .. ", ") .. tostring(lib._VERSION)))
    local failures = 0
    do
        while true do
            local ok, err = pcall(turn, d)
            if not ok then
                endOnInterrupt(err)
            end
            local trouble = not ok and tostring(err) or err
            if trouble == nil or trouble == "timeout" then
                failures = 0
            else
                failures = failures + 1
                logLimited("error in the main loop: " .. trouble)
                if failures >= 100 then
                    log("giving up after 100 failed turns of the main loop in a row")
                    return 1
                end
            end
        end
    end
end
return ____exports
