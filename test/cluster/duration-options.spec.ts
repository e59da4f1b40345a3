import { describe, expect, it } from 'vitest';
import { Cluster, GrainConfigurationError, StaticProvider } from 'nestjs-grains';

describe('StaticProvider options take Durations like every other public option', () => {
  it('accepts strings and numbers, and keeps the deprecated *Ms names working', () => {
    expect(() => new StaticProvider({ members: [], probeInterval: '250ms', startupGrace: '5s' })).not.toThrow();
    expect(() => new StaticProvider({ members: [], probeInterval: 250, startupGrace: 0 })).not.toThrow();
    expect(() => new StaticProvider({ members: [], probeIntervalMs: 250, startupGraceMs: 5_000 })).not.toThrow();
  });

  it('refuses what is not a duration with a typed error naming the option', () => {
    expect(() => new StaticProvider({ members: [], probeInterval: 'soon' as never })).toThrow(GrainConfigurationError);
    expect(() => new StaticProvider({ members: [], probeInterval: 'soon' as never })).toThrow(/StaticProvider probeInterval: "soon" is not a duration/);
    expect(() => new StaticProvider({ members: [], probeInterval: 0 })).toThrow(/probeInterval: 0 must be a positive/);
    expect(() => new StaticProvider({ members: [], startupGrace: -1 })).toThrow(/startupGrace: -1 must be a non-negative/);
  });
});

describe('requestTimeout and what members accept', () => {
  it('refuses at construction a requestTimeout longer than remote.inbound.maxTimeoutMs, which remote calls would all exceed', () => {
    expect(() => new Cluster({ clusterName: 't', requestTimeout: '15m', remote: {} })).toThrow(GrainConfigurationError);
    expect(() => new Cluster({ clusterName: 't', requestTimeout: '15m', remote: {} })).toThrow(/remote\.inbound\.maxTimeoutMs/);
    expect(() => new Cluster({ clusterName: 't', requestTimeout: '15m', remote: { inbound: { maxTimeoutMs: 20 * 60_000 } } })).not.toThrow();
    expect(() => new Cluster({ clusterName: 't', requestTimeout: '15m' })).not.toThrow(); // embedded: nothing remote
  });
});
