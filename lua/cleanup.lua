-- Cleanup (one small batch): remove up to ARGV[3] entries of an incarnation whose lease has
-- lapsed. Runs repeatedly from outside Lua, so no single script blocks Redis for long.
-- KEYS[1] generation key, KEYS[2] the lapsed incarnation's set, KEYS[3] its lease key,
--   KEYS[4] the set of incarnations (the lapsed one leaves it once nothing is left)
-- ARGV[1] generation, ARGV[2] entry key prefix (entry key = prefix .. name), ARGV[3] batch,
--   ARGV[4] the lapsed incarnation
-- Returns: entries left in the set | -1 the lease is alive (nothing done) | 'GEN'
if not generation_current(KEYS[1], ARGV[1]) then return 'GEN' end
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local names = redis.call('SPOP', KEYS[2], tonumber(ARGV[3]))
for _, name in ipairs(names) do
  local key = ARGV[2] .. name
  if redis.call('HGET', key, 'incarnation') == ARGV[4] then
    redis.call('HDEL', key, 'member', 'incarnation', 'address', 'activation')
  end
end
local left = redis.call('SCARD', KEYS[2])
if left == 0 then redis.call('SREM', KEYS[4], ARGV[4]) end
return left
