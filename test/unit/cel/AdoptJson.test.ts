import { describe, expect, it } from "vitest"
import { adoptJson, fromJson } from "../../../src/backends/cel/CelValue.ts"

describe("adoptJson (a page's objects become CEL values without a second copy)", () => {
  it("converts in place to exactly what fromJson gives", () => {
    const text = '{"spec":{"replicas":3,"ratio":0.5,"ports":[{"port":80}],"tags":["a"],"__proto__":{"x":1}},"ok":true,"none":null}'
    const owned = JSON.parse(text)
    const spec = owned.spec
    const adopted = adoptJson(owned) as Record<string, any>
    expect(adopted).toBe(owned)
    expect(adopted.spec).toBe(spec)
    expect(adopted).toEqual(fromJson(JSON.parse(text)))
    expect(adopted.spec.replicas).toBe(3n)
    expect(adopted.spec.ratio).toBe(0.5)
    expect(adopted.spec.ports[0].port).toBe(80n)
    // A "__proto__" key stays data.
    expect(Object.getPrototypeOf(adopted.spec)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(adopted.spec, "__proto__")?.value).toEqual({ x: 1n })
  })

  it("copies frozen parts (stored objects of the simulated cluster) instead of changing them", () => {
    const stored = Object.freeze({ replicas: 2, nested: Object.freeze({ count: 1 }) })
    const page = { metadata: { name: "a" }, spec: stored }
    const adopted = adoptJson(page) as Record<string, any>
    expect(adopted.spec).not.toBe(stored)
    expect(adopted.spec).toEqual({ replicas: 2n, nested: { count: 1n } })
    expect(stored.replicas).toBe(2)
  })
})
