import 'reflect-metadata';
import { ConsoleLogger, Inject, Injectable, type INestApplication, Module, Optional, Scope } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  type ClusterModuleOptions,
  ClusterModule,
  ClusterShuttingDownError,
  Grain,
  type GrainClient,
  type GrainContext,
  InjectGrainClient,
  InjectGrainContext,
  Interleave,
} from 'nestjs-grains';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

@Injectable()
class Ledger {
  static instances = 0;
  readonly saved = new Map<string, number>();
  readonly deactivated: string[] = [];
  constructor() {
    Ledger.instances++;
  }
}

const GREETING = 'GREETING';

@Grain()
class WalletGrain {
  private balance = 0;
  @Inject(GREETING) private readonly greeting!: string;
  constructor(
    private readonly ledger: Ledger,
    @InjectGrainContext() private readonly ctx: GrainContext,
    @Optional() @Inject('MISSING') private readonly missing?: string,
  ) {}
  onGrainActivate(): void {
    this.balance = this.ledger.saved.get(this.ctx.identity) ?? 0;
  }
  onGrainDeactivate(reason: string): void {
    this.ledger.deactivated.push(`${this.ctx.identity}:${reason}`);
  }
  async add(amount: number): Promise<number> {
    const next = this.balance + amount;
    await tick();
    this.ledger.saved.set(this.ctx.identity, next);
    return (this.balance = next);
  }
  describe() {
    return {
      kind: this.ctx.kind,
      identity: this.ctx.identity,
      greeting: this.greeting,
      missing: this.missing ?? null,
      ledgerIsShared: this.ledger instanceof Ledger,
    };
  }
  @Interleave()
  async peek(): Promise<number> {
    await tick();
    return this.balance;
  }
}

@Grain({ kind: 'audit' })
class AuditTrailGrain {
  private readonly entries: string[] = [];
  constructor(@InjectGrainClient(WalletGrain) private readonly wallets: GrainClient<WalletGrain>) {}
  async record(walletId: string): Promise<string> {
    const balance = await this.wallets.get(walletId).peek();
    this.entries.push(`${walletId}=${balance}`);
    return this.entries.join(',');
  }
}

@Injectable()
class WalletService {
  constructor(
    @InjectGrainClient('wallet') readonly wallets: GrainClient<WalletGrain>,
    @InjectGrainClient(AuditTrailGrain) readonly audits: GrainClient<AuditTrailGrain>,
  ) {}
}

class CapturingLogger extends ConsoleLogger {
  readonly lines: string[] = [];
  override log(message: unknown, context?: string): void {
    this.lines.push(`${context ?? ''}: ${String(message)}`);
  }
  override warn(message: unknown, context?: string): void {
    this.lines.push(`${context ?? ''}: ${String(message)}`);
  }
  override error(message: unknown, ...rest: unknown[]): void {
    this.lines.push(`error: ${String(message)} ${rest.join(' ')}`);
  }
}

async function createApp(imports: unknown[], providers: unknown[] = [], logger: CapturingLogger | false = false): Promise<INestApplication> {
  @Module({ imports: imports as never[], providers: providers as never[] })
  class TestAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [TestAppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger });
  await app.init();
  return app;
}

const root = (extra: Partial<ClusterModuleOptions> = {}) => ClusterModule.forRoot({ clusterName: 'nest-test', ...extra });

describe('ClusterModule', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('discovers @Grain classes from forFeature and injects typed clients by class and by kind name', async () => {
    app = await createApp([root(), ClusterModule.forFeature([WalletGrain, AuditTrailGrain])], [Ledger, WalletService, { provide: GREETING, useValue: 'hi' }]);
    const service = app.get(WalletService);
    expect(app.get(Cluster).kindNames.sort()).toEqual(['audit', 'wallet']);
    expect(await service.wallets.get('w1').add(5)).toBe(5);
    expect(await service.wallets.get('w1').add(7)).toBe(12);
    expect(await service.audits.get('a1').record('w1')).toBe('w1=12'); // grain → grain
  });

  it('constructs grains with singleton dependencies, property injection, optional dependencies and the context', async () => {
    Ledger.instances = 0;
    app = await createApp([root(), ClusterModule.forFeature([WalletGrain])], [Ledger, { provide: GREETING, useValue: 'hello' }]);
    const wallets = app.get(Cluster).client<WalletGrain>('wallet');
    expect(await wallets.get('w2').describe()).toEqual({ kind: 'wallet', identity: 'w2', greeting: 'hello', missing: null, ledgerIsShared: true });
    await Promise.all(['a', 'b', 'c'].map((id) => wallets.get(id).add(1)));
    expect(Ledger.instances).toBe(1);
    expect(app.get(Ledger).saved.get('b')).toBe(1);
  });

  it('forRootAsync takes a factory with imports and inject', async () => {
    @Injectable()
    class Settings {
      readonly clusterName = 'from-factory';
    }
    @Module({ providers: [Settings], exports: [Settings] })
    class SettingsModule {}
    app = await createApp(
      [
        ClusterModule.forRootAsync({
          imports: [SettingsModule],
          inject: [Settings],
          useFactory: (s: Settings) => ({ clusterName: s.clusterName, requestTimeout: '2s' }),
        }),
        ClusterModule.forFeature([WalletGrain]),
      ],
      [Ledger, { provide: GREETING, useValue: 'x' }],
    );
    expect(app.get(Cluster).clusterName).toBe('from-factory');
    expect(app.get(Cluster).requestTimeoutMs).toBe(2_000);
  });

  it('forRootAsync takes an options factory class', async () => {
    @Injectable()
    class ClusterConfig {
      create(): ClusterModuleOptions {
        return { clusterName: 'from-class', memberId: 'member-7' };
      }
    }
    app = await createApp([ClusterModule.forRootAsync({ useClass: ClusterConfig })]);
    expect(app.get(Cluster).memberId).toBe('member-7');
  });

  it('logs one line saying it runs the embedded default', async () => {
    const logger = new CapturingLogger();
    app = await createApp([root(), ClusterModule.forFeature([WalletGrain])], [Ledger, { provide: GREETING, useValue: 'x' }], logger);
    const lines = logger.lines.filter((l) => l.includes('running embedded'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('Cluster "nest-test" is running embedded: one member, in memory, no network');
    expect(lines[0]).toContain('Kinds: wallet');
  });

  it('deactivates every activation on app.close() and then refuses calls', async () => {
    app = await createApp([root(), ClusterModule.forFeature([WalletGrain])], [Ledger, { provide: GREETING, useValue: 'x' }]);
    const wallets = app.get(Cluster).client<WalletGrain>('wallet');
    await Promise.all(['x', 'y'].map((id) => wallets.get(id).add(1)));
    const ledger = app.get(Ledger);
    await app.close();
    app = undefined;
    expect(ledger.deactivated.sort()).toEqual(['x:shutdown', 'y:shutdown']);
    await expect(wallets.get('x').add(1)).rejects.toBeInstanceOf(ClusterShuttingDownError);
  });

  it('derives kind names from class names', async () => {
    @Grain()
    class UserProfileGrain {
      name(): string {
        return 'p';
      }
    }
    @Grain()
    class Inventory {
      count(): number {
        return 1;
      }
    }
    app = await createApp([root(), ClusterModule.forFeature([UserProfileGrain, Inventory])]);
    expect(app.get(Cluster).kindNames.sort()).toEqual(['inventory', 'user-profile']);
  });
});

describe('ClusterModule startup errors', () => {
  it('refuses two classes with the same kind, naming both', async () => {
    @Grain({ kind: 'dup' })
    class FirstDup {}
    @Grain({ kind: 'dup' })
    class SecondDup {}
    await expect(createApp([root(), ClusterModule.forFeature([FirstDup]), ClusterModule.forFeature([SecondDup])])).rejects.toThrow(
      /"dup" is declared by two classes, "(FirstDup|SecondDup)" and "(SecondDup|FirstDup)"/,
    );
  });

  it('refuses a grain that depends on a REQUEST-scoped provider, naming it', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {}
    @Grain()
    class NeedsRequestGrain {
      constructor(readonly perRequest: PerRequest) {}
    }
    await expect(createApp([root(), ClusterModule.forFeature([NeedsRequestGrain])], [PerRequest])).rejects.toThrow(
      /"NeedsRequestGrain" depends on "PerRequest", which is REQUEST-scoped/,
    );
  });

  it('refuses a grain that depends on a TRANSIENT provider, naming it', async () => {
    @Injectable({ scope: Scope.TRANSIENT })
    class Fresh {}
    @Grain()
    class NeedsTransientGrain {
      constructor(readonly fresh: Fresh) {}
    }
    await expect(createApp([root(), ClusterModule.forFeature([NeedsTransientGrain])], [Fresh])).rejects.toThrow(
      /depends on "Fresh", which is TRANSIENT-scoped/,
    );
  });

  it('refuses a grain whose dependency has no provider, naming it', async () => {
    class NotProvided {}
    @Grain()
    class OrphanGrain {
      constructor(readonly dep: NotProvided) {}
    }
    await expect(createApp([root(), ClusterModule.forFeature([OrphanGrain])])).rejects.toThrow(
      /"OrphanGrain" cannot resolve its constructor parameter #0 \("NotProvided"\)/,
    );
  });

  it('refuses GrainContext injected into something that is not a grain', async () => {
    @Injectable()
    class Confused {
      constructor(@InjectGrainContext() readonly ctx: GrainContext) {}
    }
    await expect(createApp([root()], [Confused])).rejects.toThrow(/GrainContext can only be injected into @Grain\(\) classes/);
  });

  it('refuses a class without @Grain in forFeature', () => {
    class Plain {}
    expect(() => ClusterModule.forFeature([Plain])).toThrow(/Class "Plain" is not a grain: decorate it with @Grain\(\)/);
  });

  it('refuses bad module options at startup', async () => {
    await expect(createApp([ClusterModule.forRoot({ clusterName: 'ok', idleTimeout: 'forever' as never })])).rejects.toThrow(
      /idleTimeout: "forever" is not a duration/,
    );
  });
});
