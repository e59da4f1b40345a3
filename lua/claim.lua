-- Claim: find the live activation of one identity, or claim the identity for this member.
-- An entry may be replaced only when its incarnation's lease has lapsed or it was released.
-- The epoch field survives release and grows with every claim: the fencing token.
-- NOTE: a claim's epoch is max(stored epoch, the generation's start) + 1, so an epoch is never
-- issued twice: an entry that survived into a later generation (a restart that kept the data,
-- a promoted replica that lacks the newest claims) may hold an epoch below what was issued
-- since; the generation's start (ms, by Redis' clock) is above every epoch issued before it
-- as long as an identity was claimed less than once per millisecond on average.
-- KEYS[1] generation key, KEYS[2] the identity's entry (hash), KEYS[3] this incarnation's
--   lease key, KEYS[4] this incarnation's set of entries
-- ARGV[1] generation, ARGV[2] this incarnation, ARGV[3] member id, ARGV[4] address,
--   ARGV[5] activation id, ARGV[6] lease key prefix (lease key = prefix .. incarnation),
--   ARGV[7] entry name (kind/identity, for the member set), ARGV[8] an activation id of this
--   incarnation that this member retired (fenced on its own, its claim never released), or '':
--   an entry still naming it is claimed afresh (new epoch, new activation id) instead of being
--   answered OWNED, so no new activation runs under the old one's claim
-- Returns: {'GEN'} | {'NOLEASE'} |
--   {'OWNED', member, incarnation, address, activation, epoch} (live, maybe this member's) |
--   {'CLAIMED', epoch}
if not generation_current(KEYS[1], ARGV[1]) then return {'GEN'} end
local owner = redis.call('HGET', KEYS[2], 'incarnation')
local retired = owner == ARGV[2] and ARGV[8] ~= '' and redis.call('HGET', KEYS[2], 'activation') == ARGV[8]
if owner and not retired then
  if owner == ARGV[2] or redis.call('EXISTS', ARGV[6] .. owner) == 1 then
    local e = redis.call('HMGET', KEYS[2], 'member', 'incarnation', 'address', 'activation', 'epoch')
    return {'OWNED', e[1], e[2], e[3], e[4], e[5]}
  end
end
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return {'NOLEASE'} end
local floor = generation_start(ARGV[1])
if tonumber(floor) > tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0') then
  redis.call('HSET', KEYS[2], 'epoch', floor)
end
local epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('HSET', KEYS[2], 'member', ARGV[3], 'incarnation', ARGV[2], 'address', ARGV[4], 'activation', ARGV[5])
redis.call('SADD', KEYS[4], ARGV[7])
return {'CLAIMED', tostring(epoch)}
