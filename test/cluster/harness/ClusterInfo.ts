/**
 * What the tests get from the control plane started by globalSetup (through vitest's
 * provide/inject, so plain JSON): where it is, how to authenticate, its nodes and the files
 * kwok serves as Pod logs.
 */
export interface ClusterInfo {
  /** https://127.0.0.1:<port> */
  readonly server: string
  readonly caPem: string
  /** Bearer token of a system:masters user (the tests' admin, never the operator's). */
  readonly adminToken: string
  readonly adminKubeconfig: string
  /** The harness' temp folder (component logs are in <dir>/logs). */
  readonly dir: string
  /** The control-plane cache folder (bin/, kube-bench-cfg/, kwok-stages/). */
  readonly cacheDir: string
  readonly nodes: { readonly master: string; readonly workers: ReadonlyArray<string> }
  /**
   * Files kwok serves as Pod logs, per pool of nodes (the master node, the workers): container
   * name -> file, "*" for any other container. Write them with writeCriLog.
   */
  readonly podLogFiles: { readonly master: Readonly<Record<string, string>>; readonly workers: Readonly<Record<string, string>> }
  /** The Pods of Jobs whose name contains this stay Running until labelled with releaseLabel. */
  readonly heldJobMarker: string
  readonly releaseLabel: string
  /** Seconds each start step took on this machine. */
  readonly timings: Readonly<Record<string, number>>
  /** How kube-apiserver was started: a test can start another one on the same etcd. */
  readonly apiserver: { readonly command: string; readonly args: ReadonlyArray<string>; readonly port: number }
}

declare module "vitest" {
  export interface ProvidedContext {
    cluster: ClusterInfo
  }
}
