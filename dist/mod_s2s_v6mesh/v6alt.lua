local ____exports = {}
--- The .v6.alt naming scheme (SPEC section 2): IPv6 address <-> domain name.
-- Plain Lua library with no Prosody dependency; other modules can use it as
-- `require "mod_s2s_v6mesh.v6alt"`. Everything here runs on Lua 5.1-5.4 and
-- LuaJIT, uses only the string library and arithmetic (no bitwise operators),
-- and stays free of TypeScriptToLua runtime helpers because decode() sits on
-- the stanza path.
-- Addresses travel as "packed" 16-byte binary strings; parse_ip/format_ip
-- convert to and from text.
____exports.suffix = ".v6.alt"
local LABEL_LENGTH = 26
local BYTE_a = 97
local ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
--- base32 digit value -> character byte
local DIGIT_BYTE = {}
--- character byte -> base32 digit value (lowercase only)
local DIGIT_VALUE = {}
for i = 1, 32 do
    local b = string.byte(ALPHABET, i)
    DIGIT_BYTE[i - 1] = b
    DIGIT_VALUE[b] = i - 1
end
local IPV4_MAPPED_PREFIX = string.rep(
    string.char(0),
    10
) .. string.char(255, 255)
local P8 = 256
local P16 = 65536
--- 5 bytes -> 8 base32 characters.
local function encodeQuantum(b1, b2, b3, b4, b5)
    local hi = b1 * 4096 + b2 * 16 + math.floor(b3 / 16)
    local lo = b3 % 16 * P16 + b4 * P8 + b5
    return string.char(
        DIGIT_BYTE[math.floor(hi / 32768)],
        DIGIT_BYTE[math.floor(hi / 1024) % 32],
        DIGIT_BYTE[math.floor(hi / 32) % 32],
        DIGIT_BYTE[hi % 32],
        DIGIT_BYTE[math.floor(lo / 32768)],
        DIGIT_BYTE[math.floor(lo / 1024) % 32],
        DIGIT_BYTE[math.floor(lo / 32) % 32],
        DIGIT_BYTE[lo % 32]
    )
end
--- The 26 lowercase base32 characters of a packed address.
local function base32(packed)
    local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 = string.byte(packed, 1, 16)
    return ((encodeQuantum(
        b1,
        b2,
        b3,
        b4,
        b5
    ) .. encodeQuantum(
        b6,
        b7,
        b8,
        b9,
        b10
    )) .. encodeQuantum(
        b11,
        b12,
        b13,
        b14,
        b15
    )) .. string.char(
        DIGIT_BYTE[math.floor(b16 / 8)],
        DIGIT_BYTE[b16 % 8 * 4]
    )
end
--- Compress the longest run of "a" inside positions 2..25 into one "-".
-- Ties go to the first run (canonical) or, with preferLast, to the last one
-- (what the deployed reference implementation emits).
local function compress(full, preferLast)
    local bestStart = 0
    local bestLength = 1
    local from = 2
    do
        while true do
            local s, e = string.find(full, "aa+", from)
            if s == nil or e == nil or s > LABEL_LENGTH - 2 then
                break
            end
            local stop = e < LABEL_LENGTH and e or LABEL_LENGTH - 1
            local length = stop - s + 1
            if length > bestLength or preferLast and length == bestLength and length >= 2 then
                bestStart = s
                bestLength = length
            end
            from = e + 1
        end
    end
    if bestStart == 0 then
        return full
    end
    return (string.sub(full, 1, bestStart - 1) .. "-") .. string.sub(full, bestStart + bestLength)
end
local function isPacked(packed)
    return type(packed) == "string" and #packed == 16
end
--- Canonical name of a packed address, e.g. "fiabbgadu-e.v6.alt".
function ____exports.encode(packed)
    if not isPacked(packed) then
        return nil, "an address must be a 16-byte packed string"
    end
    return compress(
        base32(packed),
        false
    ) .. ____exports.suffix, nil
end
--- The name the reference implementation emits (last run wins on ties).
function ____exports.encode_reference(packed)
    if not isPacked(packed) then
        return nil, "an address must be a 16-byte packed string"
    end
    return compress(
        base32(packed),
        true
    ) .. ____exports.suffix, nil
end
--- True when the name ends in ".v6.alt" (a suffix test only, for hot paths).
function ____exports.is_v6alt(name)
    return string.sub(name, -7) == ____exports.suffix
end
--- UTF-8 of U+3002, U+FF0E and U+FF61: IDNA reads each as a label separator.
local IDNA_DOTS = {
    string.char(227, 128, 130),
    string.char(239, 188, 142),
    string.char(239, 189, 161)
}
local NON_ASCII = ((("[" .. string.char(128)) .. "-") .. string.char(255)) .. "]"
local BYTE_DOT = 46
local BYTE_t = 116
local BYTE_T = 84
--- The name as DNS would be asked for it: IDNA's other label separators
-- (U+3002, U+FF0E, U+FF61) as ".", trailing dots dropped (resolvers drop
-- them), ASCII letters lowercased (DNS ignores their case).
function ____exports.normalize(name)
    local text = name
    if (string.find(text, NON_ASCII)) ~= nil then
        for ____, dot in ipairs(IDNA_DOTS) do
            text = string.gsub(text, dot, ".")
        end
    end
    local last = #text
    while last > 0 and string.byte(text, last) == BYTE_DOT do
        last = last - 1
    end
    return string.lower(string.sub(text, 1, last))
end
local function underV6alt(name)
    return name == "v6.alt" or string.sub(name, -7) == ____exports.suffix
end
--- Why a name was refused, as an operator reads it: `err` about `read` (the
-- name as mesh_name reads it), said of `written` when that is spelled
-- otherwise ("A-E.V6.ALT. is read as a-e.v6.alt: ...").
function ____exports.read_failure(written, read, err)
    return written == read and err or (((written .. " is read as ") .. read) .. ": ") .. err
end
--- The .v6.alt name that `name` is to the layers below Prosody, normalized
-- (see normalize), or undefined when it is none. `toAscii` is the IDNA
-- conversion those layers apply (Prosody's util.encodings.idna.to_ascii):
-- when given, a non-ASCII name that it turns into a .v6.alt name is one.
-- Names that cannot be one (the last character is not "t", "T", "." or
-- non-ASCII) cost a single byte test.
function ____exports.mesh_name(name, toAscii)
    local lastByte = string.byte(name, -1)
    if lastByte == nil or lastByte ~= BYTE_t and lastByte ~= BYTE_T and lastByte ~= BYTE_DOT and lastByte < 128 then
        return nil
    end
    if string.sub(name, -7) == ____exports.suffix and (string.find(name, "[^a-z0-9%.%-]")) == nil then
        return name
    end
    if toAscii ~= nil and (string.find(name, NON_ASCII)) ~= nil then
        local ok, ascii = pcall(toAscii, name)
        if ok and type(ascii) == "string" then
            local read = ____exports.normalize(ascii)
            if underV6alt(read) then
                return read
            end
        end
    end
    local normalized = ____exports.normalize(name)
    return underV6alt(normalized) and normalized or nil
end
--- Whether a DNS query name is under v6.alt (or ends in it) once normalized: the resolvers' last gate.
function ____exports.reaches_v6alt(name)
    return string.sub(
        ____exports.normalize(name),
        -6
    ) == "v6.alt"
end
--- Control characters (a newline, say) as \ddd, so that every message is one line.
local function printable(text)
    local clean = string.gsub(
        text,
        "%c",
        function(c) return string.format(
            "\\%03d",
            string.byte(c)
        ) end
    )
    return clean
end
local function reject(name, code, why)
    return nil, printable((("'" .. name) .. "' is not a valid .v6.alt name: ") .. why), code
end
--- Does a run of exactly `length` "a" (or a longer one) occur in label[from..to]?
-- Returns 2 for a longer run, 1 for an equal one, 0 for neither.
local function runsAgainst(label, from, to, length)
    local found = 0
    local at = from
    while at <= to do
        local s, e = string.find(label, "a+", at)
        if s == nil or e == nil or s > to then
            break
        end
        local runLength = (e < to and e or to) - s + 1
        if runLength > length then
            return 2
        end
        if runLength == length then
            found = 1
        end
        at = e + 1
    end
    return found
end
--- Is the hyphen where the canonical (first-longest) or reference (last-longest) encoder puts it?
local function hyphenPlacedByEncoder(label, hyphen, runLength)
    local length = #label
    if hyphen < 2 or hyphen > length - 1 then
        return false
    end
    if hyphen > 2 and string.byte(label, hyphen - 1) == BYTE_a then
        return false
    end
    if hyphen + 1 < length and string.byte(label, hyphen + 1) == BYTE_a then
        return false
    end
    local before = runsAgainst(label, 2, hyphen - 1, runLength)
    if before == 2 then
        return false
    end
    local after = runsAgainst(label, hyphen + 1, length - 1, runLength)
    if after == 2 then
        return false
    end
    return before == 0 or after == 0
end
--- Two characters (as c1 * 256 + c2) -> their 10-bit value, or NOT_BASE32
-- when either is not a base32 character. Every slot with an ASCII c1 is
-- filled so that Lua keeps the table in its array part (32768 entries) and
-- lookups are plain indexing; a c1 over 127 falls outside and reads as nil.
-- The multiplier must be 256, not 128: with 128 a high byte in c2 would
-- land in the slot of another pair and decode as a valid character.
local NOT_BASE32 = -1073741824
local PAIR_VALUE = {}
for key = 1, 128 * 256 - 1 do
    PAIR_VALUE[key] = NOT_BASE32
end
for i = 0, 31 do
    for j = 0, 31 do
        PAIR_VALUE[DIGIT_BYTE[i] * 256 + DIGIT_BYTE[j]] = i * 32 + j
    end
end
--- RUN_OF_A[n] = n times "a"
local RUN_OF_A = {}
for n = 0, LABEL_LENGTH + 1 do
    RUN_OF_A[n] = string.rep("a", n)
end
--- 26 characters -> packed address, two characters per table lookup; undefined
-- when one is not a base32 character, or when the last one sets padding bits
-- and dropPadding is false.
local function unbase32(full, dropPadding)
    local c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26 = string.byte(full, 1, LABEL_LENGTH)
    local v1 = PAIR_VALUE[c1 * 256 + c2] or NOT_BASE32
    local v2 = PAIR_VALUE[c3 * 256 + c4] or NOT_BASE32
    local v3 = PAIR_VALUE[c5 * 256 + c6] or NOT_BASE32
    local v4 = PAIR_VALUE[c7 * 256 + c8] or NOT_BASE32
    local v5 = PAIR_VALUE[c9 * 256 + c10] or NOT_BASE32
    local v6 = PAIR_VALUE[c11 * 256 + c12] or NOT_BASE32
    local v7 = PAIR_VALUE[c13 * 256 + c14] or NOT_BASE32
    local v8 = PAIR_VALUE[c15 * 256 + c16] or NOT_BASE32
    local v9 = PAIR_VALUE[c17 * 256 + c18] or NOT_BASE32
    local v10 = PAIR_VALUE[c19 * 256 + c20] or NOT_BASE32
    local v11 = PAIR_VALUE[c21 * 256 + c22] or NOT_BASE32
    local v12 = PAIR_VALUE[c23 * 256 + c24] or NOT_BASE32
    local v13 = PAIR_VALUE[c25 * 256 + c26] or NOT_BASE32
    if v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + v10 + v11 + v12 + v13 < 0 then
        return nil
    end
    local padding = v13 % 4
    if padding ~= 0 and not dropPadding then
        return nil
    end
    local m1 = v1 % 4
    local m2 = v2 % 16
    local m3 = v3 % 64
    local m4 = v4 % 256
    local m5 = v5 % 4
    local m6 = v6 % 16
    local m7 = v7 % 64
    local m8 = v8 % 256
    local m9 = v9 % 4
    local m10 = v10 % 16
    local m11 = v11 % 64
    local m12 = v12 % 256
    return string.char(
        (v1 - m1) / 4,
        m1 * 64 + (v2 - m2) / 16,
        m2 * 16 + (v3 - m3) / 64,
        m3 * 4 + (v4 - m4) / 256,
        m4,
        (v5 - m5) / 4,
        m5 * 64 + (v6 - m6) / 16,
        m6 * 16 + (v7 - m7) / 64,
        m7 * 4 + (v8 - m8) / 256,
        m8,
        (v9 - m9) / 4,
        m9 * 64 + (v10 - m10) / 16,
        m10 * 16 + (v11 - m11) / 64,
        m11 * 4 + (v12 - m12) / 256,
        m12,
        (v13 - padding) / 4
    )
end
--- Is there a run of at least `length` "a" lying within label[from..to]?
-- The first occurrence of the run decides: later ones end later still.
local function hasRun(label, from, to, length)
    local s = string.find(label, RUN_OF_A[length], from, true)
    return s ~= nil and s + length - 1 <= to
end
--- Decode label[1..length] (the rest of the string is ignored) if it is
-- exactly what an encoder emits, or return undefined
-- so that the full path can say what is wrong with it. Plain finds and table
-- lookups only: this runs for every stanza to a .v6.alt peer.
local function decodeEncoderLabel(label, length)
    local hyphen = string.find(label, "-", 1, true)
    local full = label
    if hyphen == nil then
        if length ~= LABEL_LENGTH then
            return nil
        end
        local s = string.find(label, "aa", 2, true)
        if s ~= nil and s <= LABEL_LENGTH - 2 then
            return nil
        end
    else
        local run = LABEL_LENGTH + 1 - length
        if run < 2 or hyphen < 2 or hyphen > length - 1 then
            return nil
        end
        if hyphen > 2 and string.byte(label, hyphen - 1) == BYTE_a then
            return nil
        end
        if hyphen + 1 < length and string.byte(label, hyphen + 1) == BYTE_a then
            return nil
        end
        if hasRun(label, 2, length - 1, run) then
            if hasRun(label, 2, hyphen - 1, run + 1) or hasRun(label, hyphen + 1, length - 1, run + 1) then
                return nil
            end
            if hasRun(label, 2, hyphen - 1, run) and hasRun(label, hyphen + 1, length - 1, run) then
                return nil
            end
        end
        full = (string.sub(label, 1, hyphen - 1) .. RUN_OF_A[run]) .. string.sub(label, hyphen + 1, length)
    end
    return unbase32(full, false)
end
--- Name -> packed address. Only the label just before ".v6.alt" matters, so
-- every subdomain of a server decodes to its address. Strict mode accepts the
-- canonical form and the reference implementation's tie form and nothing
-- else; lax mode also takes uppercase, uncompressed and misplaced-hyphen
-- aliases and ignores the padding bits.
function ____exports.decode(name, lax)
    if not lax and type(name) == "string" then
        local length = #name
        local dot = string.find(name, ".", 1, true)
        if dot ~= nil and dot == length - 6 and (string.find(name, ____exports.suffix, dot, true)) == dot then
            local packed = decodeEncoderLabel(name, dot - 1)
            if packed ~= nil then
                return packed, nil, nil
            end
        elseif dot ~= nil and dot > 1 and dot < length - 6 and (string.find(name, ____exports.suffix, length - 6, true)) == length - 6 and (string.find(name, "..", 1, true)) == nil then
            local labelDot = dot
            do
                while true do
                    local next = string.find(name, ".", labelDot + 1, true)
                    if next == nil or next >= length - 6 then
                        break
                    end
                    labelDot = next
                end
            end
            local packed = decodeEncoderLabel(
                string.sub(name, labelDot + 1, length - 7),
                length - 7 - labelDot
            )
            if packed ~= nil then
                return packed, nil, nil
            end
        end
    end
    if type(name) ~= "string" then
        return reject(
            tostring(name),
            "not-v6alt",
            "not a string"
        )
    end
    if string.sub(name, -7) ~= ____exports.suffix then
        if string.lower(string.sub(name, -7)) == ____exports.suffix then
            return reject(name, "not-v6alt", "the .v6.alt suffix must be lowercase")
        end
        return reject(name, "not-v6alt", "it does not end in .v6.alt")
    end
    local prefix, matched = string.match(name, "^(.-)([^.]*)%.v6%.alt$")
    local label = matched
    if label == "" or prefix ~= "" and (string.byte(prefix, 1) == 46 or (string.find(prefix, "..", 1, true)) ~= nil) then
        return reject(name, "empty-label", "it has an empty label")
    end
    if (string.find(label, "%u")) ~= nil then
        if not lax then
            return reject(name, "uppercase", "uppercase letters are not allowed (names are lowercase)")
        end
        label = string.lower(label)
    end
    local bad = string.match(label, "[^a-z2-7%-]")
    if bad ~= nil then
        return reject(name, "bad-character", ("'" .. bad) .. "' is not a base32 character (a-z, 2-7)")
    end
    local length = #label
    local hyphen = string.find(label, "-", 1, true)
    local full = label
    local runLength = 0
    if hyphen ~= nil then
        if (string.find(label, "-", hyphen + 1, true)) ~= nil then
            return reject(name, "several-hyphens", "it has more than one '-'")
        end
        runLength = LABEL_LENGTH + 1 - length
        if runLength <= 0 then
            return reject(
                name,
                "bad-length",
                ("a label with '-' must be shorter than " .. tostring(LABEL_LENGTH)) .. " characters"
            )
        end
        if runLength == 1 then
            return reject(name, "short-run", "'-' would stand for a single 'a' (it always stands for two or more)")
        end
        full = (string.sub(label, 1, hyphen - 1) .. string.rep("a", runLength)) .. string.sub(label, hyphen + 1)
    elseif length ~= LABEL_LENGTH then
        return reject(
            name,
            "bad-length",
            (("the label has " .. tostring(length)) .. " characters; without '-' it needs ") .. tostring(LABEL_LENGTH)
        )
    end
    if not lax then
        local lastByte = string.byte(full, LABEL_LENGTH)
        if DIGIT_VALUE[lastByte] % 4 ~= 0 then
            return reject(
                name,
                "padding-bits",
                ("its last character '" .. string.char(lastByte)) .. "' sets padding bits"
            )
        end
        if hyphen == nil then
            local s = string.find(label, "aa", 2, true)
            if s ~= nil and s <= LABEL_LENGTH - 2 then
                return reject(
                    name,
                    "uncompressed",
                    ("it is the uncompressed form of " .. compress(label, false)) .. ____exports.suffix
                )
            end
        elseif not hyphenPlacedByEncoder(label, hyphen, runLength) then
            return reject(
                name,
                "misplaced-hyphen",
                (("'-' is not where an encoder puts it (the name is " .. compress(full, false)) .. ____exports.suffix) .. ")"
            )
        end
    end
    return unbase32(full, true), nil, nil
end
local function parseFail(text, why)
    return nil, printable((("'" .. text) .. "' is not a valid IPv6 address: ") .. why)
end
--- Append the 16-bit groups of a colon-separated part to `groups`; false on a bad group.
local function parseGroups(part, groups, allowIPv4Tail)
    if part == "" then
        return true
    end
    local at = 1
    local length = #part
    do
        while true do
            local colon = string.find(part, ":", at, true)
            local piece = string.sub(part, at, colon == nil and length or colon - 1)
            if colon == nil and allowIPv4Tail and (string.find(piece, ".", 1, true)) ~= nil then
                local a, b, c, d = string.match(piece, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
                if a == nil then
                    return false
                end
                if (string.find((((((("." .. a) .. ".") .. b) .. ".") .. c) .. ".") .. d, "%.0%d")) ~= nil then
                    return false
                end
                local o1 = tonumber(a)
                local o2 = tonumber(b)
                local o3 = tonumber(c)
                local o4 = tonumber(d)
                if o1 > 255 or o2 > 255 or o3 > 255 or o4 > 255 then
                    return false
                end
                groups[#groups + 1] = o1 * 256 + o2
                groups[#groups + 1] = o3 * 256 + o4
                return true
            end
            if (string.find(piece, "^%x%x?%x?%x?$")) == nil then
                return false
            end
            groups[#groups + 1] = tonumber(piece, 16)
            if colon == nil then
                return true
            end
            at = colon + 1
        end
    end
end
--- IPv6 text -> packed 16-byte string.
function ____exports.parse_ip(text)
    if type(text) ~= "string" then
        return nil, "an IPv6 address must be a string"
    end
    if text == "" then
        return parseFail(text, "it is empty")
    end
    if (string.find(text, "%", 1, true)) ~= nil then
        return parseFail(text, "zone indexes (%...) are not allowed")
    end
    if (string.find(text, "^%[")) ~= nil then
        return parseFail(text, "remove the brackets")
    end
    if (string.find(text, ":", 1, true)) == nil then
        return parseFail(text, "it has no ':' (IPv4 addresses have no .v6.alt name)")
    end
    local double = string.find(text, "::", 1, true)
    local head = {}
    local tail = {}
    if double == nil then
        if not parseGroups(text, head, true) then
            return parseFail(text, "malformed group")
        end
        if #head ~= 8 then
            return parseFail(text, "it needs 8 groups of hex digits or a '::'")
        end
    else
        if (string.find(text, "::", double + 1, true)) ~= nil then
            return parseFail(text, "more than one '::'")
        end
        local after = string.sub(text, double + 2)
        if not parseGroups(
            string.sub(text, 1, double - 1),
            head,
            false
        ) or not parseGroups(after, tail, true) then
            return parseFail(text, "malformed group")
        end
        if #head + #tail > 7 then
            return parseFail(text, "too many groups")
        end
    end
    local fill = 8 - #head - #tail
    local bytes = {}
    local n = 0
    local function push(group)
        bytes[n + 1] = math.floor(group / 256)
        bytes[n + 2] = group % 256
        n = n + 2
    end
    for i = 1, #head do
        push(head[i])
    end
    for _ = 1, fill do
        push(0)
    end
    for i = 1, #tail do
        push(tail[i])
    end
    return string.char(
        bytes[1],
        bytes[2],
        bytes[3],
        bytes[4],
        bytes[5],
        bytes[6],
        bytes[7],
        bytes[8],
        bytes[9],
        bytes[10],
        bytes[11],
        bytes[12],
        bytes[13],
        bytes[14],
        bytes[15],
        bytes[16]
    ), nil
end
--- Packed 16-byte string -> RFC 5952 text ("2001:db8::1", "::ffff:192.0.2.1").
function ____exports.format_ip(packed)
    if not isPacked(packed) then
        return nil
    end
    local groups = {}
    for i = 1, 8 do
        local hi, lo = string.byte(packed, 2 * i - 1, 2 * i)
        groups[i] = hi * 256 + lo
    end
    if string.sub(packed, 1, 12) == IPV4_MAPPED_PREFIX then
        local a, b, c, d = string.byte(packed, 13, 16)
        return (((((("::ffff:" .. tostring(a)) .. ".") .. tostring(b)) .. ".") .. tostring(c)) .. ".") .. tostring(d)
    end
    local bestStart = 0
    local bestLength = 1
    local runStart = 0
    for i = 1, 9 do
        if i <= 8 and groups[i] == 0 then
            if runStart == 0 then
                runStart = i
            end
        elseif runStart ~= 0 then
            if i - runStart > bestLength then
                bestStart = runStart
                bestLength = i - runStart
            end
            runStart = 0
        end
    end
    local parts = {}
    local i = 1
    while i <= 8 do
        if i == bestStart then
            parts[#parts + 1] = i == 1 and ":" or ""
            i = i + bestLength
            if i > 8 then
                parts[#parts + 1] = ""
            end
        else
            parts[#parts + 1] = string.format("%x", groups[i])
            i = i + 1
        end
    end
    return table.concat(parts, ":")
end
--- IPv6 text -> canonical name.
function ____exports.ip_to_name(text)
    local packed, err = ____exports.parse_ip(text)
    if packed == nil then
        return nil, err
    end
    return ____exports.encode(packed)
end
--- Name -> RFC 5952 address text.
function ____exports.name_to_ip(name, lax)
    local packed, err, code = ____exports.decode(name, lax)
    if packed == nil then
        return nil, err, code
    end
    return ____exports.format_ip(packed), nil, nil
end
return ____exports
