/**
 * nestjs-grains: virtual actors (grains) for NestJS. This file is the public API; nothing
 * else is meant to be imported.
 */

// Nest adapter
export { ClusterModule, ClusterFeatureModule } from './nest/cluster.module.js';
export type { ClusterModuleOptions } from './nest/cluster-module-options.interface.js';
export { Grain, type GrainOptions } from './nest/decorators/grain.decorator.js';
export { Interleave } from './nest/decorators/interleave.decorator.js';
export { Idempotent } from './nest/decorators/idempotent.decorator.js';
export { InjectGrainClient } from './nest/decorators/inject-grain-client.decorator.js';
export { InjectGrainContext } from './nest/decorators/inject-grain-context.decorator.js';
export { getGrainClientToken } from './nest/grain-client.token.js';
export { GRAIN_CONTEXT } from './nest/cluster.constants.js';
export { ClusterHealthIndicator, type ClusterHealthDetails, type ClusterHealthResult } from './nest/cluster-health.indicator.js';
export { GrainExceptionFilter, type GrainErrorResponseBody, type GrainExceptionFilterOptions, type GrainHttpMapping } from './nest/grain-exception.filter.js';

// Runtime
export { Cluster, type ClusterHealth, type ClusterStats } from './cluster/cluster.js';
export type { MembershipEvent, MembershipListener } from './cluster/member-list.js';
export type { ClusterOptions } from './cluster/cluster-options.js';
export type { Duration } from './cluster/duration.js';
export type { GrainCallOptions, GrainClient, GrainRef, CallableMethodNames } from './cluster/grain-client.interface.js';
export type { GrainContext, GrainTimer, GrainTimerOptions } from './cluster/grain-context.js';
export type { DeactivationReason, GrainClass, KindDefinition, OnGrainActivate, OnGrainDeactivate } from './cluster/kind.js';
export type { ClusterLogger } from './cluster/logger.js';
export type { ClusterProvider, Member, ProviderHealth, ProviderMember } from './cluster/providers/cluster-provider.js';
export { InMemoryProvider } from './cluster/providers/in-memory-provider.js';
export { StaticProvider, type StaticProviderOptions } from './cluster/providers/static-provider.js';
export { ConsulProvider, type ConsulProviderOptions } from './cluster/providers/consul/consul-provider.js';
export type { IdentityLookup, LookupHealth, LookupMember } from './cluster/identity/identity-lookup.js';
export { InMemoryIdentityLookup } from './cluster/identity/in-memory-identity-lookup.js';
export { HashIdentityLookup } from './cluster/identity/hash-identity-lookup.js';
export { RedisIdentityLookup } from './cluster/identity/redis/redis-identity-lookup.js';
export { FAST_LEASE, type LeaseSettings, type RedisIdentityLookupOptions, SAFE_LEASE } from './cluster/identity/redis/redis-lookup-options.js';
export type { GetHint, TurnGuard } from './cluster/identity/identity-lookup.js';
export type { Placement } from './cluster/placement/placement.js';
export type { PlacementContext, PlacementStrategy } from './cluster/placement/placement-strategy.js';
export type { ClusterGossip, GossipListener, GossipMemberStatus, GossipValue, MemberLoad, TopologyConsensus } from './cluster/gossip/gossiper.js';
export type { GossipOptions } from './cluster/gossip/gossip-options.js';
export type { RemoteOptions, RemoteTlsOptions } from './remote/remote-options.js';
export type { InboundLimitOptions } from './remote/inbound-limits.js';
export type { ProtocolRange } from './remote/protocol.js';
export { type Codec, CodecError, type CodecErrorCode, type CodecLimits } from './remote/codec/codec.js';
export { MsgpackCodec, type MsgpackCodecOptions } from './remote/codec/msgpack-codec.js';
export type { Pid } from './actor/pid.js';

// Errors
export {
  CallCycleError,
  ClusterShuttingDownError,
  ClusterUnavailableError,
  GrainActivationError,
  GrainCallAbortedError,
  GrainConfigurationError,
  GossipError,
  GrainError,
  GrainIdentityRefusedError,
  GrainInvocationError,
  GrainOverloadedError,
  GrainTimeoutError,
  GrainSerializationError,
  InvalidGrainCallError,
  MessageTooLargeError,
  MethodNotCallableError,
  OutcomeUnknownError,
  UnknownKindError,
} from './cluster/errors.js';
