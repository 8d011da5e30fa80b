/**
 * What a CEL scan spends on each page of a list before evaluating it: splitting the answer
 * into items (src/services/kube/live/ListItems.ts), parsing each and converting it to CEL
 * values, for 2,000 Pods as a real cluster lists them (running, with their managedFields and
 * the kubelet's status: bench/BenchPods.ts runningPod), in three ways:
 *
 * - everything parsed;
 * - without managedFields (when no rule reads them);
 * - without managedFields and with null for every member but metadata and spec (what the
 *   built-in Pod packs read).
 *
 *   npx node bench/list-items.ts [rounds]
 *
 * Prints the CPU time per page (median and fastest of the rounds, the three ways alternated).
 */
import { adoptJson } from "../src/backends/cel/CelValue.ts"
import { type SplitOptions, splitList } from "../src/services/kube/live/ListItems.ts"
import { runningPod } from "./BenchPods.ts"

const rounds = Number(process.argv[2] ?? 20)
const podsPerPage = 2_000
const page = Buffer.from(JSON.stringify({
  kind: "PodList",
  apiVersion: "v1",
  metadata: { resourceVersion: "12345", continue: "token" },
  items: Array.from({ length: podsPerPage }, (_, index) => {
    const { apiVersion: _apiVersion, kind: _kind, ...item } = runningPod(index, `team-${index % 100}`)
    return item
  })
}))

const ways: ReadonlyArray<readonly [string, SplitOptions]> = [
  ["everything", {}],
  ["without managedFields", { dropManagedFields: true }],
  ["without managedFields, metadata and spec only", { dropManagedFields: true, keepMembers: new Set(["spec"]) }]
]

let names = 0
const readPage = (options: SplitOptions) => {
  const split = splitList(page, options)!
  for (const text of split.items()) names += ((adoptJson(JSON.parse(text)) as { metadata: { name: string } }).metadata.name.length)
}

const times = new Map(ways.map(([name]) => [name, [] as Array<number>]))
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? ways : [...ways].reverse()
  for (const [name, options] of order) {
    const before = process.cpuUsage()
    readPage(options)
    const used = process.cpuUsage(before)
    times.get(name)!.push((used.user + used.system) / 1000)
  }
}
console.log(`${podsPerPage} running Pods per page, ${(page.length / 2 ** 20).toFixed(1)} MiB of JSON (${(page.length / podsPerPage / 1024).toFixed(1)} KiB per Pod); ${rounds} rounds`)
for (const [name, samples] of times) {
  const sorted = [...samples].sort((a, b) => a - b)
  console.log(`  ${name.padEnd(48)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, fastest ${sorted[0]!.toFixed(1)} ms per page`)
}
if (names === 0) throw new Error("no Pod was read")
