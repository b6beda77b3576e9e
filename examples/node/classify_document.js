#!/usr/bin/env node
// Calls ClassifyDocument from Node.js with nothing but the .proto file:
//   node examples/node/classify_document.js FILE [TARGET]
// TARGET is HOST:PORT, or ipv4:HOST:PORT,HOST:PORT,... for several replicas.
// Prints the response as JSON (snake_case field names, as in the .proto).
// The channel uses deploy/client/service-config.json: round robin, retries on
// UNAVAILABLE, per-method timeouts. (grpc-js has no client-side health checking and
// ignores healthCheckConfig: a draining replica's calls are retried instead.)
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.join(__dirname, "..", "..", "proto");
const SERVICE_CONFIG = path.join(__dirname, "..", "..", "deploy", "client", "service-config.json");

function loadService() {
  const definition = protoLoader.loadSync("topicstance/v1/topicstance.proto", {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  return grpc.loadPackageDefinition(definition).topicstance.v1.TopicStanceService;
}

function main() {
  const [file, target = "127.0.0.1:50051"] = process.argv.slice(2);
  if (!file) {
    console.error("usage: classify_document.js FILE [HOST:PORT]");
    process.exit(2);
  }
  const Service = loadService();
  const client = new Service(target, grpc.credentials.createInsecure(), {
    "grpc.service_config": fs.readFileSync(SERVICE_CONFIG, "utf8"),
  });
  const text = fs.readFileSync(file, "utf8");
  const deadline = new Date(Date.now() + 30000);
  client.ClassifyDocument({ text }, { deadline }, (error, response) => {
    if (error) {
      console.error(`ClassifyDocument failed: ${error.code} ${error.details}`);
      process.exit(1);
    }
    console.log(JSON.stringify(response, null, 2));
    client.close();
  });
}

main();
