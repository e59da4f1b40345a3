import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { Cluster } from '../cluster/cluster.js';
import { LOGGER_CONTEXT } from './cluster.constants.js';
import { EMBEDDED_DEFAULT, MEMBER_STARTED } from './cluster.messages.js';

/**
 * Owns the member's timing: it joins the cluster once the application is bootstrapped, and
 * leaves it when the application closes — first of the shutdown hooks, so grains'
 * `onGrainDeactivate` still finds the providers they use alive.
 */
@Injectable()
export class ClusterLifecycle implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(private readonly cluster: Cluster) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.cluster.start();
    const { cluster } = this;
    this.logger.log(
      cluster.isEmbedded
        ? EMBEDDED_DEFAULT(cluster.clusterName, cluster.kindNames)
        : MEMBER_STARTED(cluster.clusterName, cluster.memberId, cluster.remoteAddress, cluster.provider.name, cluster.identityLookup.name, cluster.kindNames),
    );
  }

  async onModuleDestroy(): Promise<void> {
    await this.cluster.shutdown();
  }
}
