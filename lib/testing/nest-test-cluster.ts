import { Logger } from '@nestjs/common';
import { Cluster } from '../cluster/cluster.js';
import { GrainConfigurationError } from '../cluster/errors.js';
import type { ClusterModuleOptions } from '../nest/cluster-module-options.interface.js';
import { LOGGER_CONTEXT } from '../nest/cluster.constants.js';
import { CLUSTER_MODULE_OPTIONS } from '../nest/cluster.module-definition.js';
import { memberCount, ownOverrides, startTogether, type TestCluster, type TestClusterCommonOptions, testCluster, testMemberOptions } from './test-cluster.js';
import { TestMembership } from './test-membership.js';

/** What the kit closes at shutdown: a compiled testing module, or an application made from one. */
export interface ClosableNestApp {
  close(): Promise<void>;
}

/** The part of a compiled `TestingModule` (`@nestjs/testing`) the kit uses. */
export interface NestTestingModuleLike extends ClosableNestApp {
  init(): Promise<unknown>;
}

/**
 * The part of `@nestjs/testing`'s `TestingModuleBuilder` the kit uses: what
 * `Test.createTestingModule({...})` returns, with any overrides of yours already applied.
 * (The kit does not import `@nestjs/testing` itself.)
 */
export interface NestTestingModuleBuilderLike<M extends NestTestingModuleLike> {
  overrideProvider(token: typeof Cluster): {
    useFactory(options: { factory: (options: ClusterModuleOptions) => Cluster; inject: unknown[] }): NestTestingModuleBuilderLike<M>;
  };
  compile(): Promise<M>;
}

/** Options of `createNestTestCluster`. */
export interface NestTestClusterOptions<M extends NestTestingModuleLike, A extends ClosableNestApp> extends TestClusterCommonOptions {
  /**
   * Builds the testing module of member `index` (called once per member): typically
   * `() => Test.createTestingModule({ imports: [AppModule] })`, with your overrides. The module
   * must import `ClusterModule.forRoot()` (or `forRootAsync()`); its options are kept, and the
   * kit turns its member into one of the test cluster.
   */
  module(index: number): NestTestingModuleBuilderLike<M>;
  /**
   * Starts a compiled member. @default `module.init()` (lifecycle hooks, no HTTP server); for an
   * HTTP application per member: `(module) => module.createNestApplication().init()`
   */
  start?(module: M, index: number): Promise<A>;
}

/** A test cluster of Nest members: `members[i]` is the `Cluster` of `modules[i]`. */
export interface NestTestCluster<M, A> extends TestCluster {
  /** The compiled testing module of each member: `modules[0].get(AccountsController)`. */
  readonly modules: readonly M[];
  /** What `start` gave for each member (by default the modules themselves); closed at shutdown. */
  readonly apps: readonly A[];
}

/**
 * A cluster of `members` Nest applications in this process, for tests: each member is your
 * module (`options.module`), compiled once per member (so each has its own providers, as a
 * process would), with its `ClusterModule.forRoot()` member turned into a member of one test
 * cluster: serving on a loopback port (port 0), a static list of the others, hash placement,
 * and `serializeLocalCalls` on. `clusterName`, timeouts and other `forRoot` options are kept.
 * Resolves once every member is started and knows every other; `shutdown()` closes them all.
 *
 * @example
 * const cluster = await createNestTestCluster({
 *   members: 3,
 *   module: () => Test.createTestingModule({ imports: [AppModule] }),
 * });
 * const accounts = cluster.modules[0].get(AccountsController);
 * await cluster.shutdown();
 */
export async function createNestTestCluster<M extends NestTestingModuleLike, A extends ClosableNestApp = M>(
  options: NestTestClusterOptions<M, A>,
): Promise<NestTestCluster<M, A>> {
  const size = memberCount(options.members);
  const membership = new TestMembership(size);
  const members: Array<Cluster | undefined> = [];
  const modules: M[] = [];
  const closeModules = () => Promise.all(modules.map((m) => m.close()));
  const own = ownOverrides(options.options, size);
  try {
    for (let index = 0; index < size; index++) {
      const overrides = own[index]!;
      const builder = options
        .module(index)
        .overrideProvider(Cluster)
        .useFactory({
          // NOTE: the factory of ClusterModule, with the member's options over the app's own.
          factory: (moduleOptions) => {
            const cluster = new Cluster(
              testMemberOptions(index, membership, { ...moduleOptions, logger: moduleOptions.logger ?? new Logger(LOGGER_CONTEXT) }, overrides),
            );
            members[index] = cluster;
            return cluster;
          },
          inject: [CLUSTER_MODULE_OPTIONS],
        });
      modules.push(await builder.compile());
      if (members[index] === undefined) {
        throw new GrainConfigurationError(
          `createNestTestCluster: the module of member ${index} has no cluster member; import ClusterModule.forRoot() (or forRootAsync()) in it.`,
        );
      }
    }
  } catch (error) {
    await closeModules().catch(() => undefined);
    throw error;
  }
  const start = options.start ?? ((module: M) => module.init().then(() => module as unknown as A));
  const apps = await startTogether(
    modules.map((module, index) => () => start(module, index)),
    membership,
    closeModules,
    options.readyTimeout,
  );
  const closeApps = () => Promise.all(apps.map((app) => app.close()));
  const cluster = await testCluster(members as Cluster[], closeApps, options.readyTimeout);
  return { ...cluster, modules, apps };
}
