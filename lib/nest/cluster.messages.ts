export const NOT_A_GRAIN = (name: string) =>
  `Class "${name}" is not a grain: decorate it with @Grain() before passing it to ClusterModule.forFeature() or @InjectGrainClient().`;

export const GRAIN_CLASS_UNDEFINED = () =>
  'A grain class passed to ClusterModule.forFeature() or @InjectGrainClient() is undefined. This usually means a circular import; pass the kind name as a string instead.';

export const BAD_KIND_NAME = (name: string) =>
  `ClusterModule.forFeature(): "${name}" is not a kind name; pass the name a @Grain() class declares (letters, digits, ".", "_" and "-"), or the class itself to host the kind here.`;

export const GRAIN_CONTEXT_OUTSIDE_GRAIN = () =>
  'GrainContext can only be injected into @Grain() classes (with @InjectGrainContext()). A provider or controller asked for it; grains are registered with ClusterModule.forFeature([...]), not listed in providers.';

export const SCOPED_DEPENDENCY = (grain: string, dependency: string, scope: string) =>
  `Grain class "${grain}" depends on "${dependency}", which is ${scope}-scoped. A kind resolves its dependencies once, not per activation, so a grain can only depend on singleton (default-scoped) providers: make "${dependency}" a singleton, or pass per-request data as call arguments.`;

export const UNRESOLVABLE_DEPENDENCY = (grain: string, index: number, dependency: string) =>
  `Grain class "${grain}" cannot resolve its constructor parameter #${index} ("${dependency}"): no provider for it in the application. Add the provider to a module of the application, or mark the parameter @Optional().`;

export const UNTYPED_DEPENDENCY = (grain: string, index: number) =>
  `Grain class "${grain}": the type of constructor parameter #${index} is an interface, a type alias or is missing at run time. Inject it with @Inject(token).`;

export const EMBEDDED_DEFAULT = (clusterName: string, kinds: readonly string[]) =>
  `Cluster "${clusterName}" is running embedded: one member, in memory, no network (no provider or identityLookup configured). Kinds: ${kinds.length > 0 ? kinds.join(', ') : 'none'}.`;

export const MEMBER_STARTED = (clusterName: string, memberId: string, address: string, provider: string, lookup: string, kinds: readonly string[]) =>
  `Member ${memberId} joined cluster "${clusterName}" (${address === '' ? 'client only, serving nothing' : `remote on ${address}`}; provider: ${provider}, identity lookup: ${lookup}). Kinds: ${kinds.length > 0 ? kinds.join(', ') : 'none'}.`;
