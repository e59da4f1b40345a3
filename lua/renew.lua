-- Renew: compare-and-extend. Extends the lease only while the key still holds this
-- incarnation; a lease that lapsed (or was released) stays gone.
-- KEYS[1] generation key, KEYS[2] this incarnation's lease key
-- ARGV[1] generation, ARGV[2] lease value (incarnation), ARGV[3] lease ms
-- Returns: 1 renewed | 0 lapsed | 'GEN'
if not generation_current(KEYS[1], ARGV[1]) then return 'GEN' end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
