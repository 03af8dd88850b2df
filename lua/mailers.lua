-- mailers.lua (harp) -- e-mail alerts driven by the `mailers` section and `email-alert`
-- settings of each backend, sent over SMTP with core.tcp() (HAProxy 3.3 removed its C mailers
-- and ships a Lua one; this is harp's own take on the same idea).
--
--   global
--       lua-load mailers.lua
--   mailers mta
--       mailer smtp1 127.0.0.1:25
--       timeout mail 10s
--   backend app
--       option log-health-checks          # also mail health check results
--       email-alert mailers mta
--       email-alert from haproxy@example.com
--       email-alert to ops@example.com
--       email-alert level info
--
-- Levels follow syslog: a server going DOWN is an alert (1), coming UP a notice (5), drain and
-- check results info (6). A message is sent when its level <= `email-alert level`.

core.use_native_mailers_config()

local LOG_ALERT, LOG_NOTICE, LOG_INFO = 1, 5, 6

local jobs = core.queue()

-- One SMTP exchange; returns true or false, reason.
local function smtp_send(server, timeout_ms, helo, from, to, subject, body)
	local sock = core.tcp()
	sock:settimeout((timeout_ms or 10000) / 1000)
	local ok, err = sock:connect(server)
	if not ok then
		return false, "connect to " .. server .. ": " .. tostring(err)
	end
	local function expect(code)
		while true do
			local line, rerr = sock:receive("*l")
			if line == nil then
				return false, "no reply (" .. tostring(rerr) .. ") while waiting for " .. code
			end
			-- multi-line replies use "250-..." for all lines but the last
			if string.sub(line, 4, 4) ~= "-" then
				if string.sub(line, 1, 3) ~= code then
					return false, "unexpected reply '" .. line .. "' (wanted " .. code .. ")"
				end
				return true
			end
		end
	end
	local function step(cmd, code)
		if cmd ~= nil and sock:send(cmd .. "\r\n") == nil then
			return false, "send failed"
		end
		return expect(code)
	end
	local date = os.date("%a, %d %b %Y %H:%M:%S %z")
	local msg = core.concat()
	msg:add("From: " .. from .. "\r\n")
	msg:add("To: " .. to .. "\r\n")
	msg:add("Date: " .. date .. "\r\n")
	msg:add("Subject: " .. subject .. "\r\n")
	msg:add("\r\n")
	-- dot-stuffing: a line starting with "." gets another one
	msg:add((string.gsub(body, "\n%.", "\n..")))
	msg:add("\r\n.")
	local dialogue = {
		{ nil, "220" },
		{ "HELO " .. helo, "250" },
		{ "MAIL FROM:<" .. from .. ">", "250" },
		{ "RCPT TO:<" .. to .. ">", "250" },
		{ "DATA", "354" },
		{ msg:dump(), "250" },
		{ "QUIT", "221" },
	}
	for _, s in ipairs(dialogue) do
		local good, why = step(s[1], s[2])
		if not good then
			sock:close()
			return false, why
		end
	end
	sock:close()
	return true
end

-- Long-lived task: one mail at a time, to every mail server of the section.
core.register_task(function()
	while true do
		local job = jobs:pop_wait()
		for name, addr in pairs(job.mailers.mailservers) do
			local ok, why = smtp_send(addr, job.mailers.mailservers_timeout,
				job.mailers.smtp_hostname, job.mailers.smtp_from, job.mailers.smtp_to,
				job.subject, job.body)
			if not ok then
				core.Warning("mailers: alert for " .. job.what .. " not sent via " .. name ..
					": " .. why)
			end
		end
	end
end)

local function queue_mail(srv, mailers, level, text, when)
	if mailers == nil or level > (mailers.log_level or LOG_ALERT) then
		return
	end
	if mailers.smtp_from == nil or mailers.smtp_to == nil then
		return
	end
	local px = srv:get_proxy()
	local what = px:get_name() .. "/" .. srv:get_name()
	local body = core.concat()
	body:add(text .. "\r\n")
	body:add(string.format("%d active and %d backup servers left.\r\n",
		px:get_srv_act(), px:get_srv_bck()))
	body:add(string.format("%d sessions active, %d requeued, %d remaining in queue.\r\n",
		srv:get_cur_sess() or 0, 0, srv:get_pend_conn() or 0))
	body:add("Event time: " .. os.date("%a, %d %b %Y %H:%M:%S %z (%Z)", when) .. "\r\n")
	jobs:push({
		mailers = mailers,
		what = what,
		subject = "[HAProxy Alert] " .. text,
		body = body:dump(),
	})
end

local function on_event(event, data, sub, when)
	local srv = data.reference
	if srv == nil then
		return
	end
	local px = srv:get_proxy()
	local mailers = px and px:get_mailers()
	if mailers == nil then
		return
	end
	local name = data.proxy_name .. "/" .. data.name
	local kind = srv:is_backup() and "Backup Server " or "Server "
	if event == "SERVER_STATE" then
		local st = data.state
		local why = ""
		if st.check ~= nil and st.check.reason ~= nil then
			why = ", reason: " .. st.check.reason.desc
		elseif st.cause ~= nil and st.cause ~= "" then
			why = ", " .. st.cause
		elseif st.admin then
			why = ", administrative change"
		end
		if st.new_state == "STOPPED" then
			queue_mail(srv, mailers, LOG_ALERT, kind .. name .. " is DOWN" .. why, when)
		elseif st.old_state == "STOPPED" then
			queue_mail(srv, mailers, LOG_NOTICE, kind .. name .. " is UP" .. why, when)
		elseif st.new_state == "STOPPING" then
			queue_mail(srv, mailers, LOG_NOTICE, kind .. name .. " is stopping" .. why, when)
		end
	elseif event == "SERVER_ADMIN" then
		local a = data.admin
		if a.new_admin["DRAIN"] and not a.old_admin["DRAIN"] and not a.new_admin["MAINT"] then
			queue_mail(srv, mailers, LOG_INFO, kind .. name .. " enters drain state", when)
		elseif a.old_admin["DRAIN"] and not a.new_admin["DRAIN"] then
			queue_mail(srv, mailers, LOG_INFO, kind .. name .. " leaves drain state", when)
		end
	elseif event == "SERVER_CHECK" and mailers.track_server_health then
		local c = data.check
		if c.result == "FAILED" then
			local code = c.reason.code and (", code: " .. c.reason.code) or ""
			queue_mail(srv, mailers, LOG_INFO, string.format(
				"Health check for %s%s failed, reason: %s%s, check duration: %dms",
				string.lower(kind), name, c.reason.desc, code, c.duration), when)
		end
	end
end

local function watch(srv)
	srv:event_sub({ "SERVER_STATE", "SERVER_ADMIN", "SERVER_CHECK" }, on_event)
end

core.register_init(function()
	-- with lua-load-per-thread, only one state must send mails
	if core.thread > 1 then
		core.done()
	end
	for _, backend in pairs(core.backends) do
		if backend:get_mailers() ~= nil then
			for _, srv in pairs(backend.servers) do
				watch(srv)
			end
		end
	end
	core.event_sub({ "SERVER_ADD" }, function(event, data)
		local srv = data.reference
		if srv ~= nil and srv:get_proxy():get_mailers() ~= nil then
			watch(srv)
		end
	end)
end)
