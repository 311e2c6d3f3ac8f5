local ____exports = {}
local ____v6alt = require("mod_s2s_v6mesh.v6alt")
local decode = ____v6alt.decode
local encode = ____v6alt.encode
local parse_ip = ____v6alt.parse_ip
local ____policy = require("mod_s2s_v6mesh.policy")
local contains = ____policy.contains
local parse_cidr = ____policy.parse_cidr
local special_block = ____policy.special_block
local TYPE_SOA = 6
local TYPE_PTR = 12
local TYPE_AAAA = 28
local TYPE_SRV = 33
local TYPE_OPT = 41
local CLASS_IN = 1
local NOERROR = 0
local FORMERR = 1
local NXDOMAIN = 3
local NOTIMP = 4
local REFUSED = 5
local BADVERS = 16
--- The UDP payload size this resolver announces in its OPT records.
local UDP_PAYLOAD = 1232
local byte = string.byte
local char = string.char
local sub = string.sub
local lower = string.lower
local function u16(n)
    return char(
        math.floor(n / 256) % 256,
        n % 256
    )
end
local function u32(n)
    return u16(math.floor(n / 65536)) .. u16(n % 65536)
end
--- Skip a name starting at `pos` (1-based); the position after it, or
-- undefined when it runs past the end. Compression pointers are stepped over,
-- not followed, so no loop is possible.
local function skipName(msg, pos)
    local length = #msg
    do
        local steps = 0
        while steps < 128 do
            if pos > length then
                return nil
            end
            local len = byte(msg, pos)
            if len == 0 then
                return pos + 1
            end
            if len >= 192 then
                return pos + 2 <= length + 1 and pos + 2 or nil
            end
            if len > 63 then
                return nil
            end
            pos = pos + 1 + len
            steps = steps + 1
        end
    end
    return nil
end
--- Read the question name at `pos`: labels, or undefined (compression and bad lengths are refused).
local function readQuestionName(msg, pos)
    local labels = {}
    local total = 0
    local length = #msg
    do
        while true do
            if pos > length then
                return nil, nil
            end
            local len = byte(msg, pos)
            if len == 0 then
                return labels, pos + 1
            end
            if len > 63 then
                return nil, nil
            end
            total = total + (len + 1)
            if total > 254 or pos + len > length then
                return nil, nil
            end
            labels[#labels + 1] = sub(msg, pos + 1, pos + len)
            pos = pos + 1 + len
        end
    end
end
local function parse(msg)
    local length = #msg
    if length < 12 then
        return nil
    end
    local b3 = byte(msg, 3)
    if b3 >= 128 then
        return nil
    end
    local query = {
        id = sub(msg, 1, 2),
        opcode = math.floor(b3 / 8) % 16,
        rd = b3 % 2 == 1,
        labels = {},
        qtype = 0,
        qclass = 0,
        edns = false,
        ednsVersion = 0,
        malformed = false
    }
    local q1, q2, a1, a2, n1, n2, r1, r2 = byte(msg, 5, 12)
    local qdcount = q1 * 256 + q2
    local ancount = a1 * 256 + a2
    local nscount = n1 * 256 + n2
    local arcount = r1 * 256 + r2
    local pos = 13
    if query.opcode == 0 and qdcount == 1 then
        local labels, after = readQuestionName(msg, 13)
        if labels ~= nil and after + 3 <= length then
            local t1, t2, c1, c2 = byte(msg, after, after + 3)
            query.labels = labels
            query.qtype = t1 * 256 + t2
            query.qclass = c1 * 256 + c2
            query.question = sub(msg, 13, after + 3)
            pos = after + 4
        else
            query.malformed = true
        end
    else
        query.malformed = qdcount ~= 1
    end
    if query.question == nil then
        do
            local i = 1
            while i <= qdcount do
                local nameEnd = skipName(msg, pos)
                if nameEnd == nil or nameEnd + 3 > length then
                    query.malformed = true
                    return query
                end
                pos = nameEnd + 4
                i = i + 1
            end
        end
    end
    local records = ancount + nscount + arcount
    do
        local i = 1
        while i <= records do
            local nameEnd = skipName(msg, pos)
            if nameEnd == nil or nameEnd + 9 > length then
                query.malformed = true
                return query
            end
            local y1, y2 = byte(msg, nameEnd, nameEnd + 1)
            local v1, v2 = byte(msg, nameEnd + 8, nameEnd + 9)
            local rdEnd = nameEnd + 10 + v1 * 256 + v2
            if rdEnd > length + 1 then
                query.malformed = true
                return query
            end
            if y1 * 256 + y2 == TYPE_OPT then
                if query.edns or i <= ancount + nscount or byte(msg, pos) ~= 0 then
                    query.malformed = true
                    return query
                end
                query.edns = true
                query.ednsVersion = byte(msg, nameEnd + 5)
            end
            pos = rdEnd
            i = i + 1
        end
    end
    return query
end
--- Header and question of the reply; `records` are appended by the caller and counted here.
local function header(query, rcode, answers, authority, withQuestion)
    local authoritative = rcode == NOERROR or rcode == NXDOMAIN
    local flags1 = 128 + query.opcode * 8 + (authoritative and 4 or 0) + (query.rd and 1 or 0)
    local questions = withQuestion and query.question ~= nil and 1 or 0
    return (((((query.id .. char(flags1, rcode % 16)) .. u16(questions)) .. u16(answers)) .. u16(authority)) .. u16(query.edns and 1 or 0)) .. (questions == 1 and query.question or "")
end
local function optRecord(rcode)
    return ((("\0" .. u16(TYPE_OPT)) .. u16(UDP_PAYLOAD)) .. char(
        math.floor(rcode / 16),
        0,
        0,
        0
    )) .. u16(0)
end
local function reply(query, rcode, withQuestion, answer, soa)
    local out = header(
        query,
        rcode,
        answer ~= nil and 1 or 0,
        soa ~= nil and 1 or 0,
        withQuestion
    )
    if answer ~= nil then
        out = out .. answer
    end
    if soa ~= nil then
        out = out .. soa
    end
    if query.edns then
        out = out .. optRecord(rcode)
    end
    return out
end
--- A compression pointer to a position in the message (0-based offset).
local function pointer(offset)
    return u16(49152 + offset)
end
--- Offset of the question name in every reply (right after the 12-byte header).
local QNAME_OFFSET = 12
--- Offset, in the reply, of the question's labels from index `first` (1-based) on.
local function labelOffset(labels, first)
    local offset = QNAME_OFFSET
    do
        local i = 0
        while i < first - 1 do
            offset = offset + (#labels[i + 1] + 1)
            i = i + 1
        end
    end
    return offset
end
--- The SOA of v6.alt for negative answers (RFC 2308), its owner compressed where it can be.
local function soaRecord(query, ttl, underV6alt)
    local labels = query.labels
    local ownerOffset = underV6alt and labelOffset(labels, #labels - 1) or QNAME_OFFSET + #query.question
    local owner = underV6alt and pointer(ownerOffset) or "v6alt\0"
    local tail = pointer(ownerOffset)
    local rdata = ((((((("ns" .. tail) .. "\nhostmaster") .. tail) .. u32(1)) .. u32(3600)) .. u32(600)) .. u32(86400)) .. u32(ttl)
    return ((((owner .. u16(TYPE_SOA)) .. u16(CLASS_IN)) .. u32(ttl)) .. u16(#rdata)) .. rdata
end
--- A name in wire form (uncompressed).
local function wireName(name)
    local out = ""
    for label in string.gmatch(name, "[^.]+") do
        out = (out .. char(#label)) .. label
    end
    return out .. "\0"
end
local function hexNibble(label)
    if #label ~= 1 then
        return nil
    end
    local value = tonumber(label, 16)
    return value
end
--- Labels 1..count of the question are nibbles: the packed address they spell (PTR order), or undefined.
local function arpaAddress(labels)
    local packed = ""
    do
        local i = 31
        while i >= 1 do
            local high = hexNibble(labels[i + 1])
            local low = hexNibble(labels[i])
            if high == nil or low == nil then
                return nil
            end
            packed = packed .. char(high * 16 + low)
            i = i - 2
        end
    end
    return packed
end
--- Classify the question's zone by its last two labels, compared case-insensitively.
local function zoneOf(labels)
    local n = #labels
    if n < 2 then
        return nil
    end
    local second = lower(labels[n - 2 + 1])
    local last = lower(labels[n])
    if second == "v6" and last == "alt" then
        return "v6alt"
    end
    if second == "ip6" and last == "arpa" then
        return "arpa"
    end
    return nil
end
--- The dotted, lowercased name of labels first..last, or undefined when a label holds a dot.
local function dotted(labels, first, last)
    local parts = {}
    do
        local i = first
        while i <= last do
            local label = labels[i]
            if (string.find(label, ".", 1, true)) ~= nil then
                return nil
            end
            parts[#parts + 1] = lower(label)
            i = i + 1
        end
    end
    return table.concat(parts, ".")
end
--- A .v6.alt name as DNS asks for it: the address, or undefined (malformed, non-canonical, special).
local function addressOf(name)
    if name == nil then
        return nil
    end
    local packed = decode(name)
    if packed == nil then
        return nil
    end
    local block = special_block(packed)
    return block == nil and packed or nil
end
--- The reply to a DNS query (a message without the TCP length prefix), or
-- undefined when none is due (a response, or fewer than 12 bytes).
function ____exports.respond(msg, ttl)
    local query = parse(msg)
    if query == nil then
        return nil
    end
    if query.opcode ~= 0 then
        return reply(query, NOTIMP, false)
    end
    if query.malformed or query.question == nil then
        return reply(query, FORMERR, false)
    end
    if query.edns and query.ednsVersion > 0 then
        return reply(query, BADVERS, true)
    end
    local zone = zoneOf(query.labels)
    if zone == nil or query.qclass ~= CLASS_IN then
        return reply(query, REFUSED, true)
    end
    local labels = query.labels
    local n = #labels
    if zone == "v6alt" then
        local ____temp_0
        if n > 2 then
            ____temp_0 = addressOf(dotted(labels, 1, n))
        else
            ____temp_0 = nil
        end
        local address = ____temp_0
        if address == nil then
            return reply(
                query,
                NXDOMAIN,
                true,
                nil,
                soaRecord(query, ttl, true)
            )
        end
        if query.qtype == TYPE_AAAA then
            return reply(
                query,
                NOERROR,
                true,
                ((((pointer(QNAME_OFFSET) .. u16(TYPE_AAAA)) .. u16(CLASS_IN)) .. u32(ttl)) .. u16(16)) .. address
            )
        end
        if query.qtype == TYPE_SRV and n > 4 then
            local service = lower(labels[1])
            local port = service == "_xmpp-client" and 5222 or (service == "_xmpp-server" and 5269 or nil)
            if port ~= nil and lower(labels[2]) == "_tcp" and addressOf(dotted(labels, 3, n)) ~= nil then
                local rdata = ((u16(0) .. u16(0)) .. u16(port)) .. pointer(labelOffset(labels, 3))
                return reply(
                    query,
                    NOERROR,
                    true,
                    ((((pointer(QNAME_OFFSET) .. u16(TYPE_SRV)) .. u16(CLASS_IN)) .. u32(ttl)) .. u16(#rdata)) .. rdata
                )
            end
        end
        return reply(
            query,
            NOERROR,
            true,
            nil,
            soaRecord(query, ttl, true)
        )
    end
    do
        local i = 0
        while i < n - 2 do
            if i >= 32 or hexNibble(labels[i + 1]) == nil then
                return reply(
                    query,
                    NXDOMAIN,
                    true,
                    nil,
                    soaRecord(query, ttl, false)
                )
            end
            i = i + 1
        end
    end
    if n - 2 < 32 then
        return reply(
            query,
            NOERROR,
            true,
            nil,
            soaRecord(query, ttl, false)
        )
    end
    local packed = arpaAddress(labels)
    local block = special_block(packed)
    if block ~= nil then
        return reply(
            query,
            NXDOMAIN,
            true,
            nil,
            soaRecord(query, ttl, false)
        )
    end
    if query.qtype ~= TYPE_PTR then
        return reply(
            query,
            NOERROR,
            true,
            nil,
            soaRecord(query, ttl, false)
        )
    end
    local rdata = wireName((encode(packed)))
    return reply(
        query,
        NOERROR,
        true,
        ((((pointer(QNAME_OFFSET) .. u16(TYPE_PTR)) .. u16(CLASS_IN)) .. u32(ttl)) .. u16(#rdata)) .. rdata
    )
end
--- REFUSED, for a query from a source the resolver does not serve; undefined
-- when no reply is due. The question is echoed when it parses.
function ____exports.refuse(msg)
    local query = parse(msg)
    if query == nil then
        return nil
    end
    return reply(query, REFUSED, not query.malformed)
end
--- A message as sent over TCP (RFC 1035 4.2.2): its 2-byte length first.
function ____exports.tcp_frame(message)
    return u16(#message) .. message
end
--- "[::1]:5390" or "127.0.0.1:5390" -> address and port.
function ____exports.parse_listen(text)
    if type(text) ~= "string" then
        return nil, "a listen address must be a string like \"[::1]:5390\", not " .. tostring(text)
    end
    local address, portText = string.match(text, "^%[([^%]]+)%]:(%d+)$")
    if address == nil then
        address, portText = string.match(text, "^(%d+%.%d+%.%d+%.%d+):(%d+)$")
    end
    local port = tonumber(portText)
    if address == nil or port == nil or port < 1 or port > 65535 then
        return nil, ("'" .. tostring(text)) .. "' is not a listen address like \"[::1]:5390\" or \"127.0.0.1:5390\""
    end
    local packed, err = parse_ip((string.find(address, ":", 1, true)) ~= nil and address or "::ffff:" .. address)
    if packed == nil then
        return nil, (("'" .. tostring(text)) .. "': ") .. err
    end
    return address, port
end
local LOOPBACK_V6 = parse_cidr("::1/128")
local LOOPBACK_V4 = parse_cidr("::ffff:127.0.0.0/104")
function ____exports.new_allow_list(cidrs)
    local ranges = {LOOPBACK_V6, LOOPBACK_V4}
    if cidrs == nil then
        return {ranges = ranges}, nil
    end
    if type(cidrs) ~= "table" then
        return nil, "the allow list must be a list of ranges like { \"200::/7\" }, not " .. tostring(cidrs)
    end
    for ____, text in ipairs(cidrs) do
        if type(text) == "string" and (string.match(text, "^%d+%.%d+%.%d+%.%d+/%d+$")) ~= nil then
            local address, bitsText = string.match(text, "^([^/]+)/(%d+)$")
            local bits = tonumber(bitsText)
            if bits > 32 then
                return nil, ("range '" .. tostring(text)) .. "' has a prefix length over 32"
            end
            local cidr, err = parse_cidr((("::ffff:" .. address) .. "/") .. tostring(bits + 96))
            if cidr == nil then
                return nil, (("range '" .. tostring(text)) .. "': ") .. err
            end
            ranges[#ranges + 1] = cidr
        else
            local cidr, err = parse_cidr(text)
            if cidr == nil then
                return nil, err
            end
            ranges[#ranges + 1] = cidr
        end
    end
    return {ranges = ranges}, nil
end
--- May this source address (IPv6 or IPv4 text, maybe with a zone) query?
function ____exports.allowed(list, ip)
    if type(ip) ~= "string" then
        return false
    end
    local address = string.match(ip, "^([^%%]+)")
    if address == nil then
        return false
    end
    if (string.find(address, ":", 1, true)) == nil then
        address = "::ffff:" .. address
    end
    local packed = parse_ip(address)
    if packed == nil then
        return false
    end
    for ____, cidr in ipairs(list.ranges) do
        if contains(cidr, packed) then
            return true
        end
    end
    return false
end
--- Connections from allowed sources open at once, at most (per resolver process).
local MAX_CONNECTIONS = 100
____exports.TCP_MAX_CONNECTIONS = MAX_CONNECTIONS
--- Connections from sources outside the allow list open at once, at most,
-- counted apart: they never take an allowed client's slot, and cannot grow
-- without bound either. Each gets one answer (REFUSED) and is closed.
local MAX_REFUSED = 100
____exports.TCP_MAX_REFUSED = MAX_REFUSED
--- Connections from one source address at most, so that one source cannot take every slot.
local MAX_PER_SOURCE = 10
____exports.TCP_MAX_PER_SOURCE = MAX_PER_SOURCE
--- Seconds a connection may go without a whole query or write progress.
local IDLE_TIMEOUT = 10
____exports.TCP_IDLE_TIMEOUT = IDLE_TIMEOUT
--- Seconds a query may take to arrive whole, from its first byte (while the
-- resolver is reading); also all the time a refused source's connection gets.
local QUERY_DEADLINE = 5
____exports.TCP_QUERY_DEADLINE = QUERY_DEADLINE
--- Bytes of replies a client may leave unread; at this, no more answers and no more reading until it reads.
local MAX_UNREAD = 16384
____exports.TCP_MAX_UNREAD = MAX_UNREAD
--- Bytes read from a connection at a time.
local READ_SIZE = 4096
____exports.TCP_READ_SIZE = READ_SIZE
--- The most a connection's input may hold: one whole largest message and one read.
local MAX_INPUT = 2 + 65535 + READ_SIZE
____exports.TCP_MAX_INPUT = MAX_INPUT
function ____exports.tcp_pool()
    return {allowed = 0, refused = 0, bySource = {}}
end
--- A new connection from `ip`: counted (undefined), or the limit it hit
-- (close it at once; it was not counted).
function ____exports.tcp_admit(pool, ip, allowed)
    local fromSource = pool.bySource[ip] or 0
    if fromSource >= MAX_PER_SOURCE then
        return "source"
    end
    if allowed then
        if pool.allowed >= MAX_CONNECTIONS then
            return "connections"
        end
        pool.allowed = pool.allowed + 1
    else
        if pool.refused >= MAX_REFUSED then
            return "refused"
        end
        pool.refused = pool.refused + 1
    end
    pool.bySource[ip] = fromSource + 1
    return nil
end
--- A connection that tcp_admit counted has ended (call once per admitted connection).
function ____exports.tcp_release(pool, ip, allowed)
    if allowed then
        pool.allowed = pool.allowed - 1
    else
        pool.refused = pool.refused - 1
    end
    local fromSource = (pool.bySource[ip] or 1) - 1
    if fromSource > 0 then
        pool.bySource[ip] = fromSource
    else
        pool.bySource[ip] = nil
    end
end
function ____exports.tcp_state(allowed, now)
    return {
        allowed = allowed,
        input = "",
        unread = 0,
        opened = now,
        active = now,
        partialSince = nil,
        done = false
    }
end
--- The size of the whole message at the head of `input`, or undefined when it is not all there.
local function headSize(input)
    local length = #input
    if length < 2 then
        return nil
    end
    local high, low = byte(input, 1, 2)
    local size = high * 256 + low
    return length >= 2 + size and size or nil
end
--- Start the deadline of an incomplete head message (if it has none yet), or clear it.
local function markPartial(state, now)
    if state.input == "" or headSize(state.input) ~= nil then
        state.partialSince = nil
    elseif state.partialSince == nil then
        state.partialSince = now
    end
end
--- Reading waits: the client has the most replies unread it may, or it is a refused source that got its answer.
function ____exports.tcp_paused(state)
    return state.done or state.unread >= MAX_UNREAD
end
--- Bytes arrived. False when the input would pass TCP_MAX_INPUT: close the connection.
function ____exports.tcp_received(state, data, now)
    if state.done or data == "" then
        return true
    end
    if #state.input + #data > MAX_INPUT then
        return false
    end
    state.input = state.input .. data
    markPartial(state, now)
    return true
end
--- The next whole message to answer (without its length), or undefined: none
-- is whole yet, the client has TCP_MAX_UNREAD bytes of replies unread, or it
-- is a refused source whose one message was taken already.
function ____exports.tcp_next(state, now)
    if ____exports.tcp_paused(state) then
        return nil
    end
    local input = state.input
    local size = headSize(input)
    if size == nil then
        return nil
    end
    local message = sub(input, 3, 2 + size)
    state.input = sub(input, 3 + size)
    state.active = now
    state.partialSince = nil
    if not state.allowed then
        state.done = true
        state.input = ""
    else
        markPartial(state, now)
    end
    return message
end
--- A reply of `bytes` bytes (with its length) was handed to the socket.
function ____exports.tcp_wrote(state, bytes)
    state.unread = state.unread + bytes
end
--- `bytes` bytes of replies went out (the in-Prosody listener: all of them, when its buffer drains).
function ____exports.tcp_sent(state, bytes, now)
    if bytes <= 0 then
        return
    end
    local wasPaused = ____exports.tcp_paused(state)
    state.unread = state.unread > bytes and state.unread - bytes or 0
    state.active = now
    if wasPaused and not ____exports.tcp_paused(state) and state.partialSince ~= nil then
        state.partialSince = now
    end
end
--- Why the connection is due to close at `now`, or undefined: a refused
-- source after TCP_QUERY_DEADLINE; an incomplete query not whole within
-- TCP_QUERY_DEADLINE of its first byte (not counting time spent paused); no
-- whole query and no write progress for TCP_IDLE_TIMEOUT.
function ____exports.tcp_expired(state, now)
    if not state.allowed and now - state.opened >= QUERY_DEADLINE then
        return "refused"
    end
    if state.partialSince ~= nil and not ____exports.tcp_paused(state) and now - state.partialSince >= QUERY_DEADLINE then
        return "deadline"
    end
    if now - state.active >= IDLE_TIMEOUT then
        return "idle"
    end
    return nil
end
return ____exports
