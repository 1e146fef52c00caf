'use strict';
// Configuration from the environment. Errors name the variable.

function parseHosts(value) {
  const hosts = String(value ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  return hosts.length ? hosts : ['127.0.0.1'];
}

function parseInteger(name, value, fallback, low, high) {
  if (value === undefined || String(value).trim() === '') return fallback;
  const text = String(value).trim();
  const number = Number(text);
  if (!/^[0-9]+$/.test(text) || number < low || number > high) {
    throw new Error(`${name}: expected an integer between ${low} and ${high}`);
  }
  return number;
}

function parseBackendUrl(value) {
  const raw = String(value ?? 'http://127.0.0.1:8000').trim();
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('BACKEND_URL: expected an http(s):// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error('BACKEND_URL: expected an http(s):// URL');
  }
  return url.origin; // the backend is mounted at its root
}

function loadConfig(env) {
  return {
    hosts: parseHosts(env.HOST),
    port: parseInteger('PORT', env.PORT, 3000, 1, 65535),
    backendUrl: parseBackendUrl(env.BACKEND_URL),
    backendTimeoutMs: parseInteger('BACKEND_TIMEOUT_MS', env.BACKEND_TIMEOUT_MS, 2000, 1, 60000),
    shutdownTimeoutMs: parseInteger('SHUTDOWN_TIMEOUT_MS', env.SHUTDOWN_TIMEOUT_MS, 10000, 0, 600000),
    node: String(env.CMS_NODE_NAME || require('node:os').hostname()),
  };
}

module.exports = { loadConfig, parseHosts, parseInteger, parseBackendUrl };
