import { Effect } from "effect"
import { AlreadyExists, Conflict, Forbidden, Gone, Invalid, type KubeError, NotFound, Transient } from "../../src/services/kube/KubeErrors.ts"

const kubeErrorClasses = [NotFound, Conflict, AlreadyExists, Invalid, Forbidden, Gone, Transient] as const

export const isKubeError = (error: unknown): error is KubeError =>
  kubeErrorClasses.some((errorClass) => error instanceof errorClass)

/**
 * Runs one synchronous request of the simulated API server: the KubeErrors it throws
 * become typed failures; anything else is a defect (a bug in the simulation).
 */
export const attempt = <A>(request: () => A): Effect.Effect<A, KubeError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(request())
    } catch (error) {
      if (isKubeError(error)) return Effect.fail(error)
      throw error
    }
  })
