import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { Agent, request } from "node:https"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { stringify } from "yaml"
import { makeAgent, makeHttpTransport, readText } from "../../src/services/kube/live/HttpTransport.ts"
import {
  defaultKubeConfigEnvironment,
  type KubeConfigEnvironment,
  type KubeConfigOptions,
  loadKubeConfig
} from "../../src/services/kube/live/LoadKubeConfig.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import type { KubeHttp } from "./harness/KubeHttp.ts"

/**
 * The operator's own kubeconfig loader against the real API server: the Pod's ServiceAccount
 * path with bound tokens (the real token authenticator refuses a token whose bound Secret is
 * gone; the loader reads the token file again on that 401), an exec credential plugin and a
 * client certificate signed by the control plane's CA (the API server's --client-ca-file).
 */
const cluster = inject("cluster")
let admin: KubeHttp
let namespace: string
const dirs: Array<string> = []
const agents: Array<{ destroy: () => void }> = []

const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeconfig-auth-cluster-"))
  dirs.push(dir)
  return dir
}

beforeAll(async () => {
  admin = connectAdmin(cluster)
  namespace = await createNamespace(admin, "kubeconfig-auth")
  await admin.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "reader" }
  })
})

afterAll(async () => {
  for (const agent of agents) agent.destroy()
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  await deleteNamespace(admin, namespace)
  admin.close()
})

/** A token of the `reader` ServiceAccount bound to a new Secret: deleting the Secret revokes it. */
const boundToken = async (secretName: string) => {
  const secret = await admin.create(`/api/v1/namespaces/${namespace}/secrets`, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: secretName }
  })
  const review = await admin.create(`/api/v1/namespaces/${namespace}/serviceaccounts/reader/token`, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: {
      expirationSeconds: 3600,
      boundObjectRef: { apiVersion: "v1", kind: "Secret", name: secretName, uid: secret.metadata.uid }
    }
  })
  return String(review.status.token)
}

/** Who the API server says the caller is (SelfSubjectReview), through the operator's loader and transport. */
const whoAmI = async (options: KubeConfigOptions, environment: KubeConfigEnvironment) => {
  const loaded = await Effect.runPromise(loadKubeConfig(options, environment))
  const agent = makeAgent(loaded)
  agents.push(agent)
  const send = makeHttpTransport(loaded, agent)
  return async () => {
    const response = await send({
      method: "POST",
      path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }
    }, AbortSignal.timeout(15_000))
    const body = await readText(response)
    return { status: response.statusCode, username: response.statusCode === 201 ? JSON.parse(body).status.userInfo.username : body }
  }
}

/** The status a bare request with `token` gets (no renewal), to see the server revoke it. */
const statusWithToken = (token: string) =>
  new Promise<number>((resolve, reject) => {
    const url = new URL("/apis/authentication.k8s.io/v1/selfsubjectreviews", cluster.server)
    const outgoing = request(url, {
      method: "POST",
      agent: new Agent({ ca: cluster.caPem }),
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }
    }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    outgoing.on("error", reject)
    outgoing.end(JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }))
  })

describe("kubeconfig loading against the real API server", () => {
  it("in a Pod: the ServiceAccount's bound token; a revoked token's 401 makes the loader read the rotated file", async () => {
    const serviceAccountDir = tempDir()
    fs.writeFileSync(path.join(serviceAccountDir, "ca.crt"), cluster.caPem)
    const first = await boundToken("first-binding")
    fs.writeFileSync(path.join(serviceAccountDir, "token"), first)
    const server = new URL(cluster.server)
    const review = await whoAmI({}, {
      ...defaultKubeConfigEnvironment(),
      env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
      serviceAccountDir
    })
    const expected = `system:serviceaccount:${namespace}:reader`
    expect(await review()).toEqual({ status: 201, username: expected })

    // The kubelet would write the new token before the old one stops working; here the old
    // one is revoked by deleting its Secret, and the default one-minute re-read has not come.
    fs.writeFileSync(path.join(serviceAccountDir, "token"), await boundToken("second-binding"))
    await admin.remove(`/api/v1/namespaces/${namespace}/secrets/first-binding`)
    await eventually(async () => ((await statusWithToken(first)) === 401 ? true : undefined), {
      what: "the API server to refuse the token bound to the deleted Secret",
      timeoutMillis: 60_000
    })
    expect(await review()).toEqual({ status: 201, username: expected })
  })

  it("an exec credential plugin (client.authentication.k8s.io/v1) authenticates the kubeconfig's user", async () => {
    const dir = tempDir()
    const tokenFile = path.join(dir, "plugin-token")
    fs.writeFileSync(tokenFile, await boundToken("exec-binding"))
    const plugin = path.join(dir, "plugin.mjs")
    fs.writeFileSync(plugin, [
      `import fs from "node:fs"`,
      `const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO)`,
      `if (info.spec.interactive !== false) process.exit(2)`,
      `const token = fs.readFileSync(process.env.READER_TOKEN_FILE, "utf8")`,
      `console.log(JSON.stringify({ apiVersion: info.apiVersion, kind: "ExecCredential", status: { token } }))`
    ].join("\n"))
    const kubeconfig = path.join(dir, "kubeconfig.yaml")
    fs.writeFileSync(kubeconfig, stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "real", cluster: { server: cluster.server, "certificate-authority-data": Buffer.from(cluster.caPem).toString("base64") } }],
      users: [{
        name: "reader",
        user: {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1",
            command: process.execPath,
            args: [plugin],
            env: [{ name: "READER_TOKEN_FILE", value: tokenFile }],
            interactiveMode: "Never"
          }
        }
      }],
      contexts: [{ name: "real", context: { cluster: "real", user: "reader" } }],
      "current-context": "real"
    }))
    const review = await whoAmI({ kubeconfig }, { ...defaultKubeConfigEnvironment(), env: {} })
    expect(await review()).toEqual({ status: 201, username: `system:serviceaccount:${namespace}:reader` })
  })

  it("a client certificate (files relative to the kubeconfig) authenticates as its CN", async () => {
    const dir = tempDir()
    const openssl = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" })
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "client.key",
      "-out", "client.csr", "-subj", "/CN=kubeconfig-cert-user/O=kubeconfig-cert-group")
    fs.writeFileSync(path.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", path.join(cluster.dir, "ca.crt"), "-CAkey", path.join(cluster.dir, "ca.key"),
      "-CAcreateserial", "-CAserial", path.join(dir, "ca.srl"), "-out", "client.crt", "-days", "1", "-extfile", "client.ext")
    const kubeconfig = path.join(dir, "kubeconfig.yaml")
    fs.writeFileSync(kubeconfig, stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "real", cluster: { server: cluster.server, "certificate-authority-data": Buffer.from(cluster.caPem).toString("base64") } }],
      users: [{ name: "cert", user: { "client-certificate": "client.crt", "client-key": "client.key" } }],
      contexts: [{ name: "real", context: { cluster: "real", user: "cert" } }],
      "current-context": "real"
    }))
    const review = await whoAmI({ kubeconfig }, { ...defaultKubeConfigEnvironment(), env: {} })
    expect(await review()).toEqual({ status: 201, username: "kubeconfig-cert-user" })
  })
})
