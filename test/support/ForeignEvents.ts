import { testNamespace } from "./TestOperator.ts"

/** What someone allowed to create SecurityEvents could write first under a run's event name. */
export const squatter = (name: string, runUID: string) => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "SecurityEvent",
  metadata: { name },
  spec: {
    class: "Compliance",
    type: "ComplianceScanStarted",
    severity: "info",
    clusterIdentity: { clusterName: "", clusterID: "" },
    source: { apiVersion: "v1", kind: "User", name: "mallory", version: "", instance: "" },
    subject: { apiVersion: "v1", kind: "Pod", name: "decoy", namespace: testNamespace, uid: runUID },
    detectedAt: "2026-01-01T00:00:00Z",
    signals: {},
    correlationID: runUID
  }
})
