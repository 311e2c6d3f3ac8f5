-- mod_scale_probe: loaded by bench/scale.sh into every server of the scale
-- benchmark, with and without mod_s2s_v6mesh alike (so it costs both the same).
--
-- Samples the Lua heap (collectgarbage("count")) every 0.25 s and keeps the
-- peak. On SIGUSR1 (Prosody 13 fires "signal/SIGUSR1") it appends one JSON
-- line to the file named by the global option scale_probe_file:
--   heap_kb           the heap now, before any collection
--   heap_peak_kb      the largest sample since start (and heap_kb)
--   heap_after_gc_kb  the heap after two full collections
--   s2s_in / s2s_out  s2s sessions as Prosody holds them (incoming_s2s, and
--                     every host's s2sout table: what s2s:show() lists)
--   s2s_in_auth / s2s_out_auth  of those, the authenticated ones
-- No admin-shell round trip per server is needed.
module:set_global();

local file = module:get_option_string("scale_probe_file");
local peak = collectgarbage("count");

module:add_timer(0.25, function()
	local kb = collectgarbage("count");
	if kb > peak then peak = kb; end
	return 0.25;
end);

local function count_s2s()
	local n_in, n_in_auth, n_out, n_out_auth = 0, 0, 0, 0;
	for session in pairs(prosody.incoming_s2s) do
		n_in = n_in + 1;
		if session.type == "s2sin" then n_in_auth = n_in_auth + 1; end
	end
	for _, host in pairs(prosody.hosts) do
		for _, session in pairs(host.s2sout or {}) do
			n_out = n_out + 1;
			if session.type == "s2sout" then n_out_auth = n_out_auth + 1; end
		end
	end
	return n_in, n_in_auth, n_out, n_out_auth;
end

module:hook("signal/SIGUSR1", function()
	local now_kb = collectgarbage("count");
	if now_kb > peak then peak = now_kb; end
	local n_in, n_in_auth, n_out, n_out_auth = count_s2s();
	collectgarbage("collect");
	collectgarbage("collect");
	local after = collectgarbage("count");
	if not file then return; end
	local f = io.open(file, "a");
	if not f then return; end
	f:write(string.format(
		'{"heap_kb":%.1f,"heap_peak_kb":%.1f,"heap_after_gc_kb":%.1f,"s2s_in":%d,"s2s_in_auth":%d,"s2s_out":%d,"s2s_out_auth":%d}\n',
		now_kb, peak, after, n_in, n_in_auth, n_out, n_out_auth));
	f:close();
end);
