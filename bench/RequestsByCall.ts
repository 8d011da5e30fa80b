/** The operator's ugallu_compliance_scan_api_requests_total from its /metrics text, summed by "verb resource". */
export const requestsByCall = (metricsText: string): Map<string, number> => {
  const calls = new Map<string, number>()
  for (const line of metricsText.split("\n")) {
    const match = /^ugallu_compliance_scan_api_requests_total\{([^}]*)\}\s+(\S+)/u.exec(line)
    if (match === null) continue
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/gu)].map((entry) => [entry[1], entry[2]]))
    const key = `${labels.verb} ${labels.resource}`
    calls.set(key, (calls.get(key) ?? 0) + Number(match[2]))
  }
  return calls
}

/** What changed between two readings, largest first, zero entries dropped. */
export const requestsBetween = (before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Array<readonly [string, number]> =>
  [...after].map(([key, count]) => [key, count - (before.get(key) ?? 0)] as const).filter(([, count]) => count > 0).sort((a, b) => b[1] - a[1])
