/**
 * Which Linux capabilities the kube-bench container needs: runs the real kube-bench (the
 * control-plane cache's binary and cfg/) over the same node files as full root and with
 * reduced capability sets, and compares every check's verdict.
 *
 *   npx node bench/kube-bench-capabilities.ts [benchmark ...]   (as root; default cis-1.10 k3s-cis-1.9)
 *
 * The node files are a kubeadm-like layout (manifests, kubeconfigs, PKI keys 600 root,
 * /var/lib/etcd 700 owned by an etcd user, kubelet config) bind-mounted over the real paths
 * inside a private mount namespace (unshare -m), so the host is not touched; capabilities are
 * reduced with setpriv's bounding set (uid stays 0, as in the image). Prints, per capability
 * set, how many verdicts differ from full root, and which.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"

const repoRoot = resolve(import.meta.dirname, "..")
const cacheDir = execFileSync(join(repoRoot, "scripts/control-plane/build.sh"), ["--print-dir"], { encoding: "utf8" }).trim()
const bin = process.env.KUBE_BENCH_BIN ?? join(cacheDir, "bin", "kube-bench")
const cfg = process.env.KUBE_BENCH_CFG ?? join(cacheDir, "kube-bench-cfg")
const benchmarks = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["cis-1.10", "k3s-cis-1.9"]
const etcdUid = 4242

const capabilitySets: Record<string, string> = {
  "full root": "",
  "none (drop ALL)": "-all",
  "DAC_READ_SEARCH": "-all,+dac_read_search",
  "DAC_READ_SEARCH + SYS_PTRACE": "-all,+dac_read_search,+sys_ptrace"
}

const root = mkdtempSync(join(tmpdir(), "kube-bench-caps-"))
const file = (path: string, text: string, mode: number, uid = 0) => {
  const full = join(root, path)
  mkdirSync(dirname(full), { recursive: true })
  writeFileSync(full, text)
  chmodSync(full, mode)
  chownSync(full, uid, uid)
}
const manifest = (name: string, args: Array<string>) =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: kube-system}\nspec:\n  containers:\n  - name: ${name}\n    command: [${[name, ...args].join(", ")}]\n`
file("etc/kubernetes/manifests/kube-apiserver.yaml", manifest("kube-apiserver", ["--anonymous-auth=false", "--authorization-mode=Node,RBAC"]), 0o600)
file("etc/kubernetes/manifests/kube-controller-manager.yaml", manifest("kube-controller-manager", ["--profiling=false"]), 0o600)
file("etc/kubernetes/manifests/kube-scheduler.yaml", manifest("kube-scheduler", ["--profiling=false"]), 0o600)
file("etc/kubernetes/manifests/etcd.yaml", manifest("etcd", ["--client-cert-auth=true"]), 0o600)
for (const conf of ["admin", "super-admin", "scheduler", "controller-manager", "kubelet"]) file(`etc/kubernetes/${conf}.conf`, "apiVersion: v1\nkind: Config\n", 0o600)
file("etc/kubernetes/pki/ca.crt", "cert", 0o644)
file("etc/kubernetes/pki/apiserver.key", "key", 0o600)
file("etc/kubernetes/pki/etcd/peer.key", "key", 0o600, etcdUid)
file("var/lib/etcd/member/snap/db", "data", 0o600, etcdUid)
chmodSync(join(root, "var/lib/etcd/member"), 0o700)
chownSync(join(root, "var/lib/etcd/member"), etcdUid, etcdUid)
chmodSync(join(root, "var/lib/etcd"), 0o700)
chownSync(join(root, "var/lib/etcd"), etcdUid, etcdUid)
file("var/lib/kubelet/config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: false\nreadOnlyPort: 0\n", 0o600)
file("var/lib/kubelet/pki/kubelet.key", "key", 0o600)
file("etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n", 0o644)
file("var/lib/rancher/k3s/server/tls/server-ca.key", "key", 0o600)
file("var/lib/rancher/k3s/server/db/etcd/config", "name: x\n", 0o600, etcdUid)
file("etc/rancher/k3s/config.yaml", "protect-kernel-defaults: true\n", 0o600)

const targets = ["etc/kubernetes", "var/lib/etcd", "var/lib/kubelet", "etc/systemd/system", "var/lib/rancher", "etc/rancher"]
// Empty mount points where the host has none, removed at the end.
const created = targets.map((target) => `/${target}`).filter((path) => !existsSync(path))
for (const path of created) mkdirSync(path, { recursive: true })

type Verdicts = Map<string, string>
const verdicts = (benchmark: string, bounding: string): Verdicts => {
  const binds = targets.map((target) => `mount --bind ${join(root, target)} /${target}`).join(" && ")
  const run = `${bounding === "" ? "" : `setpriv --bounding-set=${bounding} --inh-caps=-all -- `}${bin} run --config-dir ${cfg} --config ${cfg}/config.yaml --benchmark ${benchmark} --json`
  const result = spawnSync("unshare", ["-m", "sh", "-c", `mount --make-rprivate / && ${binds} && ${run}`], {
    encoding: "utf8",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: root },
    maxBuffer: 64 * 1024 * 1024
  })
  const line = result.stdout.split("\n").filter((entry) => entry.startsWith("{")).pop()
  const out: Verdicts = new Map()
  if (line === undefined) {
    // kube-bench gave up (no report at all): every verdict is lost.
    out.set("(no report)", result.stderr.trim().split("\n").pop() ?? "")
    return out
  }
  for (const controls of JSON.parse(line).Controls ?? []) {
    for (const group of controls.tests ?? []) {
      for (const check of group.results ?? []) out.set(`${group.section} ${check.test_number}`, `${check.status} ${String(check.actual_value ?? "").slice(0, 60)}`)
    }
  }
  return out
}

try {
  for (const benchmark of benchmarks) {
    const baseline = verdicts(benchmark, "")
    console.log(`${benchmark}: ${baseline.size} checks`)
    for (const [name, bounding] of Object.entries(capabilitySets)) {
      if (bounding === "") continue
      const reduced = verdicts(benchmark, bounding)
      if (reduced.has("(no report)")) {
        console.log(`  ${name.padEnd(32)} no report at all (all ${baseline.size} verdicts lost): ${reduced.get("(no report)")}`)
        continue
      }
      const differ = [...baseline].filter(([key, verdict]) => reduced.get(key)?.split(" ")[0] !== verdict.split(" ")[0])
      console.log(`  ${name.padEnd(32)} ${differ.length} verdict(s) differ from full root${differ.length === 0 ? "" : `: ${differ.map(([key, verdict]) => `${key} ${verdict.split(" ")[0]} -> ${reduced.get(key)?.split(" ")[0]}`).join("; ")}`}`)
    }
  }
} finally {
  for (const path of created.reverse()) rmdirSync(path)
  rmSync(root, { recursive: true, force: true })
}
