import { describe, expect, it } from "@effect/vitest"
import { check, checksOf, packs } from "./CelTestKit.ts"
import { kindPackTable as table } from "./KindFixtures.ts"

/** The rbac and network packs: for each rule, objects that pass and objects that fail it. */

const packRules = [...packs.get("rbac")!.rules, ...packs.get("network")!.rules]

describe("the rbac and network packs", () => {
  it("cover exactly the rules of the table, each mapped to a framework control", () => {
    expect(packRules.map((rule) => rule.id).sort()).toEqual(Object.keys(table).sort())
    for (const rule of packRules) expect(rule.frameworks?.length, rule.id).toBeGreaterThan(0)
  })

  it.each(Object.entries(table))("%s", (id, { pass, fail }) => {
    const [found] = checksOf(check(packRules.filter((rule) => rule.id === id), [...pass, ...fail]))
    expect(found!.subjectCounts).toMatchObject({ pass: pass.length, fail: fail.length, error: 0 })
    expect(found!.subjects!.map((subject) => subject.name).sort()).toEqual(fail.map((failing) => failing.metadata.name).sort())
    for (const subject of found!.subjects!) expect(subject.message).toContain(subject.name)
  })
})
