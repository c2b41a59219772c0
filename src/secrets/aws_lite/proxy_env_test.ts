import assert from "node:assert/strict";
import { test } from "node:test";
import { isLoopbackHost, parseIp, parseNoProxy, proxyFromEnvironment } from "./proxy_env.ts";

test("parseNoProxy() matches as Go's httpproxy: names, suffixes, *, ports, IPs and CIDR ranges", () => {
  const cases: Array<[list: string, host: string, port: string, direct: boolean]> = [
    // A name matches itself and its subdomains, never a longer name that merely ends like it.
    ["example.com", "example.com", "443", true],
    ["example.com", "sts.example.com", "443", true],
    ["example.com", "badexample.com", "443", false],
    // A leading dot, or *., matches subdomains only.
    [".example.com", "sts.example.com", "443", true],
    [".example.com", "example.com", "443", false],
    ["*.example.com", "a.b.example.com", "443", true],
    ["*.example.com", "example.com", "443", false],
    // Case, spaces and empty entries do not matter.
    [" , EXAMPLE.com ,", "sts.example.com", "443", true],
    // A port limits the entry to it.
    ["example.com:443", "example.com", "443", true],
    ["example.com:443", "example.com", "80", false],
    // * alone is everything, whatever else is listed.
    ["foo.com,*", "secretsmanager.eu-west-1.amazonaws.com", "443", true],
    ["*", "169.254.170.2", "80", true],
    // IP literals, with or without a port, and CIDR ranges, IPv4 and IPv6.
    ["169.254.170.2", "169.254.170.2", "80", true],
    ["169.254.170.2", "169.254.170.23", "80", false],
    ["169.254.170.2:80", "169.254.170.2", "80", true],
    ["169.254.170.2:80", "169.254.170.2", "8080", false],
    ["169.254.0.0/16", "169.254.170.23", "80", true],
    ["10.0.0.0/8", "11.0.0.1", "443", false],
    ["fd00:ec2::23", "fd00:ec2::23", "80", true],
    ["[fd00:ec2::23]:80", "fd00:ec2::23", "80", true],
    ["[fd00:ec2::23]:80", "fd00:ec2::23", "443", false],
    ["fd00::/8", "fd00:ec2::23", "80", true],
    ["fd00::/8", "fe80::1", "80", false],
    // An IPv4-mapped IPv6 address is the IPv4 address.
    ["10.1.2.3", "::ffff:10.1.2.3", "443", true],
    // An IP entry does not match a name, and a name entry is compared as text.
    ["10.1.2.3", "ten.example", "443", false],
    // Malformed entries are ignored, as in Go.
    [":443,[,/8", "example.com", "443", false],
    ["", "example.com", "443", false],
  ];
  for (const [list, host, port, direct] of cases) {
    assert.equal(parseNoProxy(list)(host, port), direct, `${JSON.stringify(list)} ${host}:${port}`);
  }
});

test("parseIp() reads IPv4 and IPv6 as Go's ParseIP does, IPv4-mapped as IPv4", () => {
  assert.deepEqual([...parseIp("10.0.0.1")!], [10, 0, 0, 1]);
  assert.deepEqual([...parseIp("::ffff:10.0.0.1")!], [10, 0, 0, 1]);
  assert.equal(parseIp("::1")?.length, 16);
  assert.equal(parseIp("1::2:3:4:5:6:7")?.length, 16);
  for (const bad of ["010.0.0.1", "1.2.3", "1.2.3.256", "1:2:3:4:5:6:7:8:9", "1::2::3", "host"]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

test("isLoopbackHost() is localhost, 127.0.0.0/8 and ::1 (never proxied)", () => {
  for (const host of ["localhost", "127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"]) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ["169.254.170.2", "fd00:ec2::23", "localhost.example", "0.0.0.0"]) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});

function chooser(vars: Record<string, string>) {
  return proxyFromEnvironment((name) => vars[name]);
}

test("proxyFromEnvironment() picks HTTPS_PROXY for https and HTTP_PROXY for http, no fallback", () => {
  assert.equal(chooser({ ALL_PROXY: "http://all:1", NO_PROXY: "x" }), undefined);
  const both = chooser({ HTTPS_PROXY: "http://secure:3128", http_proxy: "plain:8080" })!;
  const sts = both(new URL("https://sts.eu-west-1.amazonaws.com/"));
  assert.equal(sts?.variable, "HTTPS_PROXY");
  assert.equal(sts?.url.host, "secure:3128");
  const container = both(new URL("http://169.254.170.2/v2/credentials/x"));
  assert.equal(container?.variable, "http_proxy");
  assert.equal(container?.url.href, "http://plain:8080/", "no scheme: http:// is assumed");
  // HTTP_PROXY alone leaves https direct; HTTPS_PROXY alone leaves http direct.
  assert.equal(
    chooser({ HTTP_PROXY: "http://p:1" })!(new URL("https://sts.amazonaws.com")),
    undefined,
  );
  assert.equal(
    chooser({ HTTPS_PROXY: "http://p:1" })!(new URL("http://169.254.170.2/")),
    undefined,
  );
  // Upper case first; an empty upper-case value falls back to the lower-case one.
  assert.equal(
    chooser({ HTTPS_PROXY: "", https_proxy: "http://lower:1" })!(new URL("https://a.com"))
      ?.variable,
    "https_proxy",
  );
});

test("proxyFromEnvironment() never proxies loopback, and follows NO_PROXY (or no_proxy)", () => {
  const choose = chooser({
    HTTPS_PROXY: "http://proxy:3128",
    HTTP_PROXY: "http://proxy:3128",
    no_proxy: "169.254.170.2,.internal.example",
  })!;
  for (
    const url of [
      "https://127.0.0.1:8443/",
      "https://localhost/",
      "https://[::1]:8443/",
      "http://169.254.170.2/v2/credentials/x",
      "https://secrets.internal.example/",
    ]
  ) {
    assert.equal(choose(new URL(url)), undefined, url);
  }
  for (const url of ["https://secretsmanager.us-east-1.amazonaws.com/", "http://169.254.170.23/"]) {
    assert.equal(choose(new URL(url))?.url.host, "proxy:3128", url);
  }
  // The port that applies is the scheme's default when the URL has none.
  const byPort = chooser({ HTTPS_PROXY: "http://proxy:3128", NO_PROXY: "sts.amazonaws.com:443" })!;
  assert.equal(byPort(new URL("https://sts.amazonaws.com/")), undefined);
  assert.ok(byPort(new URL("https://sts.amazonaws.com:8443/")));
});

test("proxyFromEnvironment() refuses unusable proxies when used, naming the variable, never the value", () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ HTTPS_PROXY: "https://user:s3cret@proxy:3128" }, /HTTPS_PROXY .*TLS to the proxy/],
    [{ HTTPS_PROXY: "socks5://user:s3cret@proxy:1080" }, /HTTPS_PROXY .*socks5:\/\/ proxies/],
    [{ HTTPS_PROXY: "http://user:s3cret@[bad" }, /HTTPS_PROXY is not a proxy URL/],
  ];
  for (const [vars, expected] of cases) {
    const choose = chooser(vars)!;
    assert.throws(
      () => choose(new URL("https://sts.amazonaws.com/")),
      (error: Error) => {
        assert.equal(error.name, "ProxyError");
        assert.match(error.message, expected);
        assert.doesNotMatch(error.message, /s3cret|user/);
        assert.equal((error as { retryable?: boolean }).retryable, false);
        return true;
      },
    );
    // Not used (loopback): no error.
    assert.equal(choose(new URL("https://127.0.0.1/")), undefined);
  }
  // In a CGI environment HTTP_PROXY is refused for http URLs, as in Go.
  const cgi = chooser({ HTTP_PROXY: "http://proxy:3128", REQUEST_METHOD: "GET" })!;
  assert.throws(() => cgi(new URL("http://169.254.170.2/")), /HTTP_PROXY is not used in a CGI/);
});
