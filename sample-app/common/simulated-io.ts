import { setImmediate } from 'node:timers/promises';

/**
 * Stands in for the round trip to a real database in the in-memory stores: yields to the
 * event loop (a macrotask, like real I/O), so other requests really do run between a grain's
 * read and its write. Without it, the concurrency tests could pass even without turn-based
 * execution.
 */
export async function simulatedIo(): Promise<void> {
  await setImmediate();
}
