import * as fs from "node:fs/promises"
import type { ExecCredentialSource } from "./ExecCredentialPlugin.ts"

/** What one request carries: its authentication headers and, for TLS client auth, a certificate and key. */
export interface RequestCredentials {
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string>>>
  readonly cert?: string | Buffer | undefined
  readonly key?: string | Buffer | undefined
}

/**
 * The credentials of the kubeconfig's user (or the Pod's ServiceAccount), asked for on every
 * request so rotating ones (token files, exec plugins) stay fresh.
 */
export interface Credentials {
  readonly current: () => Promise<RequestCredentials>
  /**
   * The API server answered 401: read token files and run exec plugins again now. True when
   * something was renewed, i.e. the request is worth sending once more.
   */
  readonly renew: () => Promise<boolean>
}

/**
 * A token file re-read when older than `refreshMillis` (client-go reads bound ServiceAccount
 * tokens every minute; the kubelet rotates them well before they expire). A failed re-read
 * keeps the last token read: the file may be in the middle of being replaced.
 */
export const makeTokenFileSource = (file: string, refreshMillis: number) => {
  let token: string | undefined
  let readAt = 0
  const read = async () => {
    try {
      token = (await fs.readFile(file, "utf8")).trim()
      readAt = Date.now()
    } catch (error) {
      if (token === undefined) throw new Error(`token file ${file}: ${error instanceof Error ? error.message : String(error)}`)
    }
    return token!
  }
  return {
    get: () => (token !== undefined && Date.now() - readAt < refreshMillis ? Promise.resolve(token) : read()),
    /** Reads the file now; true when the token changed. */
    reread: async () => {
      const before = token
      return (await read()) !== before
    }
  }
}

export type TokenFileSource = ReturnType<typeof makeTokenFileSource>

export interface CredentialParts {
  /** Impersonation and basic-auth headers, the same on every request. */
  readonly staticHeaders: Readonly<Record<string, string | ReadonlyArray<string>>>
  readonly token?: string | undefined
  /** Wins over `token` (client-go: the file's last value takes precedence). */
  readonly tokenFile?: TokenFileSource | undefined
  readonly cert?: Buffer | undefined
  readonly key?: Buffer | undefined
  /** Its token and certificate win over the static ones (client-go applies the plugin last). */
  readonly exec?: ExecCredentialSource | undefined
}

export const makeCredentials = (parts: CredentialParts): Credentials => ({
  current: async () => {
    const headers: Record<string, string | ReadonlyArray<string>> = { ...parts.staticHeaders }
    let token = parts.tokenFile === undefined ? parts.token : await parts.tokenFile.get()
    let cert: string | Buffer | undefined = parts.cert
    let key: string | Buffer | undefined = parts.key
    if (parts.exec !== undefined) {
      const credential = await parts.exec.get()
      token = credential.token ?? token
      if (credential.clientCertificateData !== undefined) {
        cert = credential.clientCertificateData
        key = credential.clientKeyData
      }
    }
    if (token !== undefined && token !== "") headers.Authorization = `Bearer ${token}`
    return { headers, cert, key }
  },
  renew: async () => {
    let renewed = false
    if (parts.exec !== undefined) {
      parts.exec.forget()
      renewed = true
    }
    if (parts.tokenFile !== undefined && (await parts.tokenFile.reread().catch(() => false))) renewed = true
    return renewed
  }
})
