-- Resolve: where the live activation of one identity is, without claiming.
-- KEYS[1] generation key, KEYS[2] the identity's entry (hash)
-- ARGV[1] generation, ARGV[2] lease key prefix
-- Returns: {'GEN'} | {'NONE'} | {'OWNED', member, incarnation, address, activation, epoch}
if not generation_current(KEYS[1], ARGV[1]) then return {'GEN'} end
local owner = redis.call('HGET', KEYS[2], 'incarnation')
if owner and redis.call('EXISTS', ARGV[2] .. owner) == 1 then
  local e = redis.call('HMGET', KEYS[2], 'member', 'incarnation', 'address', 'activation', 'epoch')
  return {'OWNED', e[1], e[2], e[3], e[4], e[5]}
end
return {'NONE'}
