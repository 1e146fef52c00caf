'use strict';
// Pure helpers of the frontend, run by test_cms_frontend_units.py through `node --test`.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const lib = path.join(__dirname, '..', '..', 'cms', 'frontend', 'lib');
const { loadConfig, parseHosts, parseBackendUrl } = require(path.join(lib, 'config'));
const { escapeHtml, renderHome } = require(path.join(lib, 'render'));

test('parseHosts splits, trims and defaults to loopback', () => {
  assert.deepEqual(parseHosts('10.0.0.1, 127.0.0.1,'), ['10.0.0.1', '127.0.0.1']);
  assert.deepEqual(parseHosts(undefined), ['127.0.0.1']);
  assert.deepEqual(parseHosts(' , '), ['127.0.0.1']);
});

test('loadConfig defaults and names a bad variable', () => {
  const config = loadConfig({ CMS_NODE_NAME: 'n1' });
  assert.equal(config.port, 3000);
  assert.equal(config.backendUrl, 'http://127.0.0.1:8000');
  assert.equal(config.node, 'n1');
  assert.throws(() => loadConfig({ PORT: '70000' }), /^Error: PORT:/);
  assert.throws(() => loadConfig({ PORT: '3e3' }), /^Error: PORT:/);
  assert.throws(() => loadConfig({ BACKEND_URL: 'ftp://x' }), /^Error: BACKEND_URL:/);
});

test('parseBackendUrl keeps only the origin', () => {
  assert.equal(parseBackendUrl('http://10.0.0.5:8000/some/path/'), 'http://10.0.0.5:8000');
});

test('escapeHtml escapes markup and quotes', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

test('renderHome lists titles escaped, or says what is unavailable', () => {
  const page = renderHome({
    articles: [{ id: 1, title: '<b>Hi</b>', created_at: 't' }], error: null, node: 'n',
  });
  assert.match(page, /&lt;b&gt;Hi&lt;\/b&gt;/);
  assert.doesNotMatch(page, /<b>Hi/);
  const down = renderHome({ articles: [], error: 'backend unreachable: ECONNREFUSED', node: 'n' });
  assert.match(down, /unavailable right now \(backend unreachable: ECONNREFUSED\)/);
});
