import { stringify } from "yaml"
import { crdFileName, customResourceDefinitions } from "./CrdGenerator.ts"

const header = "# GENERATED from src/api by `npm run generate:crds`. Do not edit by hand.\n"

/** crds/ as it should be: file name -> YAML text. */
export const renderCrdFiles = (): ReadonlyMap<string, string> =>
  new Map(
    customResourceDefinitions().map((crd) => [crdFileName(crd), header + stringify(crd, { lineWidth: 0 })])
  )
