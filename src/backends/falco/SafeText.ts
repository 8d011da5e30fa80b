/**
 * Alert text comes from whoever can post an alert (or run a rule with a crafted output):
 * control characters, terminal escape sequences, NUL and bidi overrides stored raw in a
 * Result would rewrite `kubectl describe`'s screen or reorder what a reviewer reads.
 * Every alert-derived string is made visible before it is stored: each such character
 * becomes a printable escape (`\x1b`, `\u202e`), so an escape sequence shows as text.
 */

/**
 * C0 and C1 controls and DEL; bidi marks, embeddings, overrides and isolates; line and
 * paragraph separators; lone surrogates (with the `u` flag a valid pair is one code point
 * and does not match).
 */
const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]/gu

const escapeOf = (character: string): string => {
  const code = character.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
}

/** `text` with every unsafe character replaced by its visible escape (for display fields). */
export const visibleText = (text: string): string => text.replace(unsafe, escapeOf)

/** True when `visibleText` would change `text`. */
export const hasUnsafeText = (text: string): boolean => {
  unsafe.lastIndex = 0
  const found = unsafe.test(text)
  unsafe.lastIndex = 0
  return found
}

/**
 * An injective escaped form of `text` (backslashes doubled, unsafe characters escaped):
 * two different raw values never give the same text, so identity fields shown through
 * `visibleText` can keep their exact raw value beside it.
 */
export const escapedText = (text: string): string => visibleText(text.replaceAll("\\", "\\\\"))
