import type { Schema } from "effect"
import { SchemaAST } from "effect"
import * as Exception from "./ComplianceException.ts"
import * as Run from "./ComplianceScanRun.ts"
import * as Result from "./ComplianceScanResult.ts"
import type { CrdExtras } from "./CrdAnnotations.ts"
import { group, version } from "./ObjectMeta.ts"
import * as Event from "./SecurityEvent.ts"
import * as Schedule from "./ComplianceScanSchedule.ts"

/**
 * Builds the CustomResourceDefinitions from the Schemas of src/api, the single source of
 * truth: `npm run generate:crds` writes them to crds/, and a test fails when crds/ is stale.
 */
type OpenApi = { [key: string]: unknown }

type Annotated = { readonly annotations?: unknown }
const crdOf = (node: Annotated): CrdExtras | undefined => (node.annotations as { readonly crd?: CrdExtras } | undefined)?.crd

/** `crd` annotations of a node; `annotate` after `check` lands on the last check, so read those too. */
const crdExtrasOf = (ast: SchemaAST.AST): CrdExtras =>
  Object.assign({}, crdOf(ast), ...(ast.checks ?? []).map(crdOf))

const descriptionOf = (ast: SchemaAST.AST): string | undefined =>
  (ast.annotations as { readonly description?: string } | undefined)?.description

/** The JSON Schema keywords a filter contributes (pattern, minimum, integer, ...). */
const checkKeywords = (ast: SchemaAST.AST, type: unknown): OpenApi => {
  const keywords: OpenApi = {}
  const visit = (check: SchemaAST.Check<unknown>) => {
    if (check._tag === "FilterGroup") {
      check.checks.forEach(visit)
      return
    }
    const toJsonSchema = (check.annotations as { toJsonSchema?: (context: { type: unknown }) => unknown } | undefined)
      ?.toJsonSchema
    // A filter answers a fragment, or [fragment, lossy] when JSON Schema can only approximate it.
    const answer = toJsonSchema?.({ type })
    const fragment = Array.isArray(answer) ? answer[0] : answer
    if (fragment !== undefined && fragment !== null) Object.assign(keywords, fragment)
  }
  ast.checks?.forEach(visit)
  // Number.MIN/MAX_SAFE_INTEGER bounds of Schema.Int say nothing useful in a CRD.
  if (keywords.minimum === Number.MIN_SAFE_INTEGER) delete keywords.minimum
  if (keywords.maximum === Number.MAX_SAFE_INTEGER) delete keywords.maximum
  return keywords
}

const isOptional = (ast: SchemaAST.AST): boolean => ast.context?.isOptional === true

export const toOpenApi = (input: SchemaAST.AST): OpenApi => {
  const ast = SchemaAST.toEncoded(input)
  const base = ((): OpenApi => {
    switch (ast._tag) {
      case "String":
        return { type: "string" }
      case "Number":
        return { type: "number" }
      case "Boolean":
        return { type: "boolean" }
      case "Literal":
        return { type: typeof ast.literal, enum: [ast.literal] }
      case "Union": {
        const literals = ast.types.filter(SchemaAST.isLiteral)
        if (literals.length === ast.types.length && literals.every((l) => typeof l.literal === "string")) {
          return { type: "string", enum: literals.map((l) => l.literal) }
        }
        throw new Error(`unions other than string enums have no structural schema: ${String(ast)}`)
      }
      case "Arrays": {
        const item = ast.rest[0]
        if (item === undefined || ast.elements.length > 0) throw new Error("only homogeneous arrays are supported")
        return { type: "array", items: toOpenApi(item) }
      }
      case "Objects": {
        const properties: OpenApi = {}
        const required: Array<string> = []
        for (const property of ast.propertySignatures) {
          const name = String(property.name)
          properties[name] = toOpenApi(property.type)
          if (!isOptional(property.type)) required.push(name)
        }
        const index = ast.indexSignatures[0]
        if (ast.propertySignatures.length === 0 && index !== undefined) {
          return { type: "object", additionalProperties: toOpenApi(index.type) }
        }
        return { type: "object", properties, ...(required.length > 0 ? { required } : {}) }
      }
      case "Unknown":
      case "Any":
        return { "x-kubernetes-preserve-unknown-fields": true }
      default:
        throw new Error(`no CRD schema for ${ast._tag}`)
    }
  })()
  const keywords = checkKeywords(ast, base.type)
  if (keywords.type === "integer") base.type = "integer"
  delete keywords.type
  const description = descriptionOf(input) ?? descriptionOf(ast)
  return {
    ...(description === undefined ? {} : { description }),
    ...base,
    ...keywords,
    ...crdExtrasOf(input),
    ...crdExtrasOf(ast)
  }
}

/** The top-level object of a custom resource: apiVersion/kind/metadata plus spec and status. */
const resourceSchema = (spec: Schema.Top, status: Schema.Top | undefined): OpenApi => ({
  type: "object",
  required: ["spec"],
  properties: {
    apiVersion: { type: "string" },
    kind: { type: "string" },
    metadata: { type: "object" },
    spec: toOpenApi(spec.ast),
    ...(status === undefined ? {} : { status: toOpenApi(status.ast) })
  }
})

interface CrdDefinition {
  readonly kind: string
  readonly plural: string
  readonly singular: string
  readonly scope: "Namespaced" | "Cluster"
  readonly shortNames: ReadonlyArray<string>
  readonly categories: ReadonlyArray<string>
  readonly printerColumns: ReadonlyArray<OpenApi>
  readonly spec: Schema.Top
  readonly status?: Schema.Top
}

const column = (name: string, jsonPath: string, type = "string"): OpenApi => ({ name, type, jsonPath })
const ageColumn = column("Age", ".metadata.creationTimestamp", "date")

const definitions: ReadonlyArray<CrdDefinition> = [
  {
    kind: Run.kind,
    plural: "compliancescanruns",
    singular: "compliancescanrun",
    scope: "Namespaced",
    // Not `csr`: that is CertificateSigningRequest.
    shortNames: ["csrun", "csscan"],
    categories: ["ugallu", "compliance"],
    printerColumns: [
      column("Backend", ".spec.backend"),
      // kube-bench runs name a benchmark, the other backends a profile: show whichever is set.
      { ...column("Profile", ".spec.benchmark"), description: "spec.benchmark (kube-bench) or spec.profile" },
      column("Phase", ".status.phase"),
      column("Worst", ".status.worstSeverity"),
      column("Reason", ".status.reason"),
      ageColumn
    ],
    spec: Run.ComplianceScanRunSpec,
    status: Run.ComplianceScanRunStatus
  },
  {
    kind: Result.kind,
    plural: "compliancescanresults",
    singular: "compliancescanresult",
    scope: "Namespaced",
    shortNames: ["csres"],
    categories: ["ugallu", "compliance"],
    printerColumns: [
      column("Backend", ".spec.backend"),
      column("Worst", ".status.worstSeverity"),
      column("Failed", ".spec.summary.fail", "integer"),
      column("Passed", ".spec.summary.pass", "integer"),
      ageColumn
    ],
    spec: Result.ComplianceScanResultSpec,
    status: Result.ComplianceScanResultStatus
  },
  {
    kind: Event.kind,
    plural: "securityevents",
    singular: "securityevent",
    scope: "Cluster",
    shortNames: ["se"],
    categories: ["ugallu"],
    printerColumns: [
      column("Class", ".spec.class"),
      column("Type", ".spec.type"),
      column("Severity", ".spec.severity"),
      column("Subject", ".spec.subject.name"),
      ageColumn
    ],
    spec: Event.SecurityEventSpec
  },
  {
    kind: Exception.kind,
    plural: "complianceexceptions",
    singular: "complianceexception",
    scope: "Namespaced",
    shortNames: ["csex"],
    categories: ["ugallu", "compliance"],
    printerColumns: [
      { ...column("Mode", ".spec.mode"), description: "waive (outcome skip) or alertOnly (stays fail, no alert)" },
      column("Expires", ".spec.expiresAt", "date"),
      { ...column("Matched", ".status.matched", "integer"), description: "Findings matched in the last run of each series" },
      ageColumn
    ],
    spec: Exception.ComplianceExceptionSpec,
    status: Exception.ComplianceExceptionStatus
  },
  {
    kind: Schedule.kind,
    plural: "compliancescanschedules",
    singular: "compliancescanschedule",
    scope: "Namespaced",
    shortNames: ["cssched"],
    categories: ["ugallu", "compliance"],
    printerColumns: [
      column("Schedule", ".spec.schedule"),
      column("Suspend", ".spec.suspend", "boolean"),
      column("Last run", ".status.lastRun.name"),
      column("Last phase", ".status.lastRun.phase"),
      column("Worst", ".status.lastRun.worstSeverity"),
      column("Next", ".status.nextScheduleTime", "date"),
      ageColumn
    ],
    spec: Schedule.ComplianceScanScheduleSpec,
    status: Schedule.ComplianceScanScheduleStatus
  }
]

export const customResourceDefinitions = (): ReadonlyArray<OpenApi> =>
  definitions.map((definition) => ({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${definition.plural}.${group}`,
      labels: { "app.kubernetes.io/name": "compliance-scan", "app.kubernetes.io/part-of": "ugallu" }
    },
    spec: {
      group,
      names: {
        kind: definition.kind,
        listKind: `${definition.kind}List`,
        plural: definition.plural,
        singular: definition.singular,
        shortNames: definition.shortNames,
        categories: definition.categories
      },
      scope: definition.scope,
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          ...(definition.status === undefined ? {} : { subresources: { status: {} } }),
          additionalPrinterColumns: definition.printerColumns,
          schema: { openAPIV3Schema: resourceSchema(definition.spec, definition.status) }
        }
      ]
    }
  }))

/** File name in crds/ for each CRD. */
export const crdFileName = (crd: OpenApi): string => `${(crd.metadata as { name: string }).name}.yaml`
