'use strict';
// The frontend's routes: the home page and the frontend-owned /api/ paths (like Next.js's).

const { BackendError, listArticles } = require('./backend');
const { renderHome } = require('./render');

function send(res, status, type, body, extraHeaders = {}) {
  const payload = Buffer.from(body);
  res.writeHead(status, {
    'content-type': type,
    'content-length': payload.length,
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(res.req.method === 'HEAD' ? undefined : payload);
}

function sendJson(res, status, value, extraHeaders) {
  send(res, status, 'application/json', JSON.stringify(value), extraHeaders);
}

function methodNotAllowed(res, allowed) {
  sendJson(res, 405, { error: 'method_not_allowed', message: `use ${allowed.join(', ')}` }, {
    allow: allowed.join(', '),
  });
}

async function home(config, res) {
  let articles = [];
  let error = null;
  try {
    articles = await listArticles(config, { limit: 20 });
    if (!Array.isArray(articles)) throw new BackendError('backend sent no article list');
  } catch (err) {
    if (!(err instanceof BackendError)) throw err;
    error = err.message;
  }
  // 200 even when the backend is down: the page itself is up and says what is missing.
  send(res, 200, 'text/html; charset=utf-8', renderHome({ articles, error, node: config.node }));
}

async function search(config, url, res) {
  const q = (url.searchParams.get('q') || '').trim().slice(0, 200);
  try {
    const found = await listArticles(config, { q, limit: 50 });
    const results = found.map(({ id, title, created_at }) => ({ id, title, created_at }));
    sendJson(res, 200, { query: q, results });
  } catch (err) {
    if (!(err instanceof BackendError)) throw err;
    sendJson(res, 502, { error: 'backend_unavailable', message: err.message });
  }
}

const ROUTES = {
  '/': { GET: (config, url, req, res) => home(config, res) },
  '/api/health': { GET: (config, url, req, res) => sendJson(res, 200, { status: 'ok' }) },
  '/api/revalidate': {
    POST: (config, url, req, res) => {
      req.resume(); // the body is not needed; drain it
      sendJson(res, 200, { revalidated: true, now: new Date().toISOString() });
    },
  },
  '/api/search': { GET: (config, url, req, res) => search(config, url, res) },
};

function createHandler(config, state = { shuttingDown: false }) {
  return async function handle(req, res) {
    res.setHeader('x-served-by', 'cms-frontend');
    res.setHeader('x-cms-node', config.node);
    if (state.shuttingDown) res.setHeader('connection', 'close');
    let url;
    try {
      url = new URL(req.url, 'http://frontend.invalid');
    } catch {
      sendJson(res, 400, { error: 'bad_request', message: 'malformed URL' });
      return;
    }
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const route = ROUTES[path];
    if (!route) {
      if (path.startsWith('/api/')) {
        sendJson(res, 404, { error: 'not_found', message: `no route for ${path}` });
      } else {
        send(res, 404, 'text/plain; charset=utf-8', 'Not found\n');
      }
      return;
    }
    const method = req.method === 'HEAD' && route.GET ? 'GET' : req.method;
    if (!route[method]) {
      methodNotAllowed(res, Object.keys(route).concat(route.GET ? ['HEAD'] : []));
      return;
    }
    try {
      await route[method](config, url, req, res);
    } catch (err) {
      console.error(`error on ${req.method} ${path}: ${err && err.stack ? err.stack : err}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal_error', message: 'internal error' });
      else res.destroy();
    }
  };
}

module.exports = { createHandler };
