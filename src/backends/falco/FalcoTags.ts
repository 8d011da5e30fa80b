import type { FrameworkRef } from "../../api/Check.ts"

/**
 * Falco rule tags that name a control, as framework references, so Falco findings land in
 * framework reports without hand-written mappings: `T1059` / `T1059.004` (MITRE ATT&CK
 * techniques), `PCI_DSS_11.5.1`, `NIST_800-53_AU-10`. Other tags (`container`,
 * `mitre_execution`, ...) name no control and are ignored.
 */
const tagPatterns: ReadonlyArray<{ readonly pattern: RegExp; readonly reference: (match: RegExpExecArray) => FrameworkRef }> = [
  { pattern: /^(T\d{4}(?:\.\d{3})?)$/iu, reference: (match) => ({ name: "mitre-attack", controlID: match[1]!.toUpperCase() }) },
  { pattern: /^PCI[_-]DSS[_-](\S+)$/iu, reference: (match) => ({ name: "pci-dss", controlID: match[1]! }) },
  { pattern: /^NIST[_-]800[_-]53[_-](\S+)$/iu, reference: (match) => ({ name: "nist-800-53", controlID: match[1]!.toUpperCase() }) }
]

export const frameworkOfTag = (tag: string): FrameworkRef | undefined => {
  for (const { pattern, reference } of tagPatterns) {
    const match = pattern.exec(tag.trim())
    if (match !== null) return reference(match)
  }
  return undefined
}

/** Distinct references of all the tags, sorted by framework then control. */
export const frameworksFromTags = (tags: Iterable<string>): ReadonlyArray<FrameworkRef> => {
  const byKey = new Map<string, FrameworkRef>()
  for (const tag of tags) {
    const reference = frameworkOfTag(tag)
    if (reference !== undefined) byKey.set(`${reference.name}/${reference.controlID}`, reference)
  }
  return [...byKey.values()].sort((a, b) => a.name.localeCompare(b.name) || a.controlID.localeCompare(b.controlID))
}
