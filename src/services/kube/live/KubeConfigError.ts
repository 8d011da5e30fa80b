import { Schema } from "effect"

/**
 * The Kubernetes client configuration could not be loaded: an unreadable or invalid
 * kubeconfig, an unknown context, a missing service-account file or a failing credential
 * plugin. Raised while building the LiveKubeClient Layer, so a bad `--kubeconfig` stops
 * the operator at start with a message naming the file instead of failing every request.
 */
export class KubeConfigError extends Schema.TaggedError<KubeConfigError>()("KubeConfigError", {
  /** Where the configuration came from: a kubeconfig path, `KUBECONFIG=...` or the in-cluster service account. */
  source: Schema.String,
  message: Schema.String
}) {}
