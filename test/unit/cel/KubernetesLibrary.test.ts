import { describe, expect, it } from "@effect/vitest"
import { evaluate, valueOf } from "./CelTestKit.ts"

/** Each line must evaluate to true: the Kubernetes CEL libraries as users write them. */
const holds = (expressions: ReadonlyArray<string>) => {
  for (const expression of expressions) expect([expression, valueOf(expression)]).toEqual([expression, true])
}

const fails = (expression: string, message: RegExp) => {
  const result = evaluate(expression)
  expect(result._tag, expression).toBe("Error")
  expect(result._tag === "Error" ? result.message : "", expression).toMatch(message)
}

const text = (expression: string) => valueOf(expression, {}, "string")

describe("Kubernetes CEL libraries", () => {
  it("lists: isSorted, sum, min, max, indexOf, lastIndexOf, slice, reverse, distinct, flatten, sort, lists.range", () => {
    holds([
      "[1, 2, 3].isSorted() && !['b', 'a'].isSorted() && [].isSorted()",
      "[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0 && [].sum() == 0",
      "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3 && ['b', 'a'].min() == 'a'",
      "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(5) == -1",
      "[1, 2, 3, 4].slice(1, 3) == [2, 3] && [1, 2].reverse() == [2, 1]",
      "[1, 2, 1, 3, 2].distinct() == [1, 2, 3] && [[1, 2], [3]].flatten() == [1, 2, 3]",
      "[3, 1, 2].sort() == [1, 2, 3] && ['b', 'c', 'a'].sort() == ['a', 'b', 'c'] && lists.range(3) == [0, 1, 2]"
    ])
    fails("dyn([1, 'a']).sort().size() == 2", /sort: cannot compare/)
    fails("[].min() == 0", /min: the list is empty/)
    fails("[1, 2].slice(1, 5).size() == 0", /slice: invalid range/)
    fails("dyn([1, 'a']).sum() == 1", /sum: the list must hold only ints or only doubles/)
  })

  it("regex: matches, find and findAll use RE2", () => {
    holds([
      "'nginx:1.27'.matches('^[a-z]+:[0-9.]+$') && matches('abc', 'b')",
      "'abc123def456'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''",
      "'a1b22c333'.findAll('[0-9]+') == ['1', '22', '333'] && 'a1b22c333'.findAll('[0-9]+', 2) == ['1', '22']",
      "'Hello'.matches('(?i)^hello$')"
    ])
    fails("'x'.matches(dyn('(?<=a)b'))", /invalid RE2 regular expression/)
  })

  it("url: parts of absolute URIs and absolute paths, without normalising", () => {
    holds([
      "url('https://user@example.com:8443/a/b?x=1&x=2&y=%20z').getScheme() == 'https'",
      "url('https://user@example.com:8443/a/b').getHost() == 'example.com:8443'",
      "url('https://example.com:8443/a/b').getHostname() == 'example.com' && url('https://example.com:8443/').getPort() == '8443'",
      "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]/').getPort() == ''",
      "url('https://example.com/a%20b/').getEscapedPath() == '/a%20b/'",
      "url('https://example.com/?x=1&x=2&y=%20z').getQuery() == {'x': ['1', '2'], 'y': [' z']}",
      "isURL('/just/a/path') && !isURL('relative/path') && !isURL('https://exa mple.com') && !isURL('http://x/%zz')"
    ])
    fails("url('not a url').getScheme() == ''", /url: invalid value/)
  })

  it("quantity: exact comparisons and arithmetic of Kubernetes quantities", () => {
    holds([
      "quantity('500m').isLessThan(quantity('1')) && quantity('1Gi').isGreaterThan(quantity('1G'))",
      "quantity('1Gi').asInteger() == 1073741824 && quantity('1.5').asApproximateFloat() == 1.5",
      "quantity('200M') == quantity('0.2G') && quantity('1k').compareTo(quantity('1000')) == 0",
      "quantity('1.5').add(1) == quantity('2500m') && quantity('1').sub(quantity('250m')) == quantity('750m')",
      "quantity('-1').sign() == -1 && quantity('0').sign() == 0 && quantity('1e3').isInteger() && !quantity('1m').isInteger()",
      "isQuantity('100Mi') && isQuantity('.5') && !isQuantity('5 Mi') && !isQuantity('1Q')"
    ])
    fails("quantity('1m').asInteger() == 0", /not an integer/)
    fails("quantity('lots').sign() == 0", /quantity: invalid value/)
  })

  it("ip and cidr: parsing, families, ranges and canonical forms", () => {
    holds([
      "ip('10.1.2.3').family() == 4 && ip('2001:db8::1').family() == 6",
      "ip('127.0.0.1').isLoopback() && ip('::1').isLoopback() && ip('0.0.0.0').isUnspecified()",
      "ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast() && ip('224.0.0.5').isLinkLocalMulticast()",
      "ip('10.0.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast() && !ip('ff02::1').isGlobalUnicast()",
      "ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1') && !ip.isCanonical('2001:db8:0:0:0:0:0:1')",
      "string(ip('2001:0db8:0000:0000:0001:0000:0000:0001')) == '2001:db8::1:0:0:1'",
      "isIP('1.2.3.4') && !isIP('01.2.3.4') && !isIP('1.2.3') && !isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0')",
      "cidr('10.0.0.0/8').containsIP('10.20.30.40') && !cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))",
      "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR(cidr('10.0.0.0/8'))",
      "cidr('192.168.1.7/24').masked() == cidr('192.168.1.0/24') && cidr('192.168.1.7/24').ip() == ip('192.168.1.7')",
      "cidr('2001:db8::/32').prefixLength() == 32 && string(cidr('2001:db8::1/32').masked()) == '2001:db8::/32'",
      "isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0/33') && !isCIDR('10.0.0.0')"
    ])
    fails("ip('300.1.1.1').family() == 4", /ip: invalid value/)
  })

  it("format: Go-style verbs", () => {
    expect(text("'%s has %d containers, %.2f cores, %e'.format(['web', 3, 1.5, 1500.0])")).toBe("web has 3 containers, 1.50 cores, 1.500000e+03")
    expect(text("'%x %X %o %b %%'.format([255, 255, 8, 5])")).toBe("ff FF 10 101 %")
    expect(text("'%s / %s / %s'.format([[1, 'a'], true, null])")).toBe("[1, a] / true / null")
    expect(text("'%x'.format(['hi'])")).toBe("6869")
    fails("'%d'.format(['x']) == ''", /%d needs an integer/)
    fails("'%s %s'.format(['x']) == ''", /too few arguments/)
    fails("'%q'.format(['x']) == ''", /unknown verb %q/)
  })

  it("sets: contains, equivalent and intersects with CEL equality", () => {
    holds([
      "sets.contains(['a', 'b', 'c'], ['a', 'c']) && !sets.contains(['a'], ['a', 'b']) && sets.contains([1], [])",
      "sets.equivalent([1, 2, 1], [2, 1]) && !sets.equivalent([1], [1, 2])",
      "sets.intersects([1, 2], [2, 3]) && !sets.intersects([1], [3]) && sets.intersects([1], [1.0])"
    ])
  })

  it("strings: charAt, replace, reverse, quote, and the engine's own functions", () => {
    holds([
      "'abc'.charAt(1) == 'b' && 'abc'.charAt(3) == ''",
      "'a-b-c'.replace('-', '+') == 'a+b+c' && 'a-b-c'.replace('-', '+', 1) == 'a+b-c'",
      "'abc'.reverse() == 'cba' && strings.quote('say \"hi\"') == '\"say \\\\\"hi\\\\\"\"'",
      "'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b' && '  x '.trim() == 'x'",
      "'Hello'.lowerAscii() == 'hello' && 'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3"
    ])
  })
})
