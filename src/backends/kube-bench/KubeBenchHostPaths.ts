import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"

/**
 * The host paths a kube-bench Job mounts (read-only), per benchmark: kube-bench's own job
 * manifests' set on every node, plus the platform folders the benchmark's cfg/ files name
 * (audit commands, config files, binaries) and the ones upstream's platform job manifests
 * add. A folder a check reads but the Pod cannot see turns the check into a FAIL with an
 * empty value: a false finding.
 */
export interface HostMount {
  readonly name: string
  readonly hostPath: string
  /** Where the container sees it (the host path itself, except the host's binaries). */
  readonly mountPath: string
}

const mount = (name: string, hostPath: string, mountPath = hostPath): HostMount => ({ name, hostPath, mountPath })

/** kube-bench's own job manifests (job-master.yaml, job-node.yaml): mounted for every benchmark. */
export const baseMounts: ReadonlyArray<HostMount> = [
  mount("var-lib-cni", "/var/lib/cni"),
  mount("var-lib-etcd", "/var/lib/etcd"),
  mount("var-lib-kubelet", "/var/lib/kubelet"),
  mount("var-lib-kube-scheduler", "/var/lib/kube-scheduler"),
  mount("var-lib-kube-controller-manager", "/var/lib/kube-controller-manager"),
  mount("etc-systemd", "/etc/systemd"),
  mount("lib-systemd", "/lib/systemd"),
  mount("srv-kubernetes", "/srv/kubernetes"),
  mount("etc-kubernetes", "/etc/kubernetes"),
  mount("etc-cni-netd", "/etc/cni/net.d"),
  mount("opt-cni-bin", "/opt/cni/bin"),
  // The host's binaries, for kube-bench's version detection.
  mount("usr-bin", "/usr/bin", "/usr/local/mount-from-host/bin"),
  mount("etc-passwd", "/etc/passwd"),
  mount("etc-group", "/etc/group")
]

/** Platform folders, mounted only for the benchmarks whose cfg/ names a path under them. */
export const platformMounts: ReadonlyArray<HostMount> = [
  mount("home-kubernetes", "/home/kubernetes"), // GKE kubelet-config.yaml
  mount("var-lib-rancher", "/var/lib/rancher"), // k3s, RKE2
  mount("etc-rancher", "/etc/rancher"), // k3s, RKE2 config.yaml
  mount("var-snap-microk8s", "/var/snap/microk8s"),
  mount("etc-origin", "/etc/origin"), // OpenShift 3
  mount("etc-etcd", "/etc/etcd"),
  mount("etc-openvswitch", "/etc/openvswitch"),
  mount("run-openvswitch", "/run/openvswitch"),
  mount("var-run-openvswitch", "/var/run/openvswitch"),
  mount("var-run-openshift-sdn", "/var/run/openshift-sdn"),
  mount("var-log-kube-apiserver", "/var/log/kube-apiserver"),
  mount("var-log-apiserver", "/var/log/apiserver"),
  mount("var-log-openshift-apiserver", "/var/log/openshift-apiserver"),
  mount("var-data-kubelet", "/var/data/kubelet"),
  mount("usr-lib-systemd", "/usr/lib/systemd"),
  mount("var-vcap", "/var/vcap"), // TKGI
  // `journalctl -u k3s`: the journal and the machine id it is filed under.
  mount("var-log-journal", "/var/log/journal"),
  mount("run-log-journal", "/run/log/journal"),
  mount("etc-machine-id", "/etc/machine-id")
]

/**
 * Mounts upstream's platform job manifests add for paths kube-bench finds through the
 * top-level cfg/config.yaml (job-aks.yaml: /etc/default; job-gke.yaml: /home/kubernetes).
 */
const manifestExtras: Readonly<Record<string, ReadonlyArray<string>>> = {
  "aks-": ["/etc/default"],
  "gke-": ["/home/kubernetes"]
}
const manifestMounts: ReadonlyArray<HostMount> = [mount("etc-default", "/etc/default")]

/**
 * Paths cfg/ files name that need no mount, and why. Everything else a benchmark names must
 * be under a mount of that benchmark (a test checks this against the built cfg/).
 */
export const notApplicable: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/(usr\/)?s?bin\//u, "the image's own tools (ps, sh, grep, cat, ...); the host's /usr/bin is at /usr/local/mount-from-host/bin"],
  [/^\/usr\/local\/bin\//u, "the image's own binaries live there (kube-bench itself): the host's cannot be mounted over them"],
  [/^\/proc\//u, "the host's processes, visible through hostPID"]
]

/** Absolute paths named in a cfg/ file's text (audit commands, config keys, binaries). */
export const pathsNamedIn = (text: string): Array<string> => {
  const found = new Set<string>()
  for (const match of text.matchAll(/(?:^|[^A-Za-z0-9_.$/-])(\/(?:etc|var|home|run|usr|lib|srv|opt|data|proc|bin|sbin)\/[A-Za-z0-9_.*@/-]*)/gmu)) {
    found.add(match[1]!.replace(/[/.]+$/u, ""))
  }
  return [...found].sort()
}

const under = (path: string, root: string) => path === root || path.startsWith(`${root}/`)

/** Why a path needs no mount of its own, or undefined. */
export const whyNotApplicable = (path: string): string | undefined => notApplicable.find(([pattern]) => pattern.test(path))?.[1]

/** The platform mounts (host paths) that the paths a benchmark names fall under. */
export const platformRootsFor = (paths: ReadonlyArray<string>): Array<string> =>
  platformMounts.filter((entry) => paths.some((path) => under(path, entry.hostPath))).map((entry) => entry.hostPath)

/** Every host mount candidate a path could fall under. */
export const allMounts: ReadonlyArray<HostMount> = [...baseMounts, ...platformMounts, ...manifestMounts]

/** The mount covering a path for a benchmark's mount list, or undefined. */
export const coveringMount = (path: string, mounts: ReadonlyArray<HostMount>): HostMount | undefined =>
  mounts.find((entry) => under(path, entry.hostPath))

const journalMounts = ["/var/log/journal", "/run/log/journal", "/etc/machine-id"]

/** The platform folders one benchmark's cfg/ files need: the paths they name, the journal for `journalctl`. */
export const rootsForCfgText = (text: string): Array<string> => {
  const roots = new Set(platformRootsFor(pathsNamedIn(text)))
  if (/\bjournalctl\b/u.test(text)) for (const path of journalMounts) roots.add(path)
  return platformMounts.map((entry) => entry.hostPath).filter((path) => roots.has(path))
}

/** A benchmark's cfg/ files (its folder), as one text. */
export const benchmarkCfgText = (cfgDir: string, benchmark: string): string =>
  readdirSync(join(cfgDir, benchmark))
    .sort()
    .map((file) => readFileSync(join(cfgDir, benchmark, file), "utf8"))
    .join("\n")

/** The generated copy's text: every benchmark folder of a cfg/ -> its platform folders. */
export const renderBenchmarkRoots = (cfgDir: string): string => {
  const benchmarks = readdirSync(cfgDir).filter((entry) => statSync(join(cfgDir, entry)).isDirectory()).sort()
  return `${JSON.stringify(Object.fromEntries(benchmarks.map((benchmark) => [benchmark, rootsForCfgText(benchmarkCfgText(cfgDir, benchmark))])), null, 2)}\n`
}

export const shippedHostPathsUrl = new URL("./kube-bench-host-paths.json", import.meta.url)

/** Benchmark -> platform folders its cfg/ names (generated with the mapping, from the same cfg/). */
export const loadBenchmarkRoots = (): Readonly<Record<string, ReadonlyArray<string>>> =>
  JSON.parse(readFileSync(shippedHostPathsUrl, "utf8")) as Record<string, ReadonlyArray<string>>

/**
 * The mounts of a Job running `benchmark`: the base set and that benchmark's platform
 * folders. A benchmark the pinned kube-bench does not know (a pinned typo: kube-bench will
 * say so) gets the base set only.
 */
export const mountsFor = (benchmark: string, roots: Readonly<Record<string, ReadonlyArray<string>>>): Array<HostMount> => {
  const own = new Set(roots[benchmark] ?? [])
  const extras = new Set(Object.entries(manifestExtras).flatMap(([prefix, paths]) => (benchmark.startsWith(prefix) ? paths : [])))
  return [
    ...baseMounts,
    ...platformMounts.filter((entry) => own.has(entry.hostPath) || extras.has(entry.hostPath)),
    ...manifestMounts.filter((entry) => extras.has(entry.hostPath))
  ]
}
