/**
 * What a TLS alert from the server means, by the error code Node gives it
 * (`ERR_SSL_<OpenSSL reason>`), so a failed handshake is reported as what happened
 * ("no ALPN protocol in common") and not as a guess ("rejected our certificate").
 * Numbers are the alert codes of RFC 8446 section 6.
 */
const alerts: ReadonlyArray<readonly [reason: string, alert: string, meaning: string]> = [
  ["SSLV3_ALERT_HANDSHAKE_FAILURE", "40 handshake_failure", "the server found no cipher suite, group or signature algorithm in common with us"],
  ["SSLV3_ALERT_BAD_CERTIFICATE", "42 bad_certificate", "the server rejected our client certificate as malformed or its signature as invalid"],
  ["SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "43 unsupported_certificate", "the server does not accept our client certificate's type or key usage"],
  ["SSLV3_ALERT_CERTIFICATE_REVOKED", "44 certificate_revoked", "the server says our client certificate is revoked"],
  ["SSLV3_ALERT_CERTIFICATE_EXPIRED", "45 certificate_expired", "the server says our client certificate is expired (or not yet valid) on its clock"],
  ["SSLV3_ALERT_CERTIFICATE_UNKNOWN", "46 certificate_unknown", "the server could not verify our client certificate (an unknown issuer, a wrong usage, a broken chain)"],
  ["SSLV3_ALERT_ILLEGAL_PARAMETER", "47 illegal_parameter", "the server found a handshake field out of range"],
  ["TLSV1_ALERT_UNKNOWN_CA", "48 unknown_ca", "the server rejected our client certificate: it does not trust the CA that signed it"],
  ["TLSV1_ALERT_ACCESS_DENIED", "49 access_denied", "the server accepted our client certificate but denies it access"],
  ["TLSV1_ALERT_DECODE_ERROR", "50 decode_error", "the server could not decode a handshake message"],
  ["TLSV1_ALERT_DECRYPT_ERROR", "51 decrypt_error", "the server could not verify a handshake signature (does our client key match its certificate?)"],
  ["TLSV1_ALERT_PROTOCOL_VERSION", "70 protocol_version", "the server supports no TLS version we offer (we offer TLS 1.2 and 1.3)"],
  ["TLSV1_ALERT_INSUFFICIENT_SECURITY", "71 insufficient_security", "the server requires stronger cipher suites than we offer"],
  ["TLSV1_ALERT_INTERNAL_ERROR", "80 internal_error", "the server failed internally during the handshake"],
  ["TLSV1_ALERT_INAPPROPRIATE_FALLBACK", "86 inappropriate_fallback", "the server refused a protocol downgrade"],
  ["TLSV1_ALERT_USER_CANCELLED", "90 user_canceled", "the server cancelled the handshake"],
  ["TLSV1_UNSUPPORTED_EXTENSION", "110 unsupported_extension", "the server rejected a TLS extension we sent"],
  ["TLSV1_UNRECOGNIZED_NAME", "112 unrecognized_name", "the server does not serve the name we asked for (SNI): check --falco-host"],
  ["TLSV13_ALERT_CERTIFICATE_REQUIRED", "116 certificate_required", "the server requires a client certificate and did not get one"],
  ["TLSV1_ALERT_NO_APPLICATION_PROTOCOL", "120 no_application_protocol",
    "the server has no application protocol in common with us (ALPN): we speak only HTTP/2 (gRPC), this port serves something else, such as HTTP/1.1 only"]
]

const byCode = new Map(alerts.map(([reason, alert, meaning]) => [`ERR_SSL_${reason}`, `${meaning} (TLS alert ${alert})`]))

/** Node's local TLS errors that mean the other side does not speak TLS at all. */
const notTls = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_UNSUPPORTED_PROTOCOL", "ERR_SSL_PACKET_LENGTH_TOO_LONG", "ERR_SSL_HTTP_REQUEST"])

/** The meaning of an alert the server sent, or undefined when `code` is not one. */
export const describeTlsAlert = (code: string | undefined): string | undefined => {
  if (code === undefined) return undefined
  const known = byCode.get(code)
  if (known !== undefined) return known
  if (notTls.has(code)) return "the server did not answer in TLS (a plaintext port?)"
  // An alert we have no sentence for: name it as OpenSSL does rather than guess.
  if (code.startsWith("ERR_SSL_") && code.includes("ALERT")) return `the server sent TLS alert ${code.slice("ERR_SSL_".length).toLowerCase()}`
  return undefined
}
