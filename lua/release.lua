-- Release: compare-and-delete after a graceful deactivation. Removes the entry's owner
-- fields only if it still holds this incarnation and epoch; the epoch counter stays.
-- KEYS[1] generation key, KEYS[2] the identity's entry, KEYS[3] this incarnation's set
-- ARGV[1] generation, ARGV[2] incarnation, ARGV[3] epoch, ARGV[4] entry name
-- Returns: 1 released | 0 not ours (any more) | 'GEN'
if not generation_current(KEYS[1], ARGV[1]) then return 'GEN' end
redis.call('SREM', KEYS[3], ARGV[4])
local e = redis.call('HMGET', KEYS[2], 'incarnation', 'epoch')
if e[1] == ARGV[2] and e[2] == ARGV[3] then
  redis.call('HDEL', KEYS[2], 'member', 'incarnation', 'address', 'activation')
  return 1
end
return 0
