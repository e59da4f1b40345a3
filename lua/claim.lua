-- Claim: for each of a batch of identities, find its live activation, or claim it for this
-- member. One script run (one round trip, one generation check) for every identity this member
-- claims in one event-loop turn; each identity's claim is decided on its own, as if alone.
-- An entry may be replaced only when its incarnation's lease has lapsed or it was released.
-- The epoch field survives release and grows with every claim: the fencing token.
-- NOTE: a claim's epoch is max(stored epoch, the generation's start) + 1, so an epoch is never
-- issued twice: an entry that survived into a later generation (a restart that kept the data,
-- a promoted replica that lacks the newest claims) may hold an epoch below what was issued
-- since; the generation's start (ms, by Redis' clock) is above every epoch issued before it
-- as long as an identity was claimed less than once per millisecond on average.
-- KEYS[1] generation key, KEYS[2] this incarnation's lease key, KEYS[3] this incarnation's set
--   of entries, KEYS[3 + i] the entry (hash) of identity i (i = 1 .. n)
-- ARGV[1] generation, ARGV[2] this incarnation, ARGV[3] member id, ARGV[4] address,
--   ARGV[5] lease key prefix (lease key = prefix .. incarnation), ARGV[6] entry key prefix (an
--   entry's key is that prefix and its name, kind/identity: the name goes into the set of
--   entries), ARGV[7] r, how many identities name a retired activation; then ARGV[7 + i]:
--   identity i's activation id (i = 1 .. n); then r pairs (ARGV[6 + n + 2j], ARGV[7 + n + 2j]):
--   an identity's i and an activation id of this incarnation that this member retired (fenced
--   on its own, its claim never released): an entry still naming it is claimed afresh (new
--   epoch, new activation id) instead of being answered OWNED, so no new activation runs under
--   the old one's claim
-- NOTE: two strings a claim (its entry, its activation id), the retired ones apart: what a
-- claim costs both ends grows with its arguments.
-- Returns: {'GEN'} (nothing claimed) | {'BATCH', reply_1, ..., reply_n}, reply_i one of
--   {'NOLEASE'} | {'OWNED', member, incarnation, address, activation, epoch} (live, maybe this
--   member's) | epoch, an integer: claimed here with that epoch (the common reply, so a bare
--   number rather than a table) | {'ERR', why}: the identity's entry is not one (not a hash,
--   or an epoch that is not a number); nothing was written for it, and the others go on
-- NOTE: a script is atomic (nothing runs between its steps) but not all-or-nothing: an error
-- would stop it with the earlier identities' writes kept, so each identity's entry is checked
-- before anything is written for it.
if not generation_current(KEYS[1], ARGV[1]) then return {'GEN'} end
local n = #KEYS - 3
-- NOTE: every argument is checked before anything is written (an error after a write would
-- keep it): the count of retired pairs, each pair's index, each activation id.
local r = tonumber(ARGV[7])
if r == nil or r < 0 or r ~= math.floor(r) or #ARGV ~= 7 + n + 2 * r then
  return redis.error_reply('ERR claim: ' .. n .. ' entries need ' .. (7 + n) .. ' arguments and 2 per retired activation')
end
for i = 1, n do
  if ARGV[7 + i] == '' then return redis.error_reply('ERR claim: the activation id of entry ' .. i .. ' is empty') end
end
local entry_prefix = ARGV[6]
local retired_of = {}
for j = 1, r do
  local i = tonumber(ARGV[6 + n + 2 * j])
  if i == nil or i < 1 or i > n or i ~= math.floor(i) then return redis.error_reply('ERR claim: retired pair ' .. j .. ' names no entry') end
  retired_of[i] = ARGV[7 + n + 2 * j]
end
local leased = redis.call('GET', KEYS[2]) == ARGV[2]
local floor = tonumber(generation_start(ARGV[1]))

-- The largest epoch a claim accepts or writes: Lua numbers are doubles, exact to 2^53; 15 digits
-- stay below that (an epoch is ms since 1970 plus claims, 13 digits for centuries to come).
local EPOCH_DIGITS = 15
local EPOCH_LIMIT = 10 ^ EPOCH_DIGITS

-- This incarnation's set of entries gets the names claimed here in one SADD at the end; its type
-- is checked first, so that SADD cannot fail after entries were written.
local set_type = redis.call('TYPE', KEYS[3])['ok']
if set_type ~= 'set' and set_type ~= 'none' then
  return redis.error_reply('ERR claim: ' .. KEYS[3] .. ' is a ' .. set_type .. ', not a set')
end
local claimed = {}

-- One identity's claim, as the script once decided it alone.
-- NOTE: one HMGET reads the whole entry and one HSET writes it (epoch included, computed here):
-- a script runs atomically, so nothing can come between the read and the write. Redis' CPU per
-- claim is what bounds new activations per second (bench/ activation-redis), and it is mostly
-- the number of commands a claim runs (each redis.call costs about as much again as the
-- command itself), hence also one SADD per batch.
local function claim(entry, activation, retired_id)
  if string.find(entry, entry_prefix, 1, true) ~= 1 then
    return {'ERR', 'the key ' .. entry .. ' is not an entry (its prefix is not ' .. entry_prefix .. ')'}
  end
  local e = redis.pcall('HMGET', entry, 'member', 'incarnation', 'address', 'activation', 'epoch')
  if e['err'] then
    return {'ERR', 'the entry of ' .. string.sub(entry, #entry_prefix + 1) .. ' is a ' .. redis.call('TYPE', entry)['ok'] .. ', not a hash'}
  end
  local stored_epoch = e[5]
  if stored_epoch and (not string.match(stored_epoch, '^%d+$') or #stored_epoch > EPOCH_DIGITS) then
    return {'ERR', 'the entry of ' .. string.sub(entry, #entry_prefix + 1) .. ' holds an epoch that is not a whole number of at most ' .. EPOCH_DIGITS .. ' digits'}
  end
  local owner = e[2]
  local retired = owner == ARGV[2] and retired_id ~= '' and e[4] == retired_id
  if owner and not retired and (owner == ARGV[2] or redis.call('EXISTS', ARGV[5] .. owner) == 1) then
    return {'OWNED', e[1], e[2], e[3], e[4], e[5]}
  end
  if not leased then return {'NOLEASE'} end
  local epoch = math.max(floor, tonumber(stored_epoch or '0')) + 1
  if epoch >= EPOCH_LIMIT then
    return {'ERR', 'the next epoch of ' .. string.sub(entry, #entry_prefix + 1) .. ' would have more than ' .. EPOCH_DIGITS .. ' digits'}
  end
  redis.call('HSET', entry, 'epoch', string.format('%.0f', epoch), 'member', ARGV[3], 'incarnation', ARGV[2], 'address', ARGV[4], 'activation', activation)
  claimed[#claimed + 1] = string.sub(entry, #entry_prefix + 1)
  return epoch
end

local replies = {'BATCH'}
for i = 1, n do
  replies[i + 1] = claim(KEYS[3 + i], ARGV[7 + i], retired_of[i] or '')
end
-- NOTE: in slices, so no SADD has more arguments than Lua's stack takes (a batch is at most
-- MAX_CLAIMS_PER_BATCH in redis-claims.ts; another caller might send more).
for from = 1, #claimed, 1000 do
  redis.call('SADD', KEYS[3], unpack(claimed, from, math.min(from + 999, #claimed)))
end
return replies
