-- Join: create this member incarnation's lease. Only joining creates a lease, and an
-- incarnation is never reused, so a lapsed lease is never revived.
-- NOTE: no lease is created before the generation is a lease old by this server's clock: a
-- generation starts when Redis lost its data (or is another process), and the leases of the
-- generation before it end within a lease of their last renewal, which came before it. Every
-- member waits, the one that joins for the first time too; claims need a lease, so nothing is
-- claimed in a generation younger than a lease.
-- KEYS[1] generation key, KEYS[2] this incarnation's lease key, KEYS[3] the set of
--   incarnations that joined (cleanup walks it instead of scanning the keyspace)
-- ARGV[1] generation, ARGV[2] lease value (incarnation), ARGV[3] lease ms
-- Returns: 'OK' | 'GEN' | 'TAKEN' | 'EARLY:<ms until the generation is a lease old>'
if not generation_current(KEYS[1], ARGV[1]) then return 'GEN' end
local early = tonumber(generation_start(ARGV[1])) + tonumber(ARGV[3]) - now_ms()
if early > 0 then return 'EARLY:' .. string.format('%d', early) end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  redis.call('SADD', KEYS[3], ARGV[2])
  return 'OK'
end
return 'TAKEN'
