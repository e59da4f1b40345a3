-- Leave: a graceful leave deletes this incarnation's lease at once, so its remaining entries
-- (if any) are replaceable without waiting for the lease to lapse.
-- KEYS[1] this incarnation's lease key
-- ARGV[1] incarnation
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
