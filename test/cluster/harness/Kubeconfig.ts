import { writeFileSync } from "node:fs"
import { stringify } from "yaml"

/** A kubeconfig with one cluster, one token user and one context (the current one). */
export const kubeconfigText = (options: { readonly server: string; readonly caPem: string; readonly token: string; readonly user: string }) =>
  stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "cluster-tests", cluster: { server: options.server, "certificate-authority-data": Buffer.from(options.caPem).toString("base64") } }],
    users: [{ name: options.user, user: { token: options.token } }],
    contexts: [{ name: options.user, context: { cluster: "cluster-tests", user: options.user } }],
    "current-context": options.user
  })

export const writeKubeconfig = (
  file: string,
  options: { readonly server: string; readonly caPem: string; readonly token: string; readonly user: string }
): string => {
  writeFileSync(file, kubeconfigText(options), { mode: 0o600 })
  return file
}
