/**
 * Unknown fields of a document, found the way the API server's strict field validation
 * (`fieldValidation=Strict`, kubectl's default) finds them against a CRD's structural
 * schema, so `cel test` refuses exactly what a create of the run would refuse: a field is
 * unknown where the schema lists `properties` and does not name it. Maps
 * (`additionalProperties`) and arrays are walked into; `x-kubernetes-preserve-unknown-fields`
 * and objects without declared properties (metadata) accept anything.
 */

type OpenApi = { readonly [key: string]: unknown }

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

/** Paths of the unknown fields, in the API server's notation (`spec.cel.rules[0].match.x`). */
export const unknownFields = (schema: OpenApi, value: unknown, path = ""): ReadonlyArray<string> => {
  if (schema["x-kubernetes-preserve-unknown-fields"] === true) return []
  const child = (key: string) => (path === "" ? key : `${path}.${key}`)
  if (Array.isArray(value)) {
    const items = schema.items
    return isRecord(items) ? value.flatMap((item, index) => unknownFields(items, item, `${path}[${index}]`)) : []
  }
  if (!isRecord(value)) return []
  const properties = schema.properties
  if (isRecord(properties)) {
    return Object.entries(value).flatMap(([key, field]) => {
      const declared = Object.hasOwn(properties, key) ? properties[key] : undefined
      return isRecord(declared) ? unknownFields(declared, field, child(key)) : [child(key)]
    })
  }
  const additional = schema.additionalProperties
  if (isRecord(additional)) return Object.entries(value).flatMap(([key, field]) => unknownFields(additional, field, child(key)))
  return []
}

/** The API server's words for them, paths sorted: `strict decoding error: unknown field "a", unknown field "b"`. */
export const strictDecodingError = (paths: ReadonlyArray<string>): string =>
  `strict decoding error: ${[...paths].sort().map((path) => `unknown field ${JSON.stringify(path)}`).join(", ")}`
