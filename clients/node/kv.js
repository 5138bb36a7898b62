#!/usr/bin/env node
// raftwright KV client for Node.js: put, get and delete keys on a raftwright cluster.
//
// It loads the committed protos/kv.proto at run time (no generated code), so it
// proves the wire API is usable outside Python. It behaves like the Python
// client: it knows a list of node addresses, not which one leads; a node that
// is not the leader answers FAILED_PRECONDITION with the leader's client
// address in the trailing metadata `raftwright-leader-addr`, which this client
// follows; an unreachable node makes it try the next one; full rounds back off
// exponentially, all within one overall deadline. Writes carry a random
// client_id and a sequence number that every retry reuses, so the cluster's
// dedup table applies a retried write once.
//
//   node kv.js --cluster HOST:PORT,... [--timeout S] [--tls-ca PEM [--tls-cert PEM --tls-key PEM]]
//              put KEY VALUE | get KEY | delete KEY
//
// Exit codes are the Python CLI's: 0 ok, 1 key not found (get), 2 no leader
// reachable before the deadline, 3 any other failure or bad usage.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const EXIT_MISSING = 1;
const EXIT_NO_LEADER = 2;
const EXIT_FAILURE = 3;
const LEADER_ADDR_KEY = "raftwright-leader-addr";
const RETRYABLE = new Set([
  grpc.status.FAILED_PRECONDITION,
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.ABORTED,
  grpc.status.CANCELLED,
]);

const USAGE = `usage: node kv.js --cluster HOST:PORT,... [options] put KEY VALUE | get KEY | delete KEY

options:
  --cluster HOST:PORT,...  node addresses (any of them; the leader is found)
  --timeout SECONDS        overall deadline (default 10)
  --protos DIR             folder holding kv.proto (default: the repository's protos/)
  --tls-ca PEM             verify the nodes against this CA (turns TLS on)
  --tls-cert PEM           client certificate for mutual TLS (with --tls-key)
  --tls-key PEM            client private key for mutual TLS
  -h, --help               show this help`;

class UsageError extends Error {}
class NoLeaderError extends Error {}

function parseArgs(argv) {
  const opts = { cluster: null, timeout: 10, protos: null, tlsCa: null, tlsCert: null, tlsKey: null };
  const rest = [];
  const flags = {
    "--cluster": "cluster",
    "--timeout": "timeout",
    "--protos": "protos",
    "--tls-ca": "tlsCa",
    "--tls-cert": "tlsCert",
    "--tls-key": "tlsKey",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") {
      return { help: true };
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (name in flags) {
      let value;
      if (eq > 0 && name !== arg) {
        value = arg.slice(eq + 1);
      } else {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`${arg} needs a value`);
      }
      opts[flags[name]] = value;
    } else if (arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      rest.push(arg);
    }
  }
  if (!opts.cluster) throw new UsageError("--cluster is required");
  opts.addresses = opts.cluster.split(",").map((a) => a.trim()).filter(Boolean);
  for (const address of opts.addresses) {
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/.test(address)) {
      throw new UsageError(`address ${JSON.stringify(address)} is not HOST:PORT`);
    }
  }
  opts.timeout = Number(opts.timeout);
  if (!(opts.timeout > 0)) throw new UsageError("--timeout must be a positive number of seconds");
  if ((opts.tlsCert === null) !== (opts.tlsKey === null)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  if (opts.tlsCert !== null && opts.tlsCa === null) {
    throw new UsageError("mutual TLS (--tls-cert/--tls-key) needs --tls-ca too");
  }
  const [op, ...args] = rest;
  const arity = { put: 2, get: 1, delete: 1 };
  if (!(op in arity)) throw new UsageError(`expected put, get or delete, got ${op ?? "nothing"}`);
  if (args.length !== arity[op]) {
    throw new UsageError(`${op} takes ${arity[op]} argument(s), got ${args.length}`);
  }
  return { help: false, opts, op, args };
}

function loadKeyValueService(protosDir) {
  const dir = protosDir ?? path.join(__dirname, "..", "..", "protos");
  const definition = protoLoader.loadSync(path.join(dir, "kv.proto"), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [dir],
  });
  return grpc.loadPackageDefinition(definition).raftwright.v1.KeyValue;
}

function credentials(opts) {
  if (opts.tlsCa === null) return grpc.credentials.createInsecure();
  const ca = fs.readFileSync(opts.tlsCa);
  if (opts.tlsCert === null) return grpc.credentials.createSsl(ca);
  return grpc.credentials.createSsl(ca, fs.readFileSync(opts.tlsKey), fs.readFileSync(opts.tlsCert));
}

// Cluster sends one unary call to the leader, following redirects, within a deadline.
class Cluster {
  constructor(addresses, KeyValue, creds, deadlineS) {
    this.addresses = [...new Set(addresses)];
    this.KeyValue = KeyValue;
    this.creds = creds;
    this.deadlineS = deadlineS;
    this.stubs = new Map();
    this.rpcTimeoutS = 3;
  }

  stub(address) {
    let stub = this.stubs.get(address);
    if (stub === undefined) {
      stub = new this.KeyValue(address, this.creds);
      this.stubs.set(address, stub);
    }
    return stub;
  }

  close() {
    for (const stub of this.stubs.values()) stub.close();
    this.stubs.clear();
  }

  unary(stub, method, request, timeoutS) {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutS * 1000);
      stub[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
    });
  }

  async call(method, request) {
    const end = Date.now() + this.deadlineS * 1000;
    const order = [...this.addresses];
    let queue = [...order];
    let backoffMs = 20;
    let lastError = "no node tried";
    for (;;) {
      const now = Date.now();
      if (now >= end) {
        throw new NoLeaderError(
          `no leader reachable within ${this.deadlineS.toFixed(1)}s (last: ${lastError})`,
        );
      }
      if (queue.length === 0) {
        // A full round failed: back off, with jitter, before the next one.
        await sleep(Math.min(backoffMs, end - now) * (0.5 + Math.random() / 2));
        backoffMs = Math.min(backoffMs * 2, 500);
        queue = [...order];
        continue;
      }
      const address = queue.shift();
      const timeoutS = Math.max(0.05, Math.min(this.rpcTimeoutS, (end - Date.now()) / 1000));
      try {
        return await this.unary(this.stub(address), method, request, timeoutS);
      } catch (err) {
        if (!RETRYABLE.has(err.code)) {
          throw new Error(`${address}: ${grpc.status[err.code]}: ${err.details}`);
        }
        lastError = `${address}: ${grpc.status[err.code]}: ${err.details}`;
        if (err.code === grpc.status.FAILED_PRECONDITION) {
          const hint = leaderHint(err);
          if (hint !== null && hint !== address) {
            if (!order.includes(hint)) order.push(hint);
            queue = [hint, ...queue.filter((a) => a !== hint)];
          } else if (hint === null) {
            // The node knows no leader yet (an election is on): wait a little.
            await sleep(Math.min(backoffMs, Math.max(0, end - Date.now())));
          }
        }
      }
    }
  }
}

function leaderHint(err) {
  if (!err.metadata) return null;
  const values = err.metadata.get(LEADER_ADDR_KEY);
  for (const value of values) {
    const text = Buffer.isBuffer(value) ? value.toString() : String(value);
    if (text) return text;
  }
  return null;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function run(opts, op, args) {
  const KeyValue = loadKeyValueService(opts.protos);
  const cluster = new Cluster(opts.addresses, KeyValue, credentials(opts), opts.timeout);
  const clientId = crypto.randomUUID().replace(/-/g, "");
  try {
    switch (op) {
      case "put":
        await cluster.call("Put", {
          key: args[0],
          value: Buffer.from(args[1], "utf8"),
          client_id: clientId,
          sequence: "1",
        });
        return 0;
      case "get": {
        const resp = await cluster.call("Get", { key: args[0] });
        if (!resp.found) {
          process.stderr.write(`key not found: ${args[0]}\n`);
          return EXIT_MISSING;
        }
        process.stdout.write(Buffer.concat([Buffer.from(resp.value), Buffer.from("\n")]));
        return 0;
      }
      case "delete": {
        const resp = await cluster.call("Delete", { key: args[0], client_id: clientId, sequence: "1" });
        if (!resp.existed) process.stderr.write(`key not found (nothing deleted): ${args[0]}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown op ${op}`);
    }
  } finally {
    cluster.close();
  }
}

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`raftwright-kv: ${err.message}\n${USAGE}\n`);
    return EXIT_FAILURE;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    return await run(parsed.opts, parsed.op, parsed.args);
  } catch (err) {
    process.stderr.write(`raftwright-kv: ${err.message}\n`);
    return err instanceof NoLeaderError ? EXIT_NO_LEADER : EXIT_FAILURE;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
