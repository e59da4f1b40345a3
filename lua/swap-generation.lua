-- Swap generation: start a new generation, unless another member already has. Writes the new
-- generation only while the key is missing (Redis lost data) or still holds the one this
-- member read (written by another Redis process: a restart or failover), so members that
-- notice the same change at once all take the first new generation written.
-- It does not compare the generation first, as the entry and lease scripts do: it sets it.
-- KEYS[1] generation key
-- ARGV[1] the generation this member read ('' when the key was missing), ARGV[2] the new one
-- Returns: the generation now in force (ARGV[2], or the one another member wrote first)
local g = redis.call('GET', KEYS[1])
if g == false or g == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return g
