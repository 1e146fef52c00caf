'use strict';
// Entry point: `node server.js`. Env: PORT, HOST (comma-separated bind addresses), BACKEND_URL.

const http = require('node:http');
const { loadConfig } = require('./lib/config');
const { createHandler } = require('./lib/app');

function log(message) {
  process.stderr.write(`${new Date().toISOString()} cms-frontend: ${message}\n`);
}

function main() {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    log(`configuration error: ${err.message}`);
    process.exit(2);
  }
  const state = { shuttingDown: false };
  const handler = createHandler(config, state);
  const servers = config.hosts.map((host) => {
    const server = http.createServer(handler);
    server.keepAliveTimeout = 5000;
    server.requestTimeout = 30000;
    server.on('error', (err) => {
      log(`cannot listen on ${host}:${config.port}: ${err.message}`);
      process.exit(1);
    });
    server.listen(config.port, host, () => log(`listening on ${host}:${config.port}`));
    return server;
  });

  const shutdown = (signal) => {
    if (state.shuttingDown) return;
    state.shuttingDown = true;
    log(`${signal}: closing listeners, finishing requests in flight`);
    let open = servers.length;
    for (const server of servers) {
      // close() stops accepting; requests in flight finish, idle keep-alives are dropped.
      server.close(() => {
        open -= 1;
        if (open === 0) {
          log('stopped');
          process.exit(0);
        }
      });
      server.closeIdleConnections();
    }
    setTimeout(() => {
      log(`requests still open after ${config.shutdownTimeoutMs} ms; closing them`);
      for (const server of servers) server.closeAllConnections();
      process.exit(0);
    }, config.shutdownTimeoutMs).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main();
