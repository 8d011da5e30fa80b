import { describe, expect, it } from "@effect/vitest"
import { coveringMount, loadBenchmarkRoots, mountsFor, pathsNamedIn, rootsForCfgText, whyNotApplicable } from "../../../src/backends/kube-bench/KubeBenchHostPaths.ts"

const roots = loadBenchmarkRoots()
const hostPaths = (benchmark: string) => mountsFor(benchmark, roots).map((mount) => mount.hostPath)

describe("kube-bench host paths per benchmark", () => {
  it("every benchmark gets kube-bench's own mounts, the host's /usr/bin at /usr/local/mount-from-host/bin", () => {
    for (const benchmark of Object.keys(roots)) {
      expect(hostPaths(benchmark), benchmark).toEqual(expect.arrayContaining(["/var/lib/kubelet", "/etc/kubernetes", "/etc/systemd", "/var/lib/etcd"]))
      expect(mountsFor(benchmark, roots).find((mount) => mount.hostPath === "/usr/bin")?.mountPath).toBe("/usr/local/mount-from-host/bin")
    }
  })

  it("each platform's folders, only for its benchmarks", () => {
    expect(hostPaths("gke-1.9.0")).toContain("/home/kubernetes")
    expect(hostPaths("aks-1.8")).toContain("/etc/default")
    expect(hostPaths("k3s-cis-1.9")).toEqual(expect.arrayContaining(["/var/lib/rancher", "/etc/rancher", "/var/log/journal", "/run/log/journal", "/etc/machine-id"]))
    expect(hostPaths("rke2-cis-1.8")).toContain("/var/lib/rancher")
    expect(hostPaths("cis-1.24-microk8s")).toContain("/var/snap/microk8s")
    expect(hostPaths("rh-0.7")).toEqual(expect.arrayContaining(["/etc/origin", "/etc/etcd"]))
    expect(hostPaths("rh-1.8")).toEqual(expect.arrayContaining(["/etc/openvswitch", "/run/openvswitch", "/var/run/openshift-sdn", "/var/log/kube-apiserver", "/var/data/kubelet"]))
    expect(hostPaths("tkgi-1.2.53")).toContain("/var/vcap")
    // Only what the benchmark reads: vanilla CIS mounts no distribution's folders.
    const cis = hostPaths("cis-1.12")
    for (const path of ["/var/lib/rancher", "/etc/rancher", "/home/kubernetes", "/etc/default", "/var/vcap", "/etc/origin", "/var/log/journal"]) expect(cis).not.toContain(path)
    // A pinned benchmark kube-bench does not know: the base set (kube-bench itself will say what is wrong).
    expect(hostPaths("cis-9.99")).toEqual(hostPaths("eks-1.8.0"))
  })

  it("finds the paths a cfg/ text names, and journalctl's needs", () => {
    const text = `audit: "stat -c %a /var/lib/rancher/k3s/server/tls/*.crt; /bin/ps -ef | grep $kubelet"\nconfs: [/etc/rancher/k3s/config.yaml]\naudit: "journalctl -m -u k3s"`
    expect(pathsNamedIn(text)).toEqual(["/bin/ps", "/etc/rancher/k3s/config.yaml", "/var/lib/rancher/k3s/server/tls/*.crt"])
    expect(rootsForCfgText(text)).toEqual(["/var/lib/rancher", "/etc/rancher", "/var/log/journal", "/run/log/journal", "/etc/machine-id"])
    expect(coveringMount("/var/lib/rancher/k3s/agent", mountsFor("cis-1.12", roots))).toBeUndefined()
    expect(whyNotApplicable("/bin/ps")).toMatch(/image's own tools/)
    expect(whyNotApplicable("/var/lib/rancher/k3s")).toBeUndefined()
  })
})
