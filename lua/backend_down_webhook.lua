-- backend_down_webhook.lua (harp) -- the Lua event framework blog demo, made configurable.
--
-- POSTs a small JSON document to $DEMO_WEBHOOK_URL when the last active server of a tracked
-- backend goes DOWN (health check, CLI `set server ... health down`, maintenance, ...).
--
--   global
--       lua-load backend_down_webhook.lua test [other_backend ...]
--
-- With no argument every backend is tracked. Servers added at runtime (`add server`) to a
-- tracked backend are tracked too. Body sent:
--   {"type":"backend_down","name":"<backend>","when":"<unix time>"}

local tracked = table.pack(...)

local function tracks(backend)
	if tracked.n == 0 then
		return true
	end
	for i = 1, tracked.n do
		if tracked[i] == backend then
			return true
		end
	end
	return false
end

-- Sends the webhook; runs inside the event callback, which may yield while waiting.
local function post_backend_down(backend, when)
	local url = os.getenv("DEMO_WEBHOOK_URL")
	if url == nil or url == "" then
		core.Warning("backend_down_webhook: DEMO_WEBHOOK_URL is not set, cannot notify")
		return
	end
	local payload = string.format('{"type":"%s","name":"%s","when":"%d"}',
		"backend_down", backend, when)
	local reply = core.httpclient():post{
		url = url,
		headers = { ["Content-Type"] = { "application/json" } },
		body = payload,
	}
	if reply.status ~= 200 then
		core.Alert("Error when making request to http endpoint")
	end
end

-- SERVER_DOWN callback: alert when no active server is left in the backend.
local function on_server_down(event, data, sub, when)
	local srv = data.reference
	if srv == nil then
		return -- server already deleted
	end
	local backend = srv:get_proxy()
	if backend ~= nil and backend:get_srv_act() == 0 then
		post_backend_down(backend:get_name(), when)
	end
end

local function watch(srv)
	srv:event_sub({ "SERVER_DOWN" }, on_server_down)
end

core.register_init(function()
	for name, backend in pairs(core.backends) do
		if tracks(name) then
			for _, srv in pairs(backend.servers) do
				watch(srv)
			end
		end
	end
	for i = 1, tracked.n do
		if core.backends[tracked[i]] == nil then
			core.Warning("backend_down_webhook: no backend named '" .. tracked[i] .. "'")
		end
	end
	-- servers added later with `add server` are watched as well
	core.event_sub({ "SERVER_ADD" }, function(event, data)
		local srv = data.reference
		if srv ~= nil and tracks(srv:get_proxy():get_name()) then
			watch(srv)
		end
	end)
end)
