-- perf/events_probe.lua: loaded by harp (`lua-load perf/events_probe.lua <file> [spin_seconds]`)
-- for compare.sh's `events` scenario. On every SERVER_ADMIN event (one per `disable server` /
-- `enable server` command of `harp-perf flap`) it appends the callback's wall-clock time in Unix
-- microseconds and the event's age (microseconds since harp's event bus published it, from the
-- harp-only `core.harp_event_age_us()`; -1 where that function does not exist) to <file>, one
-- line per event (`callback_unix_us age_us EVENT`), flushed at once so compare.sh can match line
-- k with the k-th flap command's send time. With spin_seconds > 0 the callback then busy-loops in pure
-- Lua for that long (wall clock, not os.clock(): os.clock() counts the CPU time of every harp
-- thread, so it would run fast while the data plane is busy) to show whether a hogging callback
-- moves the data plane's latency. That needs `tune.lua.burst-timeout` above spin_seconds.
-- With spin_every = N (default 1) only every N-th event spins, so that with N = 2 and one event a
-- second the Lua thread alternates a second spinning with a second idle, and one rr run holds
-- both (perf/spinsplit.py compares them). spin_first (default spin_every) is the first event
-- that spins: with spin_every = 2, 1 puts the spins on the odd events (`disable server` in
-- compare.sh), 2 on the even ones (`enable server`); compare.sh alternates it by repeat so that
-- a difference between those two kinds of seconds cancels. Each spin's start and end (Unix
-- microseconds) go to <file>.spin, one `start_us end_us` line per spin.

local path, spin, every, first = ...
assert(path, "usage: lua-load events_probe.lua <output file> [spin_seconds [spin_every [spin_first]]]")
spin = tonumber(spin) or 0
every = math.max(1, math.floor(tonumber(every) or 1))
first = math.max(1, math.floor(tonumber(first) or every))

local out = assert(io.open(path, "a"))
local spans = spin > 0 and assert(io.open(path .. ".spin", "a"))
local seen = 0

local function now_us()
    local t = core.now()
    return t.sec * 1000000 + t.usec
end

local age_us = core.harp_event_age_us or function() return -1 end

core.event_sub({ "SERVER_ADMIN" }, function(event, data)
    -- Age first: it is the publish-to-callback latency only at the callback's very start.
    local age = age_us() or -1
    out:write(string.format("%d %d %s\n", now_us(), age, event))
    out:flush()
    seen = seen + 1
    if spin > 0 and seen >= first and (seen - first) % every == 0 then
        local start = now_us()
        local stop = start + math.floor(spin * 1000000)
        local n = 0
        while now_us() < stop do
            n = n + 1
        end
        spans:write(string.format("%d %d\n", start, now_us()))
        spans:flush()
    end
end)
