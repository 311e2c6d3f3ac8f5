local ____exports = {}
local ____v6alt = require("mod_s2s_v6mesh.v6alt")
local format_ip = ____v6alt.format_ip
local parse_ip = ____v6alt.parse_ip
--- Mask a packed address to its first `bits` bits.
local function maskTo(packed, bits)
    local whole = math.floor(bits / 8)
    local rest = bits % 8
    if whole >= 16 then
        return packed
    end
    local masked = string.sub(packed, 1, whole)
    local tailStart = whole + 1
    if rest > 0 then
        local unit = 2 ^ (8 - rest)
        local b = string.byte(packed, whole + 1)
        masked = masked .. string.char(math.floor(b / unit) * unit)
        tailStart = whole + 2
    end
    return masked .. string.rep(
        string.char(0),
        16 - tailStart + 1
    )
end
--- "200::/7" -> Cidr. A bare address is a /128.
function ____exports.parse_cidr(text)
    if type(text) ~= "string" then
        return nil, ("range " .. tostring(text)) .. " must be a string like \"200::/7\""
    end
    local addressText, bitsText = string.match(text, "^([^/]+)/(%d+)$")
    local address = addressText == nil and text or addressText
    if addressText == nil and (string.find(text, "/", 1, true)) ~= nil then
        return nil, ("range '" .. text) .. "' needs a prefix length from 0 to 128 after '/'"
    end
    local bits = bitsText == nil and 128 or tonumber(bitsText)
    if bits > 128 then
        return nil, ("range '" .. text) .. "' has a prefix length over 128"
    end
    local packed, err = parse_ip(address)
    if packed == nil then
        return nil, (("range '" .. text) .. "': ") .. err
    end
    local network = maskTo(packed, bits)
    local wholeBytes = math.floor(bits / 8)
    local partBits = bits % 8
    local unit = 2 ^ (8 - partBits)
    return {
        text = (tostring(format_ip(network)) .. "/") .. tostring(bits),
        network = network,
        bits = bits,
        whole = string.sub(network, 1, wholeBytes),
        part = partBits > 0 and string.byte(network, wholeBytes + 1) or nil,
        unit = unit
    }, nil
end
--- Is the (packed) address inside the range? No new strings but one prefix.
function ____exports.contains(cidr, packed)
    local whole = cidr.whole
    if whole ~= "" and string.sub(packed, 1, #whole) ~= whole then
        return false
    end
    local part = cidr.part
    if part == nil then
        return true
    end
    local unit = cidr.unit
    return math.floor(string.byte(packed, #whole + 1) / unit) * unit == part
end
--- cidr lies entirely inside block.
local function within(cidr, block)
    return cidr.bits >= block.bits and ____exports.contains(block, cidr.network)
end
local SPECIAL_BLOCKS = {}
for ____, ____value in ipairs({
    {"::/128", "the unspecified address"},
    {"::1/128", "the loopback address"},
    {"::ffff:0:0/96", "an IPv4-mapped address"},
    {"::/96", "an IPv4-compatible address"},
    {"64:ff9b::/96", "a NAT64 address"},
    {"64:ff9b:1::/48", "a local-use NAT64 address"},
    {"::ffff:0:0:0/96", "an IPv4-translated address"},
    {"2002::/16", "a 6to4 address"},
    {"2001::/32", "a Teredo address"},
    {"ff00::/8", "a multicast address"},
    {"fe80::/10", "a link-local address"}
}) do
    local text = ____value[1]
    local what = ____value[2]
    local cidr = ____exports.parse_cidr(text)
    SPECIAL_BLOCKS[#SPECIAL_BLOCKS + 1] = {cidr = cidr, what = ((what .. " (") .. text) .. ")"}
end
--- Prefixes no range may name: a .v6.alt name carries no zone index, so a
-- link-local peer can be neither reached nor told apart by interface, and
-- nothing connects to a multicast address over TCP.
local UNUSABLE_BLOCKS = {}
for ____, ____value in ipairs({{"fe80::/10", "is link-local: a .v6.alt name carries no zone index (%eth0), so no connection to or from it can be matched to a name"}, {"ff00::/8", "is multicast: no s2s connection can use it"}}) do
    local text = ____value[1]
    local why = ____value[2]
    local cidr = ____exports.parse_cidr(text)
    UNUSABLE_BLOCKS[#UNUSABLE_BLOCKS + 1] = {cidr = cidr, what = why}
end
--- The special-purpose block an address falls in, if any.
function ____exports.special_block(packed)
    for ____, block in ipairs(SPECIAL_BLOCKS) do
        if ____exports.contains(block.cidr, packed) then
            return block.cidr, block.what
        end
    end
    return nil, nil
end
local function describeValue(value)
    return type(value) == "string" and ("\"" .. tostring(value)) .. "\"" or ((tostring(value) .. " (a ") .. type(value)) .. ")"
end
--- Validate the options and build a policy. Any bad entry is an error: a typo
-- in a range that was meant to restrict trust must not silently widen it.
function ____exports.new_policy(trustAllCerts, ranges)
    if type(trustAllCerts) ~= "boolean" then
        return nil, "s2s_v6mesh_trust_all_certs must be true or false, not " .. describeValue(trustAllCerts)
    end
    if ranges == nil then
        ranges = {}
    end
    if type(ranges) ~= "table" then
        return nil, "s2s_v6mesh_ranges must be a table like { [\"200::/7\"] = { use_tls = true } }, not " .. describeValue(ranges)
    end
    local settings = {}
    local spelledAs = {}
    for key, value in pairs(ranges) do
        local where = ("s2s_v6mesh_ranges[" .. describeValue(key)) .. "]"
        if type(key) ~= "string" then
            return nil, where .. ": the key must be a CIDR string like \"200::/7\""
        end
        local cidr, err = ____exports.parse_cidr(key)
        if cidr == nil then
            return nil, (where .. ": ") .. err
        end
        if type(value) ~= "table" then
            return nil, (where .. " must be a table like { use_tls = true, trust_all_certs = true }, not ") .. describeValue(value)
        end
        for ____, block in ipairs(UNUSABLE_BLOCKS) do
            if within(cidr, block.cidr) then
                return nil, ((((where .. ": ") .. cidr.text) .. " ") .. block.what) .. "; remove this entry"
            end
        end
        local entry = {cidr = cidr, allow = true, use_tls = true, trust_all_certs = nil}
        for field, fieldValue in pairs(value) do
            if field ~= "allow" and field ~= "use_tls" and field ~= "trust_all_certs" then
                return nil, ((where .. ": unknown setting ") .. describeValue(field)) .. " (known: allow, use_tls, trust_all_certs)"
            end
            if type(fieldValue) ~= "boolean" then
                return nil, (((where .. ".") .. field) .. " must be true or false, not ") .. describeValue(fieldValue)
            end
            if field == "allow" then
                entry.allow = fieldValue
            elseif field == "use_tls" then
                entry.use_tls = fieldValue
            else
                entry.trust_all_certs = fieldValue
            end
        end
        local twin = spelledAs[cidr.text]
        if twin ~= nil then
            return nil, (((where .. " and s2s_v6mesh_ranges[") .. describeValue(twin)) .. "] are the same range ") .. cidr.text
        end
        spelledAs[cidr.text] = key
        settings[#settings + 1] = entry
    end
    table.sort(
        settings,
        function(a, b) return a.cidr.bits > b.cidr.bits or a.cidr.bits == b.cidr.bits and a.cidr.text < b.cidr.text end
    )
    return {trust_all_certs = trustAllCerts, ranges = settings, own = {}}, nil
end
--- Mark an address as this machine's own; `what` says so in refusals.
function ____exports.set_own_address(policy, packed, what)
    policy.own[packed] = what
end
--- What the policy says about talking to this (packed) address.
function ____exports.decide(policy, packed)
    local range
    for ____, candidate in ipairs(policy.ranges) do
        if ____exports.contains(candidate.cidr, packed) then
            range = candidate
            break
        end
    end
    local refused
    local kind
    local own = policy.own[packed]
    if range ~= nil and not range.allow then
        refused = ("blocked by s2s_v6mesh_ranges entry " .. range.cidr.text) .. " (allow = false)"
        kind = "blocked"
    elseif own ~= nil then
        if range == nil or range.cidr.bits < 128 then
            refused = own
            kind = "own-address"
        end
    else
        local block, what = ____exports.special_block(packed)
        if block ~= nil and (range == nil or not within(range.cidr, block)) then
            refused = what
            kind = "special-purpose"
        end
    end
    local trust = policy.trust_all_certs
    if range ~= nil and range.trust_all_certs ~= nil then
        trust = range.trust_all_certs
    end
    local ____format_ip_result_1 = format_ip(packed)
    local ____range_2 = range
    local ____temp_0
    if range == nil then
        ____temp_0 = true
    else
        ____temp_0 = range.use_tls
    end
    return {
        address = ____format_ip_result_1,
        range = ____range_2,
        use_tls = ____temp_0,
        trust_all_certs = trust,
        refused = refused,
        blocked = range ~= nil and not range.allow,
        refusal_kind = kind
    }
end
--- One line for operators: "range 200::/7 (use_tls = false, trust_all_certs = true)".
function ____exports.describe(decision)
    local where = decision.range == nil and "no configured range (defaults)" or "range " .. decision.range.cidr.text
    local line = decision.blocked and where .. ": allow = false" or (((where .. ": use_tls = ") .. tostring(decision.use_tls)) .. ", trust_all_certs = ") .. tostring(decision.trust_all_certs)
    if decision.refused ~= nil then
        line = (line .. "; refused: ") .. decision.refused
    end
    return line
end
return ____exports
