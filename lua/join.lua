-- Join: create this member incarnation's lease. Only joining creates a lease, and an
-- incarnation is never reused, so a lapsed lease is never revived.
-- KEYS[1] generation key, KEYS[2] this incarnation's lease key, KEYS[3] the set of
--   incarnations that joined (cleanup walks it instead of scanning the keyspace)
-- ARGV[1] generation, ARGV[2] lease value (incarnation), ARGV[3] lease ms
-- Returns: 'OK' | 'GEN' | 'TAKEN'
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'GEN' end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  redis.call('SADD', KEYS[3], ARGV[2])
  return 'OK'
end
return 'TAKEN'
