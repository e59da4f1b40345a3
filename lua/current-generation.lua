-- Prelude (not a step): redis-scripts.ts puts it before every script that compares the
-- generation, so they all compare it one way.
-- A generation is `<random hex>:<ms since 1970 when it began, by this server's TIME>:<run_id
-- of the Redis process that wrote it>`. It is current only while the key still holds the one
-- the member holds AND this Redis process wrote it: a promoted replica (or a restart that
-- kept the data) carries the old primary's generation but may lack its newest claims, so it
-- answers GEN until a member starts a generation of its own there (swap-generation.lua).
local function generation_current(key, held)
  local g = redis.call('GET', key)
  if g ~= held then return false end
  local run_id = string.match(g, ':(%x+)$')
  return run_id ~= nil and string.find(redis.call('INFO', 'server'), 'run_id:' .. run_id, 1, true) ~= nil
end

-- When a generation began (ms since 1970, as a decimal string; '0' when it does not say).
local function generation_start(generation)
  return string.match(generation, '^%x+:(%d+):') or '0'
end

-- This server's clock (TIME) in ms since 1970.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

