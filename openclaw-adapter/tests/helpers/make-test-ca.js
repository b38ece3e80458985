#!/usr/bin/env node
// A test certificate authority made with the `openssl` CLI, as a real provider's chain looks to a client:
// a CA certificate (what SSL_CERT_FILE points the server and the BitRouter daemon at) and a server
// certificate it signed for IP 127.0.0.1 and DNS localhost (CA:FALSE, serverAuth; the daemon refuses a
// self-signed end-entity certificate).
//
// As a program: `make-test-ca.js <dir>` writes ca.pem, leaf.pem, leaf.key there and prints their paths as JSON.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

/** @param {string} dir @returns {{ ca: string, cert: string, key: string }} */
export function makeTestCa(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const p = (f) => path.join(dir, f);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "30",
    "-subj", "/CN=bitrouter-mcp e2e test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  openssl("req", ...ec, "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=fake upstream");
  fs.writeFileSync(
    p("leaf.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
  );
  openssl("x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
    "-out", p("leaf.pem"), "-days", "30", "-extfile", p("leaf.ext"));
  return { ca: p("ca.pem"), cert: p("leaf.pem"), key: p("leaf.key") };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (!process.argv[2]) {
    process.stderr.write("usage: make-test-ca.js <dir>\n");
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(makeTestCa(process.argv[2]))}\n`);
}
