/**
 * nestjs-grains/testing: what tests of an app built on nestjs-grains use. Imports no test
 * framework. See docs/testing.md.
 *
 * - `createTestCluster` / `createNestTestCluster`: several members in one process, talking
 *   over the real remote and codec, so a test sees what crosses between members.
 * - `serializeLocalCalls` (on in those clusters; a `ClusterOptions` field for any other): local
 *   calls cross the codec too, so a single-member test fails where several members would.
 * - `createGrainContext`: a fake `GrainContext`, to unit-test a grain class alone.
 * - `createFakeGrainClient`: a stand-in `GrainClient`, for
 *   `overrideProvider(getGrainClientToken(kind)).useValue(fake)`.
 */

export {
  createTestCluster,
  DEFAULT_TEST_MEMBERS,
  type TestCluster,
  type TestClusterCommonOptions,
  type TestClusterOptions,
  type TestMemberOptions,
} from './test-cluster.js';
export {
  type ClosableNestApp,
  createNestTestCluster,
  type NestTestCluster,
  type NestTestClusterOptions,
  type NestTestingModuleBuilderLike,
  type NestTestingModuleLike,
} from './nest-test-cluster.js';
export { createGrainContext, FakeGrainContext, type FakeGrainContextOptions, FakeGrainTimer } from './fake-grain-context.js';
export { createFakeGrainClient, type FakeGrainCall, type FakeGrainClient, type FakeGrainClientOptions, type FakeGrainMethods } from './fake-grain-client.js';
