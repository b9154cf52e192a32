// The baseline: a bare node:http server doing the least a JSON API can do (read the POST body,
// JSON.parse it, answer a ~200-byte Tencent-shaped JSON body). Tresor's rate is reported as a
// ratio to this one, measured in the same run with the same load. Prints one JSON line with its
// URL, in the same shape as `tresor serve`, then serves until SIGTERM.

import { createServer } from "node:http";
import { randomUUID } from "node:crypto";

const KEY_ID = randomUUID();
// Fixed filler so the body is about 200 bytes, like a small Encrypt answer.
const BLOB = "A".repeat(88);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let status = 200;
    let body: string;
    try {
      JSON.parse(Buffer.concat(chunks).toString("utf8"));
      body = JSON.stringify({ Response: { CiphertextBlob: BLOB, KeyId: KEY_ID, RequestId: randomUUID() } });
    } catch {
      status = 400;
      body = '{"error":"bad json"}';
    }
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  });
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("unexpected server address");
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${address.port}` })}\n`);
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
