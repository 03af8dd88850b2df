-- slack_webhook.lua (harp) -- posts every server state change to a Slack-style webhook.
--
--   global
--       lua-load slack_webhook.lua [<webhook url>]
--
-- The URL comes from the first lua-load argument, else from $SLACK_WEBHOOK_URL. Each
-- SERVER_STATE event becomes one POST of {"text": "..."} (the Slack incoming-webhook format).
-- Posts are sent from a task fed by a queue, so a slow webhook never delays event handling.

local args = table.pack(...)
local url = args[1] or os.getenv("SLACK_WEBHOOK_URL")

local function json_string(s)
	s = string.gsub(s, '[%c"\\]', function(c)
		if c == '"' then return '\\"' end
		if c == '\\' then return '\\\\' end
		if c == '\n' then return '\\n' end
		return string.format('\\u%04x', string.byte(c))
	end)
	return '"' .. s .. '"'
end

local outbox = core.queue()

local function describe(data)
	local st = data.state
	local text = string.format("Server %s/%s is %s (was %s)", data.proxy_name, data.name,
		st.new_state, st.old_state)
	if st.cause ~= nil and st.cause ~= "" then
		text = text .. ", " .. st.cause
	elseif st.check ~= nil and st.check.reason ~= nil then
		text = text .. ", check: " .. st.check.reason.desc
	elseif st.admin then
		text = text .. ", administrative change"
	end
	return text
end

core.register_init(function()
	if url == nil or url == "" then
		core.Warning("slack_webhook: no webhook URL (lua-load argument or SLACK_WEBHOOK_URL)")
		return
	end
	core.event_sub({ "SERVER_STATE" }, function(event, data, sub, when)
		outbox:push(describe(data))
	end)
	core.register_task(function()
		local client = core.httpclient()
		while true do
			local text = outbox:pop_wait()
			local reply = client:post{
				url = url,
				headers = { ["Content-Type"] = { "application/json" } },
				body = '{"text":' .. json_string(text) .. '}',
				timeout = 10000,
			}
			if reply.status < 200 or reply.status > 299 then
				core.Warning("slack_webhook: webhook answered status " .. tostring(reply.status))
			end
		end
	end)
end)
