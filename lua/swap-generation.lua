-- Swap generation: read the generation, starting a new one when there is none (Redis lost its
-- data) or the one there was written by another Redis process (a restart that kept the data,
-- or a promoted replica: its run_id is not this server's). Atomic, so members that notice a
-- change at once all get the first new generation.
-- NOTE: the new generation begins now by THIS server's clock (TIME), never a member's: its
-- start is when joining may begin (start + a lease, join.lua) and where its epochs start
-- (claim.lua).
-- KEYS[1] generation key
-- ARGV[1] a random id (hex) for a new generation
-- Returns: {the generation in force, this server's time in ms since 1970}
local now = string.format('%d', now_ms())
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local g = redis.call('GET', KEYS[1])
if g and string.match(g, ':(%x+)$') == run_id then return {g, now} end
g = ARGV[1] .. ':' .. now .. ':' .. run_id
redis.call('SET', KEYS[1], g)
return {g, now}
