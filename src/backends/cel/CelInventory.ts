import { Effect } from "effect"
import type { KubeClient } from "../../services/kube/KubeClient.ts"
import { isKubeError, type KubeError } from "../../services/kube/KubeErrors.ts"
import type { KubeObject, ObjectPage } from "../../services/kube/KubeObject.ts"
import { forEachPage, type PageBudget } from "../../services/kube/ListWatch.ts"
import { retryTransientUntil } from "../../services/kube/Retry.ts"
import { CelInventoryFailed } from "./CelErrors.ts"
import { type CelKind, metadataOnlyKinds, metadataOnlyMembers, namespaceKind, networkPolicyKind } from "./CelKinds.ts"
import { combinedReads, type CompiledRule, type ObjectReads } from "./CompiledRule.ts"
import { type CelTarget, objectTargets, targetContext } from "./CelTarget.ts"
import { adoptJson } from "./CelValue.ts"
import type { TallyMark } from "./RuleEvaluation.ts"

/**
 * The objects of a scan, as `cel test` and the tests hold them in memory (the scanner
 * streams them page by page instead, see `scanInventory`).
 */
export interface CelInventory {
  readonly namespaces: ReadonlyArray<KubeObject>
  /** The objects of every other listed kind, in the order the rules name the kinds. */
  readonly objects: ReadonlyArray<{ readonly kind: CelKind; readonly items: ReadonlyArray<KubeObject> }>
  /** Undefined when no rule reads them (they were not listed) or they could not be listed. */
  readonly networkPolicies: ReadonlyArray<KubeObject> | undefined
  /** Kinds that could not be listed, by key: why (`Forbidden: ...`). */
  readonly unlisted: ReadonlyMap<string, string>
}

export interface InventoryOptions {
  /** Objects in each kind's first page. */
  readonly pageSize: number
  /** How later pages are sized, by their bytes (none: every page has `pageSize`). */
  readonly pageBudget?: PageBudget
  /** Transient API errors (an API server down or restarting) are retried until this time (epoch millis): the run's deadline. */
  readonly deadline: number
  /** What the rule set's variables read of `object` (any rule may read them): kept in every page. */
  readonly variableReads?: ObjectReads
}

/** Where a paged scan delivers its objects (RuleTallies): targets page by page, refusals, restarts. */
export interface TargetSink<E, R> {
  readonly consume: (targets: Iterable<CelTarget>) => Effect.Effect<void, E, R>
  /** A kind could not be listed: the rules on it end in `error` with this reason. */
  readonly refuse: (kindKey: string, reason: string) => void
  readonly mark: () => TallyMark
  readonly rewind: (mark: TallyMark) => void
}

export interface ScanStatistics {
  readonly objects: number
  readonly pages: number
  readonly restarts: number
  readonly unlisted: number
}

const describe = (kind: CelKind, error: KubeError) => `cannot list ${kind.key}: ${error._tag}: ${error.message}`

/** Tolerated per kind: the rules on it fail, not the run. */
const isRefusal = (error: KubeError) => error._tag === "Forbidden" || error._tag === "NotFound"

/**
 * Lists what the rules need, once per run whatever the number of rules, and hands it to the
 * sink page by page (`limit`/`continue`), so memory is bounded by the page size, not the
 * cluster: Namespaces first and whole (they are few, every namespaced object sees its
 * `namespaceObject`, converted once per scan), NetworkPolicies whole when a rule reads
 * `networkPolicies`, then every kind a rule matches, one after the other. When every rule
 * on a kind has the same labelSelector, the API server pre-filters that kind. A continue
 * token that expires (410 Gone) lists the kind again from the start after the sink has
 * rewound what its pages counted.
 *
 * A kind the API server refuses to list (Forbidden: no RBAC; NotFound: no such resource,
 * say a CRD that is not installed) is refused to the sink: only the rules on it end in
 * `error`. Namespaces, and any other failure, fail the run.
 */
export const scanInventory = <E, R>(
  rules: ReadonlyArray<CompiledRule>,
  fromJson: (json: unknown) => unknown,
  options: InventoryOptions,
  sink: TargetSink<E, R>
): Effect.Effect<ScanStatistics, CelInventoryFailed | E, KubeClient | R> =>
  Effect.gen(function*() {
    const kinds = new Map<string, CelKind>()
    for (const rule of rules) for (const kind of rule.kinds) kinds.set(kind.key, kind)
    kinds.delete(namespaceKind.key)
    kinds.delete(networkPolicyKind.key)
    const readsPolicies = rules.some((rule) => rule.readsNetworkPolicies)
    const targetsPolicies = rules.some((rule) => rule.resources.has(networkPolicyKind.key))
    let objects = 0
    let pages = 0
    let restarts = 0
    let unlisted = 0

    /** The label selector all rules on the kind share, for the server to pre-filter with ("" when they differ). */
    const sharedSelector = (kind: CelKind) => {
      const onKind = rules.filter((rule) => rule.resources.has(kind.key))
      const selectors = new Set(onKind.map((rule) => rule.labelSelector))
      // Listed (also) for the networkPolicies variable: every policy is needed.
      return onKind.length === 0 || selectors.size !== 1 || (kind.key === networkPolicyKind.key && readsPolicies) ? "" : ([...selectors][0] ?? "")
    }
    // Of each scanned kind, only what its rules (and the variables) may read is parsed.
    // Namespaces and NetworkPolicies are kept whole: they are listed once and also read as
    // namespaceObject and networkPolicies, which the analysis of the rules does not cover.
    const leftOut = (kind: CelKind) => {
      const reads = combinedReads([...rules.filter((rule) => rule.resources.has(kind.key)).map((rule) => rule.reads), ...(options.variableReads === undefined ? [] : [options.variableReads])])
      // A Secret reaches the rules without its data whatever they read (CelTarget).
      const members = metadataOnlyKinds.has(kind.key) ? metadataOnlyMembers : reads.members === undefined ? undefined : [...reads.members].sort()
      return { ...(reads.managedFields ? {} : { omitManagedFields: true }), ...(members === undefined ? {} : { onlyMembers: members }) }
    }
    const listOptions = (kind: CelKind, scanned = false) => {
      const labelSelector = sharedSelector(kind)
      // Scanned kinds may come as protobuf (cheaper for the API server): their pages are
      // iterated once, and a page the client cannot read so makes the scan list the kind again.
      return { limit: options.pageSize, ...(labelSelector === "" ? {} : { labelSelector }), ...(scanned ? { ...leftOut(kind), protobuf: true } : {}) }
    }
    const retried = (page: Effect.Effect<ObjectPage, KubeError>) => retryTransientUntil(page, options.deadline)
    /** A kind small enough to hold (Namespaces, NetworkPolicies): all pages, restarting on Gone. */
    const listWhole = (kind: CelKind) =>
      Effect.suspend(() => {
        const items: Array<KubeObject> = []
        return forEachPage(kind, listOptions(kind), {
          onPage: (page) => Effect.sync(() => void items.push(...page)),
          onRestart: () => void (items.length = 0),
          request: retried,
          budget: options.pageBudget
        }).pipe(Effect.as(items))
      })
    const refusedOrFailed = (kind: CelKind) => (error: KubeError): Effect.Effect<undefined, CelInventoryFailed> => {
      if (!isRefusal(error)) return Effect.fail(new CelInventoryFailed({ message: describe(kind, error) }))
      unlisted++
      sink.refuse(kind.key, describe(kind, error))
      return Effect.succeed(undefined)
    }

    const namespaces = yield* listWhole(namespaceKind).pipe(
      Effect.mapError((error) => new CelInventoryFailed({ message: describe(namespaceKind, error) }))
    )
    const policies = readsPolicies ? yield* listWhole(networkPolicyKind).pipe(Effect.catch(refusedOrFailed(networkPolicyKind))) : undefined
    // Each page is read once and dropped: its objects are converted in place, not copied.
    const context = targetContext(fromJson, namespaces, readsPolicies ? policies : undefined, adoptJson)
    yield* sink.consume(context.namespaceTargets)
    objects += namespaces.length
    // NetworkPolicies as targets of their own: already in memory when listed for the variable.
    if (policies !== undefined && targetsPolicies) {
      yield* sink.consume(objectTargets(context, networkPolicyKind, policies))
      objects += policies.length
    } else if (targetsPolicies) kinds.set(networkPolicyKind.key, networkPolicyKind)

    for (const kind of kinds.values()) {
      let mark = sink.mark()
      let seen = 0
      yield* forEachPage(kind, listOptions(kind, true), {
        onPage: (objects, size) => {
          pages++
          seen += size
          return sink.consume(objectTargets(context, kind, objects))
        },
        onRestart: () => {
          restarts++
          seen = 0
          sink.rewind(mark)
          mark = sink.mark()
        },
        request: retried,
        budget: options.pageBudget
      }).pipe(
        Effect.catch((error): Effect.Effect<undefined, CelInventoryFailed | E> =>
          isKubeError(error) ? refusedOrFailed(kind)(error) : Effect.fail(error)
        )
      )
      objects += seen
    }
    return { objects, pages, restarts, unlisted }
  })

/**
 * The inventory of objects given as manifests (`cel test`, tests): each object goes to the
 * kind a rule names with its apiVersion and kind (a custom resource's plural is taken to be
 * its kind in lower case plus "s"); namespaced objects without a namespace are in
 * `default`, as kubectl puts them. Returns the objects no rule looks at, too.
 */
export const inventoryOfObjects = (
  rules: ReadonlyArray<CompiledRule>,
  objects: ReadonlyArray<KubeObject>
): { readonly inventory: CelInventory; readonly unmatched: ReadonlyArray<KubeObject> } => {
  const ruleKinds = new Map<string, CelKind>()
  for (const rule of rules) for (const kind of rule.kinds) ruleKinds.set(kind.key, kind)
  const candidates = [...ruleKinds.values(), networkPolicyKind]
  /** Found once per apiVersion and kind, not once per object. */
  const known = new Map<string, CelKind | undefined>()
  const kindOf = (object: KubeObject): CelKind | undefined => {
    const key = `${object.apiVersion}|${object.kind}`
    if (known.has(key)) return known.get(key)
    const found = candidates.find((kind) =>
      kind.apiVersion === object.apiVersion && (kind.kind === "" ? kind.plural === `${String(object.kind).toLowerCase()}s` : kind.kind === object.kind)
    )
    known.set(key, found)
    return found
  }
  const namespaces: Array<KubeObject> = []
  const byKind = new Map<string, { readonly kind: CelKind; readonly items: Array<KubeObject> }>()
  const unmatched: Array<KubeObject> = []
  for (const object of objects) {
    const kind = object.kind === "Namespace" ? namespaceKind : kindOf(object)
    if (kind === namespaceKind) namespaces.push(object)
    else if (kind === undefined) unmatched.push(object)
    else {
      const placed = kind.namespaced && object.metadata.namespace === undefined ? { ...object, metadata: { ...object.metadata, namespace: "default" } } : object
      const entry = byKind.get(kind.key) ?? { kind, items: [] }
      entry.items.push(placed)
      byKind.set(kind.key, entry)
    }
  }
  const policies = byKind.get(networkPolicyKind.key)?.items ?? []
  return {
    inventory: {
      namespaces,
      objects: [...byKind.values()].filter((entry) => ruleKinds.has(entry.kind.key)),
      networkPolicies: rules.some((rule) => rule.readsNetworkPolicies) ? policies : undefined,
      unlisted: new Map()
    },
    unmatched: unmatched.concat(ruleKinds.has(networkPolicyKind.key) || rules.some((rule) => rule.readsNetworkPolicies) ? [] : policies)
  }
}
