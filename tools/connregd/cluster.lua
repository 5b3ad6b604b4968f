-- connregd --cluster: the one script every Redis write goes through
-- (docs/cluster.md). Embedded into connregd at build time; called with
-- EVALSHA (EVAL on NOSCRIPT). Redis 7 replicates its effects, so TIME is
-- allowed; random values (epoch candidate, lease token) come from the caller.
--
-- KEYS (one hash tag, so the script runs on Redis Cluster too):
--   1 meta      HASH   epoch, seq, lastid, nexthost
--   2 state     HASH   connection id -> "N:T" (host number, transport)
--   3 feed      STREAM one record per change set (fields below)
--   4 hosts     ZSET   host id -> lease deadline (ms, Redis clock)
--   5 hostids   HASH   host id -> host number
--   6 hostnums  HASH   host number -> host id
--   7 lease:H   STRING H's lease token ("released:..." while handed over)
--   8 own:H     HASH   connection id -> transport, what H published
-- ARGV: 1 op, 2 host id H, 3 token, 4 epoch candidate, 5 feed MAXLEN ~,
--       6 lease ms, 7.. the op's arguments.
-- Feed record fields, in this order: s SEQ e EPOCH h N o OP, then for
-- OP "c" pairs (connection id, transport in decimal or "" for removed);
-- OP "x" (host N's lease ended: drop all its ids; when a reap sent it,
-- the number is free again) and "u" (host N took a lease: the number is
-- H's now) have none.

local op, H, token = ARGV[1], ARGV[2], ARGV[3]

local want = { 'hash', 'hash', 'stream', 'zset', 'hash', 'hash', 'string', 'hash' }
for i = 1, 8 do
	local t = redis.call('TYPE', KEYS[i])['ok']
	if t ~= 'none' and t ~= want[i] then
		return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' is a ' .. t ..
			', expected a ' .. want[i])
	end
end

local function fail(msg)
	error({ err = 'CONNREG ' .. msg })
end

local function now_ms()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function epoch()
	redis.call('HSETNX', KEYS[1], 'epoch', ARGV[4])
	return redis.call('HGET', KEYS[1], 'epoch')
end

local function valid_num(n)
	n = tonumber(n)
	if n and n >= 1 and n <= 65535 and n == math.floor(n) then
		return n
	end
	return nil
end

-- The next free host number: the counter, else (after 65535) the first free one.
local function alloc()
	local n = redis.call('HINCRBY', KEYS[1], 'nexthost', 1)
	if n <= 65535 and redis.call('HEXISTS', KEYS[6], n) == 0 then
		return n
	end
	for i = 0, 65534 do
		local k = (n + i - 1) % 65535 + 1
		if redis.call('HEXISTS', KEYS[6], k) == 0 then
			redis.call('HSET', KEYS[1], 'nexthost', k)
			return k
		end
	end
	fail('no host number left (65535 hosts hold one)')
end

-- H's host number; assigned when create is set. A host keeps its number
-- while it holds a lease; a reaped host's number is free again.
local function hostnum(create)
	local n = redis.call('HGET', KEYS[5], H)
	if n then
		local v = valid_num(n)
		if not v then
			fail('bad host number "' .. n .. '" for ' .. H .. ' in ' .. KEYS[5])
		end
		return v
	end
	if not create then
		return nil
	end
	n = alloc()
	redis.call('HSET', KEYS[5], H, n)
	redis.call('HSET', KEYS[6], n, H)
	return n
end

-- Append one record; nothing else is written when this fails.
local function emit(n, o, items)
	local ep = epoch()
	local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
	if not seq then
		fail('bad seq in ' .. KEYS[1])
	end
	seq = seq + 1
	local args = { 'XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
		's', string.format('%d', seq), 'e', ep, 'h', n, 'o', o }
	for i = 1, #items do
		args[#args + 1] = items[i]
	end
	local id = redis.call(unpack(args))
	redis.call('HSET', KEYS[1], 'seq', string.format('%d', seq), 'lastid', id)
	return seq
end

-- Remove every id H holds (its lease ended), with one "x" record (also
-- when it holds none, if always is set).
local function drop_host(n, always)
	local ids = redis.call('HKEYS', KEYS[8])
	if #ids == 0 and not always then
		return 0
	end
	emit(n, 'x', {})
	local pre = n .. ':'
	for i = 1, #ids do
		local cur = redis.call('HGET', KEYS[2], ids[i])
		if cur and string.sub(cur, 1, #pre) == pre then
			redis.call('HDEL', KEYS[2], ids[i])
		end
	end
	redis.call('DEL', KEYS[8])
	return #ids
end

local ttl = tonumber(ARGV[6])

if op == 'pub' then
	if redis.call('GET', KEYS[7]) ~= token then
		return redis.error_reply('LEASE ' .. H .. ' does not hold its lease')
	end
	local n = hostnum(false)
	if not n then
		return redis.error_reply('LEASE ' .. H .. ' has no host number')
	end
	local pre = n .. ':'
	local items, shadow = {}, {}
	for i = 7, #ARGV - 1, 2 do
		local id, v = ARGV[i], ARGV[i + 1]
		local cur = shadow[id]
		if cur == nil then
			cur = redis.call('HGET', KEYS[2], id)
		end
		if v == '' then
			if cur and string.sub(cur, 1, #pre) == pre then
				items[#items + 1] = id
				items[#items + 1] = ''
				shadow[id] = false
			end
		elseif cur ~= pre .. v then
			items[#items + 1] = id
			items[#items + 1] = v
			shadow[id] = pre .. v
		end
	end
	local seq = 0
	if #items > 0 then
		seq = emit(n, 'c', items)
	end
	for i = 1, #items, 2 do
		if items[i + 1] == '' then
			redis.call('HDEL', KEYS[2], items[i])
		else
			redis.call('HSET', KEYS[2], items[i], pre .. items[i + 1])
		end
	end
	for i = 7, #ARGV - 1, 2 do
		if ARGV[i + 1] == '' then
			redis.call('HDEL', KEYS[8], ARGV[i])
		else
			redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
		end
	end
	return { seq, #items / 2 }
elseif op == 'acquire' then
	-- 1: already ours (renewed); 2: fresh (a previous lease's ids were
	-- dropped); 3: taken over from a clean stop ("released:"); 0: held by
	-- another token. Returns { result, host number, epoch }.
	local n = hostnum(true)
	local cur = redis.call('GET', KEYS[7])
	local r
	if cur == token then
		r = 1
	elseif cur and string.sub(cur, 1, 9) == 'released:' then
		r = 3
	elseif cur then
		return { 0, n, epoch() }
	else
		drop_host(n, false)
		r = 2
	end
	if r ~= 1 then
		emit(n, 'u', {})
	end
	redis.call('SET', KEYS[7], token, 'PX', ttl)
	redis.call('ZADD', KEYS[4], now_ms() + ttl, H)
	return { r, n, epoch() }
elseif op == 'renew' then
	if redis.call('GET', KEYS[7]) ~= token then
		return 0
	end
	redis.call('PEXPIRE', KEYS[7], ttl)
	redis.call('ZADD', KEYS[4], now_ms() + ttl, H)
	return 1
elseif op == 'release' then
	-- A clean stop: the ids stay for one more lease, in which a connregd
	-- started again with this host id takes the lease over.
	if redis.call('GET', KEYS[7]) ~= token then
		return 0
	end
	redis.call('SET', KEYS[7], 'released:' .. token, 'PX', ttl)
	redis.call('ZADD', KEYS[4], now_ms() + ttl, H)
	return 1
elseif op == 'expired' then
	return redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now_ms(), 'LIMIT', 0, 64)
elseif op == 'reap' then
	-- H is another host whose deadline passed: drop its ids and free its
	-- number unless its lease came back meanwhile. Returns the number of
	-- ids dropped, or -1.
	if redis.call('EXISTS', KEYS[7]) == 1 then
		return -1
	end
	local dl = redis.call('ZSCORE', KEYS[4], H)
	if dl and tonumber(dl) > now_ms() then
		return -1
	end
	local n = hostnum(false)
	local k = 0
	if n then
		k = drop_host(n, true)
		redis.call('HDEL', KEYS[5], H)
		if redis.call('HGET', KEYS[6], n) == H then
			redis.call('HDEL', KEYS[6], n)
		end
	end
	redis.call('ZREM', KEYS[4], H)
	return k
elseif op == 'hosts' then
	-- { now, host id, deadline, ... } for the mirror's list of live hosts.
	local out = { now_ms() }
	local z = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
	for i = 1, #z do
		out[#out + 1] = z[i]
	end
	return out
end
return redis.error_reply('CONNREG unknown op ' .. tostring(op))
