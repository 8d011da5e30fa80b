/**
 * A small seeded generator (xorshift32): the same seed gives the same sequence, so injected
 * faults (and randomised test data) reproduce.
 */
export const seededRandom = (seed: number): (() => number) => {
  let state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0 || 1
  return () => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state / 0x1_0000_0000
  }
}
