'use strict';
// Calls to the Django backend, each bounded by BACKEND_TIMEOUT_MS.

class BackendError extends Error {}

async function getJson(config, path) {
  let response;
  try {
    response = await fetch(config.backendUrl + path, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(config.backendTimeoutMs),
    });
  } catch (err) {
    const reason = err && err.name === 'TimeoutError'
      ? `no answer within ${config.backendTimeoutMs} ms`
      : (err && err.cause && err.cause.code) || (err && err.message) || String(err);
    throw new BackendError(`backend unreachable: ${reason}`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new BackendError(`backend answered ${response.status} without JSON`);
  }
  if (!response.ok) {
    const message = body && typeof body.message === 'string' ? `: ${body.message}` : '';
    throw new BackendError(`backend answered ${response.status}${message}`);
  }
  return body;
}

function listArticles(config, { q = '', limit = 20 } = {}) {
  const params = new URLSearchParams({ order: 'desc', limit: String(limit) });
  if (q) params.set('q', q);
  return getJson(config, `/api/articles/?${params}`);
}

module.exports = { BackendError, getJson, listArticles };
