import { Schema } from "effect"

/**
 * Why a CEL scan (or a `cel test`) cannot produce checks. Each carries the run's
 * machine-readable `reason` and a sentence naming the rule (ScanFailed.from turns one into
 * the run's failure).
 */

/** A rule's expression, messageExpression or selector is invalid. */
export class CelCompileError extends Schema.TaggedError<CelCompileError>()("CelCompileError", {
  ruleId: Schema.String,
  field: Schema.Literals(["expression", "messageExpression", "match"]),
  message: Schema.String,
  line: Schema.optionalKey(Schema.Int),
  column: Schema.optionalKey(Schema.Int)
}) {
  get reason(): "CELCompileError" {
    return "CELCompileError"
  }
}

/** A rule used up the cost budget (`CELCostExceeded`) or the wall-clock bound (`CELTimeout`). */
export class CelBoundExceeded extends Schema.TaggedError<CelBoundExceeded>()("CelBoundExceeded", {
  reason: Schema.Literals(["CELCostExceeded", "CELTimeout"]),
  ruleId: Schema.String,
  message: Schema.String
}) {}

/** The run does not say which rules to evaluate, or says it inconsistently. */
export class CelRuleSetInvalid extends Schema.TaggedError<CelRuleSetInvalid>()("CelRuleSetInvalid", {
  reason: Schema.Literals(["UnknownProfile", "NoRules", "DuplicateRuleID"]),
  message: Schema.String
}) {}

/** Pods or Namespaces could not be listed. */
export class CelInventoryFailed extends Schema.TaggedError<CelInventoryFailed>()("CelInventoryFailed", {
  message: Schema.String
}) {
  get reason(): "KubernetesAPIError" {
    return "KubernetesAPIError"
  }
}

export type CelScanError = CelCompileError | CelBoundExceeded | CelRuleSetInvalid | CelInventoryFailed
